"""What a failed model call becomes: a redacted `ProviderError`, retry records, the final error.

Apart from the call loop (:mod:`providers.transport`) so that every path from the HTTP stack
to an error the caller sees is in one place: httpx exceptions mapped to the provider error
classes, credentials scrubbed from the text before anything records it, one `RetryRecord`
per failed attempt, and the attempts annotated on the error finally raised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import httpx

from oriole.intents import RetryRecord
from oriole.llm.errors import ConnectionFailed, ProviderError, ProviderUnavailable, RequestTimeout

#: RetryRecord limits (see `oriole.intents`).
_MAX_MESSAGE = 2000
#: Headers whose values are credentials (redacted from error text even without settings).
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


@contextlib.contextmanager
def http_failures(display: str, timeout: float) -> Iterator[None]:
    """Turn the HTTP stack's timeouts and connection errors into provider errors."""
    try:
        yield
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise RequestTimeout(
            f"{display}: no complete response within {timeout:g} s; request aborted",
            endpoint=display,
        ) from exc
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"{display}: {type(exc).__name__}: {exc}", endpoint=display) from exc


def scrub(error: ProviderError, redact: Callable[[str], str], display: str) -> None:
    """Redact the error's text and name the endpoint, in place.

    Upstream text may echo our key (an error body quoting the Authorization header): this
    runs before the error reaches a retry record, a log or an event.
    """
    error.message = redact(error.message)
    error.args = (error.message,)
    if error.endpoint is None:
        error.endpoint = display


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Credential header values, and the token of ``Bearer <token>``."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS and value:
            found += [value, value.split(" ", 1)[-1]]
    return found


def retry_record(
    attempt: int, endpoint: str | None, error: ProviderError, wait_seconds: float
) -> RetryRecord:
    return RetryRecord(
        attempt=attempt,
        endpoint=endpoint,
        error_class=type(error).__name__,
        message=error.message[:_MAX_MESSAGE],
        status=error.status,
        wait_ms=wait_seconds * 1000,
    )


def gave_up(attempt: int, last: ProviderError) -> ProviderUnavailable:
    """The error for attempts exhausted on retryable errors (raised from ``last``)."""
    return ProviderUnavailable(
        f"gave up after {attempt} attempts; last error {type(last).__name__}: {last.message}",
        status=last.status,
        endpoint=last.endpoint,
    )


def annotate(error: ProviderError, attempts: int, retries: list[RetryRecord]) -> ProviderError:
    error.attempts = attempts
    error.retries = tuple(retries)
    return error
