"""Retry timing, circuit breaking and rate limiting for model calls, as pure state machines.

Nothing here reads a clock, sleeps or draws global randomness: the caller passes ``now`` (any
monotonic seconds) and a ``random.Random``, so the transport in `providers/` stays a thin
shell and every rule can be tested without waiting.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Literal

from oriole.backoff import backoff_step
from oriole.llm.errors import ProviderError

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a model call is tried again.

    ``max_attempts`` counts the first attempt too (4 means up to 3 retries).
    """

    max_attempts: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    retry_after_max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError("backoff seconds: must not be negative")
        if self.retry_after_max_seconds < 0:
            raise ValueError("retry_after_max_seconds: must not be negative")


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """The wait after failed model-call attempt ``attempt``: `oriole.backoff.backoff_step`."""
    return backoff_step(policy.backoff_base_seconds, policy.backoff_max_seconds, attempt, rng)


def retry_delay(
    policy: RetryPolicy, attempt: int, error: ProviderError, rng: random.Random
) -> float | None:
    """Seconds to wait before trying again after failed attempt ``attempt`` (1-based).

    ``None`` means give up: the error cannot be helped by retrying, or the attempts are used
    up. A server's Retry-After is honoured (we wait at least that long: retrying earlier is
    only refused again) but capped, so a bogus hint cannot park a run for hours.
    """
    if not error.retryable or attempt >= policy.max_attempts:
        return None
    delay = backoff_delay(policy, attempt, rng)
    if error.retry_after is not None:
        hinted = min(max(error.retry_after, 0.0), policy.retry_after_max_seconds)
        delay = max(delay, hinted)
    return delay


class CircuitBreaker:
    """Stops sending calls to an endpoint that keeps failing, and probes it for recovery.

    * closed: calls flow; ``failure_threshold`` consecutive failures open the breaker.
    * open: no calls for ``reset_seconds`` after it opened.
    * half-open (``reset_seconds`` passed): one trial call at a time; its success closes the
      breaker, its failure re-opens it and restarts the timer.

    Health checks (`record_health`): a passing check closes a half-open breaker (the server
    answers again, so we stop waiting for a lucky trial) but never shortens the open period,
    which keeps a flapping endpoint from being hammered. A failing check counts as a failure
    while closed or half-open (an idle endpoint that died is noticed before a run hits it) and
    is ignored while open (the breaker is already doing its job).

    A success from any call closes the breaker: the endpoint demonstrably answered. A failure
    reported while open (a call that started before the breaker opened) only counts.
    """

    def __init__(self, failure_threshold: int, reset_seconds: float) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold: must be at least 1")
        if reset_seconds < 0:
            raise ValueError("reset_seconds: must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failures={self._failures}/{self.failure_threshold}, "
            f"opened_at={self._opened_at}, trial={self._trial_in_flight})"
        )

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        # Compared as ``now < opened + reset`` (not ``now - opened``) so that `retry_in`,
        # which subtracts the same way, is positive exactly while the breaker is open.
        if now < self._opened_at + self.reset_seconds:
            return "open"
        return "half_open"

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in half-open state this takes the single trial.

        The caller that got ``True`` must report the outcome (`record_success`,
        `record_failure` or `release`), or a half-open breaker stays without a trial slot.
        """
        state = self.state(now)
        if state == "closed":
            return True
        if state == "open" or self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def retry_in(self, now: float) -> float:
        """Seconds until `allow` can next be ``True`` (0 when it may be now or soon)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.reset_seconds - now)

    def record_success(self, now: float) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self, now: float) -> None:
        state = self.state(now)
        self._failures += 1
        if state == "half_open" or (state == "closed" and self._failures >= self.failure_threshold):
            self._open(now)

    def release(self, now: float) -> None:
        """A call ended without a verdict on the endpoint (cancelled, or a client error such
        as a bad request): free the half-open trial slot, change nothing else."""
        self._trial_in_flight = False

    def record_health(self, now: float, ok: bool) -> None:
        """Feed a health-check result (see the class docstring for the rule)."""
        state = self.state(now)
        if ok:
            if state == "half_open":
                self.record_success(now)
        elif state != "open":
            self.record_failure(now)

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._trial_in_flight = False


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A provider quota for one model; ``None`` means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be at least 1 (or None for no limit)")


class SlidingWindowLimiter:
    """Paces requests to stay within a `RateLimit` over a sliding window.

    Requests are limited proactively (a request is counted when it starts). Tokens are known
    only after a call, so their limit is reactive: once the window's tokens reach the limit,
    new requests wait until enough old ones have left the window.
    """

    def __init__(self, limit: RateLimit, window_seconds: float = 60.0) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds: must be positive")
        self.limit = limit
        self.window_seconds = window_seconds
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_total = 0

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request may start (0 if it may start now)."""
        self._prune(now)
        wait = 0.0
        rpm = self.limit.requests_per_minute
        if rpm is not None and len(self._requests) >= rpm:
            # The request that must leave so that fewer than ``rpm`` remain.
            leaving = self._requests[len(self._requests) - rpm]
            wait = max(wait, leaving + self.window_seconds - now)
        tpm = self.limit.tokens_per_minute
        if tpm is not None and self._token_total >= tpm:
            remaining = self._token_total
            for at, tokens in self._tokens:
                remaining -= tokens
                if remaining < tpm:
                    wait = max(wait, at + self.window_seconds - now)
                    break
        return max(0.0, wait)

    def record_request(self, now: float) -> None:
        self._requests.append(now)

    def record_tokens(self, now: float, tokens: int) -> None:
        if tokens > 0:
            self._tokens.append((now, tokens))
            self._token_total += tokens

    def _prune(self, now: float) -> None:
        while self._requests and self._requests[0] + self.window_seconds <= now:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] + self.window_seconds <= now:
            _, tokens = self._tokens.popleft()
            self._token_total -= tokens
