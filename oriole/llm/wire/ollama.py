"""Ollama's native chat API (``POST /api/chat``, non-streaming).

Ollama differs from OpenAI in ways that matter here: tool-call arguments are JSON objects
(not strings), tool results are matched by tool name (there are no call ids), sampling
options sit in an ``options`` object while ``keep_alive`` is top-level, and timings come in
nanoseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oriole.llm.chat import ChatRequest, Message, ModelReply
from oriole.llm.errors import MalformedResponse, ProviderError
from oriole.llm.wire.http_errors import body_text, error_for_text, truncate, try_json
from oriole.llm.wire.reply_body import count, function_message, load_json_object, number, string
from oriole.llm.wire.request_body import arguments_object, function_chat_body, given, plain_json

_NS_PER_MS = 1_000_000.0


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        rendered: dict[str, Any] = {"role": "tool", "content": message.content}
        if message.tool_name is not None:
            rendered["tool_name"] = message.tool_name
        return rendered
    rendered = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        rendered["tool_calls"] = [
            {
                "function": {
                    "name": call.name,
                    "arguments": plain_json(arguments_object(call.arguments)),
                }
            }
            for call in message.tool_calls
        ]
    return rendered


def _options(request: ChatRequest) -> dict[str, Any]:
    opts = request.options
    pairs: tuple[tuple[str, Any], ...] = (
        ("num_ctx", opts.num_ctx),
        ("temperature", opts.temperature),
        ("num_predict", opts.max_output_tokens),
        ("repeat_penalty", opts.repeat_penalty),
        ("seed", opts.seed),
        ("top_p", opts.top_p),
        ("top_k", opts.top_k),
    )
    return given(pairs)


def _error_text(data: Any, body: bytes) -> str:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, str):
            return error
        if error is not None:
            return truncate(str(error))
    return body_text(body)


def _ms(value: Any) -> float | None:
    ns = number(value)
    return None if ns is None else ns / _NS_PER_MS


class OllamaWire:
    """Request bodies and replies of Ollama's ``/api/chat``."""

    provider = "ollama"
    health_path: str | None = "/api/tags"

    def chat_path(self, model: str) -> str:
        return "/api/chat"

    def chat_body(self, request: ChatRequest) -> dict[str, Any]:
        body = function_chat_body(request, _message)
        options = _options(request)
        if options:
            body["options"] = options
        if request.options.keep_alive is not None:
            body["keep_alive"] = request.options.keep_alive
        return body

    def parse_reply(self, body: bytes) -> ModelReply:
        data = load_json_object(self.provider, body)
        if "error" in data:
            # Ollama can answer 200 with an error (e.g. a runner that died mid-request).
            raise self.parse_error(200, {}, body)
        message = data.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse(
                f"{self.provider}: the reply had no message field (a model without tool "
                f"support answers like this): {body_text(body)}"
            )
        eval_count = count(data.get("eval_count"))
        eval_ms = _ms(data.get("eval_duration"))
        rate = None
        if eval_count is not None and eval_ms is not None and eval_ms > 0:
            rate = round(eval_count / (eval_ms / 1000.0), 2)
        return ModelReply(
            message=function_message(self.provider, message, body),
            input_tokens=count(data.get("prompt_eval_count")),
            output_tokens=eval_count,
            done_reason=string(data.get("done_reason")),
            duration_ms=_ms(data.get("total_duration")),
            prompt_eval_ms=_ms(data.get("prompt_eval_duration")),
            eval_ms=eval_ms,
            tokens_per_second=rate,
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return error_for_text(self.provider, status, _error_text(try_json(body), body), headers)
