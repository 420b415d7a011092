"""The power of a batch's comparisons: reference values, monotonicity, the family, bad input.

Reference values are computed outside the code under test: Cohen (1992), "A Power Primer",
Psychological Bulletin 112(1), table 2, test 4 (difference between proportions, alpha 0.05
two-sided, power 0.80: 392, 63 and 25 runs per arm for h = 0.2, 0.5 and 0.8), and the
closed form h = (z_{1-a/2} + z_{1-b}) * sqrt(1/n_a + 1/n_b) with standard normal quantiles
from a table (z_0.975 = 1.959964, z_0.8 = 0.841621, z_(1-0.05/6) = 2.393980); at a baseline
of 0.5 a rate difference d has h = 2*asin(sqrt(0.5 + d)) - pi/2, i.e. d = sin(h)/2.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from oriole.comparison.batch_power import batch_power, difference_text, power_warning
from oriole.comparison.power import (
    detectable_h,
    difference_of_h,
    h_of_difference,
    is_underpowered,
    minimum_detectable_difference,
    runs_needed,
)

Z_975 = 1.959964
Z_80 = 0.841621
Z_BONFERRONI_3 = 2.393980  # z at 1 - 0.05 / (2 * 3): three comparisons


@pytest.mark.parametrize(("runs", "h"), [(392, 0.2), (63, 0.5), (25, 0.8)])
def test_cohens_table_runs_per_arm_detect_his_effect_sizes(runs: int, h: float) -> None:
    assert detectable_h(runs, runs, alpha=0.05, power=0.8) == pytest.approx(h, abs=0.01)
    # and the other way round (Cohen rounds to the nearest run, we round up)
    assert abs(runs_needed(math.sin(h) / 2) - runs) <= 1


def test_closed_form_with_three_comparisons_at_a_baseline_of_one_half() -> None:
    h = (Z_BONFERRONI_3 + Z_80) * math.sqrt(2 / 20)  # 1.02319
    found = minimum_detectable_difference(20, 20, comparisons=3)
    assert found.alpha == pytest.approx(0.05 / 3)
    assert found.cohens_h == pytest.approx(h, abs=1e-4)
    assert found.difference == pytest.approx(math.sin(h) / 2, abs=1e-4)  # 0.4269
    assert found.difference == pytest.approx(0.4269, abs=1e-4)


def test_unequal_independent_arms() -> None:
    h = (Z_975 + Z_80) * math.sqrt(1 / 10 + 1 / 40)  # 0.99051
    found = minimum_detectable_difference(10, 40, paired=False)
    assert found.cohens_h == pytest.approx(h, abs=1e-3)
    assert found.difference == pytest.approx(math.sin(h) / 2, abs=1e-3)
    # 10 + 40 runs detect less than 25 + 25: balance is best.
    balanced = minimum_detectable_difference(25, 25, paired=False).difference
    assert balanced is not None and found.difference is not None
    assert balanced < found.difference


def test_h_and_difference_are_inverse_and_move_towards_one_half() -> None:
    assert difference_of_h(math.pi / 2, 0.5) == pytest.approx(0.5)  # 50% -> 100%
    assert difference_of_h(math.pi / 2 + 0.01, 0.5) is None
    assert h_of_difference(0.5, 0.5) == pytest.approx(math.pi / 2)
    for baseline in (0.05, 0.3, 0.5, 0.7, 0.95):
        for difference in (0.05, 0.2, 0.4):
            h = h_of_difference(difference, baseline)
            assert difference_of_h(h, baseline) == pytest.approx(difference)
    # from 0.2 up and from 0.8 down are the same move, mirrored
    assert difference_of_h(0.7, 0.2) == pytest.approx(difference_of_h(0.7, 0.8))
    # 0.8 -> 1.0 is out of reach for h = 1.2, but 0.8 -> 0.8 - d is not
    assert difference_of_h(1.2, 0.8) is not None
    assert difference_of_h(1.2, 0.2) == pytest.approx(difference_of_h(1.2, 0.8))


def _difference(**kwargs: Any) -> float:
    runs = kwargs.pop("runs", 30)
    found = minimum_detectable_difference(runs, runs, **kwargs).difference
    assert found is not None
    return found


def test_monotone_in_runs_power_alpha_comparisons_and_baseline() -> None:
    by_runs = [_difference(runs=n) for n in (10, 20, 40, 80, 160)]
    assert by_runs == sorted(by_runs, reverse=True)
    by_power = [_difference(power=p) for p in (0.5, 0.7, 0.8, 0.9, 0.95)]
    assert by_power == sorted(by_power)
    by_alpha = [_difference(alpha=a) for a in (0.2, 0.1, 0.05, 0.01)]
    assert by_alpha == sorted(by_alpha)
    by_family = [_difference(comparisons=m) for m in (1, 3, 6, 10)]
    assert by_family == sorted(by_family)
    # from one half a difference is harder to detect than from baselines far from it
    worst = _difference(baseline=0.5, runs=400)
    assert all(_difference(baseline=p, runs=400) < worst for p in (0.05, 0.1, 0.2, 0.8, 0.9))


def test_large_differences_straddling_one_half_need_more_than_from_one_half() -> None:
    # As the docstring says: at h = 1.0232 (20 runs, 3 comparisons) 0.4269 from 0.5, but
    # sin(h / 2) = 0.4896 between rates symmetric about 0.5.
    h = minimum_detectable_difference(20, 20, comparisons=3).cohens_h
    symmetric = math.sin(math.pi / 4 - h / 4) ** 2  # 0.2552
    found = _difference(runs=20, comparisons=3, baseline=symmetric)
    assert found == pytest.approx(math.sin(h / 2), abs=1e-6)
    assert found == pytest.approx(0.4896, abs=1e-4)
    assert found > _difference(runs=20, comparisons=3)


def test_a_family_of_m_is_planned_at_alpha_over_m() -> None:
    family = minimum_detectable_difference(15, 15, alpha=0.05, comparisons=6)
    single = minimum_detectable_difference(15, 15, alpha=0.05 / 6, comparisons=1)
    assert family.alpha == single.alpha
    assert family.difference == single.difference
    assert runs_needed(0.25, comparisons=6) == runs_needed(0.25, alpha=0.05 / 6)


def test_runs_needed_is_the_fewest_that_detect_the_difference() -> None:
    needed = runs_needed(0.25, comparisons=3)
    enough = minimum_detectable_difference(needed, needed, comparisons=3).difference
    short = minimum_detectable_difference(needed - 1, needed - 1, comparisons=3).difference
    assert enough is not None and short is not None
    assert enough <= 0.25 < short


def test_nothing_detectable_with_too_few_runs_and_the_threshold() -> None:
    found = minimum_detectable_difference(6, 6, comparisons=3)
    assert found.difference is None
    assert is_underpowered(found)
    assert difference_text(found) == "none, not even 50% vs 100%"
    middling = minimum_detectable_difference(60, 60)  # h 0.511, d 0.245
    assert middling.difference == pytest.approx(0.2446, abs=1e-3)
    assert not is_underpowered(middling)
    assert is_underpowered(middling, threshold=0.2)
    assert difference_text(middling) == "0.24 (50% vs 74%)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"power": 0.0}, "power"),
        ({"power": 1.0}, "power"),
        ({"baseline": 1.0}, "baseline"),
        ({"baseline": 0.0}, "baseline"),
        ({"comparisons": 0}, "comparisons"),
        ({"runs_a": 0}, "runs of arm a"),
        ({"runs_b": True}, "runs of arm b"),
        ({"runs_b": 12}, "pairs"),
        ({"alpha": 0.5, "power": 0.4}, "power .* above alpha"),
        ({"alpha": 0.9, "power": 0.8}, "power .* above alpha"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"runs_a": 10, "runs_b": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        minimum_detectable_difference(arguments.pop("runs_a"), arguments.pop("runs_b"), **arguments)


def test_bad_threshold_and_difference_are_refused() -> None:
    found = minimum_detectable_difference(10, 10)
    with pytest.raises(ValueError, match="threshold"):
        is_underpowered(found, threshold=0)
    with pytest.raises(ValueError, match="difference"):
        runs_needed(0.6)  # more than 0.5 from a baseline of 0.5
    with pytest.raises(ValueError, match="alpha"):
        runs_needed(0.2, alpha=2)
    with pytest.raises(ValueError, match="above alpha"):
        runs_needed(0.2, alpha=0.6, power=0.5)


def test_runs_needed_for_large_differences_and_lopsided_arms() -> None:
    # h = pi/2 (50% vs 100%): n = 2 * (1.959964 + 0.841621)^2 / (pi/2)^2 = 6.36 -> 7 runs
    assert runs_needed(0.5) == 7
    assert runs_needed(0.5, alpha=0.5, power=0.6) == 1
    lopsided = minimum_detectable_difference(1, 100_000, paired=False)
    # h = (1.959964 + 0.841621) * sqrt(1 + 1e-5) = 2.8016: more than pi/2, so nothing
    assert lopsided.cohens_h == pytest.approx(2.8016, abs=1e-3)
    assert lopsided.difference is None


def _cell(agent: str, maze: str, temperature: float | None = None) -> dict[str, Any]:
    options = {} if temperature is None else {"temperature": temperature}
    return {"agent": agent, "options": options, "maze": maze, "start": "random 1/1"}


def _order(cells: dict[str, dict[str, Any]], repetitions: int) -> list[tuple[str, str, int]]:
    return [(f"b:{c}:r{r}", c, r) for c in cells for r in range(repetitions)]


def test_batch_arms_runs_and_pairs() -> None:
    cells = {
        f"a{a}-m{m}": _cell(agent, f"maze-{m}")
        for a, agent in enumerate(("frontier", "random", "wall-follower"))
        for m in range(4)
    }
    plan = batch_power(cells, _order(cells, 5))
    assert (plan.runs, plan.places, plan.mazes, plan.repetitions) == (60, 4, 4, 5)
    assert plan.factors == ["agent"]
    assert [(arm.name, arm.runs, len(arm.cells)) for arm in plan.arms] == [
        ("frontier", 20, 4),
        ("random", 20, 4),
        ("wall-follower", 20, 4),
    ]
    assert [(c.a, c.b) for c in plan.comparisons] == [
        ("frontier", "random"),
        ("frontier", "wall-follower"),
        ("random", "wall-follower"),
    ]
    worst = plan.worst
    assert worst is not None and worst.detectable.paired
    assert worst.detectable.difference == pytest.approx(0.4269, abs=1e-4)  # as above
    assert plan.underpowered
    warning = power_warning(plan)
    assert warning is not None
    assert "20 runs per arm" in warning and "0.43" in warning and "3 comparisons" in warning
    assert f"about {runs_needed(0.25, comparisons=3)} runs per arm" in warning


def test_a_well_powered_batch_and_a_single_arm_warn_of_nothing() -> None:
    cells = {
        f"a{a}-m{m}": _cell(agent, f"maze-{m}") for a, agent in enumerate("xy") for m in range(10)
    }
    plan = batch_power(cells, _order(cells, 10))  # 100 paired runs per arm, one comparison
    assert [arm.runs for arm in plan.arms] == [100, 100]
    assert not plan.underpowered and power_warning(plan) is None
    one = {"a0-m0": _cell("frontier", "maze-0")}
    alone = batch_power(one, _order(one, 3))
    assert alone.comparisons == [] and alone.worst is None and power_warning(alone) is None


def test_arms_on_different_places_are_not_paired() -> None:
    cells = {
        "a0-o0-m0": _cell("qwen", "maze-0", 0.0),
        "a0-o1-m1": _cell("qwen", "maze-1", 0.7),
    }
    plan = batch_power(cells, _order(cells, 8))
    assert plan.factors == ["temperature"]
    assert [arm.name for arm in plan.arms] == ["temperature=0.0", "temperature=0.7"]
    assert not plan.comparisons[0].detectable.paired
