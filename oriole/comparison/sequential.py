"""An always-valid sequential test of two arms on matched pairs of runs.

Runs of arms A and B are matched into pairs (same maze, start and repetition, hence the same
seed). A pair is *discordant* when exactly one of its two runs found the goal. Under the
null hypothesis "both arms find the goal equally often" — whether the two runs of a pair are
independent or correlated through their maze and seed — which arm won a discordant pair is a
fair coin. The test is a mixture sequential probability ratio test on those coins: with a
uniform (Beta(1, 1)) prior on the chance p that A wins, after ``a`` wins of A and ``b`` of B
the e-value is ``E = 2^(a+b) * B(a+1, b+1)`` (the likelihood of p averaged over the prior,
divided by the likelihood at p = 1/2).

E is a nonnegative martingale with E_0 = 1 under the null, so by Ville's inequality the
chance that it *ever* reaches 1/alpha is at most alpha: the test may be looked at after
every pair and stopped the first time E >= 1/alpha, and the false-positive rate stays at
most alpha. That holds for a sequence of pairs whose order does not depend on their
outcomes (`oriole.comparison.stopping` walks them in the batch's plan order).

Concordant pairs (both found the goal, or neither) carry no information on the difference
and leave E unchanged. A pair with a failed run (an error, stop reason ``failed``) is left
out: a failure says nothing about the agent's ability to find the goal.

Pure: no I/O; the standard library's ``lgamma`` keeps the arithmetic in log space.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: The outcome of one ended pair: (A found the goal, B found the goal), or None when a run
#: of the pair failed (the pair is left out).
PairOutcome = tuple[bool, bool] | None

_LN2 = math.log(2.0)
#: ``exp`` of more than this overflows a float; larger e-values are reported as ``exp(709)``.
_MAX_LOG = 709.0


def log_e_value(wins_a: int, wins_b: int) -> float:
    """ln E after ``wins_a`` and ``wins_b`` discordant wins: (a+b) ln 2 + ln B(a+1, b+1)."""
    if wins_a < 0 or wins_b < 0:
        raise ValueError("win counts are never negative")
    beta = math.lgamma(wins_a + 1) + math.lgamma(wins_b + 1) - math.lgamma(wins_a + wins_b + 2)
    return (wins_a + wins_b) * _LN2 + beta


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where the comparison stands: at its first crossing of 1/alpha, or after every pair."""

    arm_a: str
    arm_b: str
    alpha: float
    wins_a: int = 0
    wins_b: int = 0
    concordant: int = 0
    left_out: int = 0

    @property
    def pairs(self) -> int:
        """Pairs that counted (discordant and concordant); left-out pairs not included."""
        return self.wins_a + self.wins_b + self.concordant

    @property
    def discordant(self) -> int:
        return self.wins_a + self.wins_b

    @property
    def log_e(self) -> float:
        return log_e_value(self.wins_a, self.wins_b)

    @property
    def e_value(self) -> float:
        return math.exp(min(self.log_e, _MAX_LOG))

    @property
    def threshold(self) -> float:
        """1/alpha: the e-value at which the comparison is conclusive."""
        return 1.0 / self.alpha

    @property
    def conclusive(self) -> bool:
        # In log space, so that no alpha, however small, overflows.
        return self.log_e >= -math.log(self.alpha)

    @property
    def better(self) -> str | None:
        """The arm that won more discordant pairs (None: as many each)."""
        if self.wins_a == self.wins_b:
            return None
        return self.arm_a if self.wins_a > self.wins_b else self.arm_b

    def sentence(self) -> str:
        """One line for people: what was counted, the e-value and the threshold."""
        leader, other, wins = self.arm_a, self.arm_b, self.wins_a
        if self.wins_b > self.wins_a:
            leader, other, wins = self.arm_b, self.arm_a, self.wins_b
        verdict = "conclusive" if self.conclusive else "not conclusive"
        relation = ">=" if self.conclusive else "<"
        counted = f"{self.pairs} pair{'' if self.pairs == 1 else 's'}"
        if self.left_out:
            counted += f" ({self.left_out} more left out: a run failed)"
        if self.discordant:
            what = (
                f"{leader} found the goal where {other} did not in {wins} of "
                f"{self.discordant} discordant pairs"
            )
        else:
            what = "no discordant pair yet"
        return (
            f"{verdict} after {counted}: {what} (e-value {self.e_value:.3g} {relation} "
            f"{self.threshold:g} = 1/alpha, alpha {self.alpha:g})"
        )


def first_crossing(
    pairs: Iterable[PairOutcome], *, alpha: float, arms: tuple[str, str] = ("A", "B")
) -> Evidence:
    """Walk ``pairs`` in order and stop at the first where E >= 1/alpha.

    Returns the evidence at that pair (``conclusive``), or after the last pair if E never
    got there. Pairs after a crossing are not read: the guarantee is about the first one.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    bar = -math.log(alpha)
    wins_a = wins_b = concordant = left_out = 0
    for pair in pairs:
        if pair is None:
            left_out += 1
            continue
        found_a, found_b = pair
        if found_a == found_b:
            concordant += 1
            continue
        if found_a:
            wins_a += 1
        else:
            wins_b += 1
        if log_e_value(wins_a, wins_b) >= bar:
            break
    return Evidence(arms[0], arms[1], alpha, wins_a, wins_b, concordant, left_out)
