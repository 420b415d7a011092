"""A fake OpenAI-compatible server: ``POST /v1/chat/completions`` and ``GET /v1/models``, with
errors shaped like OpenAI's (and llama.cpp's when tools are not enabled)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.fake_llm_behaviours import HttpError, Reply
from tests.fake_llm_server import FakeLLMServer, json_response

#: OpenAI's error ``type`` and ``code`` for a status (others: server_error or
#: invalid_request_error, no code).
OPENAI_ERROR_DEFAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class FakeOpenAI(FakeLLMServer):
    """An OpenAI-compatible server: ``POST /v1/chat/completions``, ``GET /v1/models``."""

    kind = "openai"
    chat_path = "/v1/chat/completions"
    health_path = "/v1/models"

    @property
    def url(self) -> str:
        """The endpoint URL a client is configured with (OpenAI's includes /v1)."""
        return self.base_url + "/v1"

    def _models_body(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 1_736_935_200, "owned_by": "fake"}
                for name in self.models
            ],
        }

    def _reply(self, reply: Reply, model: str) -> dict[str, Any]:
        how = reply.arguments_as or "string"
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{self._next_id():08d}",
                    "type": "function",
                    "function": {"name": name, "arguments": self._arguments(a, how)},
                }
                for name, a in reply.tool_calls
            ]
        finish = reply.done_reason or ("tool_calls" if reply.tool_calls else "stop")
        data: dict[str, Any] = {
            "id": f"chatcmpl-{self._next_id():08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        usage: dict[str, int] = {}
        if reply.input_tokens is not None:
            usage["prompt_tokens"] = reply.input_tokens
        if reply.output_tokens is not None:
            usage["completion_tokens"] = reply.output_tokens
        if reply.input_tokens is not None and reply.output_tokens is not None:
            usage["total_tokens"] = reply.input_tokens + reply.output_tokens
        if usage:
            data["usage"] = usage
        return data

    def _no_message(self, model: str) -> dict[str, Any]:
        return {"id": "chatcmpl-empty", "object": "chat.completion", "choices": []}

    def _no_tools(self, model: str) -> web.Response:
        # llama.cpp without --jinja: a runtime_error, hence 500 and server_error.
        error = {
            "code": 500,
            "message": "tools param requires --jinja flag",
            "type": "server_error",
        }
        return json_response(500, {"error": error})

    def _error(self, error: HttpError) -> web.Response:
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            headers["Retry-After"] = error.retry_after
        kind, code = OPENAI_ERROR_DEFAULTS.get(
            error.status,
            ("server_error" if error.status >= 500 else "invalid_request_error", None),
        )
        body = {
            "message": error.message,
            "type": error.error_type or kind,
            "param": None,
            "code": code,
        }
        return json_response(error.status, {"error": body}, headers)
