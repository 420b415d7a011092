"""The OpenAI chat-completions API, as spoken by OpenAI and by llama.cpp, vLLM, LM Studio...

The endpoint URL includes ``/v1``. Tool-call arguments travel as JSON strings, tool results
are matched by call id. Options OpenAI lacks (``top_k``, repeat penalty) are sent only when
set, under the names llama.cpp and vLLM read; ``num_ctx`` and ``keep_alive`` have no
equivalent and are never sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from oriole.llm.chat import ChatRequest, Message, ModelReply
from oriole.llm.errors import MalformedResponse, ProviderError
from oriole.llm.wire.http_errors import body_text, error_for_text, truncate, try_json
from oriole.llm.wire.reply_body import (
    count,
    function_message,
    load_json_object,
    number,
    object_field,
    string,
)
from oriole.llm.wire.request_body import function_chat_body, given, plain_json


def _arguments_string(arguments: Any) -> str:
    """Arguments as the JSON string OpenAI expects; a string goes as the model wrote it."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return "{}"
    return json.dumps(plain_json(arguments), ensure_ascii=False)


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            # Always a string: OpenAI and vLLM take "" as well as null, but llama-cpp-python's
            # server refuses null (with an HTTP 500), which ended every second call.
            "content": message.content,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": _arguments_string(call.arguments),
                    },
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _error_text(data: Any, body: bytes) -> str:
    """The server's message with its type and code, from any of the shapes in use."""
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return error
        if isinstance(error, dict):
            message = error.get("message", error.get("detail"))
            if isinstance(message, str):
                extras = [
                    f"{key}={error[key]}"
                    for key in ("type", "code")
                    if isinstance(error.get(key), str | int) and not isinstance(error[key], bool)
                ]
                return message + (f" ({', '.join(extras)})" if extras else "")
            if message is not None:
                return truncate(json.dumps(message))
    return body_text(body)


class OpenAIWire:
    """Request bodies and replies of ``/chat/completions``."""

    provider = "openai"
    health_path: str | None = "/models"

    def chat_path(self, model: str) -> str:
        return "/chat/completions"

    def chat_body(self, request: ChatRequest) -> dict[str, Any]:
        body = function_chat_body(request, _message)
        body["tool_choice"] = "auto"
        opts = request.options
        pairs: tuple[tuple[str, Any], ...] = (
            ("temperature", opts.temperature),
            ("top_p", opts.top_p),
            ("max_tokens", opts.max_output_tokens),
            ("seed", opts.seed),
            ("top_k", opts.top_k),
            ("repeat_penalty", opts.repeat_penalty),  # llama.cpp
            ("repetition_penalty", opts.repeat_penalty),  # vLLM
        )
        body.update(given(pairs))
        return body

    def parse_reply(self, body: bytes) -> ModelReply:
        data = load_json_object(self.provider, body)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            if "error" in data:
                # Some proxies (e.g. OpenRouter) answer 200 with the real status as the code.
                error = data["error"]
                code = error.get("code") if isinstance(error, dict) else None
                status = code if isinstance(code, int) and 400 <= code <= 599 else 200
                raise self.parse_error(status, {}, body)
            raise MalformedResponse(f"{self.provider}: the reply has no choices: {body_text(body)}")
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise MalformedResponse(
                f"{self.provider}: choices[0] has no message: {body_text(body)}"
            )
        usage = object_field(data, "usage")
        timings = object_field(data, "timings")  # llama.cpp's own figures
        rate = number(timings.get("predicted_per_second"))
        return ModelReply(
            message=function_message(self.provider, message, body),
            input_tokens=count(usage.get("prompt_tokens")),
            output_tokens=count(usage.get("completion_tokens")),
            done_reason=string(choice.get("finish_reason")),
            prompt_eval_ms=number(timings.get("prompt_ms")),
            eval_ms=number(timings.get("predicted_ms")),
            tokens_per_second=None if rate is None else round(rate, 2),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        text = _error_text(try_json(body), body)
        # llama.cpp says "tools param requires --jinja flag" with a 500: the text decides.
        return error_for_text(self.provider, status, text, headers, context_overflow=True)
