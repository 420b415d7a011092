"""Capped exponential backoff with equal jitter: the one backoff of every retry loop.

Half of each step is fixed, so a retry never hammers a struggling server (or broker, or
database) back to back; half is random, so many clients failing together do not retry in
lockstep. Used by model calls (`oriole.llm.resilience`), the projector waiting for
PostgreSQL and `oriole up` restarting a failed service. Pure.
"""

from __future__ import annotations

import random

#: 2**62 seconds is already far beyond any cap; larger exponents only risk overflow.
_MAX_EXPONENT = 62


def backoff_step(first: float, cap: float, attempt: int, rng: random.Random) -> float:
    """The wait after failed attempt number ``attempt`` (1-based): between half of
    ``min(cap, first * 2**(attempt - 1))`` and all of it."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    step = min(cap, first * 2.0**exponent)
    half = step / 2
    return half + rng.uniform(0.0, half)


class Backoff:
    """The waits of one retry loop: call :meth:`next_delay` after each failure."""

    def __init__(
        self, first: float = 0.2, cap: float = 10.0, rng: random.Random | None = None
    ) -> None:
        self.first = first
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.attempt += 1
        return backoff_step(self.first, self.cap, self.attempt, self._rng)

    def reset(self) -> None:
        self.attempt = 0
