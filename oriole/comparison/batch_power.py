"""A batch's statistical power, from its plan alone: what it can detect before it spends.

The arms are those a comparison of the batch's results will set against each other
(`oriole.comparison.arms.arms_of_cells`); every pair of arms is one comparison of the family.
The same text warns in `oriole batch plan` and `oriole batch run`, so both say it alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from oriole.comparison.arms import arms_of_cells, cell_factors, place_of_cell, varying_factors
from oriole.comparison.power import (
    DEFAULT_ALPHA,
    DEFAULT_BASELINE,
    DEFAULT_POWER,
    DEFAULT_THRESHOLD,
    Detectable,
    is_underpowered,
    minimum_detectable_difference,
    runs_needed,
)


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    cells: list[str]
    #: (maze, start, repetition) of each of its runs: what runs of two arms are paired on.
    matches: list[tuple[str, str, int]]

    @property
    def runs(self) -> int:
        return len(self.matches)


@dataclass(frozen=True, slots=True)
class Comparison:
    a: str
    b: str
    detectable: Detectable


@dataclass(frozen=True, slots=True)
class BatchPower:
    runs: int
    #: Distinct (maze, start) pairs, and distinct mazes among them.
    places: int
    mazes: int
    repetitions: int
    #: The factors whose values name an arm (joined by `ARM_SEPARATOR`).
    factors: list[str]
    arms: list[Arm]
    comparisons: list[Comparison]
    alpha: float
    power: float
    baseline: float
    threshold: float

    @property
    def worst(self) -> Comparison | None:
        """The comparison that detects the least (None: fewer than two arms)."""
        return max(
            self.comparisons,
            key=lambda c: 2.0 if c.detectable.difference is None else c.detectable.difference,
            default=None,
        )

    @property
    def underpowered(self) -> bool:
        worst = self.worst
        return worst is not None and is_underpowered(worst.detectable, self.threshold)


def batch_power(
    cells: Mapping[str, Mapping[str, Any]],
    order: Iterable[tuple[str, str, int]],
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    baseline: float = DEFAULT_BASELINE,
    threshold: float = DEFAULT_THRESHOLD,
) -> BatchPower:
    """Runs per arm and the smallest detectable difference of every pair of arms.

    ``cells`` and ``order`` are a `BatchPlan`'s (cell descriptions; (run id, cell id,
    repetition) per planned run). Two arms count as paired when they run exactly the same
    (maze, start, repetition) triples, as every batch's arms do.
    """
    factors = varying_factors([cell_factors(cell) for cell in cells.values()])
    arm_of = arms_of_cells(cells, factors)
    places = {cell_id: place_of_cell(cell) for cell_id, cell in cells.items()}
    arms: dict[str, Arm] = {}
    runs = 0
    repetitions: set[int] = set()
    for _run_id, cell_id, repetition in order:
        runs += 1
        repetitions.add(repetition)
        name = arm_of[cell_id]
        arm = arms.setdefault(name, Arm(name=name, cells=[], matches=[]))
        if cell_id not in arm.cells:
            arm.cells.append(cell_id)
        arm.matches.append((*places[cell_id], repetition))
    family = list(combinations(arms.values(), 2))
    comparisons = [
        Comparison(
            a=a.name,
            b=b.name,
            detectable=minimum_detectable_difference(
                a.runs,
                b.runs,
                paired=sorted(a.matches) == sorted(b.matches),
                alpha=alpha,
                power=power,
                baseline=baseline,
                comparisons=len(family),
            ),
        )
        for a, b in family
    ]
    used = {places[cell_id] for arm in arms.values() for cell_id in arm.cells}
    return BatchPower(
        runs=runs,
        places=len(used),
        mazes=len({maze for maze, _start in used}),
        repetitions=len(repetitions),
        factors=factors,
        arms=list(arms.values()),
        comparisons=comparisons,
        alpha=alpha,
        power=power,
        baseline=baseline,
        threshold=threshold,
    )


def difference_text(detectable: Detectable) -> str:
    """``0.31 (50% vs 81%)``; ``none, not even 50% vs 100%`` when nothing is detectable."""
    difference = detectable.difference
    base = detectable.baseline
    if difference is None:
        return f"none, not even {100 * base:.0f}% vs {0 if base > 0.5 else 100}%"
    other = base + difference if base <= 0.5 else base - difference
    return f"{difference:.2f} ({100 * base:.0f}% vs {100 * other:.0f}%)"


def power_warning(plan: BatchPower) -> str | None:
    """One line saying how underpowered the batch is and what would fix it; None if not."""
    worst = plan.worst
    if worst is None or not plan.underpowered:
        return None
    found = worst.detectable
    runs = (
        f"{found.runs_a} runs per arm"
        if found.runs_a == found.runs_b
        else f"{found.runs_a} and {found.runs_b} runs in two arms"
    )
    terms = (
        f"alpha {plan.alpha:g} over {len(plan.comparisons)} "
        f"comparison{'s' if len(plan.comparisons) != 1 else ''}, power {plan.power:g}, "
        f"baseline rate {plan.baseline:g}"
    )
    can = (
        "cannot detect any difference in success rate between two arms"
        if found.difference is None
        else f"detects only success-rate differences of {found.difference:.2f} or more "
        "between two arms"
    )
    needed = runs_needed(
        min(plan.threshold, max(plan.baseline, 1 - plan.baseline)),
        alpha=plan.alpha,
        power=plan.power,
        baseline=plan.baseline,
        comparisons=len(plan.comparisons),
    )
    return (
        f"underpowered: with {runs} this batch {can} ({terms}); about {needed} runs per arm "
        f"would detect {plan.threshold:g} — add repetitions, starts or mazes"
    )


def power_document(plan: BatchPower) -> dict[str, Any]:
    """The plan's power as JSON-ready data."""
    return {
        "runs": plan.runs,
        "places": plan.places,
        "mazes": plan.mazes,
        "repetitions": plan.repetitions,
        "factors": plan.factors,
        "arms": [{"name": a.name, "runs": a.runs, "cells": a.cells} for a in plan.arms],
        "alpha": plan.alpha,
        "power": plan.power,
        "baseline_rate": plan.baseline,
        "threshold": plan.threshold,
        "comparisons": [
            {
                "a": c.a,
                "b": c.b,
                "runs_a": c.detectable.runs_a,
                "runs_b": c.detectable.runs_b,
                "paired": c.detectable.paired,
                "alpha_per_comparison": c.detectable.alpha,
                "cohens_h": c.detectable.cohens_h,
                "min_detectable_difference": c.detectable.difference,
            }
            for c in plan.comparisons
        ],
        "underpowered": plan.underpowered,
        "warning": power_warning(plan),
    }
