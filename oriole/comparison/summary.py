"""Per-arm summaries: success with its Wilson interval, and each measurement's mean, median
and seeded bootstrap interval."""

from __future__ import annotations

import statistics
import zlib
from collections.abc import Sequence
from typing import Any

from oriole.comparison.records import METRICS, RunRecord
from oriole.comparison.stats import bootstrap_mean, wilson


def rate(successes: int, trials: int) -> dict[str, Any]:
    """``{"rate", "low", "high"}`` of a proportion (all None without trials)."""
    interval = wilson(successes, trials)
    return {
        "rate": successes / trials if trials else None,
        "low": None if interval is None else interval.low,
        "high": None if interval is None else interval.high,
    }


def metric_values(runs: Sequence[RunRecord], metric: str) -> list[float]:
    """The runs' values of ``metric``, leaving out the runs where it is undefined."""
    return [float(v) for run in runs if (v := run.metrics.get(metric)) is not None]


def describe_metric(values: Sequence[float], seed: int) -> dict[str, Any]:
    interval = bootstrap_mean(values, seed)
    return {
        "n": len(values),
        "mean": statistics.fmean(values) if values else None,
        "median": statistics.median(values) if values else None,
        "low": None if interval is None else interval.low,
        "high": None if interval is None else interval.high,
    }


def metric_seed(seed: int, arm: str, metric: str) -> int:
    """Each (arm, metric) gets its own stream from the report's seed, so adding an arm or
    a metric leaves every other interval as it was."""
    return (seed * 1_000_003 + zlib.crc32(f"{arm}\x00{metric}".encode())) % 2**63


def summarise_arm(
    arm: str, factors: dict[str, str], runs: Sequence[RunRecord], seed: int
) -> dict[str, Any]:
    successes = sum(run.success for run in runs)
    reached = sum(run.goal_reached for run in runs)
    cost = sum(run.metrics["cost_usd"] or 0.0 for run in runs)
    return {
        "arm": arm,
        "factors": factors,
        "runs": len(runs),
        "run_ids": [run.run_id for run in runs],
        "successes": successes,
        "success": rate(successes, len(runs)),
        "goal_reached": {"count": reached, **rate(reached, len(runs))},
        "failed": sum(run.failed for run in runs),
        "cost_per_success": cost / successes if successes else None,
        "metrics": {
            metric: describe_metric(metric_values(runs, metric), metric_seed(seed, arm, metric))
            for metric in METRICS
        },
    }
