"""The runs a comparison report covers, read from the projections in one snapshot.

A batch's report covers the last attempt of each of its planned runs (an attempt that was
retried is left out); a label selection covers every run whose labels contain the given
ones. Finished runs become `RunRecord`s (the core derives their measurements); running
ones are only counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oriole.comparison.records import ActionFacts, RunFacts, RunRecord, run_record
from oriole.experiment import ModelOptions
from oriole.maze import Maze

#: Most runs one report reads: a bigger selection is refused with the count, not half-read.
MAX_REPORT_RUNS = 20_000

_COLUMNS = """
    e.run_id, e.provider, e.model_name, e.agent_endpoint, e.prompt_version, e.model_config,
    e.labels, e.maze_hash, e.maze_name, e.start_x, e.start_y, e.vision_range, e.status,
    e.stop_reason, e.goal_seen, e.goal_reached, e.footsteps, e.actions, e.turns,
    e.input_tokens, e.output_tokens, e.cost_usd, e.duration_seconds, e.forked_from,
    e.fork_step"""
_BATCH_RUNS = f"""
    SELECT {_COLUMNS}
      FROM batch_runs r JOIN experiments e ON e.run_id = r.run_id
     WHERE r.batch_id = $1 AND NOT coalesce(r.retry, false)
     ORDER BY r.planned_run_id, r.attempt
     LIMIT {MAX_REPORT_RUNS + 1}"""
_LABELLED_RUNS = f"""
    SELECT {_COLUMNS}
      FROM experiments e
     WHERE e.labels @> $1::jsonb
     ORDER BY e.started_at, e.run_id
     LIMIT {MAX_REPORT_RUNS + 1}"""
_CELLS = "SELECT cells FROM batches WHERE batch_id = $1"
_ACTIONS = """
    SELECT run_id, action_type, success, to_x, to_y, tiles_seen, inference_ms
      FROM agent_actions WHERE run_id = ANY($1::text[]) ORDER BY run_id, step"""
_MAZES = """
    SELECT content_hash, name, width, height, grid_data, see_through_walls
      FROM mazes WHERE content_hash = ANY($1::text[])"""
_OPTIONS = frozenset(ModelOptions.model_fields)


class SelectionTooLarge(ValueError):
    """More runs than one report reads."""


@dataclass(frozen=True, slots=True)
class ReportRuns:
    """The rows a report needs, as read; `records` derives the runs' measurements (CPU
    work: a gateway does it in a thread)."""

    rows: list[Mapping[str, Any]]
    actions: dict[str, list[ActionFacts]]
    mazes: dict[str, Maze]
    cells: dict[str, Any]
    running: int
    #: False when the batch is unknown (a label selection is always "found").
    found: bool = True

    def records(self) -> list[RunRecord]:
        return [_record(row, self.actions, self.mazes, self.cells) for row in self.rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _facts(row: Mapping[str, Any]) -> RunFacts:
    config = _json(row["model_config"]) or {}
    seed = config.get("seed")
    return RunFacts(
        run_id=row["run_id"],
        provider=row["provider"],
        model=row["model_name"],
        endpoint=row["agent_endpoint"],
        prompt_version=row["prompt_version"],
        options={k: v for k, v in config.items() if k in _OPTIONS},
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        labels={str(k): str(v) for k, v in (_json(row["labels"]) or {}).items()},
        maze_hash=row["maze_hash"],
        maze_name=row["maze_name"],
        start_x=row["start_x"],
        start_y=row["start_y"],
        fork_of=(
            None
            if row["forked_from"] is None
            else f"{row['forked_from']} after step {row['fork_step']}"
        ),
        vision_range=row["vision_range"],
        status=row["status"],
        stop_reason=row["stop_reason"],
        goal_seen=row["goal_seen"],
        goal_reached=row["goal_reached"],
        footsteps=row["footsteps"],
        actions=row["actions"],
        turns=row["turns"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=float(row["cost_usd"]),
        duration_s=row["duration_seconds"],
    )


def _maze(row: Mapping[str, Any]) -> Maze | None:
    try:
        return Maze.from_dict(
            {
                "name": row["name"],
                "width": row["width"],
                "height": row["height"],
                "grid_data": _json(row["grid_data"]),
                "see_through_walls": row["see_through_walls"],
            }
        )
    except ValueError:
        return None  # an archived maze this version no longer reads: no maze measurements


async def load_report_runs(
    conn: Any, *, batch_id: str | None = None, labels: Mapping[str, str] | None = None
) -> ReportRuns:
    """The selection's runs from one read-only snapshot of the projections."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cells: dict[str, Any] = {}
        if batch_id is not None:
            found = await conn.fetchval(_CELLS, batch_id)
            if found is None:
                return ReportRuns([], {}, {}, {}, 0, found=False)
            cells = _json(found) or {}
            rows = await conn.fetch(_BATCH_RUNS, batch_id)
        else:
            rows = await conn.fetch(_LABELLED_RUNS, json.dumps(dict(labels or {})))
        if len(rows) > MAX_REPORT_RUNS:
            raise SelectionTooLarge(
                f"the selection has more than {MAX_REPORT_RUNS} runs; narrow it with labels"
            )
        finished = [row for row in rows if row["status"] != "running"]
        ids = [row["run_id"] for row in finished]
        actions: dict[str, list[ActionFacts]] = {run_id: [] for run_id in ids}
        for action in await conn.fetch(_ACTIONS, ids):
            actions[action["run_id"]].append(
                ActionFacts(
                    action_type=action["action_type"],
                    success=action["success"],
                    to_x=action["to_x"],
                    to_y=action["to_y"],
                    tiles_seen=_json(action["tiles_seen"]) or (),
                    inference_ms=action["inference_ms"],
                )
            )
        hashes = sorted({row["maze_hash"] for row in finished})
        mazes = {
            row["content_hash"]: maze
            for row in await conn.fetch(_MAZES, hashes)
            if (maze := _maze(row)) is not None
        }
    return ReportRuns(finished, actions, mazes, cells, len(rows) - len(finished))


def _record(
    row: Mapping[str, Any],
    actions: Mapping[str, Sequence[ActionFacts]],
    mazes: Mapping[str, Maze],
    cells: Mapping[str, Any],
) -> RunRecord:
    facts = _facts(row)
    cell = cells.get(facts.labels.get("cell", "")) if cells else None
    return run_record(facts, actions[facts.run_id], mazes.get(facts.maze_hash), cell)
