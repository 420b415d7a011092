"""The statistics a comparison uses, each a thin typed call into scipy or statsmodels.

Nothing here is hand-rolled except two effect sizes the libraries do not name (Cliff's
delta and the Hodges–Lehmann shift, both one line over all pairs of values). Results are
plain floats — ``None`` where a quantity is undefined (no runs, no variation) — so the
report never carries NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

CONFIDENCE = 0.95
#: Resamples of a bootstrap interval: enough for stable 95 % percentile bounds.
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class TestResult:
    test: str
    p_value: float | None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson score interval of a proportion (statsmodels); None with no trials."""
    if trials <= 0:
        return None
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    # At 0 or n successes the bound is exactly 0 or 1; the library's arithmetic leaves 1e-17.
    return Interval(
        0.0 if successes == 0 else float(low), 1.0 if successes == trials else float(high)
    )


def newcombe(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int,
    confidence: float = CONFIDENCE,
) -> Interval | None:  # fmt: skip
    """Newcombe's hybrid-score interval of ``rate_a - rate_b`` (statsmodels)."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    low, high = confint_proportions_2indep(
        successes_a, trials_a, successes_b, trials_b,
        method="newcomb", compare="diff", alpha=1 - confidence,
    )  # fmt: skip
    return Interval(float(low), float(high))


def fisher_exact(table: Sequence[Sequence[int]]) -> TestResult:
    """Two-sided Fisher exact test of a 2×2 table of independent runs."""
    result = scipy_stats.fisher_exact(np.asarray(table, dtype=np.int64))
    return TestResult("fisher-exact", _finite(result.pvalue))


def mcnemar_exact(a_only: int, b_only: int) -> TestResult:
    """Exact (binomial) McNemar test from the discordant pairs of matched runs."""
    if a_only + b_only == 0:
        return TestResult("mcnemar-exact", 1.0)
    result = mcnemar(np.array([[0, a_only], [b_only, 0]]), exact=True)
    return TestResult("mcnemar-exact", _finite(result.pvalue))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values across a family (None stays None and is not counted)."""
    present = [(i, p) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    # statsmodels' multipletests(method="holm") computes exactly this step-down but forces a
    # full gc.collect() per call (0.1 s each, one per outcome of every report); the test
    # suite checks the two agree.
    values = np.array([p for _, p in present], dtype=float)
    order = np.argsort(values, kind="stable")
    stepped = np.maximum.accumulate(values[order] * np.arange(values.size, 0, -1))
    corrected = np.empty_like(values)
    corrected[order] = np.minimum(stepped, 1.0)
    for (i, _), value in zip(present, corrected, strict=True):
        adjusted[i] = float(value)
    return adjusted


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided Mann–Whitney U test of independent samples; None when a sample is empty or
    every value is the same (no ranks to compare)."""
    if not a or not b or len(set(a) | set(b)) < 2:
        return TestResult("mann-whitney", None)
    result = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    return TestResult("mann-whitney", _finite(result.pvalue))


def wilcoxon(differences: Sequence[float]) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of matched differences; None without any
    non-zero difference."""
    nonzero = [abs(d) for d in differences if d != 0]
    if not nonzero:
        return TestResult("wilcoxon", None)
    # As R's wilcox.test: the exact distribution for fewer than 50 differences without ties,
    # else the normal approximation with a continuity correction (scipy's own choice for
    # ties is a permutation test, seconds per call).
    exact = len(nonzero) < 50 and len(set(nonzero)) == len(nonzero)
    result = scipy_stats.wilcoxon(
        differences, zero_method="wilcox", correction=not exact,
        method="exact" if exact else "asymptotic",
    )  # fmt: skip
    return TestResult("wilcoxon", _finite(result.pvalue))


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float | None:
    """P(A > B) − P(A < B) over all pairs: −1 .. 1, 0 when the samples do not differ."""
    if not a or not b:
        return None
    diff = np.subtract.outer(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return float((np.count_nonzero(diff > 0) - np.count_nonzero(diff < 0)) / diff.size)


def hodges_lehmann(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The median of all pairwise differences ``a_i − b_j``: a shift robust to outliers."""
    if not a or not b:
        return None
    return float(np.median(np.subtract.outer(np.asarray(a, float), np.asarray(b, float))))


def paired_shift(differences: Sequence[float]) -> float | None:
    """Hodges–Lehmann shift of matched differences: the median of their Walsh averages."""
    if not differences:
        return None
    values = np.asarray(differences, dtype=float)
    walsh = np.add.outer(values, values)[np.triu_indices(values.size)] / 2
    return float(np.median(walsh))


def bootstrap_mean(
    values: Sequence[float], seed: int, confidence: float = CONFIDENCE
) -> Interval | None:
    """Seeded bootstrap interval of the mean (BCa; percentile when BCa is undefined).

    The same values and seed give the same interval. None with fewer than two values.
    """
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    if np.all(data == data[0]):
        return Interval(float(data[0]), float(data[0]))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate-sample warning: we fall back
            result = scipy_stats.bootstrap(
                (data,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                method=method, rng=np.random.default_rng(seed),
            )  # fmt: skip
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            return Interval(float(low), float(high))
    return None
