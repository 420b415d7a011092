"""The one backoff: capped, exponential, with equal jitter."""

from __future__ import annotations

import random

from oriole.backoff import Backoff, backoff_step


def test_each_wait_is_between_half_the_step_and_the_step() -> None:
    backoff = Backoff(first=0.2, cap=10.0, rng=random.Random(3))
    for attempt in range(1, 12):
        step = min(10.0, 0.2 * 2 ** (attempt - 1))
        assert step / 2 <= backoff.next_delay() <= step
    backoff.reset()
    assert backoff.next_delay() <= 0.2


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert 15.0 <= backoff_step(1.0, 30.0, 10**9, random.Random(1)) <= 30.0
