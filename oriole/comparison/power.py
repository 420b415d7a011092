"""How small a difference in success rate a comparison of two arms can detect, before any run.

The figure is the *minimum detectable difference* (MDD): the smallest absolute gap between two
arms' success rates that a two-sided test at ``alpha`` finds with probability ``power``. It
comes from the normal approximation on Cohen's arcsine effect size h = 2·asin(√p₁) −
2·asin(√p₀) (Cohen 1988, ch. 6), solved by statsmodels' ``NormalIndPower`` — no power
formula is written out here. Its textbook form for equal arms of n runs is
n = 2·(z₁₋α/₂ + z₁₋β)² / h² (Cohen 1992, "A Power Primer", table 2: 392, 63 and 25 runs per
arm for h = 0.2, 0.5, 0.8 at α = 0.05, power 0.8).

**Paired runs.** In a batch every arm runs the same places and repetitions (hence the same
seeds), so runs are matched pairs and an exact McNemar test on the discordant pairs is the
right analysis. Its power depends on how often the two arms disagree on the same pair, which
nothing knows before the runs. We therefore report the independent-samples figure for paired
runs too: it is conservative, because pairing only helps when the arms' outcomes on the
same maze, start and seed correlate positively (a maze hard for one agent tends to be hard
for the other), and is about the same when they do not correlate. With a handful of runs
per arm the normal approximation itself is optimistic next to the exact tests an analysis
would use (Fisher, exact McNemar), so large figures (above ~0.4) are rough.

**Several comparisons.** A family of m comparisons is planned at α/m (Bonferroni). Holm's
procedure tests its most significant comparison at exactly α/m and the others at larger
levels, so α/m is the conservative plan for Holm as well.

**Which direction.** For a given h, the absolute difference is largest when the other arm's
rate moves towards 0.5, so the MDD is taken in that direction (up from a baseline ≤ 0.5,
down from one above it): a rise or a fall of that size, where one is possible, is detected.

**Which baseline.** The figure assumes one arm succeeds at ``baseline`` = sin²θ₀; it is
sin(2θ₀ + h/2)·sin(h/2) (towards 0.5 from below; mirrored above). From 0.5 that is sin(h)/2,
and baselines far from 0.5 give less; but two rates that straddle 0.5 can need a little
more, at most sin(h/2) when they are symmetric about 0.5 (at h = 0.2: 0.0998 rather than
0.0993; at h = 1.02: 0.49 rather than 0.43). The default is 0.5 all the same, because
"50% vs 93%" is an answer a user can check against what they expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from statsmodels.stats.power import NormalIndPower

#: A comparison that cannot detect a difference this large (absolute: 0.25 = 25 points) is
#: underpowered.
DEFAULT_THRESHOLD = 0.25
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
#: The baseline success rate: where one run's outcome varies most.
DEFAULT_BASELINE = 0.5


@dataclass(frozen=True, slots=True)
class Detectable:
    """What one comparison of two arms can detect."""

    runs_a: int
    runs_b: int
    paired: bool
    #: Two-sided level each comparison is tested at (alpha / comparisons).
    alpha: float
    power: float
    baseline: float
    #: Cohen's h the comparison detects with ``power``.
    cohens_h: float
    #: Smallest detectable absolute difference in success rate; None: none at all.
    difference: float | None


def _check_unit(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value < 1):
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")


def _check(runs_a: int, runs_b: int, alpha: float, power: float, baseline: float) -> None:
    _check_unit("alpha", alpha)
    _check_unit("power", power)
    _check_unit("baseline rate", baseline)
    for name, runs in (("runs of arm a", runs_a), ("runs of arm b", runs_b)):
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {runs!r}")


def _check_comparisons(comparisons: int) -> None:
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ValueError(f"comparisons must be a whole number of at least 1, got {comparisons!r}")


def _check_power_above(level: float, power: float) -> None:
    # A test at level alpha "detects" a difference of zero with probability alpha.
    if power <= level:
        raise ValueError(f"power ({power:g}) must be above alpha per comparison ({level:.3g})")


def detectable_h(runs_a: int, runs_b: int, *, alpha: float, power: float) -> float:
    """Cohen's h that a two-sided test at ``alpha`` detects with ``power`` (statsmodels)."""
    _check_power_above(alpha, power)
    solved = NormalIndPower().solve_power(
        effect_size=None,
        nobs1=runs_a,
        alpha=alpha,
        power=power,
        ratio=runs_b / runs_a,
        alternative="two-sided",
    )
    h = float(solved)
    if not math.isfinite(h) or h <= 0:
        raise ArithmeticError(f"no effect size solves the power equation (got {solved!r})")
    return h


def difference_of_h(h: float, baseline: float) -> float | None:
    """The absolute rate difference from ``baseline`` whose Cohen's h is ``h``, moving
    towards 0.5; None when even a move to 0 or 1 has a smaller h."""
    theta = math.asin(math.sqrt(baseline))
    if baseline <= 0.5:
        moved = theta + h / 2
        return None if moved > math.pi / 2 else math.sin(moved) ** 2 - baseline
    moved = theta - h / 2
    return None if moved < 0 else baseline - math.sin(moved) ** 2


def h_of_difference(difference: float, baseline: float) -> float:
    """Cohen's h between ``baseline`` and a rate ``difference`` away from it towards 0.5."""
    other = baseline + difference if baseline <= 0.5 else baseline - difference
    if not 0 <= other <= 1:
        raise ValueError(f"a difference of {difference} from {baseline} leaves [0, 1]")
    return abs(2 * math.asin(math.sqrt(other)) - 2 * math.asin(math.sqrt(baseline)))


def minimum_detectable_difference(
    runs_a: int,
    runs_b: int,
    *,
    paired: bool = True,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    baseline: float = DEFAULT_BASELINE,
    comparisons: int = 1,
) -> Detectable:
    """The smallest success-rate difference one of ``comparisons`` comparisons detects.

    ``alpha`` is the family's two-sided level; each comparison is planned at
    ``alpha / comparisons``. Paired runs (``runs_a == runs_b`` pairs) get the conservative
    independent-samples figure (see the module docstring).
    """
    _check(runs_a, runs_b, alpha, power, baseline)
    _check_comparisons(comparisons)
    if paired and runs_a != runs_b:
        raise ValueError(f"paired runs come in pairs, got {runs_a} and {runs_b} runs")
    level = alpha / comparisons
    h = detectable_h(runs_a, runs_b, alpha=level, power=power)
    return Detectable(
        runs_a=runs_a,
        runs_b=runs_b,
        paired=paired,
        alpha=level,
        power=power,
        baseline=baseline,
        cohens_h=h,
        difference=difference_of_h(h, baseline),
    )


def runs_needed(
    difference: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    baseline: float = DEFAULT_BASELINE,
    comparisons: int = 1,
) -> int:
    """Runs per arm (equal arms) for one of ``comparisons`` comparisons to detect
    ``difference``: what an underpowered batch would need."""
    _check(1, 1, alpha, power, baseline)
    _check_comparisons(comparisons)
    if not 0 < difference <= max(baseline, 1 - baseline):
        raise ValueError(f"difference must be in (0, {max(baseline, 1 - baseline)}]")
    level = alpha / comparisons
    _check_power_above(level, power)
    h = h_of_difference(difference, baseline)
    engine = NormalIndPower()

    def enough(runs: int) -> bool:
        reached = engine.power(
            effect_size=h, nobs1=runs, alpha=level, ratio=1.0, alternative="two-sided"
        )
        return float(reached) >= power

    # statsmodels' own solver for nobs starts at 10 runs and wanders below 0 for large
    # differences; its power is monotone in the runs, so bisect on whole runs instead.
    high = 1
    while not enough(high):
        high *= 2
    low = high // 2  # not enough (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def is_underpowered(detectable: Detectable, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True when the comparison cannot detect a difference of ``threshold`` (absolute)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    return detectable.difference is None or detectable.difference > threshold
