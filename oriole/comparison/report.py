"""The comparison report: arms, their summaries, the comparisons, the per-maze breakdown and
(for the HTML page) the visit maps — one JSON document that every renderer reads.

The shape is documented in docs/reports.md; ``report_version`` changes when it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oriole.comparison.arms import arm_name, check_by, varying_factors
from oriole.comparison.compare import compare_arms, maze_breakdown
from oriole.comparison.records import METRICS, RunRecord
from oriole.comparison.stats import CONFIDENCE
from oriole.comparison.summary import summarise_arm
from oriole.errors import ValidationError
from oriole.geometry import Tile
from oriole.maze import Maze

REPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Selection:
    """Which runs a report covers and how it groups them."""

    batch_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    by: Sequence[str] = ()
    baseline: str | None = None
    seed: int = 0


def _runs_by_arm(
    records: Sequence[RunRecord], by: Sequence[str]
) -> tuple[dict[str, list[RunRecord]], dict[str, dict[str, str]]]:
    runs: dict[str, list[RunRecord]] = {}
    factors: dict[str, dict[str, str]] = {}
    # By run id: however the runs were read, the same runs give the same report (the
    # bootstrap resamples by position).
    for record in sorted(records, key=lambda r: r.run_id):
        name = arm_name(record.factors, by)
        runs.setdefault(name, []).append(record)
        factors.setdefault(name, {f: record.factors.get(f, "-") for f in by})
    return runs, factors


def _visits(
    runs_by_arm: Mapping[str, Sequence[RunRecord]], mazes: Mapping[str, Maze]
) -> list[dict[str, Any]]:
    maps: dict[str, dict[str, Any]] = {}
    for arm, runs in runs_by_arm.items():
        for run in runs:
            maze = mazes.get(run.maze_hash)
            if maze is None:
                continue
            entry = maps.get(run.maze_hash)
            if entry is None:
                entry = maps[run.maze_hash] = {
                    "maze": maze.name,
                    "maze_hash": run.maze_hash,
                    "width": maze.width,
                    "height": maze.height,
                    "rows": [
                        "".join("#" if code == Tile.WALL else "." for code in row)
                        for row in maze.rows
                    ],
                    "goal": list(maze.goal),
                    "counts": {},
                }
            counts = entry["counts"].setdefault(arm, {})
            for tile, times in run.visits.items():
                counts[tile] = counts.get(tile, 0) + times
    for entry in maps.values():
        entry["arms"] = {
            arm: [[x, y, n] for (x, y), n in sorted(counts.items())]
            for arm, counts in entry.pop("counts").items()
        }
    return list(maps.values())


def run_row(record: RunRecord, arm: str) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "arm": arm,
        "batch_id": record.batch_id,
        "cell": record.cell,
        "repetition": record.repetition,
        "maze": record.maze_name,
        "maze_hash": record.maze_hash,
        "start_x": record.start[0],
        "start_y": record.start[1],
        "seed": record.seed,
        "status": record.status,
        "stop_reason": record.stop_reason,
        "success": record.success,
        "goal_reached": record.goal_reached,
        "failed": record.failed,
        **{metric: record.metrics.get(metric) for metric in METRICS},
    }


def build_report(
    records: Sequence[RunRecord],
    selection: Selection,
    *,
    running: int = 0,
    mazes: Mapping[str, Maze] | None = None,
) -> dict[str, Any]:
    """The report of ``records`` (finished runs); ``running`` counts the selection's runs
    still running, left out. Raises ValidationError for an unknown ``by`` factor or
    baseline arm. With ``mazes`` (by content hash) the report carries visit maps."""
    factor_rows = [record.factors for record in records]
    if selection.by:
        by = check_by(selection.by, (name for row in factor_rows for name in row))
    else:
        by = varying_factors(factor_rows)
    runs_by_arm, factors = _runs_by_arm(records, by)
    if selection.baseline is not None and selection.baseline not in runs_by_arm:
        raise ValidationError(
            "baseline",
            f"no arm {selection.baseline!r}; the arms are: "
            + (", ".join(map(repr, runs_by_arm)) or "none (no finished runs)"),
        )
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "selection": {
            "batch_id": selection.batch_id,
            "labels": dict(selection.labels),
            "by": list(by),
            "baseline": selection.baseline,
        },
        "seed": selection.seed,
        "confidence": CONFIDENCE,
        "runs": len(records),
        "running": running,
        "factors": list(by),
        "arms": [
            summarise_arm(arm, factors[arm], runs, selection.seed)
            for arm, runs in runs_by_arm.items()
        ],
        "comparisons": compare_arms(runs_by_arm, selection.baseline),
        "mazes": maze_breakdown(runs_by_arm),
        "run_rows": [run_row(run, arm) for arm, runs in runs_by_arm.items() for run in runs],
    }
    if mazes is not None:
        report["visits"] = _visits(runs_by_arm, mazes)
    safe: dict[str, Any] = json_safe(report)
    return safe


def json_safe(value: Any) -> Any:
    """The document with every non-finite float as None: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
