"""A tiny seeded random number generator of our own (SplitMix64).

Why not the stdlib ``random`` module: its algorithms (``randrange``, ``shuffle``, ``choice``,
seeding of non-int seeds) are not a cross-version contract and have changed between Python
releases. A maze generated from a seed must be the same on every machine and every Python
version, forever, so the generator is a few lines of integer arithmetic that we own.

SplitMix64 (Steele, Lea and Flood, 2014) passes BigCrush, has a full 2**64 period and needs a
single 64-bit word of state, which makes it trivially reproducible in any language.
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from typing import TypeVar

T = TypeVar("T")

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_TWO_POW_MINUS_53 = 2.0**-53

#: Largest seed accepted: any unsigned 64-bit integer.
MAX_SEED = _MASK64


class SeededRandom:
    """SplitMix64 with unbiased integer draws; the same seed gives the same stream everywhere."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        self._state = seed

    def next_u64(self) -> int:
        """The next 64-bit output, an int in [0, 2**64)."""
        self._state = z = (self._state + _GOLDEN_GAMMA) & _MASK64
        z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
        z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """A uniform int in [0, n); rejection sampling so that no value is favoured."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an integer, got {type(n).__name__}")
        if not 1 <= n <= 1 << 64:
            raise ValueError(f"n must be between 1 and 2**64, got {n}")
        # Accept only draws below the largest multiple of n that fits in 64 bits.
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            value = self.next_u64()
            if value < limit:
                return value % n

    def uniform(self) -> float:
        """A float in [0, 1) with 53 random bits (exactly representable, no rounding up to 1)."""
        return (self.next_u64() >> 11) * _TWO_POW_MINUS_53

    def chance(self, p: float) -> bool:
        """True with probability ``p``; always consumes one draw so later draws do not shift."""
        return self.uniform() < p

    def shuffle(self, items: MutableSequence[T]) -> None:
        """Shuffle in place (Fisher–Yates, from the end)."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def choice(self, items: Sequence[T]) -> T:
        """One element, uniformly; ``IndexError`` on an empty sequence."""
        if not items:
            raise IndexError("cannot choose from an empty sequence")
        return items[self.below(len(items))]
