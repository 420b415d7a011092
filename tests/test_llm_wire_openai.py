"""The OpenAI-compatible wire format (pure): request bodies, replies and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oriole.experiment import ModelOptions
from oriole.llm.chat import Message, ModelReply, ToolCall
from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ServerError,
    ToolsUnsupported,
)
from tests.llm_wire_support import OPENAI, chat_request, json_bytes, request_of

# -- OpenAI: bodies ----------------------------------------------------------------------


def test_openai_body_defaults() -> None:
    body = OPENAI.chat_body(chat_request())
    assert set(body) == {"model", "messages", "tools", "tool_choice", "stream"}
    assert body["tool_choice"] == "auto"
    assert body["stream"] is False
    assert body["tools"][4]["type"] == "function"
    assert body["tools"][4]["function"]["name"] == "recall_movement_history"


def test_openai_options_zero_values_and_extensions() -> None:
    options = ModelOptions(
        temperature=0.0,
        num_ctx=4096,
        max_output_tokens=128,
        repeat_penalty=1.1,
        top_p=0.0,
        top_k=20,
        seed=0,
        keep_alive="5m",
    )
    body = OPENAI.chat_body(chat_request(options))
    extra = {k: v for k, v in body.items() if k not in ("model", "messages", "tools")}
    assert extra == {
        "tool_choice": "auto",
        "stream": False,
        "temperature": 0.0,
        "top_p": 0.0,
        "max_tokens": 128,
        "seed": 0,
        "top_k": 20,
        "repeat_penalty": 1.1,
        "repetition_penalty": 1.1,
    }
    plain = OPENAI.chat_body(chat_request(ModelOptions(temperature=0.7)))
    for absent in ("top_k", "repeat_penalty", "repetition_penalty", "num_ctx", "keep_alive"):
        assert absent not in plain


def test_openai_messages() -> None:
    messages = OPENAI.chat_body(chat_request())["messages"]
    assert messages[0] == {"role": "system", "content": "You are in a maze."}
    assert messages[2] == {
        "role": "assistant",
        "content": "Let me look around.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "move_north", "arguments": '{"reasoning": "open"}'},
            },
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "move_east", "arguments": '{"reasoning": "also open"}'},
            },
        ],
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "moved to (2,1)"}
    assert messages[4] == {"role": "tool", "tool_call_id": "c2", "content": "blocked by a wall"}


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"reasoning": "é"}, '{"reasoning": "é"}'),
        ('{"reasoning": "r"', '{"reasoning": "r"'),
        ("", ""),
        (None, "{}"),
    ],
)
def test_openai_arguments_become_strings(given: Any, sent: str) -> None:
    convo = (
        Message("user", "go"),
        Message("assistant", "", tool_calls=(ToolCall("t1", "move_west", given),)),
    )
    message = OPENAI.chat_body(request_of(convo))["messages"][1]
    assert message["content"] == ""  # never null: llama-cpp-python's server refuses it
    assert message["tool_calls"][0]["function"]["arguments"] == sent


# -- OpenAI: replies ---------------------------------------------------------------------


def _openai_reply(message: dict[str, Any], **fields: Any) -> bytes:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_740_830_400,
        "model": "qwen2.5-7b-instruct",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 812, "completion_tokens": 41, "total_tokens": 853},
    }
    data.update(fields)
    return json_bytes(data)


def test_openai_reply_with_tool_calls() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "move_north", "arguments": '{"reasoning": "open"}'},
            },
            {"type": "function", "function": {"name": "move_south", "arguments": {"r": 1}}},
            {
                "id": "call_c",
                "type": "function",
                "function": {"name": "move_east", "arguments": "{"},
            },
        ],
    }
    reply = OPENAI.parse_reply(_openai_reply(message))
    assert reply.message.content == ""
    assert reply.message.tool_calls == (
        ToolCall("call_a", "move_north", '{"reasoning": "open"}'),
        ToolCall("call_1", "move_south", {"r": 1}),
        ToolCall("call_c", "move_east", "{"),
    )
    assert (reply.input_tokens, reply.output_tokens) == (812, 41)
    assert reply.done_reason == "tool_calls"
    assert reply.duration_ms is None


def test_openai_reply_without_tool_calls_or_usage() -> None:
    body = json.loads(_openai_reply({"role": "assistant", "content": "I think..."}))
    del body["usage"]
    body["choices"][0]["finish_reason"] = "stop"
    reply = OPENAI.parse_reply(json_bytes(body))
    assert reply == ModelReply(Message("assistant", "I think..."), None, None, "stop")


def test_openai_reply_reads_llama_cpp_timings() -> None:
    timings = {
        "prompt_n": 812,
        "prompt_ms": 95.5,
        "predicted_n": 41,
        "predicted_ms": 820.0,
        "predicted_per_second": 50.0012,
    }
    reply = OPENAI.parse_reply(_openai_reply({"content": "x"}, timings=timings))
    assert (reply.prompt_eval_ms, reply.eval_ms, reply.tokens_per_second) == (95.5, 820.0, 50.0)


def test_openai_malformed_replies() -> None:
    with pytest.raises(MalformedResponse, match="no choices"):
        OPENAI.parse_reply(json_bytes({"id": "x", "choices": []}))
    with pytest.raises(MalformedResponse, match="no choices"):
        OPENAI.parse_reply(json_bytes({"id": "x"}))
    with pytest.raises(MalformedResponse, match="no message"):
        OPENAI.parse_reply(json_bytes({"choices": [{"index": 0}]}))
    with pytest.raises(MalformedResponse, match="not JSON"):
        OPENAI.parse_reply(b"data: {}\n\n")
    with pytest.raises(ServerError, match="overloaded"):
        OPENAI.parse_reply(json_bytes({"error": {"message": "overloaded", "code": 502}}))
    with pytest.raises(BadRequest, match="HTTP 200: odd"):
        OPENAI.parse_reply(json_bytes({"error": "odd"}))


# -- OpenAI: errors ----------------------------------------------------------------------


def _openai_error(status: int, error: Any, **headers: str) -> ProviderError:
    return OPENAI.parse_error(status, headers, json_bytes({"error": error}))


def test_openai_error_classes() -> None:
    limited = _openai_error(
        429,
        {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
        **{"retry-after-ms": "1500", "retry-after": "2"},
    )
    assert type(limited) is RateLimited
    assert limited.retry_after == 1.5
    assert "Rate limit reached" in limited.message
    assert "rate_limit_exceeded" in limited.message
    seconds = _openai_error(429, "slow down", **{"Retry-After": "4"})
    assert seconds.retry_after == 4.0
    assert type(_openai_error(500, {"message": "internal"})) is ServerError
    assert type(_openai_error(503, {"message": "Loading model", "code": 503})) is ServerError
    assert type(_openai_error(401, {"message": "Incorrect API key"})) is AuthenticationFailed
    assert type(_openai_error(403, {"message": "nope"})) is AuthenticationFailed
    missing = _openai_error(404, {"message": "The model `gpt-9` does not exist"})
    assert type(missing) is ModelNotFound
    assert "gpt-9" in missing.message
    assert type(_openai_error(400, {"message": "messages: field required"})) is BadRequest
    vllm_flat = OPENAI.parse_error(
        400,
        {},
        json_bytes(
            {"object": "error", "message": "max_tokens is too large", "type": "BadRequestError"}
        ),
    )
    assert type(vllm_flat) is BadRequest
    assert "max_tokens is too large" in vllm_flat.message


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (500, "tools param requires --jinja flag"),
        (400, "tools param requires --jinja flag"),
        (400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser'),
        (400, "registry.ollama.ai/library/gemma:2b does not support tools"),
    ],
)
def test_openai_tools_unsupported(status: int, text: str) -> None:
    error = _openai_error(status, {"message": text, "type": "invalid_request_error"})
    assert type(error) is ToolsUnsupported
    assert text in error.message
