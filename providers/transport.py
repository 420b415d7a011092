"""Sends chat calls to a provider's endpoints: retries, failover, circuit breakers, pacing.

One `EndpointPool` per provider is shared by every run of a worker process, so the breakers,
health flags, per-endpoint concurrency caps and per-model rate limits see all the traffic.
The rules themselves live in the pure `oriole.llm.resilience`; this module only does the
I/O (httpx, asyncio) and the retry loop. Each endpoint's bookkeeping is in
:mod:`providers.endpoint`, what a failed call becomes in :mod:`providers.call_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

import httpx

from oriole.intents import RetryRecord
from oriole.llm.chat import ChatRequest, ModelReply
from oriole.llm.errors import ProviderError, ProviderUnavailable
from oriole.llm.resilience import (
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
from providers.call_errors import (
    annotate,
    gave_up,
    header_secrets,
    http_failures,
    retry_record,
    scrub,
)
from providers.endpoint import (
    Endpoint,
    EndpointStatus,
    check_endpoint_url,
    join_url,
    rendezvous_order,
)

__all__ = ["CallResult", "EndpointPool", "EndpointStatus", "RequestSigner", "TransportPolicy"]

log = logging.getLogger("oriole.providers")


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
            check_endpoint_url(url)
        self._wire = wire
        self._provider = wire.provider
        self._policy = policy
        self._endpoints = [
            Endpoint(
                self._provider,
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
            *header_secrets(self._headers),
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
            ep.publish(clock())

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
            # In a fresh context: the pool starts during some run's first model call, and
            # the checks must not carry that run's log context and span for ever.
            self._health_task = asyncio.create_task(
                self._health_loop(self._wire.health_path, interval),
                name=f"oriole-health-{self._provider}",
                context=contextvars.Context(),
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
        return [ep.status(now) for ep in self._endpoints]

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
                retries.append(retry_record(attempt, None, unavailable, wait or 0.0))
                if wait is None:
                    raise annotate(unavailable, attempt, retries)
                await asyncio.sleep(wait)
                continue
            started = time.perf_counter()
            try:
                reply = await self._attempt(ep, path, body, request.model, limiter)
            except ProviderError as exc:
                delay = retry_delay(policy, attempt, exc, self._rng)
                retries.append(retry_record(attempt, ep.display, exc, delay or 0.0))
                if delay is None:
                    if not exc.retryable:
                        annotate(exc, attempt, retries)
                        raise
                    raise annotate(gave_up(attempt, exc), attempt, retries) from exc
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

    def _find(self, endpoint: str) -> Endpoint:
        wanted = endpoint.rstrip("/")
        for ep in self._endpoints:
            if wanted in (ep.url.rstrip("/"), ep.display.rstrip("/")):
                return ep
        raise ValueError(
            f"endpoint {redact_url(endpoint)!r} is not one of this pool's: {self.endpoints}"
        )

    def _ordered(self, affinity: str) -> list[Endpoint]:
        return rendezvous_order(self._endpoints, affinity)

    async def _pace(self, limiter: SlidingWindowLimiter) -> None:
        while (wait := limiter.delay(self._clock())) > 0:
            await asyncio.sleep(wait)
        limiter.record_request(self._clock())

    async def _acquire(self, order: list[Endpoint], failed: set[str]) -> Endpoint | None:
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

    def _unavailable(self, order: list[Endpoint]) -> ProviderUnavailable:
        now = self._clock()
        states = [ep.describe(now) for ep in order]
        return ProviderUnavailable(
            f"no {self._provider} endpoint is available: " + "; ".join(states)
        )

    def _unavailable_wait(self, order: list[Endpoint], attempt: int) -> float | None:
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
        ep: Endpoint,
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
            url = join_url(ep.url, path)
            headers = await self._headers_for("POST", url, body)
            timeout = self._policy.request_timeout_seconds
            # httpx's own timeouts are per read; a server trickling bytes would never trip
            # them, so the whole exchange is bounded here.
            with http_failures(ep.display, timeout):
                async with asyncio.timeout(timeout):
                    response = await self._client.post(url, content=body, headers=headers)
            if not response.is_success:
                raise self._wire.parse_error(
                    response.status_code, response.headers, response.content
                )
            reply = self._wire.parse_reply(response.content)
        except ProviderError as exc:
            outcome = type(exc).__name__
            scrub(exc, self._redact, ep.display)
            ep.judge(exc, self._clock())
            raise
        except BaseException:
            # Cancelled (or a bug): no verdict on the endpoint, but free its trial slot.
            ep.breaker.release(self._clock())
            raise
        else:
            outcome = "ok"
            now = self._clock()
            ep.succeeded(now)
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

    def _count_tokens(
        self, model: str, reply: ModelReply, limiter: SlidingWindowLimiter | None, now: float
    ) -> None:
        used_in = reply.input_tokens or 0
        used_out = reply.output_tokens or 0
        if limiter is not None:
            limiter.record_tokens(now, used_in + used_out)
        metrics.TOKENS.labels(self._provider, model, "input").inc(used_in)
        metrics.TOKENS.labels(self._provider, model, "output").inc(used_out)

    # -- health checks -----------------------------------------------------------------

    async def _health_loop(self, path: str, interval: float) -> None:
        while True:
            await asyncio.gather(*(self._probe(ep, path) for ep in self._endpoints))
            await asyncio.sleep(interval)

    async def _probe(self, ep: Endpoint, path: str) -> None:
        """GET the health path; any answer below 500 means the server is up (a 4xx only
        says the probe path or its auth differ, and must not open a working server's
        circuit). `Endpoint.probed` judges the answer."""
        url = join_url(ep.url, path)
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
        ep.probed(ok, busy, self._clock())
