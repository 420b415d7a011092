"""Why a model call failed, and whether trying again can help.

``retryable`` drives the retry loop; the class name is what a failed run's terminal event
records as its error class, so each class names one cause a user can act on.
"""

from __future__ import annotations

from oriole.errors import OrioleError
from oriole.intents import RetryRecord


class ProviderError(OrioleError):
    """A model call that did not produce a usable reply."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.endpoint = endpoint
        #: Set by the transport on the error it finally raises: the attempts made and every
        #: failed one (the last included).
        self.attempts = 1
        self.retries: tuple[RetryRecord, ...] = ()


class RateLimited(ProviderError):
    """HTTP 429 or a throttling error; ``retry_after`` is the server's hint in seconds."""

    retryable = True


class ServerError(ProviderError):
    """HTTP 5xx: the server failed; another attempt or another endpoint may succeed."""

    retryable = True


class ConnectionFailed(ProviderError):
    """The endpoint could not be reached or dropped the connection."""

    retryable = True


class RequestTimeout(ProviderError):
    """No complete response within the request timeout; the request was aborted."""

    retryable = True


class MalformedResponse(ProviderError):
    """A success status with a body that is not the provider's documented reply."""

    retryable = True


class ToolsUnsupported(ProviderError):
    """The model cannot call tools, so it cannot play (e.g. Ollama's llama3.2:3b)."""


class ModelNotFound(ProviderError):
    """The endpoint does not serve this model."""


class AuthenticationFailed(ProviderError):
    """HTTP 401/403: missing or wrong credentials."""


class BadRequest(ProviderError):
    """HTTP 400 (other than missing tool support): the request itself is wrong."""


class ContextOverflow(ProviderError):
    """The conversation does not fit the context window even after trimming."""


class ProviderUnavailable(ProviderError):
    """No endpoint could serve the call: retries exhausted or every circuit open."""
