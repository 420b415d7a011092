"""Helpers the three wire formats share for reading HTTP failures.

One place decides how Retry-After is read, how a status maps to an error class and how much
server text an error message may quote, so every provider classifies failures alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from oriole.llm.chat import ToolCall
from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    RateLimited,
    RequestTimeout,
    ServerError,
)

#: How much of a server's own text an error message quotes.
MAX_DETAIL_CHARS = 500

#: Wait assumed for a Retry-After HTTP-date when the response has no Date header. The core
#: never reads the clock (it stays deterministic and testable), so such a date cannot be turned
#: into a delay; rather than retry at once against a throttled server, wait this long.
UNDATED_RETRY_AFTER = 30.0


def truncate(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked when cut, so errors stay readable."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"... ({len(text) - limit} more characters)"


def body_text(body: bytes) -> str:
    """A body as text for an error message, whatever its encoding."""
    return truncate(body.decode("utf-8", errors="replace"))


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, looked up case-insensitively (plain dicts are not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's wait hint in seconds, or ``None`` if it gave none (or an unreadable one).

    Reads ``retry-after-ms`` (OpenAI's milliseconds) first, then ``Retry-After`` as
    delta-seconds or an HTTP-date. A date is measured against the response's own ``Date``
    header, so clock skew between client and server does not matter; without a ``Date``
    header it stands for `UNDATED_RETRY_AFTER`. Never negative.
    """
    millis = header(headers, "retry-after-ms")
    if millis is not None:
        try:
            value = float(millis.strip())
        except ValueError:
            value = -1.0
        if value >= 0 and value != float("inf"):
            return value / 1000.0
    raw = header(headers, "retry-after")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds == float("inf"):  # NaN or infinite
            return None
        return max(0.0, seconds)
    until = _http_date(raw)
    if until is None:
        return None
    date = header(headers, "date")
    now = _http_date(date) if date is not None else None
    if now is None:
        return UNDATED_RETRY_AFTER
    if (until.tzinfo is None) != (now.tzinfo is None):
        return UNDATED_RETRY_AFTER
    return max(0.0, (until - now).total_seconds())


def class_for_status(status: int) -> type[ProviderError]:
    """The error class an HTTP status stands for when nothing more specific is known."""
    if status == 429:
        return RateLimited
    if status == 408:
        return RequestTimeout
    if status in (401, 403):
        return AuthenticationFailed
    if status == 404:
        return ModelNotFound
    if status >= 500:
        return ServerError
    return BadRequest


def describe_status(status: int) -> str:
    """A few words for an error message, e.g. ``HTTP 429 (rate limited)``."""
    reasons = {
        400: "bad request",
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        408: "request timeout",
        429: "rate limited",
        500: "internal server error",
        502: "bad gateway",
        503: "service unavailable",
        504: "gateway timeout",
    }
    reason = reasons.get(status)
    return f"HTTP {status}" if reason is None else f"HTTP {status} ({reason})"


def make_error(
    cls: type[ProviderError],
    provider: str,
    status: int,
    detail: str,
    headers: Mapping[str, str],
) -> ProviderError:
    """An error of ``cls`` whose message names the provider, the status and the server's
    (truncated) text; carries Retry-After for every class, the retry loop decides its use."""
    detail = truncate(detail) or "(empty body)"
    return cls(
        f"{provider}: {describe_status(status)}: {detail}",
        status=status,
        retry_after=parse_retry_after(headers),
    )


def load_json(provider: str, body: bytes) -> Any:
    """A reply body decoded as JSON, or `MalformedResponse` quoting what came instead."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        shown = body_text(body) or "(empty body)"
        raise MalformedResponse(f"{provider}: reply body is not JSON: {shown}") from None


def load_json_object(provider: str, body: bytes) -> dict[str, Any]:
    """Like `load_json`, and the document must be a JSON object."""
    data = load_json(provider, body)
    if not isinstance(data, dict):
        raise MalformedResponse(
            f"{provider}: reply is JSON but not an object: {body_text(body)}",
        )
    return data


def try_json(body: bytes) -> Any:
    """An error body decoded as JSON, or ``None`` when it is not JSON (proxies send HTML)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


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


#: Lower-case phrases with which servers say the model (or the server's setup) cannot call
#: tools: Ollama, llama.cpp without --jinja, vLLM without auto tool choice, Bedrock.
_NO_TOOLS_PHRASES = (
    "does not support tools",
    "does not support tool",
    "doesn't support tool",
    "tools param requires --jinja",
    "enable-auto-tool-choice",
    "tools are not supported",
    "tool use is not supported",
    "tool calling is not supported",
)


#: How servers say a prompt is longer than the model's context (OpenAI, vLLM,
#: llama-cpp-python, llama.cpp, Bedrock).
_CONTEXT_PHRASES = (
    "context_length_exceeded",
    "maximum context length",
    "exceeds the available context size",
    "input is too long",
    "too many input tokens",
    "prompt is too long",
)


def says_context_exceeded(text: str) -> bool:
    """Whether an error text says the conversation does not fit the model's context."""
    lowered = text.lower()
    return any(phrase in lowered for phrase in _CONTEXT_PHRASES)


def says_tools_unsupported(text: str) -> bool:
    """Whether an error text says the model cannot call tools."""
    lowered = text.lower()
    return any(phrase in lowered for phrase in _NO_TOOLS_PHRASES)


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
