"""Sends chat calls to a provider's endpoints: retries, failover, circuit breakers, pacing.

One `EndpointPool` per provider is shared by every run of a worker process, so the breakers,
health flags, per-endpoint concurrency caps and per-model rate limits see all the traffic.
The rules themselves live in the pure `oriole.llm.resilience`; this module only does the
I/O (httpx, asyncio) and the bookkeeping around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from oriole.intents import RetryRecord
from oriole.llm.chat import ChatRequest, ModelReply
from oriole.llm.errors import (
    ConnectionFailed,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RequestTimeout,
)
from oriole.llm.resilience import (
    BreakerState,
    CircuitBreaker,
    RateLimit,
    RetryPolicy,
    SlidingWindowLimiter,
    backoff_delay,
    retry_delay,
)
from oriole.llm.wire import WireFormat
from oriole.redaction import Redactor, redact_url, url_secrets
from providers import metrics

log = logging.getLogger("oriole.providers")

#: RetryRecord limits (see `oriole.intents`).
_MAX_MESSAGE = 2000
#: Headers whose values are credentials (redacted from error text even without settings).
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


class RequestSigner(Protocol):
    """Signs one request (e.g. AWS SigV4): returns the complete headers to send."""

    async def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class TransportPolicy:
    """Timeouts, retries and protection of the endpoints of one provider."""

    #: Bound on a whole attempt (connect, send, read), enforced by cancelling it.
    request_timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_failure_threshold: int = 3
    breaker_reset_seconds: float = 30.0
    #: 0 disables the background health checks.
    health_check_interval_seconds: float = 15.0
    health_check_timeout_seconds: float = 5.0
    #: In-flight calls per endpoint; more wait their turn (a local GPU serves few at once).
    endpoint_max_concurrency: int = 4

    def __post_init__(self) -> None:
        if self.request_timeout_seconds <= 0 or self.connect_timeout_seconds <= 0:
            raise ValueError("timeouts: must be positive")
        if self.health_check_timeout_seconds <= 0:
            raise ValueError("health_check_timeout_seconds: must be positive")
        if self.health_check_interval_seconds < 0:
            raise ValueError("health_check_interval_seconds: must not be negative")
        if self.endpoint_max_concurrency < 1:
            raise ValueError("endpoint_max_concurrency: must be at least 1")


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful model call and how it got there."""

    reply: ModelReply
    #: The endpoint that answered (without userinfo).
    endpoint: str
    attempts: int
    #: The failed attempts before the one that counted.
    retries: tuple[RetryRecord, ...]
    #: Duration of the successful attempt.
    wall_ms: float


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    url: str
    state: BreakerState
    healthy: bool
    in_flight: int
    consecutive_failures: int


class _Endpoint:
    """One endpoint's live state; ``url`` may hold credentials, ``display`` never does."""

    __slots__ = ("breaker", "display", "healthy", "in_flight", "semaphore", "url")

    def __init__(self, url: str, breaker: CircuitBreaker, concurrency: int) -> None:
        self.url = url
        self.display = redact_url(url)
        self.breaker = breaker
        self.semaphore = asyncio.Semaphore(concurrency)
        self.healthy = True
        self.in_flight = 0

    def __repr__(self) -> str:
        return f"_Endpoint({self.display})"


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def _check_endpoint(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {redact_url(url)!r}: expected an http(s) URL with a host")


class EndpointPool:
    """The endpoints of one provider, shared by all runs of a worker process.

    A run sticks to one endpoint (chosen by rendezvous hashing of its ``affinity``, so prompt
    caches stay warm and adding an endpoint moves few runs) and fails over to the others in
    its own stable order when that endpoint's breaker is open, it is unhealthy, or it failed
    during this call.

    Error text from the servers and the HTTP stack goes through ``redactor`` (plus the
    pool's own credentials: endpoint userinfo, key headers) as soon as it becomes a
    `ProviderError`, before any retry record, log line or event sees it.
    """

    def __init__(
        self,
        wire: WireFormat,
        endpoints: Sequence[str],
        policy: TransportPolicy,
        *,
        headers: Mapping[str, str] | None = None,
        signer: RequestSigner | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        rate_window_seconds: float = 60.0,
        redactor: Redactor | None = None,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("endpoints: at least one is needed")
        for url in endpoints:
            _check_endpoint(url)
        self._wire = wire
        self._provider = wire.provider
        self._policy = policy
        self._endpoints = [
            _Endpoint(
                url,
                CircuitBreaker(policy.breaker_failure_threshold, policy.breaker_reset_seconds),
                policy.endpoint_max_concurrency,
            )
            for url in endpoints
        ]
        displays = [ep.display for ep in self._endpoints]
        if len(set(displays)) != len(displays):
            raise ValueError(f"endpoints: duplicates in {displays}")
        self._headers = dict(headers or {})
        self._redact = (redactor or Redactor()).with_secrets(
            *(secret for url in endpoints for secret in url_secrets(url)),
            *_header_secrets(self._headers),
        )
        self._signer = signer
        self._limiters = {
            model: SlidingWindowLimiter(limit, rate_window_seconds)
            for model, limit in (rate_limits or {}).items()
        }
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(
                policy.request_timeout_seconds, connect=policy.connect_timeout_seconds
            ),
            limits=httpx.Limits(max_connections=None),
        )
        self._rng = rng or random.Random()
        self._clock = clock
        self._health_task: asyncio.Task[None] | None = None
        self._closed = False
        for ep in self._endpoints:
            self._publish(ep, clock())

    def __repr__(self) -> str:
        urls = ", ".join(ep.display for ep in self._endpoints)
        return f"EndpointPool({self._provider}: {urls})"

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background health checks (if the wire format has a health path)."""
        if self._closed:
            raise RuntimeError("EndpointPool is closed")
        interval = self._policy.health_check_interval_seconds
        if self._health_task is None and self._wire.health_path is not None and interval > 0:
            self._health_task = asyncio.create_task(
                self._health_loop(self._wire.health_path, interval),
                name=f"oriole-health-{self._provider}",
            )

    async def close(self) -> None:
        """Stop the health checks and close the HTTP client if this pool created it."""
        if self._closed:
            return
        self._closed = True
        task, self._health_task = self._health_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> EndpointPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- inspection --------------------------------------------------------------------

    @property
    def wire(self) -> WireFormat:
        return self._wire

    @property
    def endpoints(self) -> list[str]:
        return [ep.display for ep in self._endpoints]

    def status(self) -> list[EndpointStatus]:
        now = self._clock()
        result = []
        for ep in self._endpoints:
            self._publish(ep, now)
            result.append(
                EndpointStatus(
                    url=ep.display,
                    state=ep.breaker.state(now),
                    healthy=ep.healthy,
                    in_flight=ep.in_flight,
                    consecutive_failures=ep.breaker.consecutive_failures,
                )
            )
        return result

    def preference(self, affinity: str) -> list[str]:
        """The endpoints in the order a call with this affinity tries them (all healthy)."""
        return [ep.display for ep in self._ordered(affinity)]

    # -- the call ----------------------------------------------------------------------

    async def chat(
        self, request: ChatRequest, *, affinity: str, endpoint: str | None = None
    ) -> CallResult:
        """One model call, retried and failed over per the policy.

        Raises the `ProviderError` of the last attempt, except that exhausting the attempts
        on retryable errors raises `ProviderUnavailable` (caused by the last error). The
        error carries ``attempts``, ``retries`` (every failed attempt) and ``endpoint``.
        """
        if self._closed:
            raise RuntimeError("EndpointPool is closed")
        order = [self._find(endpoint)] if endpoint is not None else self._ordered(affinity)
        body = json.dumps(
            self._wire.chat_body(request), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        path = self._wire.chat_path(request.model)
        limiter = self._limiters.get(request.model)
        policy = self._policy.retry
        retries: list[RetryRecord] = []
        failed: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            if limiter is not None:
                await self._pace(limiter)
            ep = await self._acquire(order, failed)
            if ep is None:
                unavailable = self._unavailable(order)
                wait = self._unavailable_wait(order, attempt)
                retries.append(_record(attempt, None, unavailable, wait or 0.0))
                if wait is None:
                    raise _annotate(unavailable, attempt, retries)
                await asyncio.sleep(wait)
                continue
            started = time.perf_counter()
            try:
                reply = await self._attempt(ep, path, body, request.model, limiter)
            except ProviderError as exc:
                delay = retry_delay(policy, attempt, exc, self._rng)
                retries.append(_record(attempt, ep.display, exc, delay or 0.0))
                if delay is None:
                    if not exc.retryable:
                        _annotate(exc, attempt, retries)
                        raise
                    final = ProviderUnavailable(
                        f"gave up after {attempt} attempts; last error "
                        f"{type(exc).__name__}: {exc.message}",
                        status=exc.status,
                        endpoint=exc.endpoint,
                    )
                    raise _annotate(final, attempt, retries) from exc
                metrics.RETRIES.labels(self._provider, ep.display).inc()
                log.info(
                    "%s call to %s failed (%s: %s); attempt %d in %.2f s",
                    self._provider,
                    ep.display,
                    type(exc).__name__,
                    exc.message,
                    attempt + 1,
                    delay,
                )
                failed.add(ep.display)
                await asyncio.sleep(delay)
                continue
            wall_ms = (time.perf_counter() - started) * 1000
            return CallResult(reply, ep.display, attempt, tuple(retries), wall_ms)

    def _find(self, endpoint: str) -> _Endpoint:
        wanted = endpoint.rstrip("/")
        for ep in self._endpoints:
            if wanted in (ep.url.rstrip("/"), ep.display.rstrip("/")):
                return ep
        raise ValueError(
            f"endpoint {redact_url(endpoint)!r} is not one of this pool's: {self.endpoints}"
        )

    def _ordered(self, affinity: str) -> list[_Endpoint]:
        def score(ep: _Endpoint) -> int:
            digest = hashlib.blake2b(f"{affinity}\0{ep.display}".encode(), digest_size=8).digest()
            return int.from_bytes(digest, "big")

        return sorted(self._endpoints, key=score, reverse=True)

    async def _pace(self, limiter: SlidingWindowLimiter) -> None:
        while (wait := limiter.delay(self._clock())) > 0:
            await asyncio.sleep(wait)
        limiter.record_request(self._clock())

    async def _acquire(self, order: list[_Endpoint], failed: set[str]) -> _Endpoint | None:
        """The first usable endpoint, with its concurrency slot (and breaker trial) held."""
        now = self._clock()
        candidates = [ep for ep in order if ep.breaker.state(now) != "open"]
        # Stable sort: within each group the affinity order stands.
        candidates.sort(key=lambda ep: (ep.display in failed, not ep.healthy))
        for ep in candidates:
            await ep.semaphore.acquire()
            # Checked after the wait: the breaker may have opened meanwhile.
            if ep.breaker.allow(self._clock()):
                return ep
            ep.semaphore.release()
        return None

    def _unavailable(self, order: list[_Endpoint]) -> ProviderUnavailable:
        now = self._clock()
        states = []
        for ep in order:
            state = ep.breaker.state(now)
            detail = f"{state}, {ep.breaker.consecutive_failures} consecutive failures"
            if state == "open":
                detail += f", retry in {ep.breaker.retry_in(now):.1f} s"
            elif state == "half_open":
                detail += ", trial call in flight"
            states.append(f"{ep.display} ({detail})")
        return ProviderUnavailable(
            f"no {self._provider} endpoint is available: " + "; ".join(states)
        )

    def _unavailable_wait(self, order: list[_Endpoint], attempt: int) -> float | None:
        """How long to wait for a breaker to let calls through, or None to give up now."""
        policy = self._policy.retry
        if attempt >= policy.max_attempts:
            return None
        now = self._clock()
        soonest = min(ep.breaker.retry_in(now) for ep in order)
        wait = max(soonest, backoff_delay(policy, attempt, self._rng))
        return wait if wait <= policy.retry_after_max_seconds else None

    async def _attempt(
        self,
        ep: _Endpoint,
        path: str,
        body: bytes,
        model: str,
        limiter: SlidingWindowLimiter | None,
    ) -> ModelReply:
        """One HTTP attempt; releases the endpoint's slot and feeds its breaker."""
        ep.in_flight += 1
        outcome = "cancelled"
        started = time.perf_counter()
        try:
            url = _join(ep.url, path)
            headers = await self._headers_for("POST", url, body)
            timeout = self._policy.request_timeout_seconds
            try:
                # httpx's own timeouts are per read; a server trickling bytes would never
                # trip them, so the whole exchange is bounded here.
                async with asyncio.timeout(timeout):
                    response = await self._client.post(url, content=body, headers=headers)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise RequestTimeout(
                    f"{ep.display}: no complete response within {timeout:g} s; request aborted",
                    endpoint=ep.display,
                ) from exc
            except httpx.TransportError as exc:
                raise ConnectionFailed(
                    f"{ep.display}: {type(exc).__name__}: {exc}", endpoint=ep.display
                ) from exc
            if not response.is_success:
                raise self._wire.parse_error(
                    response.status_code, response.headers, response.content
                )
            reply = self._wire.parse_reply(response.content)
        except ProviderError as exc:
            outcome = type(exc).__name__
            # Upstream text may echo our key (an error body quoting the Authorization
            # header): redact it here, before it reaches a retry record, a log or an event.
            exc.message = self._redact(exc.message)
            exc.args = (exc.message,)
            if exc.endpoint is None:
                exc.endpoint = ep.display
            self._judge(ep, exc)
            raise
        except BaseException:
            # Cancelled (or a bug): no verdict on the endpoint, but free its trial slot.
            ep.breaker.release(self._clock())
            raise
        else:
            outcome = "ok"
            now = self._clock()
            before = ep.breaker.state(now)
            ep.breaker.record_success(now)
            ep.healthy = True
            self._note_transition(ep, before, now, None)
            self._count_tokens(model, reply, limiter, now)
            return reply
        finally:
            ep.in_flight -= 1
            ep.semaphore.release()
            metrics.REQUESTS.labels(self._provider, ep.display, outcome).inc()
            metrics.LATENCY.labels(self._provider, ep.display).observe(
                time.perf_counter() - started
            )

    async def _headers_for(self, method: str, url: str, body: bytes) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if body:
            headers["content-type"] = "application/json"
        headers.update(self._headers)
        if self._signer is not None:
            return dict(await self._signer(method, url, headers, body))
        return headers

    def _judge(self, ep: _Endpoint, error: ProviderError) -> None:
        """Retryable errors are the endpoint's fault; client errors (4xx) and throttling are
        not (the server answered, and Retry-After already paces us)."""
        now = self._clock()
        before = ep.breaker.state(now)
        if error.retryable and not isinstance(error, RateLimited):
            ep.breaker.record_failure(now)
        else:
            ep.breaker.release(now)
        self._note_transition(ep, before, now, error)

    def _note_transition(
        self, ep: _Endpoint, before: BreakerState, now: float, error: ProviderError | None
    ) -> None:
        after = ep.breaker.state(now)
        if after != before:
            if after == "open":
                cause = f" (last: {type(error).__name__})" if error is not None else ""
                log.warning(
                    "%s endpoint %s: circuit open after %d consecutive failures%s",
                    self._provider,
                    ep.display,
                    ep.breaker.consecutive_failures,
                    cause,
                )
            elif after == "closed":
                log.info("%s endpoint %s: circuit closed", self._provider, ep.display)
        self._publish(ep, now)

    def _count_tokens(
        self, model: str, reply: ModelReply, limiter: SlidingWindowLimiter | None, now: float
    ) -> None:
        used_in = reply.input_tokens or 0
        used_out = reply.output_tokens or 0
        if limiter is not None:
            limiter.record_tokens(now, used_in + used_out)
        metrics.TOKENS.labels(self._provider, model, "input").inc(used_in)
        metrics.TOKENS.labels(self._provider, model, "output").inc(used_out)

    def _publish(self, ep: _Endpoint, now: float) -> None:
        state = ep.breaker.state(now)
        metrics.BREAKER_STATE.labels(self._provider, ep.display).set(
            metrics.BREAKER_STATE_VALUES[state]
        )
        metrics.ENDPOINT_HEALTHY.labels(self._provider, ep.display).set(1 if ep.healthy else 0)

    # -- health checks -----------------------------------------------------------------

    async def _health_loop(self, path: str, interval: float) -> None:
        while True:
            await asyncio.gather(*(self._probe(ep, path) for ep in self._endpoints))
            await asyncio.sleep(interval)

    async def _probe(self, ep: _Endpoint, path: str) -> None:
        """GET the health path; any answer below 500 means the server is up (a 4xx only
        says the probe path or its auth differ, and must not open a working server's
        circuit).

        A failed probe of an endpoint that is serving our calls at the time is ignored: those
        calls report its health, and a single-threaded server (llama-cpp-python) cannot
        answer a probe while it generates.
        """
        url = _join(ep.url, path)
        busy = ep.in_flight > 0
        timeout = self._policy.health_check_timeout_seconds
        try:
            headers = await self._headers_for("GET", url, b"")
        except Exception as exc:
            log.debug("%s health check of %s not signed: %s", self._provider, ep.display, exc)
            return
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.get(url, headers=headers, timeout=timeout)
            ok = response.status_code < 500
        except (TimeoutError, httpx.HTTPError):
            ok = False
        except Exception:
            log.exception("%s health check of %s failed", self._provider, ep.display)
            return
        if not ok and (busy or ep.in_flight > 0):
            log.debug("%s health check of busy %s unanswered", self._provider, ep.display)
            return
        now = self._clock()
        before = ep.breaker.state(now)
        ep.breaker.record_health(now, ok)
        if ok != ep.healthy:
            log.log(
                logging.INFO if ok else logging.WARNING,
                "%s endpoint %s is %s",
                self._provider,
                ep.display,
                "healthy again" if ok else "failing its health check",
            )
        ep.healthy = ok
        self._note_transition(ep, before, now, None)


def _record(
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


def _header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Credential header values, and the token of ``Bearer <token>``."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS and value:
            found += [value, value.split(" ", 1)[-1]]
    return found


def _annotate(error: ProviderError, attempts: int, retries: list[RetryRecord]) -> ProviderError:
    error.attempts = attempts
    error.retries = tuple(retries)
    return error
