"""Comparisons between arms: success (Newcombe interval; exact McNemar on matched runs,
Fisher's exact test otherwise) and each measurement (Wilcoxon signed-rank on matched runs,
Mann–Whitney otherwise, with a Hodges–Lehmann shift and Cliff's delta).

Each outcome is one family across the comparisons: its p-values are Holm-adjusted together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from oriole.comparison.records import METRICS, RunRecord
from oriole.comparison.stats import (
    cliffs_delta,
    fisher_exact,
    hodges_lehmann,
    holm,
    mann_whitney,
    mcnemar_exact,
    newcombe,
    paired_shift,
    wilcoxon,
)
from oriole.comparison.summary import metric_values, rate

Pairs = list[tuple[RunRecord, RunRecord]]


def comparison_pairs(arms: Sequence[str], baseline: str | None) -> list[tuple[str, str]]:
    """Every pair of arms, or every other arm against the baseline (the baseline is ``b``)."""
    if baseline is None:
        return list(combinations(arms, 2))
    return [(arm, baseline) for arm in arms if arm != baseline]


def matched_pairs(a: Sequence[RunRecord], b: Sequence[RunRecord]) -> Pairs | None:
    """The runs of ``a`` and ``b`` matched on maze, start and seed — None when the runs are
    not matched (a run without a key, or two runs of one arm sharing one)."""
    keyed: list[dict[tuple[str, int, int, str], RunRecord]] = []
    for runs in (a, b):
        keys = {run.pair_key: run for run in runs}
        if None in keys or len(keys) != len(runs):
            return None
        keyed.append(keys)  # type: ignore[arg-type]
    common = [key for key in keyed[0] if key in keyed[1]]
    if not common:
        return None
    return [(keyed[0][key], keyed[1][key]) for key in common]


def _success(a: Sequence[RunRecord], b: Sequence[RunRecord], pairs: Pairs | None) -> dict[str, Any]:
    won_a, won_b = sum(r.success for r in a), sum(r.success for r in b)
    interval = newcombe(won_a, len(a), won_b, len(b))
    if pairs is not None:
        both = sum(x.success and y.success for x, y in pairs)
        a_only = sum(x.success and not y.success for x, y in pairs)
        b_only = sum(y.success and not x.success for x, y in pairs)
        table = [[both, a_only], [b_only, len(pairs) - both - a_only - b_only]]
        result = mcnemar_exact(a_only, b_only)
    else:
        table = [[won_a, len(a) - won_a], [won_b, len(b) - won_b]]
        result = fisher_exact(table)
    return {
        "a_rate": won_a / len(a) if a else None,
        "b_rate": won_b / len(b) if b else None,
        "difference": won_a / len(a) - won_b / len(b) if a and b else None,
        "low": None if interval is None else interval.low,
        "high": None if interval is None else interval.high,
        "test": result.test,
        "table": table,
        "p_value": result.p_value,
        "p_holm": None,
    }


def _metric(
    metric: str, a: Sequence[RunRecord], b: Sequence[RunRecord], pairs: Pairs | None
) -> dict[str, Any]:
    values_a, values_b = metric_values(a, metric), metric_values(b, metric)
    if pairs is not None:
        differences = [
            float(x.metrics[metric]) - float(y.metrics[metric])  # type: ignore[arg-type]
            for x, y in pairs
            if x.metrics.get(metric) is not None and y.metrics.get(metric) is not None
        ]
        result = wilcoxon(differences)
        shift = paired_shift(differences)
    else:
        result = mann_whitney(values_a, values_b)
        shift = hodges_lehmann(values_a, values_b)
    return {
        "test": result.test,
        "n_a": len(values_a),
        "n_b": len(values_b),
        "p_value": result.p_value,
        "p_holm": None,
        "shift": shift,
        "cliffs_delta": cliffs_delta(values_a, values_b),
    }


def compare_arms(
    runs_by_arm: Mapping[str, Sequence[RunRecord]], baseline: str | None
) -> list[dict[str, Any]]:
    """One comparison per pair of arms, with Holm-adjusted p-values per outcome."""
    comparisons: list[dict[str, Any]] = []
    for name_a, name_b in comparison_pairs(list(runs_by_arm), baseline):
        a, b = runs_by_arm[name_a], runs_by_arm[name_b]
        pairs = matched_pairs(a, b)
        comparisons.append(
            {
                "a": name_a,
                "b": name_b,
                "paired": pairs is not None,
                "pairs": None if pairs is None else len(pairs),
                "success": _success(a, b, pairs),
                "metrics": {metric: _metric(metric, a, b, pairs) for metric in METRICS},
            }
        )
    outcomes: list[tuple[str, ...]] = [("success",)] + [("metrics", m) for m in METRICS]
    for path in outcomes:
        cells = [_dig(comparison, path) for comparison in comparisons]
        for cell, adjusted in zip(cells, holm([cell["p_value"] for cell in cells]), strict=True):
            cell["p_holm"] = adjusted
    return comparisons


def _dig(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        document = document[key]
    return document


def maze_breakdown(
    runs_by_arm: Mapping[str, Sequence[RunRecord]],
) -> list[dict[str, Any]]:
    """Success per maze and arm, mazes in the order they first appear."""
    mazes: dict[str, dict[str, Any]] = {}
    for arm, runs in runs_by_arm.items():
        for run in runs:
            entry = mazes.setdefault(
                run.maze_hash, {"maze": run.maze_name, "maze_hash": run.maze_hash, "arms": {}}
            )
            counts = entry["arms"].setdefault(arm, [0, 0])
            counts[0] += 1
            counts[1] += run.success
    for entry in mazes.values():
        entry["arms"] = {
            arm: {"runs": n, "successes": k, **rate(k, n)} for arm, (n, k) in entry["arms"].items()
        }
    return list(mazes.values())
