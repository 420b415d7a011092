"""The hand-worked fixture of the analysis-view tests (migration 0002), and how to read the views.

Six runs, inserted straight into the projection tables the way the projector fills them:

* ``r1-goal``       ollama/qwen2.5:7b, prompt v7, succeeded (goal seen) on 2025-01-10
* ``r2-footsteps``  ollama/qwen2.5:7b, prompt v8, stopped by max_footsteps on 2025-01-10
* ``r3-failed``     openai/gpt-4o-mini, prompt v7, failed on 2025-01-11 (UTC; started
  2025-01-10 23:30 at -05:00), its second model call has no action
* ``r5-cancelled``  openai/gpt-4o-mini, prompt v7, cancelled before any action, 2025-01-11
* ``r4-running``    openai/gpt-4o-mini, prompt v8, running since 10 minutes
* ``r6-starting``   ollama/llama3.2:3b, prompt v8, running since 10 minutes, no action yet

Every expected figure in the view tests is a literal, computed by hand (their comments show
how); nothing is recomputed with the views' own SQL. Each test also checks the view's exact
column set, so no column goes unchecked.

``views_db`` (registered as a plugin in conftest.py) loads the fixture once per test module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from typing import Any

import asyncpg
import pytest

N, S, E, W = "move_north", "move_south", "move_east", "move_west"
RECALL, NO_TOOL, INVALID = "recall_movement_history", "no_tool_call", "invalid_tool_call"

#: Placeholder start of the running runs: `views_db` sets it to 600 s before it loads them
#: (and their last action to 30 s before), so now() in the views is a few seconds later.
AT_LOAD = datetime.min.replace(tzinfo=UTC)
RUNNING_FOR = timedelta(seconds=600)
LAST_ACTION_AGO = timedelta(seconds=30)


@dataclass
class Act:
    kind: str
    to: tuple[int, int]
    ok: bool = True
    goal_seen: bool = False


@dataclass
class Call:
    input_tokens: int
    output_tokens: int
    cost: str
    duration_ms: float | None
    prompt_eval_ms: float | None
    eval_ms: float | None
    tokens_per_second: float | None
    actions: list[Act]


@dataclass
class Run:
    run_id: str
    provider: str
    model: str
    prompt: str | None
    comment: str
    started_at: datetime
    status: str
    # the projector's totals, written out by hand (checked against the calls below)
    footsteps: int
    actions: int
    turns: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost: str
    position: tuple[int, int]
    limits: tuple[int | None, int | None, float | None]  # footsteps, actions, duration
    duration: float | None = None
    stop_reason: str | None = None
    success: bool | None = None
    goal_seen: bool = False
    error: tuple[str, str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    num_ctx: int | None = None
    temperature: float | None = None
    last_action_at: datetime | None = None
    start: tuple[int, int] = (1, 1)
    turn_calls: list[list[Call]] = field(default_factory=list)

    @property
    def completed_at(self) -> datetime | None:
        if self.duration is None:
            return None
        return self.started_at + timedelta(seconds=self.duration)


# fmt: off
RUNS = [
    Run(
        "r1-goal", "ollama", "qwen2.5:7b", "v7", "batch 1 (run 1 of 2)",
        datetime(2025, 1, 10, 9, 0, tzinfo=UTC), "succeeded",
        footsteps=6, actions=8, turns=3, calls=4, input_tokens=570, output_tokens=100,
        cost="0.005", position=(2, 2), limits=(500, 2000, 1800), duration=120.0,
        stop_reason="goal_seen", success=True, goal_seen=True, labels={"batch": "1"},
        num_ctx=32768, temperature=0.0,
        turn_calls=[
            [Call(100, 20, "0.001", 1000, 200, 800, 25.0, [
                Act(E, (2, 1)), Act(E, (3, 1)), Act(N, (3, 1), ok=False)])],  # N: a wall
            [Call(150, 30, "0.002", 2000, 500, 1500, 20.0, [Act(RECALL, (3, 1))]),
             Call(200, 10, "0.0015", 1500, 300, 1200, 30.0, [
                 Act(S, (3, 2)), Act(N, (3, 1))])],  # N straight back: a reversal
            [Call(120, 40, "0.0005", 500, 100, 400, 40.0, [
                Act(W, (2, 1)), Act(S, (2, 2), goal_seen=True)])],
        ],
    ),
    Run(
        "r2-footsteps", "ollama", "qwen2.5:7b", "v8", "batch 1 (run 2 of 2)",
        datetime(2025, 1, 10, 15, 0, tzinfo=UTC), "stopped",
        footsteps=3, actions=6, turns=2, calls=2, input_tokens=170, output_tokens=25,
        cost="0", position=(1, 0), limits=(3, 10, 1800), duration=60.0,
        stop_reason="max_footsteps", success=False, labels={"batch": "1"},
        num_ctx=32768, temperature=0.7,
        turn_calls=[
            [Call(80, 10, "0", 900, 100, 800, 12.5, [Act(NO_TOOL, (1, 1), ok=False)])],
            [Call(90, 15, "0", 1100, 150, 950, 15.0, [
                Act(W, (0, 1)), Act(W, (0, 1), ok=False),  # the maze edge
                Act(E, (1, 1)),  # reverses the successful W
                Act(INVALID, (1, 1), ok=False), Act(N, (1, 0))])],
        ],
    ),
    Run(
        "r3-failed", "openai", "gpt-4o-mini", "v7", "batch 2",
        datetime(2025, 1, 10, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "failed",
        footsteps=1, actions=2, turns=2, calls=2, input_tokens=1020, output_tokens=50,
        cost="0.000183", position=(1, 2), limits=(500, 2000, 1800), duration=30.0,
        stop_reason="failed", success=False, temperature=0.2,
        error=("ProviderError", "HTTP 500 from the provider"),
        turn_calls=[
            [Call(500, 50, "0.000105", 700, None, None, None, [
                Act(S, (1, 2)), Act(RECALL, (1, 2))])],
            [Call(520, 0, "0.000078", 300, None, None, None, [])],  # then the run failed
        ],
    ),
    Run(
        "r5-cancelled", "openai", "gpt-4o-mini", "v7", "batch 2",
        datetime(2025, 1, 11, 12, 0, tzinfo=UTC), "cancelled",
        footsteps=0, actions=0, turns=0, calls=0, input_tokens=0, output_tokens=0,
        cost="0", position=(1, 1), limits=(500, 2000, 1800), duration=5.0,
        stop_reason="cancelled", success=False,
    ),
    Run(
        "r4-running", "openai", "gpt-4o-mini", "v8", "batch 3", AT_LOAD, "running",
        footsteps=4, actions=4, turns=2, calls=2, input_tokens=620, output_tokens=70,
        cost="0.00013", position=(4, 2), limits=(10, 1000, 3600), labels={"batch": "3"},
        turn_calls=[
            [Call(300, 30, "0.00006", 400, None, None, None, [Act(E, (2, 1)), Act(E, (3, 1))])],
            [Call(320, 40, "0.00007", 600, None, None, None, [Act(E, (4, 1)), Act(S, (4, 2))])],
        ],
    ),
    Run(
        "r6-starting", "ollama", "llama3.2:3b", "v8", "batch 3", AT_LOAD, "running",
        footsteps=0, actions=0, turns=0, calls=0, input_tokens=0, output_tokens=0,
        cost="0", position=(1, 1), limits=(500, None, 1800), labels={"batch": "3"},
    ),
]
# fmt: on
BY_ID = {run.run_id: run for run in RUNS}
ALL = sorted(BY_ID)


# --- loading the fixture ---------------------------------------------------------------------


def _check_fixture(run: Run) -> None:
    """The hand-written totals agree with the calls and actions (as the projector's would)."""
    calls = [call for turn in run.turn_calls for call in turn]
    acts = [act for call in calls for act in call.actions]
    assert run.calls == len(calls) and run.actions == len(acts), run.run_id
    assert run.input_tokens == sum(c.input_tokens for c in calls), run.run_id
    assert run.output_tokens == sum(c.output_tokens for c in calls), run.run_id
    assert D(run.cost) == sum((D(c.cost) for c in calls), D(0)), run.run_id
    assert run.footsteps == sum(a.ok and a.kind.startswith("move_") for a in acts), run.run_id
    assert run.turns == len(run.turn_calls)
    assert run.position == (acts[-1].to if acts else run.start), run.run_id


async def _load(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO mazes (content_hash, name, width, height, grid_data, see_through_walls,"
            " goal_x, goal_y, first_seen_at) VALUES ('hash-tiny', 'tiny', 5, 4, $1, false,"
            " 3, 3, '2025-01-01T00:00:00Z')",
            json.dumps([[0] * 5 for _ in range(4)]),
        )
        for run in RUNS:
            _check_fixture(run)
            await _load_run(conn, run)
    finally:
        await conn.close()


async def _load_run(conn: Any, run: Run) -> None:
    seq, step, footsteps = 1, 0, 0  # seq 1 is run.started
    position = run.start
    for turn, calls in enumerate(run.turn_calls, start=1):
        for call_no, call in enumerate(calls):
            seq += 1
            call_id = f"{run.run_id}-t{turn}-c{call_no}"
            at = run.started_at + timedelta(seconds=seq)
            await conn.execute(
                "INSERT INTO model_calls (run_id, seq, call_id, turn, provider, model,"
                " input_tokens, output_tokens, cost_usd, duration_ms, prompt_eval_ms, eval_ms,"
                " tokens_per_second, done_reason, attempts, context_trimmed, called_at,"
                " run_started_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'stop', 1, 0,"
                " $14, $15)",
                run.run_id, seq, call_id, turn, run.provider, run.model, call.input_tokens,
                call.output_tokens, D(call.cost), call.duration_ms, call.prompt_eval_ms,
                call.eval_ms, call.tokens_per_second, at, run.started_at,
            )  # fmt: skip
            for index, act in enumerate(call.actions):
                step += 1
                seq += 2  # action.requested, then action.completed
                first = index == 0  # usage sits on the first action of a call only
                footsteps += act.ok and act.kind.startswith("move_")
                done = run.started_at + timedelta(seconds=seq)
                if run.last_action_at is not None:  # the running run's clock is "now"
                    done = run.last_action_at - timedelta(seconds=run.actions - step)
                await conn.execute(
                    "INSERT INTO agent_actions (run_id, step, seq, turn, action_type, from_x,"
                    " from_y, to_x, to_y, success, tiles_seen, goal_seen, goal_reached,"
                    " footsteps, message, result, call_id, input_tokens, output_tokens,"
                    " cost_usd, inference_ms, sent_at, decided_at, completed_at, run_started_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]', $11, false, $12,"
                    " 'm', '{}', $13, $14, $15, $16, $17, $18, $18, $18, $19)",
                    run.run_id, step, seq, turn, act.kind, position[0], position[1],
                    act.to[0], act.to[1], act.ok, act.goal_seen, footsteps,
                    call_id if first else None,
                    call.input_tokens if first else None,
                    call.output_tokens if first else None,
                    D(call.cost) if first else None,
                    call.duration_ms if first else None,
                    done, run.started_at,
                )  # fmt: skip
                position = act.to
    max_footsteps, max_actions, max_duration = run.limits
    error_class, error_message = run.error or (None, None)
    # The action counters the projector sets when a run finishes (migration 7).
    kinds = [(a.kind, a.ok) for calls in run.turn_calls for call in calls for a in call.actions]
    counters = (
        [None] * 5
        if run.status == "running"
        else [
            sum(k.startswith("move_") for k, _ in kinds),
            sum(k.startswith("move_") and ok for k, ok in kinds),
            sum(k.startswith("recall") for k, _ in kinds),
            sum(k == "no_tool_call" for k, _ in kinds),
            sum(k == "invalid_tool_call" for k, _ in kinds),
        ]
    )
    await conn.execute(
        "INSERT INTO experiments (run_id, provider, model_name, prompt_version, maze_hash,"
        " maze_name, start_x, start_y, comment, labels, model_config, temperature, num_ctx,"
        " vision_range, max_actions_per_turn, max_footsteps, max_actions, max_duration_seconds,"
        " goal_rule, requested_at, started_at, last_action_at, completed_at, status,"
        " stop_reason, success, goal_seen, position_x, position_y, footsteps, actions, turns,"
        " model_calls, input_tokens, output_tokens, cost_usd, duration_seconds, error_class,"
        " error_message, last_seq, moves, successful_moves, recalls, no_tool_calls,"
        " invalid_tool_calls)"
        " VALUES ($1, $2, $3, $4, 'hash-tiny', 'tiny', $5, $6, $7, $8, '{}', $9, $10, 3, 10,"
        " $11, $12, $13, 'seen', $14, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,"
        " $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38)",
        run.run_id, run.provider, run.model, run.prompt, run.start[0], run.start[1],
        run.comment, json.dumps(run.labels), run.temperature, run.num_ctx, max_footsteps,
        max_actions, max_duration, run.started_at, run.last_action_at, run.completed_at,
        run.status, run.stop_reason, run.success, run.goal_seen, run.position[0],
        run.position[1], run.footsteps, run.actions, run.turns, run.calls, run.input_tokens,
        run.output_tokens, D(run.cost), run.duration, error_class, error_message, seq + 1,
        *counters,
    )  # fmt: skip


@pytest.fixture(scope="module")
def views_db(pg_template: str) -> Iterator[str]:
    """One migrated database with the fixture, shared by a test module's read-only tests."""
    from tests import pg_support

    name = pg_support.create_database(pg_template)
    try:
        dsn = pg_support.dsn_for(name)
        loaded = datetime.now(UTC)
        for run in RUNS:
            if run.status == "running":
                run.started_at = loaded - RUNNING_FOR
                run.last_action_at = loaded - LAST_ACTION_AGO if run.actions else None
        asyncio.run(_load(dsn))
        yield dsn
    finally:
        pg_support.drop_database(name)


def fetch_rows(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(record) for record in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def view_columns(dsn: str, view: str) -> list[str]:
    rows = fetch_rows(
        dsn,
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
        " ORDER BY ordinal_position",
        view,
    )
    return [row["column_name"] for row in rows]


def check_rows(rows: list[dict[str, Any]], expected: dict[Any, dict[str, Any]], *by: str) -> None:
    """Rows (keyed by the ``by`` columns) equal their expected dicts in every column.

    Values must also have the same Python type: Decimal for numeric, int for counts.
    """

    def key(row: dict[str, Any]) -> Any:
        return row[by[0]] if len(by) == 1 else tuple(row[c] for c in by)

    assert [key(row) for row in rows] == list(expected), "rows or their order differ"
    problems = []
    for row in rows:
        want = expected[key(row)]
        assert set(row) == set(by) | set(want), f"{key(row)}: columns not all checked"
        problems += [
            f"{key(row)}.{column}: got {row[column]!r}, expected {value!r}"
            for column, value in want.items()
            if row[column] != value or type(row[column]) is not type(value)
        ]
    assert not problems, "\n".join(problems)
