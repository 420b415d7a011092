"""Archive and projections against a real PostgreSQL: exact rows, idempotence, rebuild."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from oriole.events import ActionCompleted, ActionRequested, RunEvent, RunFinished
from projections.migrate import (
    MigrationError,
    applied_migrations,
    available_migrations,
    migrate,
)
from projections.rows import project
from projections.store import project_events, rebuild_projections, store_batch
from tests.projection_support import agent_run, llm_like_run, snapshot


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def feed(pool: Any, events: list[RunEvent], sizes: list[int]) -> None:
    """Store ``events`` in consecutive batches of the given sizes (cycled)."""
    position = 0
    index = 0
    while position < len(events):
        size = sizes[index % len(sizes)]
        async with pool.acquire() as conn:
            await store_batch(conn, events[position : position + size])
        position += size
        index += 1


def random_sizes(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 9) for _ in range(50)]


@pytest.mark.asyncio
async def test_rows_match_the_events_exactly(pool: Any) -> None:
    events = await agent_run("run-frontier")
    await feed(pool, events, random_sizes(1))  # batches split decisions from outcomes
    async with pool.acquire() as conn:
        tables = await snapshot(conn)

    archive = tables["run_events"]
    assert [r["seq"] for r in archive] == [e.seq for e in events]
    for row, event in zip(archive, events, strict=True):
        assert row["event_id"] == event.event_id
        assert row["type"] == event.type
        assert row["time"] == event.time
        assert json.loads(row["payload"]) == json.loads(
            event.payload.model_dump_json(by_alias=True)
        )

    outcomes = [e for e in events if isinstance(e, ActionCompleted)]
    decisions = {e.seq: e for e in events if isinstance(e, ActionRequested)}
    actions = tables["agent_actions"]
    assert len(actions) == len(outcomes)
    for row, event in zip(actions, outcomes, strict=True):
        outcome = event.payload
        assert row["step"] == outcome.step
        assert row["action_type"] == outcome.action.value
        assert (row["from_x"], row["from_y"]) == (outcome.from_.x, outcome.from_.y)
        assert (row["to_x"], row["to_y"]) == (outcome.to.x, outcome.to.y)
        assert row["success"] is outcome.success
        assert json.loads(row["tiles_seen"]) == [list(t) for t in outcome.tiles_seen]
        assert row["footsteps"] == outcome.footsteps
        assert row["reasoning"] == decisions[event.seq - 1].payload.reasoning
        assert row["decided_at"] == decisions[event.seq - 1].time

    end = events[-1]
    assert isinstance(end, RunFinished)
    (experiment,) = tables["experiments"]
    assert experiment["status"] == ("succeeded" if end.payload.success else "stopped")
    assert experiment["stop_reason"] == end.payload.stop_reason.value
    assert experiment["actions"] == end.payload.actions == len(outcomes)
    assert experiment["footsteps"] == end.payload.footsteps
    assert (experiment["position_x"], experiment["position_y"]) == (
        outcomes[-1].payload.to.x,
        outcomes[-1].payload.to.y,
    )
    assert experiment["goal_seen"] is end.payload.goal_seen
    assert experiment["completed_at"] == end.time
    assert experiment["last_seq"] == end.seq
    assert json.loads(experiment["labels"]) == {"batch": "p1"}
    (maze,) = tables["mazes"]
    assert maze["content_hash"] == experiment["maze_hash"]


@pytest.mark.asyncio
async def test_running_experiment_shows_progress(pool: Any) -> None:
    events = await agent_run("run-partial")
    cut = next(
        i for i, e in enumerate(events) if isinstance(e, ActionCompleted) and e.payload.step == 5
    )
    await feed(pool, events[: cut + 1], [3])
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM experiments")
    outcome = events[cut]
    assert isinstance(outcome, ActionCompleted)
    assert row["status"] == "running" and row["stop_reason"] is None
    assert row["actions"] == 5
    assert row["footsteps"] == outcome.payload.footsteps
    assert (row["position_x"], row["position_y"]) == (outcome.payload.to.x, outcome.payload.to.y)
    assert row["last_action_at"] == outcome.time


@pytest.mark.asyncio
async def test_tokens_are_counted_per_call_and_zero_stays_zero(pool: Any) -> None:
    events = llm_like_run("run-llm", temperature=0.0)
    await feed(pool, events, [2])
    async with pool.acquire() as conn:
        experiment = await conn.fetchrow("SELECT * FROM experiments")
        calls = await conn.fetch("SELECT * FROM model_calls ORDER BY seq")
        actions = await conn.fetch("SELECT * FROM agent_actions ORDER BY step")
        hits = await conn.fetchval(
            "SELECT count(*) FROM experiments WHERE model_config @> '{\"temperature\": 0.0}'"
        )
    assert experiment["temperature"] == 0.0 and hits == 1
    assert json.loads(experiment["model_config"])["temperature"] == 0.0
    assert [c["input_tokens"] for c in calls] == [120, 150, 7]
    assert [c["turn"] for c in calls] == [1, 2, 2]
    assert experiment["input_tokens"] == 277 and experiment["output_tokens"] == 75
    assert experiment["model_calls"] == 3
    assert experiment["status"] == "failed"
    assert experiment["error_class"] == "ReadTimeout"
    # Usage sits on the first action of each call only, so nothing is counted twice.
    assert [a["input_tokens"] for a in actions] == [120, None, 150, None]
    assert actions[0]["reasoning"] == "<b>where</b>"
    assert actions[1]["assistant_message"] == "thinking..."
    assert actions[0]["cost_usd"] == Decimal("0")


@pytest.mark.asyncio
async def test_feeding_the_same_events_twice_changes_nothing(pool: Any) -> None:
    runs = [await agent_run(f"run-{m}", m, seed=4) for m in ("random", "wall-follower")]
    runs.append(llm_like_run("run-llm"))
    events = [e for run in runs for e in run]
    await feed(pool, events, random_sizes(2))
    async with pool.acquire() as conn:
        before = await snapshot(conn)
    await feed(pool, events, random_sizes(3))  # other batch boundaries
    await feed(pool, list(reversed(events)), [len(events)])  # one big out-of-order batch
    async with pool.acquire() as conn:
        after = await snapshot(conn)
        # The projection statements are idempotent by themselves too (archive bypassed).
        async with conn.transaction():
            await project_events(conn, events)
        again = await snapshot(conn)
    assert after == before
    assert again == before


@pytest.mark.asyncio
async def test_rebuild_reproduces_the_projections(pool: Any) -> None:
    events = await agent_run("run-a", "random", seed=9) + llm_like_run("run-b")
    await feed(pool, events, [5])
    async with pool.acquire() as conn:
        before = await snapshot(conn)
        await conn.execute("DELETE FROM agent_actions WHERE step > 3")
        await conn.execute("UPDATE experiments SET footsteps = 0")
    result = await rebuild_projections(pool, chunk=7)
    assert result.events_read == len(events)
    assert result.problems == []
    async with pool.acquire() as conn:
        assert await snapshot(conn) == before


@pytest.mark.asyncio
async def test_a_conflicting_event_is_reported_and_the_archive_keeps_the_first(
    pool: Any,
) -> None:
    events = await agent_run("run-c")
    async with pool.acquire() as conn:
        await store_batch(conn, events[:3])
        forged = events[2].model_copy(update={"event_id": uuid.uuid4()})
        result = await store_batch(conn, [forged])
        stored = await conn.fetchval("SELECT event_id FROM run_events WHERE seq = 3")
    assert result.archived == 0
    assert [(c.run_id, c.seq) for c in result.conflicts] == [("run-c", 3)]
    assert stored == events[2].event_id


def test_a_corrupt_log_is_reported_not_projected() -> None:
    events = llm_like_run("run-x")
    outcome_index = next(i for i, e in enumerate(events) if isinstance(e, ActionCompleted))
    del events[outcome_index - 1]  # the decision is gone
    rows = project(events, {})
    assert len(rows.problems) == 1
    assert "must follow its action.requested" in rows.problems[0]


@pytest.mark.asyncio
async def test_migrations_apply_once_even_when_started_concurrently(pg_template: str) -> None:
    from tests import pg_support

    name = await asyncio.to_thread(pg_support.create_database, "template0")  # empty
    try:
        conns = [await asyncpg.connect(pg_support.dsn_for(name)) for _ in range(3)]
        try:
            applied = await asyncio.gather(*(migrate(c) for c in conns))
            versions = sorted(len(batch) for batch in applied)
            assert versions == [0, 0, len(available_migrations())]  # one migrated, two waited
            history = await applied_migrations(conns[0])
            assert [m.version for m in history] == [m.version for m in available_migrations()]
            assert [await migrate(c) for c in conns] == [[], [], []]
        finally:
            for conn in conns:
                await conn.close()
    finally:
        await asyncio.to_thread(pg_support.drop_database, name)


@pytest.mark.asyncio
async def test_an_edited_migration_is_refused(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("UPDATE oriole_migrations SET checksum = 'sha256:0' WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn)
    finally:
        await conn.close()
