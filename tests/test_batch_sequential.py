"""The sequential test of `oriole.comparison.sequential`: the e-value, its martingale
property, its false-positive rate when peeked at after every pair, and how early it stops
under a real difference.

Simulations are vectorised: a table of ln E from the module's own `log_e_value` is indexed
by the running win counts of every simulated batch at once; `first_crossing` is checked to
stop where the table says on a sample of the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from oriole.comparison.sequential import Evidence, PairOutcome, first_crossing, log_e_value

ALPHA = 0.05
BATCHES = 2000
PAIRS = 150
#: ln E for every (wins of A, wins of B) a simulated batch can reach.
LOG_E = np.array([[log_e_value(a, b) for b in range(PAIRS + 1)] for a in range(PAIRS + 1)])


@dataclass(frozen=True)
class Simulated:
    #: Per batch: index of the pair at which E first reached 1/alpha, or -1.
    stop: np.ndarray
    #: Per batch: wins of A and of B at the stop (or after every pair).
    wins_a: np.ndarray
    wins_b: np.ndarray
    outcomes: tuple[np.ndarray, np.ndarray]


def simulate(found_a: np.ndarray, found_b: np.ndarray, alpha: float = ALPHA) -> Simulated:
    """Peek after every pair of every batch (rows: batches, columns: pairs in order)."""
    wins_a = np.cumsum(found_a & ~found_b, axis=1)
    wins_b = np.cumsum(found_b & ~found_a, axis=1)
    crossed = LOG_E[wins_a, wins_b] >= -math.log(alpha)
    stop = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    at = np.where(stop >= 0, stop, found_a.shape[1] - 1)
    rows = np.arange(found_a.shape[0])
    return Simulated(stop, wins_a[rows, at], wins_b[rows, at], (found_a, found_b))


def null_batches(rng: np.random.Generator, scenario: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arms find the goal with the same chance; how that chance arises varies."""
    shape = (BATCHES, PAIRS)
    if scenario.startswith("independent"):
        chance_of_goal = float(scenario.split()[-1])
        return rng.random(shape) < chance_of_goal, rng.random(shape) < chance_of_goal
    if scenario == "correlated by maze":
        # 10 mazes per batch, each with its own chance (mostly easy or mostly hard), shared
        # by both arms; pairs cycle through the mazes as a plan's repetitions do.
        chance = rng.beta(0.4, 0.4, size=(BATCHES, 10))
        per_pair = np.tile(chance, PAIRS // 10)
        return rng.random(shape) < per_pair, rng.random(shape) < per_pair
    if scenario == "correlated within pairs":
        # The same seed often decides for both runs: with chance 0.7 they share an outcome.
        shared = rng.random(shape) < 0.6
        same = rng.random(shape) < 0.7
        return (
            np.where(same, shared, rng.random(shape) < 0.6),
            np.where(same, shared, rng.random(shape) < 0.6),
        )
    raise ValueError(scenario)


def as_pairs(found_a: np.ndarray, found_b: np.ndarray) -> list[PairOutcome]:
    return [(bool(a), bool(b)) for a, b in zip(found_a, found_b, strict=True)]


def test_the_e_value_is_the_closed_form() -> None:
    assert log_e_value(0, 0) == 0.0
    assert math.exp(log_e_value(1, 0)) == pytest.approx(1.0)  # 2 * B(2, 1) = 1
    assert math.exp(log_e_value(8, 0)) == pytest.approx(2**8 / 9)
    assert math.exp(log_e_value(11, 1)) == pytest.approx(2**12 / (12 * 13))
    assert log_e_value(3, 7) == pytest.approx(log_e_value(7, 3))
    with pytest.raises(ValueError):
        log_e_value(-1, 0)


def test_the_e_value_is_a_fair_bet_under_the_null() -> None:
    """E[E_next | now] = E_now when each discordant pair is a fair coin: a martingale."""
    for a in range(40):
        for b in range(40):
            now = math.exp(log_e_value(a, b))
            bet = 0.5 * math.exp(log_e_value(a + 1, b)) + 0.5 * math.exp(log_e_value(a, b + 1))
            assert bet == pytest.approx(now, rel=1e-9)


def test_first_crossing_stops_at_the_first_pair_over_1_over_alpha() -> None:
    pairs: list[PairOutcome] = [(True, True), None, *[(True, False)] * 10, (False, True)]
    evidence = first_crossing(pairs, alpha=ALPHA, arms=("frontier", "wall_follower"))
    # 2^7/8 = 16 < 20 <= 2^8/9: the eighth win for A crosses; the rest is not read.
    assert (evidence.wins_a, evidence.wins_b, evidence.concordant) == (8, 0, 1)
    assert evidence.left_out == 1 and evidence.pairs == 9
    assert evidence.conclusive and evidence.better == "frontier"
    assert evidence.e_value == pytest.approx(2**8 / 9)
    assert evidence.sentence() == (
        "conclusive after 9 pairs (1 more left out: a run failed): frontier found the goal "
        "where wall_follower did not in 8 of 8 discordant pairs (e-value 28.4 >= 20 = "
        "1/alpha, alpha 0.05)"
    )
    short = first_crossing(pairs[:9], alpha=ALPHA, arms=("frontier", "wall_follower"))
    assert not short.conclusive and short.wins_a == 7
    assert "not conclusive after 8 pairs" in short.sentence() and "< 20" in short.sentence()


def test_no_pair_no_evidence_and_a_tie_names_no_better_arm() -> None:
    empty = first_crossing([], alpha=ALPHA)
    assert empty == Evidence("A", "B", ALPHA)
    assert empty.e_value == 1.0 and not empty.conclusive
    assert "no discordant pair yet" in empty.sentence()
    tie = first_crossing([(True, False), (False, True)], alpha=ALPHA)
    assert tie.better is None and not tie.conclusive
    with pytest.raises(ValueError):
        first_crossing([], alpha=0.0)


@pytest.mark.parametrize(
    "scenario",
    [
        "independent 0.1",
        "independent 0.5",
        "independent 0.9",
        "correlated by maze",
        "correlated within pairs",
    ],
)
def test_peeking_after_every_pair_keeps_false_positives_at_most_alpha(scenario: str) -> None:
    rng = np.random.default_rng(20261129)
    found_a, found_b = null_batches(rng, scenario)
    result = simulate(found_a, found_b)
    rate = float(np.mean(result.stop >= 0))
    margin = 3 * math.sqrt(ALPHA * (1 - ALPHA) / BATCHES)
    assert rate <= ALPHA + margin, (scenario, rate)
    # The function the scheduler calls stops where the table says, on a sample.
    for row in range(0, BATCHES, 40):
        evidence = first_crossing(as_pairs(found_a[row], found_b[row]), alpha=ALPHA)
        assert evidence.conclusive == (result.stop[row] >= 0)
        assert (evidence.wins_a, evidence.wins_b) == (result.wins_a[row], result.wins_b[row])
        if evidence.conclusive:
            assert evidence.pairs == result.stop[row] + 1


def test_a_real_difference_stops_early_and_names_the_better_arm() -> None:
    rng = np.random.default_rng(7)
    shape = (BATCHES, PAIRS)
    found_a, found_b = rng.random(shape) < 0.8, rng.random(shape) < 0.3
    result = simulate(found_a, found_b)
    stopped = result.stop >= 0
    assert stopped.mean() >= 0.99
    assert np.all(result.wins_a[stopped] > result.wins_b[stopped])  # never the wrong way
    mean_pairs = float(np.mean(np.where(stopped, result.stop + 1, PAIRS)))
    assert mean_pairs < PAIRS / 4, mean_pairs


def test_a_smaller_alpha_asks_for_more_evidence() -> None:
    rng = np.random.default_rng(11)
    shape = (BATCHES, PAIRS)
    found_a, found_b = rng.random(shape) < 0.7, rng.random(shape) < 0.4
    loose = simulate(found_a, found_b, alpha=0.1)
    strict = simulate(found_a, found_b, alpha=0.01)
    both = (loose.stop >= 0) & (strict.stop >= 0)
    assert np.all(loose.stop[both] <= strict.stop[both])
    assert np.mean(loose.stop >= 0) >= np.mean(strict.stop >= 0)
