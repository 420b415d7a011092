"""The views that group runs (per model, per prompt variant, per day) on the hand-worked
fixture of ``views_support``: every figure a literal, every column checked."""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal as D
from typing import Any

from tests.views_support import BY_ID, check_rows, fetch_rows, view_columns

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
    assert view_columns(views_db, "v_model_performance") == [
        "provider",
        "model_name",
        *GROUP_FIGURES,
    ]
    rows = fetch_rows(views_db, "SELECT * FROM v_model_performance ORDER BY provider, model_name")
    expected = {key: dict(zip(GROUP_FIGURES, f, strict=True)) for key, f in MODELS.items()}
    check_rows(rows, expected, "provider", "model_name")


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
    assert view_columns(views_db, "v_prompt_variant_analysis") == [
        "prompt_version", "provider", "model_name", *GROUP_FIGURES,
    ]  # fmt: skip
    rows = fetch_rows(
        views_db,
        "SELECT * FROM v_prompt_variant_analysis ORDER BY prompt_version, provider, model_name",
    )
    expected = {key: dict(zip(GROUP_FIGURES, f, strict=True)) for key, f in PROMPTS.items()}
    check_rows(rows, expected, "prompt_version", "provider", "model_name")


def test_wilson_interval(views_db: str) -> None:
    """Known 95 % Wilson score intervals, worked out outside the database.

    p = k/n, centre (p + z²/2n) / (1 + z²/n), half width z / (1 + z²/n) * sqrt(p(1-p)/n +
    z²/4n²), z = 1.959963984540054 (the exact 97.5 % normal quantile since migration 0006;
    1.96 before, which rounded 3 of 11's upper bound 56.5645 % up to 56.57); e.g. 1 of 2:
    centre 0.5, half width 0.4055 -> 9.45 % .. 90.55 %.
    """
    rows = fetch_rows(
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
        (3, 11): (D("9.75"), D("56.56")),
        (0, 0): (None, None),  # no trials, no interval
    }


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
    assert view_columns(views_db, "v_daily_summary") == ["day", *DAILY_FIGURES]
    rows = fetch_rows(views_db, "SELECT * FROM v_daily_summary ORDER BY day")
    today = BY_ID["r4-running"].started_at.astimezone(UTC).date()  # r6 started with it
    expected = {
        today if day == "today" else day: dict(zip(DAILY_FIGURES, figures, strict=True))
        for day, figures in DAILY.items()
    }
    check_rows(rows, expected, "day")
