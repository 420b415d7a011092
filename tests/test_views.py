"""The analysis views (migration 0002) on a small fixture whose figures were worked out by hand.

Six runs, inserted straight into the projection tables the way the projector fills them:

* ``r1-goal``       ollama/qwen2.5:7b, prompt v7, succeeded (goal seen) on 2025-01-10
* ``r2-footsteps``  ollama/qwen2.5:7b, prompt v8, stopped by max_footsteps on 2025-01-10
* ``r3-failed``     openai/gpt-4o-mini, prompt v7, failed on 2025-01-11 (UTC; started
  2025-01-10 23:30 at -05:00), its second model call has no action
* ``r5-cancelled``  openai/gpt-4o-mini, prompt v7, cancelled before any action, 2025-01-11
* ``r4-running``    openai/gpt-4o-mini, prompt v8, running since 10 minutes
* ``r6-starting``   ollama/llama3.2:3b, prompt v8, running since 10 minutes, no action yet

Every expected figure below is a literal, computed by hand (the comments show how); nothing is
recomputed with the views' own SQL. Each test also checks the view's exact column set, so no
column goes unchecked.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path
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
                " tokens_per_second, done_reason, attempts, context_trimmed, called_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'stop', 1, 0,"
                " $14)",
                run.run_id, seq, call_id, turn, run.provider, run.model, call.input_tokens,
                call.output_tokens, D(call.cost), call.duration_ms, call.prompt_eval_ms,
                call.eval_ms, call.tokens_per_second, at,
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
                    " cost_usd, inference_ms, sent_at, decided_at, completed_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]', $11, false, $12,"
                    " 'm', '{}', $13, $14, $15, $16, $17, $18, $18, $18)",
                    run.run_id, step, seq, turn, act.kind, position[0], position[1],
                    act.to[0], act.to[1], act.ok, act.goal_seen, footsteps,
                    call_id if first else None,
                    call.input_tokens if first else None,
                    call.output_tokens if first else None,
                    D(call.cost) if first else None,
                    call.duration_ms if first else None,
                    done,
                )  # fmt: skip
                position = act.to
    max_footsteps, max_actions, max_duration = run.limits
    error_class, error_message = run.error or (None, None)
    await conn.execute(
        "INSERT INTO experiments (run_id, provider, model_name, prompt_version, maze_hash,"
        " maze_name, start_x, start_y, comment, labels, model_config, temperature, num_ctx,"
        " vision_range, max_actions_per_turn, max_footsteps, max_actions, max_duration_seconds,"
        " goal_rule, requested_at, started_at, last_action_at, completed_at, status,"
        " stop_reason, success, goal_seen, position_x, position_y, footsteps, actions, turns,"
        " model_calls, input_tokens, output_tokens, cost_usd, duration_seconds, error_class,"
        " error_message, last_seq)"
        " VALUES ($1, $2, $3, $4, 'hash-tiny', 'tiny', $5, $6, $7, $8, '{}', $9, $10, 3, 10,"
        " $11, $12, $13, 'seen', $14, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,"
        " $25, $26, $27, $28, $29, $30, $31, $32, $33)",
        run.run_id, run.provider, run.model, run.prompt, run.start[0], run.start[1],
        run.comment, json.dumps(run.labels), run.temperature, run.num_ctx, max_footsteps,
        max_actions, max_duration, run.started_at, run.last_action_at, run.completed_at,
        run.status, run.stop_reason, run.success, run.goal_seen, run.position[0],
        run.position[1], run.footsteps, run.actions, run.turns, run.calls, run.input_tokens,
        run.output_tokens, D(run.cost), run.duration, error_class, error_message, seq + 1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def views_db(pg_template: str) -> Iterator[str]:
    """One migrated database with the fixture, shared by this module's read-only tests."""
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


def _fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(record) for record in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def _columns(dsn: str, view: str) -> list[str]:
    rows = _fetch(
        dsn,
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
        " ORDER BY ordinal_position",
        view,
    )
    return [row["column_name"] for row in rows]


def _check(rows: list[dict[str, Any]], expected: dict[Any, dict[str, Any]], *by: str) -> None:
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


# --- v_experiment_summary --------------------------------------------------------------------

SUMMARY_FIGURES = [
    "total_turns", "total_actions", "avg_actions_per_turn", "input_tokens", "output_tokens",
    "total_tokens", "cost_usd", "cost_per_action", "tokens_per_action", "successful_moves",
    "failed_moves", "move_success_rate_pct", "recall_count", "no_tool_calls",
    "invalid_tool_calls",
]  # fmt: skip
SUMMARY: dict[str, list[Any]] = {
    # 8 actions in 3 turns = 2.67; 670 tokens / 8 = 83.75; $0.005 / 8 = 0.000625;
    # moves E E N(wall) S N W S: 6 of 7 succeed = 85.71 %; one recall
    "r1-goal": [3, 8, D("2.67"), 570, 100, 670, D("0.005"), D("0.000625"), D("83.75"),
                6, 1, D("85.71"), 1, 0, 0],
    # 6 actions / 2 turns = 3; 195 / 6 = 32.5 tokens; a free local model: cost 0 stays 0;
    # moves W, W(edge), E, N: 3 of 4 = 75 %; one no_tool_call, one invalid_tool_call
    "r2-footsteps": [2, 6, D("3.00"), 170, 25, 195, D("0"), D("0"), D("32.50"),
                     3, 1, D("75.00"), 0, 1, 1],
    # 2 actions (S, recall), 2 turns (the second only a model call) = 1; 1070 / 2 = 535;
    # $0.000183 / 2 = 0.0000915 -> 0.000092
    "r3-failed": [2, 2, D("1.00"), 1020, 50, 1070, D("0.000183"), D("0.000092"),
                  D("535.00"), 1, 0, D("100.00"), 1, 0, 0],
    # nothing happened: counts are 0, ratios over nothing are NULL
    "r5-cancelled": [0, 0, None, 0, 0, 0, D("0"), None, None, 0, 0, None, 0, 0, 0],
}  # fmt: skip


def test_experiment_summary(views_db: str) -> None:
    assert _columns(views_db, "v_experiment_summary") == [
        "run_id", "provider", "model_name", "prompt_version", "maze_name", "comment", "status",
        "stop_reason", "success", "goal_seen", "goal_reached", "started_at", "completed_at",
        "duration_seconds", *SUMMARY_FIGURES,
    ]  # fmt: skip
    rows = _fetch(views_db, "SELECT * FROM v_experiment_summary ORDER BY run_id")
    expected: dict[Any, dict[str, Any]] = {}
    for run_id in sorted(SUMMARY):  # running runs are not in the summary
        run = BY_ID[run_id]
        expected[run_id] = {
            "provider": run.provider,
            "model_name": run.model,
            "prompt_version": run.prompt,
            "maze_name": "tiny",
            "comment": run.comment,
            "status": run.status,
            "stop_reason": run.stop_reason,
            "success": run.success,
            "goal_seen": run.goal_seen,
            "goal_reached": False,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "duration_seconds": run.duration,
            **dict(zip(SUMMARY_FIGURES, SUMMARY[run_id], strict=True)),
        }
    _check(rows, expected, "run_id")


# --- v_model_performance and v_prompt_variant_analysis ----------------------------------------

GROUP_FIGURES = [
    "experiments", "successful_experiments", "failed_experiments", "cancelled_experiments",
    "success_rate_pct", "success_rate_ci_low_pct", "success_rate_ci_high_pct", "avg_actions",
    "avg_turns", "actions_per_turn", "avg_duration_seconds", "avg_footsteps",
    "avg_total_tokens", "tokens_per_action", "cost_per_experiment", "cost_per_action",
    "total_cost_usd", "cost_per_success", "move_success_rate_pct", "recalls_per_experiment",
    "no_tool_calls_per_experiment", "avg_actions_to_goal",
]  # fmt: skip

MODELS: dict[tuple[str, str], list[Any]] = {
    # r1 + r2: 1 success of 2 = 50 %, Wilson 95 % 9.45 .. 90.55; actions (8+6)/2 = 7,
    # turns (3+2)/2 = 2.5, 14 actions / 5 turns = 2.8, seconds (120+60)/2 = 90,
    # footsteps (6+3)/2 = 4.5, tokens (670+195)/2 = 432.5 and 865 / 14 actions = 61.79;
    # $0.005 / 2 runs = 0.0025, / 14 actions = 0.000357, / 1 success = 0.005;
    # moves 9 of 11 succeed = 81.82 %; recalls (1+0)/2, no_tool_calls (0+1)/2;
    # the successful r1 took 8 actions
    ("ollama", "qwen2.5:7b"): [2, 1, 0, 0, D("50.00"), D("9.45"), D("90.55"), D("7.00"),
                               D("2.50"), D("2.80"), D("90.00"), D("4.50"), D("432.50"),
                               D("61.79"), D("0.0025"), D("0.000357"), D("0.005"),
                               D("0.005"), D("81.82"), D("0.50"), D("0.50"), D("8.00")],
    # r3 (failed) + r5 (cancelled): 0 of 2, Wilson 0 .. 65.76; actions (2+0)/2, turns (2+0)/2,
    # 2 actions / 2 turns, seconds (30+5)/2 = 17.5, tokens 1070/2 = 535 and 1070 / 2 actions;
    # $0.000183 / 2 runs (or / 2 actions) = 0.0000915 -> 0.000092; no success: cost per
    # success and actions to goal NULL; recalls (1+0)/2 = 0.5: r5, without any action row,
    # counts as 0 recalls (not skipped as NULL, which would give 1)
    ("openai", "gpt-4o-mini"): [2, 0, 1, 1, D("0.00"), D("0.00"), D("65.76"), D("1.00"),
                                D("1.00"), D("1.00"), D("17.50"), D("0.50"), D("535.00"),
                                D("535.00"), D("0.000092"), D("0.000092"), D("0.000183"),
                                None, D("100.00"), D("0.50"), D("0.00"), None],
    # ollama/llama3.2:3b has only a running run: no row
}  # fmt: skip


def test_model_performance(views_db: str) -> None:
    assert _columns(views_db, "v_model_performance") == ["provider", "model_name", *GROUP_FIGURES]
    rows = _fetch(views_db, "SELECT * FROM v_model_performance ORDER BY provider, model_name")
    expected = {key: dict(zip(GROUP_FIGURES, f, strict=True)) for key, f in MODELS.items()}
    _check(rows, expected, "provider", "model_name")


PROMPTS: dict[tuple[str, str, str], list[Any]] = {
    # r1 alone: 1 of 1 = 100 %, Wilson 20.65 .. 100; 8 actions / 3 turns = 2.67
    ("v7", "ollama", "qwen2.5:7b"): [1, 1, 0, 0, D("100.00"), D("20.65"), D("100.00"),
                                     D("8.00"), D("3.00"), D("2.67"), D("120.00"), D("6.00"),
                                     D("670.00"), D("83.75"), D("0.005"), D("0.000625"),
                                     D("0.005"), D("0.005"), D("85.71"), D("1.00"),
                                     D("0.00"), D("8.00")],
    # r3 + r5, the same runs as the model's row: 0 of 2
    ("v7", "openai", "gpt-4o-mini"): [2, 0, 1, 1, D("0.00"), D("0.00"), D("65.76"),
                                      D("1.00"), D("1.00"), D("1.00"), D("17.50"), D("0.50"),
                                      D("535.00"), D("535.00"), D("0.000092"),
                                      D("0.000092"), D("0.000183"), None, D("100.00"),
                                      D("0.50"), D("0.00"), None],
    # r2 alone: 0 of 1, Wilson 0 .. 79.35; 6 actions / 2 turns; costs are zero, not NULL
    ("v8", "ollama", "qwen2.5:7b"): [1, 0, 0, 0, D("0.00"), D("0.00"), D("79.35"),
                                     D("6.00"), D("2.00"), D("3.00"), D("60.00"), D("3.00"),
                                     D("195.00"), D("32.50"), D("0"), D("0"), D("0"), None,
                                     D("75.00"), D("0.00"), D("1.00"), None],
    # r4 and r6 (v8) are running: no rows
}  # fmt: skip


def test_prompt_variant_analysis(views_db: str) -> None:
    assert _columns(views_db, "v_prompt_variant_analysis") == [
        "prompt_version", "provider", "model_name", *GROUP_FIGURES,
    ]  # fmt: skip
    rows = _fetch(
        views_db,
        "SELECT * FROM v_prompt_variant_analysis ORDER BY prompt_version, provider, model_name",
    )
    expected = {key: dict(zip(GROUP_FIGURES, f, strict=True)) for key, f in PROMPTS.items()}
    _check(rows, expected, "prompt_version", "provider", "model_name")


def test_wilson_interval(views_db: str) -> None:
    """Known 95 % Wilson score intervals, worked out outside the database.

    p = k/n, centre (p + z²/2n) / (1 + z²/n), half width z / (1 + z²/n) * sqrt(p(1-p)/n +
    z²/4n²), z = 1.96; e.g. 1 of 2: centre 0.5, half width 0.4055 -> 9.45 % .. 90.55 %.
    """
    rows = _fetch(
        views_db,
        "SELECT k, n, wilson_ci_low_pct(k, n) AS low, wilson_ci_high_pct(k, n) AS high"
        " FROM unnest($1::bigint[], $2::bigint[]) AS t(k, n)",
        [1, 0, 2, 1, 50, 3, 0],
        [2, 2, 2, 1, 100, 11, 0],
    )
    assert {(r["k"], r["n"]): (r["low"], r["high"]) for r in rows} == {
        (1, 2): (D("9.45"), D("90.55")),
        (0, 2): (D("0.00"), D("65.76")),
        (2, 2): (D("34.24"), D("100.00")),
        (1, 1): (D("20.65"), D("100.00")),
        (50, 100): (D("40.38"), D("59.62")),
        (3, 11): (D("9.75"), D("56.57")),
        (0, 0): (None, None),  # no trials, no interval
    }


# --- v_turn_statistics -----------------------------------------------------------------------

TURN_FIGURES = [
    "actions", "moves_north", "moves_south", "moves_east", "moves_west", "recalls",
    "failed_moves", "successful_actions", "success_rate_pct", "final_x", "final_y",
    "input_tokens", "output_tokens", "model_calls", "cost_usd",
]  # fmt: skip
TURNS: dict[tuple[str, int], list[Any]] = {
    # E E N(wall): 2 of 3 succeed; the agent ends on (3,1)
    ("r1-goal", 1): [3, 1, 0, 2, 0, 0, 1, 2, D("66.67"), 3, 1, 100, 20, 1, D("0.001")],
    # recall (succeeds), S to (3,2), N back to (3,1): the LAST position is (3,1), where
    # Oriole's MAX(x), MAX(y) said (3,2); two model calls: 150+200 in, 30+10 out
    ("r1-goal", 2): [3, 1, 1, 0, 0, 1, 0, 3, D("100.00"), 3, 1, 350, 40, 2, D("0.0035")],
    ("r1-goal", 3): [2, 0, 1, 0, 1, 0, 0, 2, D("100.00"), 2, 2, 120, 40, 1, D("0.0005")],
    # a lone no_tool_call: 0 % success is a real zero; free model: cost 0
    ("r2-footsteps", 1): [1, 0, 0, 0, 0, 0, 0, 0, D("0.00"), 1, 1, 80, 10, 1, D("0")],
    # W (0,1), W edge, E (1,1), invalid, N (1,0): 3 of 5; MAX would have said (1,1)
    ("r2-footsteps", 2): [5, 1, 0, 1, 2, 0, 1, 3, D("60.00"), 1, 0, 90, 15, 1, D("0")],
    # S to (1,2), then a recall there
    ("r3-failed", 1): [2, 0, 1, 0, 0, 1, 0, 2, D("100.00"), 1, 2, 500, 50, 1,
                       D("0.000105")],
    # a model call but no action (the run failed): tokens are kept, no position
    ("r3-failed", 2): [0, 0, 0, 0, 0, 0, 0, 0, None, None, None, 520, 0, 1, D("0.000078")],
    ("r4-running", 1): [2, 0, 0, 2, 0, 0, 0, 2, D("100.00"), 3, 1, 300, 30, 1, D("0.00006")],
    ("r4-running", 2): [2, 0, 1, 1, 0, 0, 0, 2, D("100.00"), 4, 2, 320, 40, 1, D("0.00007")],
    # r5 and r6 have neither actions nor calls: no turns
}  # fmt: skip


def test_turn_statistics(views_db: str) -> None:
    assert _columns(views_db, "v_turn_statistics") == ["run_id", "turn", *TURN_FIGURES]
    rows = _fetch(views_db, "SELECT * FROM v_turn_statistics ORDER BY run_id, turn")
    expected = {
        key: dict(zip(TURN_FIGURES, figures, strict=True)) for key, figures in TURNS.items()
    }
    _check(rows, expected, "run_id", "turn")
    # a filter on one run reaches both stacked tables
    one = _fetch(views_db, "SELECT turn FROM v_turn_statistics WHERE run_id = 'r3-failed'")
    assert sorted(r["turn"] for r in one) == [1, 2]


# --- v_action_patterns -----------------------------------------------------------------------

PATTERN_FIGURES = [
    "total_actions", "movement_actions", "recall_actions", "movement_pct", "moves_north",
    "moves_south", "moves_east", "moves_west", "wall_collisions", "no_tool_calls",
    "invalid_tool_calls", "actions_per_recall", "unique_positions", "direction_changes",
    "reversals",
]  # fmt: skip
PATTERNS: dict[str, list[Any]] = {
    # 7 moves of 8 actions = 87.5 %; N 2, S 2, E 2, W 1; 1 wall; 8 actions / 1 recall;
    # tiles: start (1,1), (2,1), (3,1), (3,2), (2,2) = 5; successful moves E E S N W S:
    # 4 changes of direction (E>S, S>N, N>W, W>S), 1 reversal (S>N)
    "r1-goal": [8, 7, 1, D("87.50"), 2, 2, 2, 1, 1, 0, 0, D("8.00"), 5, 4, 1],
    # 4 moves of 6 = 66.67 %; wall_collisions 1: only the failed W (Oriole counted the
    # no_tool_call and the invalid call too: 3); no recall: actions_per_recall NULL;
    # tiles (1,1) start, (0,1), (1,0) = 3; successful moves W E N: 2 changes, 1 reversal
    "r2-footsteps": [6, 4, 0, D("66.67"), 1, 0, 1, 2, 1, 1, 1, None, 3, 2, 1],
    # 1 move of 2 actions; 2 actions / 1 recall; tiles: start (1,1) and (1,2)
    "r3-failed": [2, 1, 1, D("50.00"), 0, 1, 0, 0, 0, 0, 0, D("2.00"), 2, 0, 0],
    # E E E S: 1 change, no reversal; tiles: start + 4 = 5
    "r4-running": [4, 4, 0, D("100.00"), 0, 1, 3, 0, 0, 0, 0, None, 5, 1, 0],
    # no action: the start tile only
    "r5-cancelled": [0, 0, 0, None, 0, 0, 0, 0, 0, 0, 0, None, 1, 0, 0],
    "r6-starting": [0, 0, 0, None, 0, 0, 0, 0, 0, 0, 0, None, 1, 0, 0],
}  # fmt: skip


def test_action_patterns(views_db: str) -> None:
    identity = ["run_id", "provider", "model_name", "prompt_version", "status"]
    assert _columns(views_db, "v_action_patterns") == [*identity, *PATTERN_FIGURES]
    rows = _fetch(views_db, "SELECT * FROM v_action_patterns ORDER BY run_id")
    expected = {
        run_id: {
            "provider": BY_ID[run_id].provider,
            "model_name": BY_ID[run_id].model,
            "prompt_version": BY_ID[run_id].prompt,
            "status": BY_ID[run_id].status,
            **dict(zip(PATTERN_FIGURES, PATTERNS[run_id], strict=True)),
        }
        for run_id in ALL  # running runs included
    }
    _check(rows, expected, "run_id")


# --- v_cost_analysis -------------------------------------------------------------------------

COST_FIGURES = [
    "model_calls", "input_tokens", "output_tokens", "total_tokens", "cost_usd",
    "total_actions", "footsteps", "tokens_per_action", "tokens_per_call", "cost_per_action",
    "cost_per_footstep", "cost_per_million_tokens", "cost_if_successful",
]  # fmt: skip
COSTS: dict[str, list[Any]] = {
    # 670 / 8 = 83.75, 670 / 4 calls = 167.5; $0.005 / 8 = 0.000625, / 6 footsteps =
    # 0.000833; 0.005 * 1e6 / 670 = 7.462687; successful: cost_if_successful = cost
    "r1-goal": [4, 570, 100, 670, D("0.005"), 8, 6, D("83.75"), D("167.50"), D("0.000625"),
                D("0.000833"), D("7.462687"), D("0.005")],
    # a free model: every cost figure is 0, not NULL; not successful: NULL
    "r2-footsteps": [2, 170, 25, 195, D("0"), 6, 3, D("32.50"), D("97.50"), D("0"), D("0"),
                     D("0"), None],
    # 0.000183 * 1e6 / 1070 = 0.171028
    "r3-failed": [2, 1020, 50, 1070, D("0.000183"), 2, 1, D("535.00"), D("535.00"),
                  D("0.000092"), D("0.000183"), D("0.171028"), None],
    "r5-cancelled": [0, 0, 0, 0, D("0"), 0, 0, None, None, None, None, None, None],
}  # fmt: skip


def test_cost_analysis(views_db: str) -> None:
    identity = ["run_id", "provider", "model_name", "prompt_version", "comment", "started_at",
                "status", "success"]  # fmt: skip
    assert _columns(views_db, "v_cost_analysis") == [*identity, *COST_FIGURES]
    rows = _fetch(views_db, "SELECT * FROM v_cost_analysis ORDER BY run_id")
    expected = {
        run_id: {
            "provider": BY_ID[run_id].provider,
            "model_name": BY_ID[run_id].model,
            "prompt_version": BY_ID[run_id].prompt,
            "comment": BY_ID[run_id].comment,
            "started_at": BY_ID[run_id].started_at,
            "status": BY_ID[run_id].status,
            "success": BY_ID[run_id].success,
            **dict(zip(COST_FIGURES, COSTS[run_id], strict=True)),
        }
        for run_id in sorted(COSTS)  # finished runs only
    }
    _check(rows, expected, "run_id")


# --- v_daily_summary -------------------------------------------------------------------------

DAILY_FIGURES = [
    "experiments", "finished", "running", "successes", "success_rate_pct", "total_actions",
    "total_footsteps", "total_tokens", "total_cost_usd", "avg_actions", "avg_turns",
    "avg_duration_seconds", "avg_tokens", "avg_cost_usd", "distinct_models", "models",
]  # fmt: skip
DAILY: dict[date | str, list[Any]] = {
    # r1 + r2: 1 of 2; 8+6 actions, 6+3 footsteps, 670+195 tokens, $0.005;
    # averages 7, 2.5 turns, 90 s, 432.5 tokens, $0.0025
    date(2025, 1, 10): [2, 2, 0, 1, D("50.00"), 14, 9, 865, D("0.005"), D("7.00"), D("2.50"),
                        D("90.00"), D("432.50"), D("0.0025"), 1, "ollama/qwen2.5:7b"],
    # r3 started 2025-01-10 23:30 at -05:00, i.e. 04:30 UTC on the 11th, with r5: 2+0
    # actions, 1 footstep, 1070 tokens; averages 1 action, 1 turn, 17.5 s, 535 tokens
    date(2025, 1, 11): [2, 2, 0, 0, D("0.00"), 2, 1, 1070, D("0.000183"), D("1.00"),
                        D("1.00"), D("17.50"), D("535.00"), D("0.000092"), 1,
                        "openai/gpt-4o-mini"],
    # r4 + r6, both running: totals count them, averages (over finished runs) are NULL
    "today": [2, 0, 2, 0, None, 4, 4, 690, D("0.00013"), None, None, None, None, None, 2,
            "ollama/llama3.2:3b, openai/gpt-4o-mini"],
}  # fmt: skip


def test_daily_summary(views_db: str) -> None:
    assert _columns(views_db, "v_daily_summary") == ["day", *DAILY_FIGURES]
    rows = _fetch(views_db, "SELECT * FROM v_daily_summary ORDER BY day")
    today = BY_ID["r4-running"].started_at.astimezone(UTC).date()  # r6 started with it
    expected = {
        today if day == "today" else day: dict(zip(DAILY_FIGURES, figures, strict=True))
        for day, figures in DAILY.items()
    }
    _check(rows, expected, "day")


# --- v_batch_monitor -------------------------------------------------------------------------

#: A time-dependent value, checked with a range below.
NOW_DEPENDENT = object()

MONITOR_FIGURES = [
    "status_label", "footsteps", "total_actions", "turns", "pct_moves", "moves_per_turn",
    "actions_per_turn", "most_actions_in_turn", "model_calls", "input_tokens",
    "output_tokens", "cost_usd", "avg_inference_ms", "avg_prompt_eval_ms", "avg_eval_ms",
    "avg_tokens_per_second", "min_tokens_per_second", "max_tokens_per_second",
    "actions_per_minute", "progress_pct", "eta_seconds", "seconds_since_last_action",
    "duration_seconds", "recall_count", "final_x", "final_y",
]  # fmt: skip
T = NOW_DEPENDENT
MONITOR: dict[str, list[Any]] = {
    # 6 footsteps / 8 actions = 75 %, / 3 turns = 2; 8 / 3 = 2.67; turns of 3, 3, 2;
    # call ms (1000+2000+1500+500)/4 = 1250, (200+500+300+100)/4 = 275,
    # (800+1500+1200+400)/4 = 975; tokens/s 25 20 30 40: avg 28.75; 8 actions in 2 min;
    # progress: the largest share of a limit: 120 s of 1800 = 6.67 % (6/500 footsteps,
    # 8/2000 actions); finished: no ETA, no "since last action"; final position (2,2)
    "r1-goal": ["GOAL", 6, 8, 3, D("75.00"), D("2.00"), D("2.67"), 3, 4, 570, 100,
                D("0.005"), D("1250.00"), D("275.00"), D("975.00"), D("28.75"), D("20.00"),
                D("40.00"), D("4.00"), D("6.67"), None, None, D("120.00"), 1, 2, 2],
    # stopped by a limit without the goal: DONE; 3 / 6 = 50 %; turns of 1 and 5;
    # 6 actions in 1 min; 3 of 3 footsteps = 100 %; ends on (1,0)
    "r2-footsteps": ["DONE", 3, 6, 2, D("50.00"), D("1.50"), D("3.00"), 5, 2, 170, 25,
                     D("0"), D("1000.00"), D("125.00"), D("875.00"), D("13.75"), D("12.50"),
                     D("15.00"), D("6.00"), D("100.00"), None, None, D("60.00"), 0, 1, 0],
    # 1 footstep / 2 actions = 50 %; turns of 2 and 0 actions; no eval timings from this
    # provider: NULL (unknown), not 0; 2 actions in 30 s = 4/min; 30 s of 1800 = 1.67 %
    "r3-failed": ["FAILED", 1, 2, 2, D("50.00"), D("0.50"), D("1.00"), 2, 2, 1020, 50,
                  D("0.000183"), D("500.00"), None, None, None, None, None, D("4.00"),
                  D("1.67"), None, None, D("30.00"), 1, 1, 2],
    # 0 actions: ratios over 0 are NULL, counts and rates of 0 stay 0; 5 s of 1800 = 0.28 %
    "r5-cancelled": ["CANCELLED", 0, 0, 0, None, None, None, 0, 0, 0, 0, D("0"), None, None,
                     None, None, None, None, D("0.00"), D("0.28"), None, None, D("5.00"), 0,
                     1, 1],
    # 4 of 10 footsteps = 40 % (more than 4/1000 actions or ~600/3600 s)
    "r4-running": ["RUNNING", 4, 4, 2, D("100.00"), D("2.00"), D("2.00"), 2, 2, 620, 70,
                   D("0.00013"), D("500.00"), None, None, None, None, None, T, D("40.00"),
                   T, T, T, 0, 4, 2],
    # no action yet: STARTING; 0 actions per minute is a real 0; progress ~600 s of 1800
    "r6-starting": ["STARTING", 0, 0, 0, None, None, None, 0, 0, 0, 0, D("0"), None, None,
                    None, None, None, None, D("0.00"), T, T, T, T, 0, 1, 1],
}  # fmt: skip


def test_batch_monitor(views_db: str) -> None:
    identity = ["run_id", "model", "provider", "prompt_version", "maze_name", "comment",
                "labels", "num_ctx", "temperature"]  # fmt: skip
    stamps = ["started_at", "last_action_at", "completed_at", "stop_reason", "error_class",
              "error_message"]  # fmt: skip
    columns = _columns(views_db, "v_batch_monitor")
    assert sorted(columns) == sorted([*identity, "status", *MONITOR_FIGURES, *stamps])
    rows = _fetch(views_db, "SELECT * FROM v_batch_monitor ORDER BY started_at DESC, run_id")
    # newest first: the two running runs, then r5, r3 (04:30 UTC on the 11th), r2, r1
    assert [r["run_id"] for r in rows] == [
        "r4-running", "r6-starting", "r5-cancelled", "r3-failed", "r2-footsteps", "r1-goal",
    ]  # fmt: skip
    timed = {row["run_id"]: dict(row) for row in rows if row["status"] == "running"}
    expected: dict[Any, dict[str, Any]] = {}
    for row in rows:
        run = BY_ID[row["run_id"]]
        figures = dict(zip(MONITOR_FIGURES, MONITOR[run.run_id], strict=True))
        for column, value in figures.items():
            if value is NOW_DEPENDENT:
                row[column] = NOW_DEPENDENT  # checked below
        expected[run.run_id] = {
            "model": run.model,
            "provider": run.provider,
            "prompt_version": run.prompt,
            "maze_name": "tiny",
            "comment": run.comment,
            "labels": json.dumps(run.labels),
            "num_ctx": run.num_ctx,
            "temperature": run.temperature,  # 0.0 stays 0.0 (Oriole stored NULL)
            "status": run.status,
            "started_at": run.started_at,
            "last_action_at": run.last_action_at,
            "completed_at": run.completed_at,
            "stop_reason": run.stop_reason,
            "error_class": run.error[0] if run.error else None,
            "error_message": run.error[1] if run.error else None,
            **figures,
        }
    _check(rows, expected, "run_id")

    # The running runs were loaded a few seconds ago, 600 s after they started.
    r4, r6 = timed["r4-running"], timed["r6-starting"]
    for row in (r4, r6):
        assert D(600) <= row["duration_seconds"] < D(630)  # now() - started_at
    # 4 actions in ~10 minutes
    assert D("0.38") <= r4["actions_per_minute"] <= D("0.40")
    # 6 footsteps left at 4 per ~600 s = ~900 s; the duration limit (3600 - 600 s) and the
    # action limit (996 left at 4 per 600 s) come later
    assert D(900) <= r4["eta_seconds"] < D(945)
    assert D(30) <= r4["seconds_since_last_action"] < D(60)
    # r6: no footstep yet, so no footstep rate; its duration limit ends it in ~1800 - 600 s
    assert D(1170) < r6["eta_seconds"] <= D(1200)
    assert D(600) <= r6["seconds_since_last_action"] < D(630)  # no action: since started_at
    assert D("33.33") <= r6["progress_pct"] < D(35)  # ~600 of 1800 s; 0 of 500 footsteps


VIEWS = ["v_experiment_summary", "v_model_performance", "v_prompt_variant_analysis",
         "v_turn_statistics", "v_action_patterns", "v_cost_analysis", "v_daily_summary",
         "v_batch_monitor"]  # fmt: skip


def test_views_answer_on_an_empty_database(pg_dsn: str) -> None:
    for view in VIEWS:
        assert _fetch(pg_dsn, f"SELECT * FROM {view}") == [], view


# --- docs/views.md ---------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "views.md"


def test_doc_describes_every_column_and_its_examples_run(views_db: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (v_\w+)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    assert sorted(sections) == sorted(VIEWS)
    for view in VIEWS:
        described = sections[view]
        if view == "v_prompt_variant_analysis":  # "the columns of v_model_performance"
            described += sections["v_model_performance"]
        missing = [c for c in _columns(views_db, view) if f"`{c}`" not in described]
        assert not missing, f"{view}: undocumented columns {missing}"
    examples = re.findall(r"```sql\n(.*?)\n```", text, flags=re.S)
    assert len(examples) >= len(VIEWS)

    async def run_all() -> None:
        conn = await asyncpg.connect(views_db)
        try:
            for sql in examples:
                async with conn.transaction(readonly=True):
                    await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run_all())


# --- the views on the projector's own rows ---------------------------------------------------


def test_views_agree_with_projected_runs(pg_dsn: str) -> None:
    """Real event logs through the projector: the views agree with the tables and each other."""
    from projections.store import store_batch
    from tests.projection_support import agent_run, llm_like_run

    async def main() -> dict[str, list[dict[str, Any]]]:
        finished = await agent_run("p-frontier", max_footsteps=60)
        partial = await agent_run("p-partial", model="random", seed=4)
        logs = [finished, partial[:40], llm_like_run("p-llm")]
        conn = await asyncpg.connect(pg_dsn)
        try:
            for events in logs:
                await store_batch(conn, events)
            queries = {
                "e": "SELECT * FROM experiments",
                "summary": "SELECT * FROM v_experiment_summary",
                "patterns": "SELECT * FROM v_action_patterns",
                "monitor": "SELECT * FROM v_batch_monitor",
                "turns": "SELECT run_id, sum(actions) AS actions, sum(input_tokens) AS tokens,"
                " sum(model_calls) AS calls, max(turn) AS turns,"
                " (array_agg(final_x ORDER BY turn DESC) FILTER (WHERE actions > 0))[1] AS x,"
                " (array_agg(final_y ORDER BY turn DESC) FILTER (WHERE actions > 0))[1] AS y"
                " FROM v_turn_statistics GROUP BY run_id",
            }
            return {name: [dict(r) for r in await conn.fetch(sql)] for name, sql in queries.items()}
        finally:
            await conn.close()

    got = asyncio.run(main())
    runs = {r["run_id"]: r for r in got["e"]}
    assert {r: e["status"] for r, e in runs.items()} == {
        "p-frontier": "stopped",
        "p-partial": "running",
        "p-llm": "failed",
    }
    summary = {r["run_id"]: r for r in got["summary"]}
    patterns = {r["run_id"]: r for r in got["patterns"]}
    monitor = {r["run_id"]: r for r in got["monitor"]}
    turns = {r["run_id"]: r for r in got["turns"]}
    assert sorted(summary) == ["p-frontier", "p-llm"] and len(patterns) == len(monitor) == 3
    for run_id, e in runs.items():
        p, m, t = patterns[run_id], monitor[run_id], turns[run_id]
        assert p["total_actions"] == m["total_actions"] == t["actions"] == e["actions"]
        assert t["tokens"] == e["input_tokens"] and t["calls"] == e["model_calls"]
        assert t["turns"] == e["turns"]
        # the last turn's final position and the monitor's are the run's real position
        assert (t["x"], t["y"]) == (m["final_x"], m["final_y"])
        assert (m["final_x"], m["final_y"]) == (e["position_x"], e["position_y"])
        assert m["footsteps"] == e["footsteps"]
        if run_id in summary:
            s = summary[run_id]
            assert s["successful_moves"] == e["footsteps"]
            assert s["failed_moves"] == p["wall_collisions"]
            assert s["successful_moves"] + s["failed_moves"] == p["movement_actions"]
            assert s["recall_count"] == p["recall_actions"] == m["recall_count"]
            assert s["no_tool_calls"] == p["no_tool_calls"]
    # the LLM-like run: 2 turns of a recall and a no_tool_call, then a failed call in turn 2
    llm = summary["p-llm"]
    assert (llm["total_actions"], llm["recall_count"], llm["no_tool_calls"]) == (4, 2, 2)
    assert (llm["failed_moves"], llm["move_success_rate_pct"]) == (0, None)
    assert patterns["p-llm"]["wall_collisions"] == 0  # Oriole counted the 2 no_tool_calls
    assert (turns["p-llm"]["tokens"], turns["p-llm"]["calls"]) == (277, 3)
    assert monitor["p-partial"]["status_label"] == "RUNNING"
    assert monitor["p-frontier"]["status_label"] == "DONE"
    assert monitor["p-llm"]["status_label"] == "FAILED"
