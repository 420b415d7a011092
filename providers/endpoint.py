"""One model-server endpoint's live state: its breaker, health flag and concurrency slot.

Apart from the call loop (:mod:`providers.transport`) because every verdict on an endpoint —
a call that worked or failed, a health probe — goes through the same bookkeeping: feed the
breaker, log a transition (circuit open or closed, healthy again), publish the gauges. The
breaker rules themselves are pure, in `oriole.llm.resilience`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from oriole.admission import endpoint_problem
from oriole.llm.errors import ProviderError, RateLimited
from oriole.llm.resilience import BreakerState, CircuitBreaker
from oriole.redaction import redact_url
from providers import metrics

log = logging.getLogger("oriole.providers")


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    url: str
    state: BreakerState
    healthy: bool
    in_flight: int
    consecutive_failures: int


def check_endpoint_url(url: str) -> None:
    problem = endpoint_problem(url)
    if problem is not None:
        raise ValueError(f"endpoint {redact_url(url)!r}: {problem}")


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


class Endpoint:
    """One endpoint's live state; ``url`` may hold credentials, ``display`` never does."""

    __slots__ = (
        "_announced_open",
        "breaker",
        "display",
        "healthy",
        "in_flight",
        "provider",
        "semaphore",
        "url",
    )

    def __init__(self, provider: str, url: str, breaker: CircuitBreaker, concurrency: int) -> None:
        self.provider = provider
        self.url = url
        self.display = redact_url(url)
        self.breaker = breaker
        self.semaphore = asyncio.Semaphore(concurrency)
        self.healthy = True
        self.in_flight = 0
        #: Whether the last breaker line logged said "open" (half-open counts as still open).
        self._announced_open = False

    def __repr__(self) -> str:
        return f"Endpoint({self.display})"

    def status(self, now: float) -> EndpointStatus:
        self.publish(now)
        return EndpointStatus(
            url=self.display,
            state=self.breaker.state(now),
            healthy=self.healthy,
            in_flight=self.in_flight,
            consecutive_failures=self.breaker.consecutive_failures,
        )

    def describe(self, now: float) -> str:
        """``url (open, 3 consecutive failures, retry in 4.2 s)``, for an unavailable error."""
        state = self.breaker.state(now)
        detail = f"{state}, {self.breaker.consecutive_failures} consecutive failures"
        if state == "open":
            detail += f", retry in {self.breaker.retry_in(now):.1f} s"
        elif state == "half_open":
            detail += ", trial call in flight"
        return f"{self.display} ({detail})"

    # -- verdicts ----------------------------------------------------------------------

    def succeeded(self, now: float) -> None:
        """A call got its reply: the breaker closes, the endpoint is healthy."""
        before = self.breaker.state(now)
        self.breaker.record_success(now)
        self.healthy = True
        self._note_transition(before, now, None)

    def judge(self, error: ProviderError, now: float) -> None:
        """Retryable errors are the endpoint's fault; client errors (4xx) and throttling are
        not (the server answered, and Retry-After already paces us)."""
        before = self.breaker.state(now)
        if error.retryable and not isinstance(error, RateLimited):
            self.breaker.record_failure(now)
        else:
            self.breaker.release(now)
        self._note_transition(before, now, error)

    def probed(self, ok: bool, busy: bool, now: float) -> None:
        """A health check's answer (``ok``: below 500). A failed probe of an endpoint that is
        serving our calls (``busy`` when the probe went out, or now) is ignored: those calls
        report its health, and a single-threaded server (llama-cpp-python) cannot answer a
        probe while it generates."""
        if not ok and (busy or self.in_flight > 0):
            log.debug("%s health check of busy %s unanswered", self.provider, self.display)
            return
        before = self.breaker.state(now)
        self.breaker.record_health(now, ok)
        if ok != self.healthy:
            log.log(
                logging.INFO if ok else logging.WARNING,
                "%s endpoint %s is %s",
                self.provider,
                self.display,
                "healthy again" if ok else "failing its health check",
            )
        self.healthy = ok
        self._note_transition(before, now, None)

    def _note_transition(
        self, before: BreakerState, now: float, error: ProviderError | None
    ) -> None:
        after = self.breaker.state(now)
        # Logged once per change between closed and not closed: an endpoint that stays down
        # goes open -> half-open -> open again at every failed probe after the reset period,
        # which is the same outage, not news (it used to log "circuit open" every 30 s).
        if after != "half_open" and (after == "open") != self._announced_open:
            self._announced_open = after == "open"
            if after == "open":
                cause = f" (last: {type(error).__name__})" if error is not None else ""
                log.warning(
                    "%s endpoint %s: circuit open after %d consecutive failures%s",
                    self.provider,
                    self.display,
                    self.breaker.consecutive_failures,
                    cause,
                )
            elif after == "closed":
                log.info("%s endpoint %s: circuit closed", self.provider, self.display)
        self.publish(now)

    def publish(self, now: float) -> None:
        """Set the breaker-state and health gauges of this endpoint."""
        state = self.breaker.state(now)
        metrics.BREAKER_STATE.labels(self.provider, self.display).set(
            metrics.BREAKER_STATE_VALUES[state]
        )
        metrics.ENDPOINT_HEALTHY.labels(self.provider, self.display).set(1 if self.healthy else 0)


def rendezvous_order(endpoints: Sequence[Endpoint], affinity: str) -> list[Endpoint]:
    """The endpoints by rendezvous hashing of ``affinity``: a run keeps its endpoint (warm
    prompt caches), and adding an endpoint moves few runs."""

    def score(ep: Endpoint) -> int:
        digest = hashlib.blake2b(f"{affinity}\0{ep.display}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return sorted(endpoints, key=score, reverse=True)
