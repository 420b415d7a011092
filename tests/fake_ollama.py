"""A fake Ollama server: ``POST /api/chat`` and ``GET /api/tags`` in Ollama's own shapes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fake_llm_behaviours import HttpError, Reply
from tests.fake_llm_server import FakeLLMServer, json_response


def ollama_model_ref(model: str) -> str:
    """How Ollama names a model in errors: registry.ollama.ai/library/<name>:<tag>."""
    name = model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"
    if "/" not in name:
        name = "library/" + name
    if name.count("/") < 2:
        name = "registry.ollama.ai/" + name
    return name


class FakeOllama(FakeLLMServer):
    """Ollama: ``POST /api/chat``, ``GET /api/tags``."""

    kind = "ollama"
    chat_path = "/api/chat"
    health_path = "/api/tags"

    def _other(self, method: str, path: str) -> web.Response:
        if method == "GET" and path == "/":
            return web.Response(text="Ollama is running")
        return super()._other(method, path)

    def _models_body(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2025-01-15T10:00:00.000000000Z",
                    "size": 4_683_087_332,
                    "digest": hashlib.sha256(name.encode()).hexdigest(),
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "qwen2",
                        "families": ["qwen2"],
                        "parameter_size": "7.6B",
                        "quantization_level": "Q4_K_M",
                    },
                }
                for name in self.models
            ]
        }

    def _reply(self, reply: Reply, model: str) -> dict[str, Any]:
        how = reply.arguments_as or "object"
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"function": {"index": i, "name": name, "arguments": self._arguments(a, how)}}
                for i, (name, a) in enumerate(reply.tool_calls)
            ]
        prompt_ns = 150_000 * (reply.input_tokens or 200)
        eval_ns = 25_000_000 * (reply.output_tokens or 10)
        load_ns = 2_345_678
        data: dict[str, Any] = {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": message,
            "done_reason": reply.done_reason or "stop",
            "done": True,
            "total_duration": load_ns + prompt_ns + eval_ns + 1_234_567,
            "load_duration": load_ns,
            "prompt_eval_duration": prompt_ns,
            "eval_duration": eval_ns,
        }
        if reply.input_tokens is not None:
            data["prompt_eval_count"] = reply.input_tokens
        if reply.output_tokens is not None:
            data["eval_count"] = reply.output_tokens
        return data

    def _no_message(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "done": True,
            "done_reason": "stop",
        }

    def _no_tools(self, model: str) -> web.Response:
        return json_response(400, {"error": f"{ollama_model_ref(model)} does not support tools"})

    def _error(self, error: HttpError) -> web.Response:
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            headers["Retry-After"] = error.retry_after
        return json_response(error.status, {"error": error.message}, headers)
