"""Retry timing, circuit breaker and rate limiter: the pure rules behind the transport."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from oriole.llm.resilience import (
    CircuitBreaker,
    RateLimit,
    RetryPolicy,
    SlidingWindowLimiter,
    backoff_delay,
    retry_delay,
)

POLICY = RetryPolicy(
    max_attempts=10, backoff_base_seconds=0.5, backoff_max_seconds=8, retry_after_max_seconds=20
)


# -- retry delays ----------------------------------------------------------------------


@given(attempt=st.integers(1, 9), seed=st.integers(0, 2**32))
def test_delay_is_equal_jitter_within_the_capped_step(attempt: int, seed: int) -> None:
    delay = retry_delay(POLICY, attempt, ServerError("boom"), random.Random(seed))
    step = min(8.0, 0.5 * 2 ** (attempt - 1))
    assert delay is not None
    assert step / 2 <= delay <= step


def test_delays_grow_then_stop_at_the_cap() -> None:
    rng = random.Random(7)
    # Median of many draws per attempt: monotone in the attempt until the cap.
    medians = []
    for attempt in range(1, 10):
        draws = sorted(backoff_delay(POLICY, attempt, rng) for _ in range(201))
        medians.append(draws[100])
    assert medians[:5] == sorted(medians[:5])
    assert all(m <= 8.0 for m in medians)
    assert min(medians[5:]) >= 4.0  # capped steps: between 4 and 8 s


def test_huge_attempt_numbers_do_not_overflow() -> None:
    delay = backoff_delay(POLICY, 10_000, random.Random(1))
    assert 4.0 <= delay <= 8.0


def test_jitter_spreads_delays() -> None:
    rng = random.Random(3)
    delays = {round(backoff_delay(POLICY, 4, rng), 6) for _ in range(50)}
    assert len(delays) > 40


@pytest.mark.parametrize(
    "error",
    [
        BadRequest("no"),
        AuthenticationFailed("no"),
        ModelNotFound("no"),
        ProviderUnavailable("no"),
        ProviderError("no"),
    ],
)
def test_non_retryable_errors_are_not_retried(error: ProviderError) -> None:
    assert retry_delay(POLICY, 1, error, random.Random(0)) is None


@pytest.mark.parametrize(
    "error", [ServerError("x"), ConnectionFailed("x"), RequestTimeout("x"), RateLimited("x")]
)
def test_attempts_run_out(error: ProviderError) -> None:
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random(0)
    assert retry_delay(policy, 1, error, rng) is not None
    assert retry_delay(policy, 2, error, rng) is not None
    assert retry_delay(policy, 3, error, rng) is None


def test_single_attempt_policy_never_retries() -> None:
    assert retry_delay(RetryPolicy(max_attempts=1), 1, ServerError("x"), random.Random()) is None


@given(retry_after=st.floats(0, 1000), attempt=st.integers(1, 9), seed=st.integers(0, 99))
def test_retry_after_is_honoured_and_capped(retry_after: float, attempt: int, seed: int) -> None:
    error = RateLimited("slow down", status=429, retry_after=retry_after)
    delay = retry_delay(POLICY, attempt, error, random.Random(seed))
    assert delay is not None
    assert delay >= min(retry_after, 20.0)
    assert delay <= max(8.0, min(retry_after, 20.0))


def test_retry_after_longer_than_the_backoff_wins() -> None:
    error = RateLimited("slow down", retry_after=5)
    assert retry_delay(POLICY, 1, error, random.Random(0)) == 5.0
    capped = RateLimited("slow down", retry_after=3600)
    assert retry_delay(POLICY, 1, capped, random.Random(0)) == 20.0


def test_negative_retry_after_is_ignored() -> None:
    error = ServerError("x", retry_after=-5)
    delay = retry_delay(POLICY, 1, error, random.Random(0))
    assert delay is not None and 0.25 <= delay <= 0.5


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_base_seconds=-1)


# -- circuit breaker -------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10)
    breaker.record_failure(0)
    breaker.record_failure(1)
    assert breaker.state(1) == "closed" and breaker.allow(1)
    breaker.record_success(2)  # resets the count
    breaker.record_failure(3)
    breaker.record_failure(4)
    assert breaker.state(4) == "closed"
    breaker.record_failure(5)
    assert breaker.state(5) == "open"
    assert not breaker.allow(5)
    assert breaker.retry_in(7) == pytest.approx(8)


def test_half_open_allows_a_single_trial() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10)
    breaker.record_failure(0)
    assert not breaker.allow(9.9)
    assert breaker.state(10) == "half_open"
    assert breaker.retry_in(10) == 0
    assert breaker.allow(10)
    assert not breaker.allow(10.5)  # the trial is in flight
    assert not breaker.allow(11)
    breaker.record_success(12)
    assert breaker.state(12) == "closed"
    assert breaker.allow(12) and breaker.allow(12)
    assert breaker.consecutive_failures == 0


def test_failed_trial_reopens_and_restarts_the_timer() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10)
    breaker.record_failure(0)
    breaker.record_failure(0)
    assert breaker.allow(10)
    breaker.record_failure(15)
    assert breaker.state(15) == "open"
    assert breaker.state(24.9) == "open"
    assert breaker.state(25) == "half_open"
    assert breaker.allow(25)


def test_released_trial_frees_the_slot_without_a_verdict() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=1)
    breaker.record_failure(0)
    assert breaker.allow(2)
    breaker.release(2)
    assert breaker.state(2) == "half_open"
    assert breaker.allow(2)


def test_late_failure_while_open_does_not_extend_the_open_period() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10)
    breaker.record_failure(0)
    breaker.record_failure(5)
    assert breaker.state(10) == "half_open"


def test_health_checks() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10)
    breaker.record_health(0, ok=True)
    assert breaker.state(0) == "closed"
    # Failing checks count while closed: an idle dead endpoint gets opened.
    breaker.record_health(1, ok=False)
    breaker.record_health(2, ok=False)
    assert breaker.state(2) == "open"
    # Ignored while open; a pass does not shorten the open period.
    breaker.record_health(3, ok=False)
    breaker.record_health(4, ok=True)
    assert breaker.state(11.9) == "open"
    # After the reset time a passing check closes the breaker.
    breaker.record_health(12, ok=True)
    assert breaker.state(12) == "closed"
    assert breaker.consecutive_failures == 0


def test_failing_health_check_reopens_a_half_open_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10)
    breaker.record_failure(0)
    breaker.record_health(10, ok=False)
    assert breaker.state(10) == "open"
    assert breaker.state(20) == "half_open"


@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["allow", "ok", "fail", "release", "hok", "hfail"]), st.floats(0, 5)
        ),
        max_size=60,
    )
)
def test_breaker_invariants(events: list[tuple[str, float]]) -> None:
    """Whatever happens: the state is consistent with allow(), and at most one trial."""
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=2)
    now = 0.0
    trials = 0
    for action, step in events:
        now += step
        state = breaker.state(now)
        if action == "allow":
            allowed = breaker.allow(now)
            if state == "closed":
                assert allowed
            elif state == "open":
                assert not allowed
            elif allowed:
                trials += 1
                assert trials == 1
        else:
            feed: dict[str, Callable[[float], None]] = {
                "ok": breaker.record_success,
                "fail": breaker.record_failure,
                "release": breaker.release,
                "hok": lambda t: breaker.record_health(t, True),
                "hfail": lambda t: breaker.record_health(t, False),
            }
            feed[action](now)
            trials = 0
        assert breaker.retry_in(now) >= 0
        assert (breaker.retry_in(now) > 0) == (breaker.state(now) == "open")


# -- rate limiter ----------------------------------------------------------------------


def test_request_limit_slides() -> None:
    limiter = SlidingWindowLimiter(RateLimit(requests_per_minute=2), window_seconds=10)
    assert limiter.delay(0) == 0
    limiter.record_request(0)
    limiter.record_request(3)
    assert limiter.delay(4) == pytest.approx(6)  # the request at 0 leaves at 10
    assert limiter.delay(10) == 0
    limiter.record_request(10)
    assert limiter.delay(11) == pytest.approx(2)  # the one at 3 leaves at 13


def test_token_limit_is_reactive() -> None:
    limiter = SlidingWindowLimiter(RateLimit(tokens_per_minute=100), window_seconds=60)
    limiter.record_tokens(0, 60)
    assert limiter.delay(1) == 0  # under the limit: the next call may go
    limiter.record_tokens(5, 50)
    assert limiter.delay(6) == pytest.approx(54)  # 110 ≥ 100 until the 60 leave at 60
    assert limiter.delay(60) == 0
    limiter.record_tokens(61, 500)  # one call over the whole budget: wait for it to leave
    assert limiter.delay(62) == pytest.approx(59)


def test_token_limit_waits_for_enough_old_tokens_to_leave() -> None:
    limiter = SlidingWindowLimiter(RateLimit(tokens_per_minute=100), window_seconds=60)
    limiter.record_tokens(0, 10)
    limiter.record_tokens(1, 10)
    limiter.record_tokens(2, 90)  # 110 in the window
    # Dropping the 10 at 0 leaves 100 (still at the limit); the 10 at 1 must leave as well.
    assert limiter.delay(3) == pytest.approx(58)


def test_both_limits_take_the_longer_wait() -> None:
    limiter = SlidingWindowLimiter(
        RateLimit(requests_per_minute=1, tokens_per_minute=10), window_seconds=60
    )
    limiter.record_request(0)
    limiter.record_tokens(30, 20)
    assert limiter.delay(31) == pytest.approx(59)


def test_unlimited_never_waits() -> None:
    limiter = SlidingWindowLimiter(RateLimit())
    for t in range(100):
        limiter.record_request(t / 100)
        limiter.record_tokens(t / 100, 10_000)
    assert limiter.delay(1) == 0


@given(
    rpm=st.integers(1, 5),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=40),
)
def test_paced_requests_never_exceed_the_limit(rpm: int, gaps: list[float]) -> None:
    """A caller that waits `delay` before each request never has more than rpm in a window."""
    window = 10.0
    limiter = SlidingWindowLimiter(RateLimit(requests_per_minute=rpm), window_seconds=window)
    now = 0.0
    starts: list[float] = []
    for gap in gaps:
        now += gap
        for _ in range(5):  # like the transport: sleep, check again (float rounding)
            if (wait := limiter.delay(now)) == 0:
                break
            now += wait
        assert limiter.delay(now) == 0
        limiter.record_request(now)
        starts.append(now)
    for start in starts:
        in_window = [s for s in starts if start <= s < start + window]
        assert len(in_window) <= rpm


def test_limit_validation() -> None:
    with pytest.raises(ValueError):
        RateLimit(requests_per_minute=0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(RateLimit(), window_seconds=0)
