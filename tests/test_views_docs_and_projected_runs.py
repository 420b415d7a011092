"""The views beyond the hand-worked fixture: on an empty database, as docs/views.md
describes them, and on rows the projector wrote itself."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import asyncpg

from tests.views_support import fetch_rows, view_columns

VIEWS = ["v_experiment_summary", "v_model_performance", "v_prompt_variant_analysis",
         "v_turn_statistics", "v_action_patterns", "v_cost_analysis", "v_daily_summary",
         "v_batch_monitor"]  # fmt: skip


def test_views_answer_on_an_empty_database(pg_dsn: str) -> None:
    for view in VIEWS:
        assert fetch_rows(pg_dsn, f"SELECT * FROM {view}") == [], view


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
        missing = [c for c in view_columns(views_db, view) if f"`{c}`" not in described]
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
