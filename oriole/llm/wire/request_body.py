"""How the three wire formats build a chat request's JSON body from Oriole's conversation.

Bodies are plain JSON (dicts, lists, strings, numbers) that share no objects with the
request, so the transport may serialise or change them freely.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from oriole.llm.chat import ChatRequest, Message, ToolSpec


def plain_json(value: Any) -> Any:
    """A deep copy with every mapping a dict and every sequence a list.

    Bodies never share objects with the request (whose schemas are read-only mappings), so a
    caller may change a body without touching the conversation it came from.
    """
    if isinstance(value, Mapping):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item) for item in value]
    return value


def arguments_object(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as the JSON object Ollama and Bedrock insist on.

    A dict goes as is, a string holding a JSON object is decoded, anything else (malformed
    JSON, ``None``, a list) becomes ``{}``: the conversation must still be sendable after a
    model produced garbage, and the garbage is already recorded as the model made it.
    """
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str):
        try:
            decoded = json.loads(arguments)
        except ValueError:
            return {}
        if isinstance(decoded, dict):
            return decoded
    return {}


def given(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The ``(name, value)`` pairs whose value is set: options left unset are not sent."""
    return {name: value for name, value in pairs if value is not None}


def function_tool(spec: ToolSpec) -> dict[str, Any]:
    """A tool as Ollama and the OpenAI chat API declare it: ``{"type": "function", ...}``."""
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": plain_json(spec.parameters),
        },
    }


def function_chat_body(
    request: ChatRequest, render: Callable[[Message], dict[str, Any]]
) -> dict[str, Any]:
    """The body Ollama and the OpenAI chat API share: the model, the messages (each one as
    ``render`` spells it), the function tools, and no streaming."""
    return {
        "model": request.model,
        "messages": [render(m) for m in request.messages],
        "tools": [function_tool(t) for t in request.tools],
        "stream": False,
    }
