"""How the three wire formats read HTTP failures: a status and a server's text -> an error.

One place decides how Retry-After is read, how a status (or a server's words) maps to an
error class and how much server text an error message may quote, so every provider
classifies failures alike. Reading successful replies is `oriole.llm.wire.reply_body`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextOverflow,
    ModelNotFound,
    ProviderError,
    RateLimited,
    RequestTimeout,
    ServerError,
    ToolsUnsupported,
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


def try_json(body: bytes) -> Any:
    """An error body decoded as JSON, or ``None`` when it is not JSON (proxies send HTML)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


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


def error_for_text(
    provider: str,
    status: int,
    text: str,
    headers: Mapping[str, str],
    *,
    context_overflow: bool = False,
) -> ProviderError:
    """The error a chat call's failure stands for, from the server's text and the status.

    `ToolsUnsupported` whenever the text says so, whatever the status (Ollama sends 400,
    llama.cpp 500); with ``context_overflow``, `ContextOverflow` for a 4xx whose text says
    the prompt does not fit; otherwise the status's class.
    """
    if says_tools_unsupported(text):
        cls: type[ProviderError] = ToolsUnsupported
    elif context_overflow and 400 <= status < 500 and says_context_exceeded(text):
        cls = ContextOverflow
    else:
        cls = class_for_status(status)
    return make_error(cls, provider, status, text, headers)
