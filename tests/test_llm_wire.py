"""Wire formats (pure) and the fake LLM servers (over real HTTP with httpx)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from oriole.experiment import ModelOptions
from oriole.llm.chat import ChatRequest, Message, ModelReply, ToolCall
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
from oriole.llm.tools import TOOLS
from oriole.llm.wire import WireFormat
from oriole.llm.wire.bedrock import EMPTY_TOOL_RESULT, BedrockWire
from oriole.llm.wire.http_errors import (
    MAX_DETAIL_CHARS,
    UNDATED_RETRY_AFTER,
    parse_retry_after,
    truncate,
)
from oriole.llm.wire.ollama import OllamaWire
from oriole.llm.wire.openai import OpenAIWire
from tests.fake_llm import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    FakeBedrock,
    FakeLLMServer,
    FakeOllama,
    FakeOpenAI,
    Hang,
    HttpError,
    Kind,
    MalformedBody,
    MazeBrain,
    NoMessage,
    NoToolSupport,
    RecordedRequest,
    Reply,
    sign_bedrock_request,
    sigv4_problem,
    verify_sigv4,
)

#: Generous: a loaded 2-core machine must not fail a request that merely ran slowly.
TIMEOUT = httpx.Timeout(30.0)
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

OLLAMA = OllamaWire()
OPENAI = OpenAIWire()
BEDROCK = BedrockWire()
WIRES: dict[str, WireFormat] = {"ollama": OLLAMA, "openai": OPENAI, "bedrock": BEDROCK}

MOVE_NORTH = TOOLS[0]


def _conversation() -> tuple[Message, ...]:
    return (
        Message("system", "You are in a maze."),
        Message("user", "You stand at (2,2). Find the goal."),
        Message(
            "assistant",
            "Let me look around.",
            tool_calls=(
                ToolCall("c1", "move_north", {"reasoning": "open"}),
                ToolCall("c2", "move_east", '{"reasoning": "also open"}'),
            ),
        ),
        Message("tool", "moved to (2,1)", tool_call_id="c1", tool_name="move_north"),
        Message("tool", "blocked by a wall", tool_call_id="c2", tool_name="move_east"),
        Message("user", "Your turn."),
    )


def _request(options: ModelOptions | None = None, model: str = "qwen2.5:7b") -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=_conversation(),
        tools=TOOLS,
        options=options or ModelOptions(),
    )


def _only(messages: tuple[Message, ...]) -> ChatRequest:
    return ChatRequest(model="m", messages=messages, tools=TOOLS)


def _bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_wire_classes_satisfy_the_protocol() -> None:
    for name, wire in WIRES.items():
        assert wire.provider == name
    assert (OLLAMA.health_path, OPENAI.health_path, BEDROCK.health_path) == (
        "/api/tags",
        "/models",
        None,
    )
    assert OLLAMA.chat_path("x") == "/api/chat"
    assert OPENAI.chat_path("x") == "/chat/completions"


# -- shared helpers ----------------------------------------------------------------------


def test_retry_after_forms() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"RETRY-AFTER": "-3"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "junk", "Retry-After": "9"}) == 9.0


def test_retry_after_http_date_is_measured_against_the_date_header() -> None:
    date = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    headers = {
        "Date": format_datetime(date, usegmt=True),
        "Retry-After": format_datetime(date + timedelta(seconds=90), usegmt=True),
    }
    assert parse_retry_after(headers) == 90.0
    past = {"Date": headers["Date"], "Retry-After": format_datetime(date - timedelta(hours=1))}
    assert parse_retry_after(past) == 0.0
    undated = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    assert parse_retry_after(undated) == UNDATED_RETRY_AFTER


def test_truncate_marks_what_was_cut() -> None:
    assert truncate("  short  ") == "short"
    cut = truncate("x" * 2000)
    assert cut.startswith("x" * MAX_DETAIL_CHARS)
    assert "1500 more characters" in cut
    assert len(cut) < MAX_DETAIL_CHARS + 40


# -- Ollama: bodies ----------------------------------------------------------------------


def test_ollama_body_without_options_sends_nothing_unset() -> None:
    body = OLLAMA.chat_body(_request())
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
    body = OLLAMA.chat_body(_request(options))
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
    only_keep_alive = OLLAMA.chat_body(_request(ModelOptions(keep_alive="0")))
    assert "options" not in only_keep_alive
    assert only_keep_alive["keep_alive"] == "0"


def test_ollama_messages() -> None:
    messages = OLLAMA.chat_body(_request())["messages"]
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


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"reasoning": "r"}, {"reasoning": "r"}),
        ('{"depth": 25, "reasoning": "r"}', {"depth": 25, "reasoning": "r"}),
        ('{"reasoning": "r"', {}),
        ("[1, 2]", {}),
        ("", {}),
        (None, {}),
        (42, {}),
        (["a"], {}),
    ],
)
def test_arguments_become_objects_for_ollama_and_bedrock(given: Any, sent: Any) -> None:
    call = ToolCall("t1", "recall_movement_history", given)
    convo = (Message("user", "go"), Message("assistant", "", tool_calls=(call,)))
    ollama = OLLAMA.chat_body(_only(convo))["messages"][1]
    assert ollama["tool_calls"][0]["function"]["arguments"] == sent
    bedrock = BEDROCK.chat_body(_only(convo))["messages"][1]
    assert bedrock["content"] == [
        {"toolUse": {"toolUseId": "t1", "name": "recall_movement_history", "input": sent}}
    ]


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
    return _bytes(data)


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
    reply = OLLAMA.parse_reply(_bytes(data))
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
    body = _bytes({"model": "llama3.2:3b", "done": True})
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
        OLLAMA.parse_reply(_bytes({"error": "qwen:0.5b does not support tools"}))
    with pytest.raises(BadRequest, match="llama runner process has terminated"):
        OLLAMA.parse_reply(_bytes({"error": "llama runner process has terminated"}))


# -- Ollama: errors ----------------------------------------------------------------------


def _ollama_error(status: int, text: str, **headers: str) -> ProviderError:
    return OLLAMA.parse_error(status, headers, _bytes({"error": text}))


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
    error = OLLAMA.parse_error(429, headers, _bytes({"error": "slow down"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 30.0


def test_error_bodies_that_are_not_json_are_quoted_and_truncated() -> None:
    body = b"<html>" + b"x" * 5000 + b"</html>"
    for wire in WIRES.values():
        error = wire.parse_error(502, {}, body)
        assert type(error) is ServerError
        assert "<html>" in error.message
        assert len(error.message) < 700
        empty = wire.parse_error(500, {}, b"")
        assert "(empty body)" in empty.message


# -- OpenAI: bodies ----------------------------------------------------------------------


def test_openai_body_defaults() -> None:
    body = OPENAI.chat_body(_request())
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
    body = OPENAI.chat_body(_request(options))
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
    plain = OPENAI.chat_body(_request(ModelOptions(temperature=0.7)))
    for absent in ("top_k", "repeat_penalty", "repetition_penalty", "num_ctx", "keep_alive"):
        assert absent not in plain


def test_openai_messages() -> None:
    messages = OPENAI.chat_body(_request())["messages"]
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
    message = OPENAI.chat_body(_only(convo))["messages"][1]
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
    return _bytes(data)


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
    reply = OPENAI.parse_reply(_bytes(body))
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
        OPENAI.parse_reply(_bytes({"id": "x", "choices": []}))
    with pytest.raises(MalformedResponse, match="no choices"):
        OPENAI.parse_reply(_bytes({"id": "x"}))
    with pytest.raises(MalformedResponse, match="no message"):
        OPENAI.parse_reply(_bytes({"choices": [{"index": 0}]}))
    with pytest.raises(MalformedResponse, match="not JSON"):
        OPENAI.parse_reply(b"data: {}\n\n")
    with pytest.raises(ServerError, match="overloaded"):
        OPENAI.parse_reply(_bytes({"error": {"message": "overloaded", "code": 502}}))
    with pytest.raises(BadRequest, match="HTTP 200: odd"):
        OPENAI.parse_reply(_bytes({"error": "odd"}))


# -- OpenAI: errors ----------------------------------------------------------------------


def _openai_error(status: int, error: Any, **headers: str) -> ProviderError:
    return OPENAI.parse_error(status, headers, _bytes({"error": error}))


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
        _bytes(
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


# -- Bedrock: bodies ---------------------------------------------------------------------


def test_bedrock_chat_path_quotes_the_model_id() -> None:
    assert BEDROCK.chat_path(BEDROCK_MODEL) == (
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-3b"
    assert BEDROCK.chat_path(arn) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
        "%2Fus.meta.llama3-2-3b/converse"
    )


def test_bedrock_body() -> None:
    options = ModelOptions(
        temperature=0.0, top_p=0.9, max_output_tokens=512, top_k=50, seed=3, num_ctx=4096
    )
    body = BEDROCK.chat_body(_request(options, BEDROCK_MODEL))
    assert "model" not in body
    assert body["system"] == [{"text": "You are in a maze."}]
    assert body["inferenceConfig"] == {"maxTokens": 512, "temperature": 0.0, "topP": 0.9}
    assert body["additionalModelRequestFields"] == {"top_k": 50}
    tool_config = body["toolConfig"]
    assert tool_config["toolChoice"] == {"auto": {}}
    assert tool_config["tools"][0] == {
        "toolSpec": {
            "name": "move_north",
            "description": MOVE_NORTH.description,
            "inputSchema": {"json": dict(MOVE_NORTH.parameters)},
        }
    }
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "You stand at (2,2). Find the goal."}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Let me look around."},
                {
                    "toolUse": {
                        "toolUseId": "c1",
                        "name": "move_north",
                        "input": {"reasoning": "open"},
                    }
                },
                {
                    "toolUse": {
                        "toolUseId": "c2",
                        "name": "move_east",
                        "input": {"reasoning": "also open"},
                    }
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "c1",
                        "content": [{"text": "moved to (2,1)"}],
                        "status": "success",
                    }
                },
                {
                    "toolResult": {
                        "toolUseId": "c2",
                        "content": [{"text": "blocked by a wall"}],
                        "status": "success",
                    }
                },
                {"text": "Your turn."},
            ],
        },
    ]


def test_bedrock_body_leaves_out_empty_sections() -> None:
    body = BEDROCK.chat_body(
        ChatRequest(model=BEDROCK_MODEL, messages=(Message("user", "hi"),), tools=())
    )
    assert body == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def test_bedrock_merges_roles_and_skips_empty_text() -> None:
    messages = (
        Message("system", ""),
        Message("user", "first"),
        Message("user", ""),
        Message("user", "second"),
        Message("assistant", ""),  # nothing to say: dropped, so the users around it merge
        Message("user", "third"),
        Message("assistant", "", tool_calls=(ToolCall("u1", "move_south", None),)),
        Message("tool", "", tool_call_id="u1"),
        Message("assistant", "done"),
        Message("assistant", "really"),
    )
    body = BEDROCK.chat_body(_only(messages))
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "first"}, {"text": "second"}, {"text": "third"}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "u1", "name": "move_south", "input": {}}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "u1",
                        "content": [{"text": EMPTY_TOOL_RESULT}],
                        "status": "success",
                    }
                }
            ],
        },
        {"role": "assistant", "content": [{"text": "done"}, {"text": "really"}]},
    ]
    roles = [m["role"] for m in body["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))


# -- Bedrock: replies and errors ---------------------------------------------------------


def _bedrock_reply(content: list[dict[str, Any]], **fields: Any) -> bytes:
    data: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1200, "outputTokens": 64, "totalTokens": 1264},
        "metrics": {"latencyMs": 987},
    }
    data.update(fields)
    return _bytes(data)


def test_bedrock_reply() -> None:
    body = _bedrock_reply(
        [
            {"text": "I will go north."},
            {
                "toolUse": {
                    "toolUseId": "tooluse_1",
                    "name": "move_north",
                    "input": {"reasoning": "x"},
                }
            },
            {"text": "Then east."},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "move_east", "input": "{odd"}},
        ]
    )
    reply = BEDROCK.parse_reply(body)
    assert reply.message.content == "I will go north.\nThen east."
    assert reply.message.tool_calls == (
        ToolCall("tooluse_1", "move_north", {"reasoning": "x"}),
        ToolCall("tooluse_2", "move_east", "{odd"),
    )
    assert (reply.input_tokens, reply.output_tokens) == (1200, 64)
    assert reply.done_reason == "tool_use"
    assert reply.duration_ms == 987.0


def test_bedrock_reply_without_usage_or_tools() -> None:
    data = json.loads(_bedrock_reply([{"text": "I think..."}], stopReason="end_turn"))
    del data["usage"], data["metrics"]
    reply = BEDROCK.parse_reply(_bytes(data))
    assert reply == ModelReply(Message("assistant", "I think..."), None, None, "end_turn")


def test_bedrock_malformed_replies() -> None:
    with pytest.raises(MalformedResponse, match=r"output\.message\.content"):
        BEDROCK.parse_reply(_bytes({"output": {}}))
    with pytest.raises(MalformedResponse, match="not JSON"):
        BEDROCK.parse_reply(b"")
    with pytest.raises(MalformedResponse, match="toolUse block 0"):
        BEDROCK.parse_reply(_bedrock_reply([{"toolUse": {"name": "move_north"}}]))


def _bedrock_error(
    status: int, error_type: str | None, message: str, *, key: str = "message"
) -> ProviderError:
    headers = {}
    if error_type is not None:
        headers["x-amzn-ErrorType"] = (
            f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        )
    return BEDROCK.parse_error(status, headers, _bytes({key: message}))


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (429, "ThrottlingException", RateLimited),
        (400, "ThrottlingException", RateLimited),
        (429, None, RateLimited),
        (503, "ServiceUnavailableException", ServerError),
        (500, "InternalServerException", ServerError),
        (429, "ModelNotReadyException", ServerError),
        (502, None, ServerError),
        (408, "ModelTimeoutException", RequestTimeout),
        (408, None, RequestTimeout),
        (404, "ResourceNotFoundException", ModelNotFound),
        (404, None, ModelNotFound),
        (403, "AccessDeniedException", AuthenticationFailed),
        (403, "UnrecognizedClientException", AuthenticationFailed),
        (403, "InvalidSignatureException", AuthenticationFailed),
        (403, "ExpiredTokenException", AuthenticationFailed),
        (401, None, AuthenticationFailed),
        (400, "ValidationException", BadRequest),
        (409, None, BadRequest),
    ],
)
def test_bedrock_error_classes(
    status: int, error_type: str | None, expected: type[ProviderError]
) -> None:
    error = _bedrock_error(status, error_type, "what went wrong")
    assert type(error) is expected
    assert "what went wrong" in error.message
    if error_type is not None:
        assert error_type in error.message


def test_bedrock_error_type_from_body_and_capital_message() -> None:
    body = _bytes(
        {"__type": "com.amazon.coral.service#ExpiredTokenException", "Message": "token expired"}
    )
    error = BEDROCK.parse_error(400, {}, body)
    assert type(error) is AuthenticationFailed
    assert "ExpiredTokenException: token expired" in error.message


def test_bedrock_tools_unsupported_and_bad_model_id() -> None:
    no_tools = _bedrock_error(400, "ValidationException", "This model doesn't support tool use.")
    assert type(no_tools) is ToolsUnsupported
    streaming = _bedrock_error(
        400, "ValidationException", "This model does not support tool use in streaming mode."
    )
    assert type(streaming) is ToolsUnsupported
    bad_id = _bedrock_error(400, "ValidationException", "The provided model identifier is invalid.")
    assert type(bad_id) is ModelNotFound


def test_bedrock_throttling_retry_after() -> None:
    headers = {"x-amzn-ErrorType": "ThrottlingException", "Retry-After": "3"}
    error = BEDROCK.parse_error(429, headers, _bytes({"message": "Too many requests"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0


# -- SigV4 verification ------------------------------------------------------------------


def _signed(url: str, body: bytes, secret: str = TEST_SECRET_KEY) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "x"})
    SigV4Auth(Credentials(TEST_ACCESS_KEY, secret), "bedrock", TEST_REGION).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = httpx.URL(url).netloc.decode()
    return headers


def test_sigv4_verification_accepts_botocore_signatures_and_rejects_tampering() -> None:
    url = "http://127.0.0.1:8123" + BEDROCK.chat_path(BEDROCK_MODEL)
    body = b'{"messages": []}'
    headers = _signed(url, body)
    creds: dict[str, str] = {
        "access_key": TEST_ACCESS_KEY,
        "secret_key": TEST_SECRET_KEY,
        "region": TEST_REGION,
    }
    assert verify_sigv4("POST", url, headers, body, **creds)
    assert not verify_sigv4("POST", url, headers, b'{"messages": [1]}', **creds)
    assert sigv4_problem("POST", url, headers, body + b" ", **creds) == "signature mismatch"
    assert not verify_sigv4("POST", url.replace("v1%3A0", "v2%3A0"), headers, body, **creds)
    assert not verify_sigv4("GET", url, headers, body, **creds)
    wrong_secret = _signed(url, body, secret="not-the-secret")
    assert sigv4_problem("POST", url, wrong_secret, body, **creds) == "signature mismatch"
    assert not verify_sigv4("POST", url, headers, body, **{**creds, "region": "eu-west-1"})
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    assert sigv4_problem("POST", url, unsigned, body, **creds) == "no Authorization header"


# -- over HTTP against the fakes ---------------------------------------------------------

FAKES: dict[str, Callable[[], FakeLLMServer]] = {
    "ollama": FakeOllama,
    "openai": FakeOpenAI,
    "bedrock": FakeBedrock,
}


@pytest_asyncio.fixture(params=["ollama", "openai", "bedrock"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeLLMServer]:
    fake = FAKES[request.param]()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        yield http


def _model(kind: str) -> str:
    return BEDROCK_MODEL if kind == "bedrock" else "qwen2.5:7b"


async def _send(
    http: httpx.AsyncClient, server: FakeLLMServer, request: ChatRequest | None = None
) -> httpx.Response:
    wire = WIRES[server.kind]
    request = request or _request(model=_model(server.kind))
    body = json.dumps(wire.chat_body(request)).encode()
    url = server.url + wire.chat_path(request.model)
    headers = {"Content-Type": "application/json"}
    if server.kind == "bedrock":
        headers = sign_bedrock_request(url, body)
    return await http.post(url, content=body, headers=headers)


async def _chat(
    http: httpx.AsyncClient, server: FakeLLMServer, request: ChatRequest | None = None
) -> ModelReply:
    """One chat call as a provider would make it: a reply, or the classified error raised."""
    wire = WIRES[server.kind]
    response = await _send(http, server, request)
    if response.is_success:
        return wire.parse_reply(response.content)
    raise wire.parse_error(response.status_code, response.headers, response.content)


@pytest.mark.asyncio
async def test_round_trip_with_the_default_brain(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    replies = [await _chat(client, server) for _ in range(4)]
    wire = WIRES[server.kind]
    assert len(server.chat_requests) == 4
    sent = server.chat_requests[0]
    assert sent.method == "POST"
    assert sent.body == wire.chat_body(_request(model=_model(server.kind)))
    assert sent.model == _model(server.kind)
    for reply in replies:
        assert 1 <= len(reply.message.tool_calls) <= 2
        for call in reply.message.tool_calls:
            assert call.name in {"move_north", "move_south", "move_east", "move_west"}
            args = (
                call.arguments if isinstance(call.arguments, dict) else json.loads(call.arguments)
            )
            assert args["reasoning"]
    assert server.reported_usage == [(r.input_tokens, r.output_tokens) for r in replies]
    assert len({out for _, out in server.reported_usage}) > 1  # varies from reply to reply
    if server.kind == "bedrock":
        assert server.signature_ok == [True] * 4
        assert sent.raw_path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    if server.kind == "ollama":
        assert all(r.tokens_per_second and r.duration_ms for r in replies)


@pytest.mark.asyncio
async def test_scripted_replies_then_brain(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(
        Reply(content="I think..."),
        Reply(tool_calls=[("move_west", '{"reasoning": ')], arguments_as="string"),
        Reply(tool_calls=[("move_east", {"reasoning": "r"})], arguments_as="string"),
        Reply(tool_calls=[("move_north", {"reasoning": "r"})], arguments_as="object"),
        Reply(content="x", input_tokens=None, output_tokens=None, done_reason="length"),
    )
    thinking = await _chat(client, server)
    assert thinking.message.content == "I think..."
    assert thinking.message.tool_calls == ()
    assert (thinking.input_tokens, thinking.output_tokens) == (100, 20)
    malformed = await _chat(client, server)
    assert malformed.message.tool_calls[0].arguments == '{"reasoning": '
    as_string = await _chat(client, server)
    assert as_string.message.tool_calls[0].arguments == '{"reasoning": "r"}'
    as_object = await _chat(client, server)
    assert as_object.message.tool_calls[0].arguments == {"reasoning": "r"}
    no_usage = await _chat(client, server)
    assert (no_usage.input_tokens, no_usage.output_tokens, no_usage.done_reason) == (
        None,
        None,
        "length",
    )
    assert server.reported_usage[-1] == (None, None)
    brain = await _chat(client, server)  # script exhausted: the brain answers
    assert brain.message.tool_calls
    assert len(server.reported_usage) == 6


@pytest.mark.asyncio
async def test_tool_call_ids_are_unique(server: FakeLLMServer, client: httpx.AsyncClient) -> None:
    calls = [("move_north", {"reasoning": "a"}), ("move_south", {"reasoning": "b"})]
    server.push(Reply(tool_calls=calls), Reply(tool_calls=calls))
    first, second = await _chat(client, server), await _chat(client, server)
    ids = [c.id for c in first.message.tool_calls]
    assert len(set(ids)) == 2
    if server.kind != "ollama":  # Ollama has no ids; the wire numbers calls per reply
        assert not set(ids) & {c.id for c in second.message.tool_calls}


@pytest.mark.asyncio
async def test_rate_limited_with_retry_after_seconds(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(HttpError(429, "Too many requests, slow down", retry_after="7"))
    with pytest.raises(RateLimited) as caught:
        await _chat(client, server)
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429
    assert "slow down" in caught.value.message


@pytest.mark.asyncio
async def test_rate_limited_with_retry_after_http_date(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    until = datetime.now(UTC) + timedelta(seconds=120)
    server.push(HttpError(429, "throttled", retry_after=format_datetime(until, usegmt=True)))
    with pytest.raises(RateLimited) as caught:
        await _chat(client, server)
    wait = caught.value.retry_after
    assert wait is not None
    # Measured against the response's Date header (aiohttp sets it); seconds resolution.
    assert 60.0 < wait <= 121.0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, ServerError),
        (503, ServerError),
        (404, ModelNotFound),
        (401, AuthenticationFailed),
        (400, BadRequest),
    ],
)
async def test_http_errors_are_classified(
    server: FakeLLMServer,
    client: httpx.AsyncClient,
    status: int,
    expected: type[ProviderError],
) -> None:
    server.push(HttpError(status, f"simulated {status}"))
    with pytest.raises(ProviderError) as caught:
        await _chat(client, server)
    assert type(caught.value) is expected
    assert f"simulated {status}" in caught.value.message


@pytest.mark.asyncio
async def test_no_tool_support(server: FakeLLMServer, client: httpx.AsyncClient) -> None:
    server.push(NoToolSupport())
    model = "llama3.2:3b" if server.kind == "ollama" else _model(server.kind)
    base = _request(model=model)
    with pytest.raises(ToolsUnsupported) as caught:
        await _chat(client, server, base)
    if server.kind == "ollama":
        assert "registry.ollama.ai/library/llama3.2:3b does not support tools" in str(caught.value)
    assert not server.reported_usage


@pytest.mark.asyncio
async def test_malformed_body_and_missing_message(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(MalformedBody(), NoMessage())
    with pytest.raises(MalformedResponse, match="not JSON"):
        await _chat(client, server)
    with pytest.raises(MalformedResponse) as caught:
        await _chat(client, server)
    if server.kind == "ollama":
        assert "no message field" in caught.value.message
    assert server.reported_usage == []


@pytest.mark.asyncio
async def test_hang_is_aborted_by_the_client_timeout(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(Hang())
    short = httpx.Timeout(30.0, read=0.5)
    wire = WIRES[server.kind]
    request = _request(model=_model(server.kind))
    body = json.dumps(wire.chat_body(request)).encode()
    url = server.url + wire.chat_path(request.model)
    headers = sign_bedrock_request(url, body) if server.kind == "bedrock" else {}
    with pytest.raises(httpx.ReadTimeout):
        await client.post(url, content=body, headers=headers, timeout=short)
    await server.wait_for_chat_requests(1)
    assert server.hanging == 1
    # The server keeps serving other requests while one hangs.
    assert (await _chat(client, server)).message.tool_calls
    async with asyncio.timeout(20):
        await server.stop()
    assert server.hanging == 0


@pytest.mark.asyncio
async def test_stopping_releases_a_request_still_waiting(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(Hang())
    pending = asyncio.create_task(_send(client, server))
    await server.wait_for_chat_requests(1)
    async with asyncio.timeout(20):
        await server.stop()
    try:
        response = await asyncio.wait_for(pending, 20)
    except httpx.TransportError:
        pass  # the connection was closed under it: as good as an answer
    else:
        assert response.status_code == 503


@pytest.mark.asyncio
async def test_restart_on_the_same_port(server: FakeLLMServer, client: httpx.AsyncClient) -> None:
    await _chat(client, server)
    port, url = server.port, server.url
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        await _send(client, server)
    await server.start(port=port)
    assert (server.port, server.url) == (port, url)
    assert (await _chat(client, server)).message.tool_calls
    assert len(server.chat_requests) == 2  # the refused one never arrived


@pytest.mark.asyncio
async def test_health_endpoints() -> None:
    async with (
        FakeOllama(models=["qwen2.5:7b"]) as ollama,
        FakeOpenAI() as openai,
        httpx.AsyncClient(timeout=TIMEOUT) as http,
    ):
        tags = await http.get(ollama.url + "/api/tags")
        assert tags.status_code == 200
        assert [m["name"] for m in tags.json()["models"]] == ["qwen2.5:7b"]
        models = await http.get(openai.url + "/models")
        assert models.status_code == 200
        assert models.json()["object"] == "list"
        assert models.json()["data"][0]["id"] == "qwen2.5:7b"
        assert [(r.method, r.path) for r in openai.requests] == [("GET", "/v1/models")]
        assert openai.chat_requests == []
        ollama.healthy = False
        down = await http.get(ollama.url + "/api/tags")
        assert down.status_code == 503
        assert len(ollama.requests) == 2


@pytest.mark.asyncio
async def test_bedrock_rejects_bad_signatures(client: httpx.AsyncClient) -> None:
    async with FakeBedrock() as server:
        request = _request(model=BEDROCK_MODEL)
        body = json.dumps(BEDROCK.chat_body(request)).encode()
        url = server.url + BEDROCK.chat_path(BEDROCK_MODEL)
        headers = sign_bedrock_request(url, body)
        tampered = await client.post(url, content=body + b" ", headers=headers)
        assert tampered.status_code == 403
        assert tampered.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
        assert "signature we calculated does not match" in tampered.json()["message"]
        error = BEDROCK.parse_error(403, tampered.headers, tampered.content)
        assert type(error) is AuthenticationFailed
        stranger = sign_bedrock_request(url, body, access_key="AKIDSTRANGER")
        unknown = await client.post(url, content=body, headers=stranger)
        assert type(BEDROCK.parse_error(403, unknown.headers, unknown.content)) is (
            AuthenticationFailed
        )
        good = await client.post(url, content=body, headers=headers)
        assert good.status_code == 200
        assert server.signature_ok == [False, False, True]
        assert server.signature_problems[0] == "signature mismatch"
        assert len(server.reported_usage) == 1  # rejected requests consume no script


def test_maze_brain_is_deterministic() -> None:
    def run(seed: int) -> list[Any]:
        brain = MazeBrain(seed)
        fake = RecordedRequest("POST", "/api/chat", "/api/chat", {}, {}, b"x" * 400, True)
        return [brain(fake) for _ in range(20)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    replies = [r for r in run(1) if isinstance(r, Reply)]
    assert {r.input_tokens for r in replies} == {100}
    assert len({r.output_tokens for r in replies}) > 3


def test_fake_kinds() -> None:
    kinds: list[Kind] = ["ollama", "openai", "bedrock"]
    assert [FAKES[k]().kind for k in kinds] == kinds


def test_context_too_long_is_context_overflow_not_a_bad_request() -> None:
    llama = _bytes(
        {
            "error": {
                "message": "This model's maximum context length is 2048 tokens. However, you "
                "requested 2176 tokens (2048 in the messages, 128 in the completion).",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        }
    )
    error = OPENAI.parse_error(400, {}, llama)
    assert isinstance(error, ContextOverflow) and not error.retryable
    assert "2048 tokens" in error.message
    bedrock = BEDROCK.parse_error(
        400,
        {"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/"},
        _bytes({"message": "Input is too long for requested model."}),
    )
    assert isinstance(bedrock, ContextOverflow)
    other = OPENAI.parse_error(400, {}, _bytes({"error": {"message": "bad temperature"}}))
    assert type(other) is BadRequest
