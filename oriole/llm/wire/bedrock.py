"""Amazon Bedrock's Converse API (``POST /model/{modelId}/converse``).

Converse is strict where the others are lenient: roles must alternate starting with
``user``, text blocks must not be empty, system prompts travel apart from the messages and
tool results are content blocks of a user message. The renderer shapes Oriole's conversation
to fit. Signing (SigV4) is the transport's job, not the wire format's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from oriole.llm.chat import ChatRequest, Message, ModelReply, ToolCall, ToolSpec
from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextOverflow,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    RateLimited,
    RequestTimeout,
    ServerError,
    ToolsUnsupported,
)
from oriole.llm.wire.http_errors import (
    body_text,
    class_for_status,
    header,
    make_error,
    says_context_exceeded,
    says_tools_unsupported,
    try_json,
)
from oriole.llm.wire.reply_body import count, load_json_object, number, object_field, string
from oriole.llm.wire.request_body import arguments_object, given, plain_json

#: Stands in for an empty tool result: Converse rejects empty text blocks.
EMPTY_TOOL_RESULT = "(empty result)"

_CLASS_BY_TYPE: dict[str, type[ProviderError]] = {
    "ThrottlingException": RateLimited,
    "ServiceQuotaExceededException": RateLimited,
    "ServiceUnavailableException": ServerError,
    "InternalServerException": ServerError,
    "ModelNotReadyException": ServerError,
    "ModelErrorException": ServerError,
    "ModelTimeoutException": RequestTimeout,
    "ResourceNotFoundException": ModelNotFound,
    "AccessDeniedException": AuthenticationFailed,
    "UnrecognizedClientException": AuthenticationFailed,
    "InvalidSignatureException": AuthenticationFailed,
    "ExpiredTokenException": AuthenticationFailed,
    "MissingAuthenticationTokenException": AuthenticationFailed,
    "IncompleteSignatureException": AuthenticationFailed,
    "ValidationException": BadRequest,
}


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "toolSpec": {
            "name": spec.name,
            "description": spec.description,
            "inputSchema": {"json": plain_json(spec.parameters)},
        }
    }


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    """The Converse role and content blocks of one non-system message."""
    if message.role == "tool":
        result = {
            "toolUseId": message.tool_call_id or "",
            "content": [{"text": message.content or EMPTY_TOOL_RESULT}],
            "status": "success",
        }
        return "user", [{"toolResult": result}]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"text": message.content})
    if message.role == "assistant":
        for call in message.tool_calls:
            use = {
                "toolUseId": call.id,
                "name": call.name,
                "input": plain_json(arguments_object(call.arguments)),
            }
            blocks.append({"toolUse": use})
        return "assistant", blocks
    return "user", blocks


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Merge same-role neighbours (tool results join into one user turn), drop empty ones."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": blocks})
    return merged


def _error_type(headers: Mapping[str, str], data: Any) -> str | None:
    raw = header(headers, "x-amzn-ErrorType")
    if raw:
        return raw.split(":", 1)[0].strip() or None
    if isinstance(data, dict):
        kind = data.get("__type")
        if isinstance(kind, str) and kind:
            return kind.rsplit("#", 1)[-1].strip() or None
    return None


def _error_message(data: Any, body: bytes) -> str:
    if isinstance(data, dict):
        for key in ("message", "Message"):
            value = data.get(key)
            if isinstance(value, str):
                return value
    return body_text(body)


class BedrockWire:
    """Request bodies and replies of Bedrock Converse."""

    provider = "bedrock"
    health_path: str | None = None

    def chat_path(self, model: str) -> str:
        # Model ids and ARNs hold ':' and '/', which must stay inside one path segment.
        return "/model/" + quote(model, safe="") + "/converse"

    def chat_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": _messages(request.messages)}
        system = [{"text": m.content} for m in request.messages if m.role == "system" and m.content]
        if system:
            body["system"] = system
        opts = request.options
        pairs: tuple[tuple[str, Any], ...] = (
            ("maxTokens", opts.max_output_tokens),
            ("temperature", opts.temperature),
            ("topP", opts.top_p),
        )
        inference = given(pairs)
        if inference:
            body["inferenceConfig"] = inference
        if request.tools:
            body["toolConfig"] = {
                "tools": [_tool(t) for t in request.tools],
                "toolChoice": {"auto": {}},
            }
        if opts.top_k is not None:
            body["additionalModelRequestFields"] = {"top_k": opts.top_k}
        return body

    def parse_reply(self, body: bytes) -> ModelReply:
        data = load_json_object(self.provider, body)
        output = data.get("output")
        message = output.get("message") if isinstance(output, dict) else None
        blocks = message.get("content") if isinstance(message, dict) else None
        if not isinstance(blocks, list):
            raise MalformedResponse(
                f"{self.provider}: the reply has no output.message.content: {body_text(body)}"
            )
        texts: list[str] = []
        calls: list[ToolCall] = []
        for index, block in enumerate(blocks):
            if not isinstance(block, dict):
                continue
            text = block.get("text")
            if isinstance(text, str):
                texts.append(text)
            use = block.get("toolUse")
            if isinstance(use, dict):
                name, use_id = use.get("name"), use.get("toolUseId")
                if not isinstance(name, str) or not isinstance(use_id, str):
                    raise MalformedResponse(
                        f"{self.provider}: toolUse block {index} lacks name or toolUseId: "
                        f"{body_text(body)}"
                    )
                calls.append(ToolCall(id=use_id, name=name, arguments=use.get("input")))
        usage = object_field(data, "usage")
        return ModelReply(
            message=Message(role="assistant", content="\n".join(texts), tool_calls=tuple(calls)),
            input_tokens=count(usage.get("inputTokens")),
            output_tokens=count(usage.get("outputTokens")),
            done_reason=string(data.get("stopReason")),
            duration_ms=number(object_field(data, "metrics").get("latencyMs")),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        data = try_json(body)
        kind = _error_type(headers, data)
        text = _error_message(data, body)
        detail = f"{kind}: {text}" if kind else text
        cls = _CLASS_BY_TYPE.get(kind or "")
        if (kind == "ValidationException" or status == 400) and says_tools_unsupported(text):
            cls = ToolsUnsupported
        elif kind == "ValidationException" and "model identifier is invalid" in text.lower():
            cls = ModelNotFound
        elif (kind == "ValidationException" or status == 400) and says_context_exceeded(text):
            cls = ContextOverflow
        elif cls is None:
            cls = class_for_status(status)
        return make_error(cls, self.provider, status, detail, headers)
