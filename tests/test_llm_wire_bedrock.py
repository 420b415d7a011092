"""Bedrock Converse's wire format (pure): request bodies, replies and errors."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from oriole.experiment import ModelOptions
from oriole.llm.chat import ChatRequest, Message, ModelReply, ToolCall
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
from oriole.llm.wire.bedrock import EMPTY_TOOL_RESULT
from tests.llm_wire_support import (
    BEDROCK,
    BEDROCK_MODEL,
    MOVE_NORTH,
    chat_request,
    json_bytes,
    request_of,
)

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
    body = BEDROCK.chat_body(chat_request(options, BEDROCK_MODEL))
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
    body = BEDROCK.chat_body(request_of(messages))
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
    return json_bytes(data)


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
    reply = BEDROCK.parse_reply(json_bytes(data))
    assert reply == ModelReply(Message("assistant", "I think..."), None, None, "end_turn")


def test_bedrock_malformed_replies() -> None:
    with pytest.raises(MalformedResponse, match=r"output\.message\.content"):
        BEDROCK.parse_reply(json_bytes({"output": {}}))
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
    return BEDROCK.parse_error(status, headers, json_bytes({key: message}))


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
    body = json_bytes(
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
    error = BEDROCK.parse_error(429, headers, json_bytes({"message": "Too many requests"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0
