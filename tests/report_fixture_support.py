"""Realistic comparison reports (the JSON of /tmp/report_contract.md) for the renderer tests.

`make_report` builds N arms × M mazes × R runs from a seeded generator: counts and rates
agree with the run rows, a builtin arm has no tokens or cost (nulls), one arm never
succeeds (no cost per success), a label and some names are hostile HTML, and the result
has been through ``json.dumps(allow_nan=False)`` as the core's output would.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from itertools import combinations
from typing import Any

from oriole.comparison.arms import ARM_SEPARATOR
from oriole.comparison.records import METRICS

HOSTILE_LABEL = "<script>alert(1)</script>"
HOSTILE_PROMPT = '<img src=x onerror="window.__pwned=1">'
HOSTILE_MAZE = "maze <b>&amp;</b> $x$"
_AGENTS = ("frontier", "wall_follower", "qwen2.5:7b", "random", "gpt-4o-mini", "claude")


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> dict[str, Any]:
    if trials == 0:
        return {"rate": None, "low": None, "high": None}
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return {"rate": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half)}


def _maze_rows(rng: random.Random, size: int) -> tuple[list[str], tuple[int, int]]:
    grid = [
        ["#" if x in (0, size - 1) or y in (0, size - 1) else "." for x in range(size)]
        for y in range(size)
    ]
    for y in range(2, size - 2, 2):
        for x in range(1, size - 1):
            if rng.random() < 0.6:
                grid[y][x] = "#"
    goal = (size - 2, size - 2)
    grid[1][1] = grid[goal[1]][goal[0]] = "."
    return ["".join(row) for row in grid], goal


def _metric_values(rng: random.Random, builtin: bool, success: bool) -> dict[str, Any]:
    footsteps = rng.randint(8, 160)
    turns = footsteps + rng.randint(0, 12)
    tokens_in = None if builtin else turns * rng.randint(600, 1400)
    tokens_out = None if builtin else turns * rng.randint(20, 90)
    return {
        "footsteps": footsteps,
        "actions": turns,
        "turns": turns,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": None if builtin else round(rng.uniform(0.001, 0.4), 6),
        "duration_s": round(rng.uniform(0.2, 300.0), 3),
        "inference_s": None if builtin else round(rng.uniform(0.1, 200.0), 3),
        "path_efficiency": round(rng.uniform(0.05, 1.0), 4) if success else None,
        "unique_tiles": rng.randint(4, footsteps + 1),
        "revisit_ratio": round(rng.random(), 4),
        "seen_share": round(rng.random(), 4),
        "wall_bumps": rng.randint(0, 9),
        "recalls": 0 if builtin else rng.randint(0, 4),
        "no_tool_turns": 0 if builtin else rng.randint(0, 2),
    }


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "low": None, "high": None}
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return {
        "n": len(values),
        "mean": mean,
        "median": float(statistics.median(values)),
        "low": None if spread is None else mean - 2 * spread,
        "high": None if spread is None else mean + 2 * spread,
    }


def make_report(
    arms: int = 3,
    mazes: int = 4,
    runs: int = 3,
    *,
    seed: int = 7,
    maze_size: int = 21,
    running: int = 2,
    visits: bool = True,
) -> dict[str, Any]:
    """A report with ``runs`` runs per arm and maze; arm 0 is a builtin agent (no tokens or
    cost) and the last arm never succeeds."""
    rng = random.Random(seed)
    arm_factors = [
        {"agent": _AGENTS[i % len(_AGENTS)], "prompt": HOSTILE_PROMPT if i == 1 else f"v{i}"}
        for i in range(arms)
    ]
    names = [ARM_SEPARATOR.join(f.values()) for f in arm_factors]
    maze_names = [HOSTILE_MAZE if m == 1 else f"{m:02d}_sparse_maze" for m in range(mazes)]
    layouts = [_maze_rows(rng, maze_size) for _ in range(mazes)]
    rows: list[dict[str, Any]] = []
    tiles: dict[tuple[int, int], dict[tuple[int, int], int]] = {}
    for a, name in enumerate(names):
        for m, maze in enumerate(maze_names):
            open_tiles = [
                (x, y)
                for y, row in enumerate(layouts[m][0])
                for x, ch in enumerate(row)
                if ch == "."
            ]
            counts = tiles.setdefault((a, m), {})
            for r in range(runs):
                success = a != arms - 1 and rng.random() < 0.35 + 0.15 * a
                failed = not success and rng.random() < 0.1
                for tile in rng.sample(open_tiles, min(len(open_tiles), rng.randint(3, 40))):
                    counts[tile] = counts.get(tile, 0) + rng.choice((1, 1, 2, 3, 9, 40))
                rows.append(
                    {
                        "run_id": f"run-{a}-{m}-{r}",
                        "arm": name,
                        "batch_id": None if r == runs - 1 else "b-20261130-ab12",
                        "cell": None if r == runs - 1 else f"c{a}-{m}",
                        "repetition": None if r == runs - 1 else r,
                        "maze": maze,
                        "maze_hash": f"hash-{m:04d}",
                        "start_x": 1,
                        "start_y": 1,
                        "seed": None if r == runs - 1 else 100 + r,
                        "status": "failed" if failed else "succeeded",
                        "stop_reason": None if failed else ("goal_seen" if success else "limit"),
                        "success": success,
                        "goal_reached": success and rng.random() < 0.6,
                        "failed": failed,
                        **_metric_values(rng, a == 0, success),
                    }
                )
    arm_entries = []
    for name, factors in zip(names, arm_factors, strict=True):
        mine = [row for row in rows if row["arm"] == name]
        wins = sum(row["success"] for row in mine)
        reached = sum(row["goal_reached"] for row in mine)
        costs = [row["cost_usd"] for row in mine if row["cost_usd"] is not None]
        arm_entries.append(
            {
                "arm": name,
                "factors": factors,
                "runs": len(mine),
                "run_ids": [row["run_id"] for row in mine],
                "successes": wins,
                "success": {**wilson(wins, len(mine))},
                "goal_reached": {"count": reached, **wilson(reached, len(mine))},
                "failed": sum(row["failed"] for row in mine),
                "cost_per_success": sum(costs) / wins if wins and costs else None,
                "metrics": {
                    metric: _summary([row[metric] for row in mine if row[metric] is not None])
                    for metric in METRICS
                },
            }
        )
    comparisons = []
    for first, second in combinations(arm_entries, 2):
        a_rate, b_rate = first["success"]["rate"], second["success"]["rate"]
        comparisons.append(
            {
                "a": first["arm"],
                "b": second["arm"],
                "paired": True,
                "pairs": first["runs"],
                "success": {
                    "a_rate": a_rate,
                    "b_rate": b_rate,
                    "difference": a_rate - b_rate,
                    "low": max(-1.0, a_rate - b_rate - 0.3),
                    "high": min(1.0, a_rate - b_rate + 0.3),
                    "test": "mcnemar-exact",
                    "table": [[rng.randint(0, 5), rng.randint(0, 5)], [rng.randint(0, 5), 1]],
                    "p_value": rng.random(),
                    "p_holm": rng.random(),
                },
                "metrics": {
                    metric: {
                        "test": "wilcoxon",
                        "n_a": first["metrics"][metric]["n"],
                        "n_b": second["metrics"][metric]["n"],
                        "p_value": None if first["metrics"][metric]["n"] == 0 else rng.random(),
                        "p_holm": None if first["metrics"][metric]["n"] == 0 else rng.random(),
                        "shift": None
                        if first["metrics"][metric]["n"] == 0
                        else rng.uniform(-20, 20),
                        "cliffs_delta": None
                        if first["metrics"][metric]["n"] == 0
                        else rng.uniform(-1, 1),
                    }
                    for metric in METRICS
                },
            }
        )
    maze_entries = []
    for m, maze in enumerate(maze_names):
        per_arm = {}
        for name in names:
            mine = [row for row in rows if row["arm"] == name and row["maze"] == maze]
            wins = sum(row["success"] for row in mine)
            per_arm[name] = {"runs": len(mine), "successes": wins, **wilson(wins, len(mine))}
        maze_entries.append({"maze": maze, "maze_hash": f"hash-{m:04d}", "arms": per_arm})
    report: dict[str, Any] = {
        "report_version": 1,
        "selection": {
            "batch_id": "b-20261130-ab12",
            "labels": {"team": "maze-lab", "note": HOSTILE_LABEL},
            "by": ["agent", "prompt"],
            "baseline": None,
        },
        "seed": 0,
        "confidence": 0.95,
        "runs": len(rows),
        "running": running,
        "factors": ["agent", "prompt"],
        "arms": arm_entries,
        "comparisons": comparisons,
        "mazes": maze_entries,
        "run_rows": rows,
    }
    if visits:
        report["visits"] = [
            {
                "maze": maze,
                "maze_hash": f"hash-{m:04d}",
                "width": maze_size,
                "height": maze_size,
                "rows": layouts[m][0],
                "goal": list(layouts[m][1]),
                "arms": {
                    name: [[x, y, c] for (x, y), c in sorted(tiles[(a, m)].items())]
                    for a, name in enumerate(names)
                },
            }
            for m, maze in enumerate(maze_names)
        ]
    parsed: dict[str, Any] = json.loads(json.dumps(report, allow_nan=False))
    return parsed
