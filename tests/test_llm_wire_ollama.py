"""Ollama's wire format (pure): request bodies, replies and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oriole.experiment import ModelOptions
from oriole.llm.chat import Message, ToolCall
from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    RateLimited,
    RequestTimeout,
    ServerError,
    ToolsUnsupported,
)
from tests.llm_wire_support import MOVE_NORTH, OLLAMA, chat_request, json_bytes

# -- Ollama: bodies ----------------------------------------------------------------------


def test_ollama_body_without_options_sends_nothing_unset() -> None:
    body = OLLAMA.chat_body(chat_request())
    assert set(body) == {"model", "messages", "tools", "stream"}
    assert body["stream"] is False
    assert body["model"] == "qwen2.5:7b"
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "move_north",
            "description": MOVE_NORTH.description,
            "parameters": dict(MOVE_NORTH.parameters),
        },
    }
    assert len(body["tools"]) == 5
    # Renderers copy schemas: changing the body leaves the shared tool set alone.
    body["tools"][0]["function"]["parameters"]["required"].append("x")
    assert MOVE_NORTH.parameters["required"] == ["reasoning"]


def test_ollama_options_map_and_zero_values_are_sent() -> None:
    options = ModelOptions(
        temperature=0.0,
        num_ctx=8192,
        max_output_tokens=256,
        repeat_penalty=0.0,
        top_p=0.0,
        top_k=40,
        seed=0,
        keep_alive="10m",
    )
    body = OLLAMA.chat_body(chat_request(options))
    assert body["options"] == {
        "num_ctx": 8192,
        "temperature": 0.0,
        "num_predict": 256,
        "repeat_penalty": 0.0,
        "seed": 0,
        "top_p": 0.0,
        "top_k": 40,
    }
    assert body["keep_alive"] == "10m"
    only_keep_alive = OLLAMA.chat_body(chat_request(ModelOptions(keep_alive="0")))
    assert "options" not in only_keep_alive
    assert only_keep_alive["keep_alive"] == "0"


def test_ollama_messages() -> None:
    messages = OLLAMA.chat_body(chat_request())["messages"]
    assert messages[0] == {"role": "system", "content": "You are in a maze."}
    assert messages[1] == {"role": "user", "content": "You stand at (2,2). Find the goal."}
    assert messages[2] == {
        "role": "assistant",
        "content": "Let me look around.",
        "tool_calls": [
            {"function": {"name": "move_north", "arguments": {"reasoning": "open"}}},
            {"function": {"name": "move_east", "arguments": {"reasoning": "also open"}}},
        ],
    }
    assert messages[3] == {"role": "tool", "content": "moved to (2,1)", "tool_name": "move_north"}
    assert messages[5] == {"role": "user", "content": "Your turn."}


# -- Ollama: replies ---------------------------------------------------------------------


def _ollama_reply(**fields: Any) -> bytes:
    data: dict[str, Any] = {
        "model": "qwen2.5:7b",
        "created_at": "2025-03-01T12:00:00.123456Z",
        "message": {"role": "assistant", "content": ""},
        "done_reason": "stop",
        "done": True,
        "total_duration": 5_191_566_416,
        "load_duration": 2_154_458,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 383_809_000,
        "eval_count": 298,
        "eval_duration": 4_799_921_000,
    }
    data.update(fields)
    return json_bytes(data)


def test_ollama_reply_with_tool_calls_keeps_arguments_as_given() -> None:
    message = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "move_north", "arguments": {"reasoning": "open"}}},
            {"function": {"name": "move_east", "arguments": '{"reasoning": "str"}'}},
            {"id": "call_x9", "function": {"name": "move_west", "arguments": "{broken"}},
        ],
    }
    reply = OLLAMA.parse_reply(_ollama_reply(message=message))
    assert reply.message.role == "assistant"
    assert reply.message.tool_calls == (
        ToolCall("call_0", "move_north", {"reasoning": "open"}),
        ToolCall("call_1", "move_east", '{"reasoning": "str"}'),
        ToolCall("call_x9", "move_west", "{broken"),
    )
    assert reply.input_tokens == 26
    assert reply.output_tokens == 298
    assert reply.done_reason == "stop"
    assert reply.duration_ms == pytest.approx(5191.566416)
    assert reply.prompt_eval_ms == pytest.approx(383.809)
    assert reply.eval_ms == pytest.approx(4799.921)
    assert reply.tokens_per_second == round(298 / 4.799921, 2) == 62.08


def test_ollama_reply_without_tool_calls_or_usage() -> None:
    data = json.loads(_ollama_reply(message={"role": "assistant", "content": "I think..."}))
    for key in ("prompt_eval_count", "eval_count", "eval_duration", "total_duration"):
        del data[key]
    reply = OLLAMA.parse_reply(json_bytes(data))
    assert reply.message == Message("assistant", "I think...")
    assert reply.input_tokens is None
    assert reply.output_tokens is None
    assert reply.duration_ms is None
    assert reply.eval_ms is None
    assert reply.tokens_per_second is None
    zero = OLLAMA.parse_reply(_ollama_reply(eval_duration=0))
    assert zero.tokens_per_second is None
    assert zero.eval_ms == 0.0


def test_ollama_reply_without_message_is_malformed() -> None:
    body = json_bytes({"model": "llama3.2:3b", "done": True})
    with pytest.raises(MalformedResponse, match="no message field"):
        OLLAMA.parse_reply(body)


def test_ollama_reply_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="not JSON") as caught:
        OLLAMA.parse_reply(b"<html>bad gateway</html>")
    assert "bad gateway" in caught.value.message
    with pytest.raises(MalformedResponse, match="not an object"):
        OLLAMA.parse_reply(b"[1, 2]")
    with pytest.raises(MalformedResponse, match="tool call 0"):
        OLLAMA.parse_reply(_ollama_reply(message={"content": "", "tool_calls": [{"x": 1}]}))


def test_ollama_200_with_error_field_is_classified() -> None:
    with pytest.raises(ToolsUnsupported):
        OLLAMA.parse_reply(json_bytes({"error": "qwen:0.5b does not support tools"}))
    with pytest.raises(BadRequest, match="llama runner process has terminated"):
        OLLAMA.parse_reply(json_bytes({"error": "llama runner process has terminated"}))


# -- Ollama: errors ----------------------------------------------------------------------


def _ollama_error(status: int, text: str, **headers: str) -> ProviderError:
    return OLLAMA.parse_error(status, headers, json_bytes({"error": text}))


def test_ollama_error_classes() -> None:
    limited = _ollama_error(429, "too many requests", **{"Retry-After": "12"})
    assert type(limited) is RateLimited
    assert limited.retryable
    assert limited.retry_after == 12.0
    assert limited.status == 429
    assert "too many requests" in limited.message
    assert "HTTP 429" in limited.message
    assert type(_ollama_error(500, "boom")) is ServerError
    assert type(_ollama_error(503, "server busy")) is ServerError
    missing = _ollama_error(404, 'model "nope" not found, try pulling it first')
    assert type(missing) is ModelNotFound
    assert "try pulling it first" in missing.message
    assert type(_ollama_error(401, "unauthorized")) is AuthenticationFailed
    assert type(_ollama_error(403, "forbidden")) is AuthenticationFailed
    no_tools = _ollama_error(400, "registry.ollama.ai/library/llama3.2:3b does not support tools")
    assert type(no_tools) is ToolsUnsupported
    assert not no_tools.retryable
    assert "llama3.2:3b" in no_tools.message
    assert type(_ollama_error(400, "invalid options")) is BadRequest
    assert type(_ollama_error(418, "teapot")) is BadRequest
    assert type(_ollama_error(302, "moved")) is BadRequest
    assert type(_ollama_error(408, "slow")) is RequestTimeout


def test_ollama_error_with_http_date_retry_after() -> None:
    headers = {
        "Date": "Sat, 01 Mar 2025 12:00:00 GMT",
        "Retry-After": "Sat, 01 Mar 2025 12:00:30 GMT",
    }
    error = OLLAMA.parse_error(429, headers, json_bytes({"error": "slow down"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 30.0
