"""How the three wire formats read a successful reply: its JSON body, figures and tool calls.

Everything here is lenient about what a server may leave out (a missing count is ``None``,
never guessed as 0) and strict about what would make the reply unusable (not JSON, a tool
call without a name): that raises `MalformedResponse`, quoting the body.
"""

from __future__ import annotations

import json
from typing import Any

from oriole.llm.chat import Message, ToolCall
from oriole.llm.errors import MalformedResponse
from oriole.llm.wire.http_errors import body_text


def load_json_object(provider: str, body: bytes) -> dict[str, Any]:
    """A reply body decoded as a JSON object, or `MalformedResponse` quoting what came."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        shown = body_text(body) or "(empty body)"
        raise MalformedResponse(f"{provider}: reply body is not JSON: {shown}") from None
    if not isinstance(data, dict):
        raise MalformedResponse(
            f"{provider}: reply is JSON but not an object: {body_text(body)}",
        )
    return data


def object_field(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` if it is a JSON object, else an empty one (usage, timings, metrics)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def count(value: Any) -> int | None:
    """A token count as reported: an int, else ``None`` (never guessed as 0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def number(value: Any) -> float | None:
    """A reported duration or rate as a float, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def string(value: Any) -> str | None:
    """A reported word (a stop reason) as a string, else ``None``."""
    return value if isinstance(value, str) else None


def function_tool_calls(provider: str, raw: Any, body: bytes) -> tuple[ToolCall, ...]:
    """``[{"id"?, "function": {"name", "arguments"}}]``, the tool-call list Ollama and the
    OpenAI chat API share; arguments are kept exactly as given (object or string)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedResponse(f"{provider}: message.tool_calls is not a list: {body_text(body)}")
    calls = []
    for index, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str):
            raise MalformedResponse(
                f"{provider}: tool call {index} has no function name: {body_text(body)}"
            )
        call_id = item.get("id") if isinstance(item, dict) else None
        calls.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                name=name,
                arguments=function.get("arguments"),
            )
        )
    return tuple(calls)


def function_message(provider: str, message: dict[str, Any], body: bytes) -> Message:
    """The assistant's ``{"content", "tool_calls"}`` message as Ollama and the OpenAI chat
    API spell it; a content that is not a string (``null`` beside tool calls) counts as ``""``.
    """
    content = message.get("content")
    return Message(
        role="assistant",
        content=content if isinstance(content, str) else "",
        tool_calls=function_tool_calls(provider, message.get("tool_calls"), body),
    )
