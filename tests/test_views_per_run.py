"""The views with a row per run (summary, turns, action patterns, cost, batch monitor) on
the hand-worked fixture of ``views_support``: every figure a literal, every column checked."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

from tests.views_support import ALL, BY_ID, check_rows, fetch_rows, view_columns

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
    assert view_columns(views_db, "v_experiment_summary") == [
        "run_id", "provider", "model_name", "prompt_version", "maze_name", "comment", "status",
        "stop_reason", "success", "goal_seen", "goal_reached", "started_at", "completed_at",
        "duration_seconds", *SUMMARY_FIGURES,
    ]  # fmt: skip
    rows = fetch_rows(views_db, "SELECT * FROM v_experiment_summary ORDER BY run_id")
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
    check_rows(rows, expected, "run_id")


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
    assert view_columns(views_db, "v_turn_statistics") == ["run_id", "turn", *TURN_FIGURES]
    rows = fetch_rows(views_db, "SELECT * FROM v_turn_statistics ORDER BY run_id, turn")
    expected = {
        key: dict(zip(TURN_FIGURES, figures, strict=True)) for key, figures in TURNS.items()
    }
    check_rows(rows, expected, "run_id", "turn")
    # a filter on one run reaches both stacked tables
    one = fetch_rows(views_db, "SELECT turn FROM v_turn_statistics WHERE run_id = 'r3-failed'")
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
    assert view_columns(views_db, "v_action_patterns") == [*identity, *PATTERN_FIGURES]
    rows = fetch_rows(views_db, "SELECT * FROM v_action_patterns ORDER BY run_id")
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
    check_rows(rows, expected, "run_id")


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
    assert view_columns(views_db, "v_cost_analysis") == [*identity, *COST_FIGURES]
    rows = fetch_rows(views_db, "SELECT * FROM v_cost_analysis ORDER BY run_id")
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
    check_rows(rows, expected, "run_id")


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
    # Migration 5 added the run's batch, cell and repetition (NULL: not a batch's run).
    batch = ["batch_id", "cell", "repetition"]
    columns = view_columns(views_db, "v_batch_monitor")
    assert sorted(columns) == sorted([*identity, "status", *MONITOR_FIGURES, *stamps, *batch])
    assert columns[-3:] == batch
    rows = fetch_rows(views_db, "SELECT * FROM v_batch_monitor ORDER BY started_at DESC, run_id")
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
            **dict.fromkeys(batch),
        }
    check_rows(rows, expected, "run_id")

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
