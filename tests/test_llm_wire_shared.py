"""What every wire format shares: its protocol, Retry-After, truncated details, tool
arguments, errors that are not JSON and context overflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from oriole.llm.chat import Message, ToolCall
from oriole.llm.errors import BadRequest, ContextOverflow, ServerError
from oriole.llm.wire.http_errors import (
    MAX_DETAIL_CHARS,
    UNDATED_RETRY_AFTER,
    parse_retry_after,
    truncate,
)
from tests.llm_wire_support import BEDROCK, OLLAMA, OPENAI, WIRES, json_bytes, request_of


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


# -- across formats ----------------------------------------------------------------------


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
    ollama = OLLAMA.chat_body(request_of(convo))["messages"][1]
    assert ollama["tool_calls"][0]["function"]["arguments"] == sent
    bedrock = BEDROCK.chat_body(request_of(convo))["messages"][1]
    assert bedrock["content"] == [
        {"toolUse": {"toolUseId": "t1", "name": "recall_movement_history", "input": sent}}
    ]


def test_error_bodies_that_are_not_json_are_quoted_and_truncated() -> None:
    body = b"<html>" + b"x" * 5000 + b"</html>"
    for wire in WIRES.values():
        error = wire.parse_error(502, {}, body)
        assert type(error) is ServerError
        assert "<html>" in error.message
        assert len(error.message) < 700
        empty = wire.parse_error(500, {}, b"")
        assert "(empty body)" in empty.message


def test_context_too_long_is_context_overflow_not_a_bad_request() -> None:
    llama = json_bytes(
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
        json_bytes({"message": "Input is too long for requested model."}),
    )
    assert isinstance(bedrock, ContextOverflow)
    other = OPENAI.parse_error(400, {}, json_bytes({"error": {"message": "bad temperature"}}))
    assert type(other) is BadRequest
