"""The comparison statistics against reference values computed outside Oriole.

Each reference names its source. Where a value was worked out by hand, the working is in the
comment, so a reader can check it without running anything.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from oriole.comparison.stats import (
    bootstrap_mean,
    cliffs_delta,
    fisher_exact,
    hodges_lehmann,
    holm,
    mann_whitney,
    mcnemar_exact,
    newcombe,
    paired_shift,
    wilcoxon,
    wilson,
)
from projections.migrate import migrate


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Wilson (1927) with z = 1.959964: p = 3/11, centre (p + z²/22) / (1 + z²/11) =
        # 0.331544, half width z/(1 + z²/11) * sqrt(p(1-p)/11 + z²/484) = 0.234050.
        (3, 11, 0.0974606, 0.5656453),
        # 0 of n: low is 0, high is z²/(n + z²) = 3.841459/23.841459.
        (0, 20, 0.0, 0.1611252),
        # n of n: the mirror image, 1 - 0.1611252.
        (20, 20, 0.8388748, 1.0),
    ],
)
def test_wilson_reference_values(successes: int, trials: int, low: float, high: float) -> None:
    interval = wilson(successes, trials)
    assert interval is not None
    assert interval.low == pytest.approx(low, abs=5e-7)
    assert interval.high == pytest.approx(high, abs=5e-7)


def test_wilson_without_trials_is_undefined() -> None:
    assert wilson(0, 0) is None


def test_newcombe_difference_9_of_12_vs_3_of_12() -> None:
    """Newcombe (1998, Stat Med 17:873, method 10), by hand: Wilson 9/12 = (0.467656,
    0.911067), 3/12 = (0.088933, 0.532344); d = 0.5; low = d - sqrt((0.75 - 0.467656)² +
    (0.532344 - 0.25)²) = 0.100760; high = d + sqrt((0.911067 - 0.75)² + (0.25 -
    0.088933)²) = 0.727771."""
    interval = newcombe(9, 12, 3, 12)
    assert interval is not None
    assert interval.low == pytest.approx(0.100760, abs=2e-6)
    assert interval.high == pytest.approx(0.727771, abs=2e-6)


def test_newcombe_matches_the_published_example() -> None:
    """Newcombe (1998), Table II, example (a): 56/70 - 48/80 -> 0.0524 to 0.3339."""
    interval = newcombe(56, 70, 48, 80)
    assert interval is not None
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)


def test_fisher_exact_on_fixed_tables() -> None:
    # Margins all 12: P(k) = C(12,k) C(12,12-k) / C(24,12), C(24,12) = 2704156. Tables at
    # most as likely as k=9: k in 9..12 and 0..3 -> 2 * (220² + 66² + 12² + 1) / 2704156 =
    # 105802 / 2704156 = 0.0391257 (R: fisher.test(matrix(c(9, 3, 3, 9), 2)) says 0.03913).
    assert fisher_exact([[9, 3], [3, 9]]).p_value == pytest.approx(0.0391257, abs=1e-6)
    # The "lady tasting tea" (Fisher 1935): 3 of 4 right each way, two-sided p = 34/70.
    assert fisher_exact([[3, 1], [1, 3]]).p_value == pytest.approx(34 / 70, abs=1e-12)


def test_exact_mcnemar_is_the_binomial_test_of_the_discordant_pairs() -> None:
    # 6 pairs where only A succeeded, 1 where only B did: 2 * P(X <= 1 | n=7, p=1/2) = 16/128.
    assert mcnemar_exact(6, 1).p_value == pytest.approx(0.125, abs=1e-12)
    # 10 vs 0: 2 * 0.5**10.
    assert mcnemar_exact(10, 0).p_value == pytest.approx(2 / 1024, abs=1e-12)
    assert mcnemar_exact(0, 0).p_value == 1.0


def test_holm_on_a_fixed_list_and_against_statsmodels() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running
    # maximum 0.02, 0.03, 0.06, 0.06, back in the given order.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.04]) == [pytest.approx(0.02), None, pytest.approx(0.04)]
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    rng = np.random.default_rng(7)
    for _ in range(300):
        values = list(rng.uniform(0, 0.3, size=int(rng.integers(1, 15))))
        values[0] = values[-1]  # ties too
        assert holm(values) == pytest.approx(list(multipletests(values, method="holm")[1]))


def test_rank_tests_and_effect_sizes() -> None:
    # R: wilcox.test(c(1,2,3,4), c(3,4,5,6,7))$p.value (ties -> normal approximation with
    # continuity correction) = 0.0639.
    assert mann_whitney([1, 2, 3, 4], [3, 4, 5, 6, 7]).p_value == pytest.approx(0.0639, abs=1e-4)
    # Exact signed-rank, differences 1..5 all positive: 2 / 2**5.
    assert wilcoxon([1, 2, 3, 4, 5]).p_value == pytest.approx(2 / 32, abs=1e-12)
    assert wilcoxon([0, 0, 0]).p_value is None  # nothing differs
    # All 9 pairs of (1,2,3) vs (2,3,4): 1 greater, 5 smaller -> (1 - 6)/9 = -5/9.
    assert cliffs_delta([1, 2, 3], [2, 3, 4]) == pytest.approx(-5 / 9)
    assert hodges_lehmann([1, 2, 3], [2, 3, 4]) == -1.0
    # Walsh averages of (1, 2, 3): 1, 1.5, 2, 2, 2.5, 3 -> median 2.
    assert paired_shift([1, 2, 3]) == 2.0
    assert cliffs_delta([], [1]) is None


def test_bootstrap_intervals_are_identical_for_the_same_seed() -> None:
    values = [3.0, 9.0, 4.0, 12.0, 7.0, 30.0, 5.0, 6.0]
    first = bootstrap_mean(values, seed=11)
    assert first is not None
    assert bootstrap_mean(values, seed=11) == first
    assert bootstrap_mean(values, seed=12) != first
    assert first.low < sum(values) / len(values) < first.high
    same = bootstrap_mean([5.0, 5.0, 5.0], seed=1)
    assert same is not None and (same.low, same.high) == (5.0, 5.0)
    assert bootstrap_mean([1.0], seed=1) is None


def test_the_sql_wilson_bounds_agree_with_the_library(pg_dsn: str) -> None:
    """The database's unrounded Wilson functions (migration 0006) and statsmodels agree to
    1e-9 over a grid of counts; the views' percent functions round the same bounds."""
    sizes = (1, 2, 3, 7, 11, 20, 50, 100, 999)
    counts = [(k, n) for n in sizes for k in range(0, n + 1, 1 + n // 9)]

    async def fetch() -> list[Any]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await migrate(conn)
            return list(
                await conn.fetch(
                    "SELECT k, n, wilson_ci_low(k, n) AS low, wilson_ci_high(k, n) AS high,"
                    " wilson_ci_low_pct(k, n) AS low_pct, wilson_ci_high_pct(k, n) AS high_pct"
                    " FROM unnest($1::bigint[], $2::bigint[]) AS t(k, n)",
                    [k for k, _ in counts],
                    [n for _, n in counts],
                )
            )
        finally:
            await conn.close()

    rows = asyncio.run(fetch())
    assert len(rows) == len(counts)
    for row in rows:
        interval = wilson(row["k"], row["n"])
        assert interval is not None
        assert abs(row["low"] - interval.low) < 1e-9, row
        assert abs(row["high"] - interval.high) < 1e-9, row
        assert float(row["low_pct"]) == pytest.approx(round(100 * interval.low, 2), abs=1e-9)
        assert float(row["high_pct"]) == pytest.approx(round(100 * interval.high, 2), abs=1e-9)
