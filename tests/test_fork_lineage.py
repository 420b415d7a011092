"""The lineage of forked runs in the projections and the API, against a real PostgreSQL: the
`experiments.forked_from` / `fork_step` columns, the `v_run_family` view, a rebuild, migration
0008 on an archive that already holds forks, `GET /api/experiments/{id}` (children), the
`forked_from` filter and the all-runs feed's summary of a fork's start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from gateway.frames import run_summary
from oriole import generators
from oriole.events import RunEvent, dump_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.local_run import ManualClock
from oriole.schema_base import Point
from projections.migrate import MIGRATIONS_TABLE, available_migrations, migrate
from projections.store import rebuild_projections, store_batch
from tests import pg_support
from tests.fork_support import T0, admitted_fork, played, played_fork
from tests.gateway_support import archive_events, database_pool, http_client, running_gateway
from tests.kafka_support import make_stack
from tests.projection_support import snapshot

LINEAGE_MIGRATION = "fork_lineage"


@dataclass(frozen=True)
class Family:
    """A parent, two forks of it, and a fork of the first fork (after a step it lived)."""

    parent: list[RunEvent]
    child: list[RunEvent]
    sibling: list[RunEvent]
    grandchild: list[RunEvent]

    @property
    def events(self) -> list[RunEvent]:
        return [*self.parent, *self.child, *self.sibling, *self.grandchild]


async def family() -> Family:
    maze = generators.generate("backtracker", 21, 21, seed=4, name="lineage")
    request = ExperimentStart(
        run_id="run-lin-parent",
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model="random", seed=3),
        limits=RunLimits(max_footsteps=40, max_actions=200, goal_rule="reached"),
    )
    parent = await played(request, maze)
    limits = {"max_footsteps": 80, "max_actions": 300, "goal_rule": "reached"}

    async def fork(run_id: str, of: list[RunEvent], step: int, model: str, hours: int) -> Any:
        agent = {"provider": "builtin", "model": model, "seed": hours}
        admitted = admitted_fork(
            run_id, of, step, agent, requested_at=T0 + timedelta(hours=hours), limits=limits
        )
        clock = ManualClock(T0 + timedelta(hours=hours))
        return await played_fork(admitted, clock=clock, ids=hours)

    child = await fork("run-lin-child", parent, 10, "frontier", 1)
    sibling = await fork("run-lin-sibling", parent, 5, "wall-follower", 2)
    grandchild = await fork("run-lin-grandchild", child, 15, "random", 3)
    return Family(parent, child, sibling, grandchild)


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def lineage(conn: Any) -> dict[str, tuple[str | None, int | None]]:
    rows = await conn.fetch("SELECT run_id, forked_from, fork_step FROM experiments")
    return {r["run_id"]: (r["forked_from"], r["fork_step"]) for r in rows}


async def members(conn: Any, run_id: str) -> list[tuple[str, str, int, str | None, int | None]]:
    rows = await conn.fetch(
        "SELECT member_id, relation, depth, forked_from, fork_step FROM v_run_family "
        "WHERE run_id = $1 ORDER BY relation, depth, member_id",
        run_id,
    )
    return [tuple(r) for r in rows]


EXPECTED_LINEAGE = {
    "run-lin-parent": (None, None),
    "run-lin-child": ("run-lin-parent", 10),
    "run-lin-sibling": ("run-lin-parent", 5),
    "run-lin-grandchild": ("run-lin-child", 15),
}


async def check_family(conn: Any) -> None:
    assert await lineage(conn) == EXPECTED_LINEAGE
    assert await members(conn, "run-lin-parent") == [
        ("run-lin-child", "descendant", 1, "run-lin-parent", 10),
        ("run-lin-sibling", "descendant", 1, "run-lin-parent", 5),
        ("run-lin-grandchild", "descendant", 2, "run-lin-child", 15),
        ("run-lin-parent", "self", 0, None, None),
    ]
    assert await members(conn, "run-lin-grandchild") == [
        ("run-lin-child", "ancestor", 1, "run-lin-parent", 10),
        ("run-lin-parent", "ancestor", 2, None, None),
        ("run-lin-grandchild", "self", 0, "run-lin-child", 15),
    ]
    assert await members(conn, "run-lin-child") == [
        ("run-lin-parent", "ancestor", 1, None, None),
        ("run-lin-grandchild", "descendant", 1, "run-lin-child", 15),
        ("run-lin-child", "self", 0, "run-lin-parent", 10),
    ]
    # The function the view is made of, for one run; an unknown run has no family.
    assert await conn.fetchval("SELECT count(*) FROM oriole_run_family('run-lin-sibling')") == 2
    assert await conn.fetchval("SELECT count(*) FROM oriole_run_family('run-nobody')") == 0


@pytest.mark.asyncio
async def test_projections_keep_the_lineage_and_a_rebuild_gives_the_same_rows(pool: Any) -> None:
    runs = await family()
    async with pool.acquire() as conn:
        for events in (runs.parent, runs.child, runs.sibling, runs.grandchild):
            await store_batch(conn, events)
        await check_family(conn)
        # The fork's own steps are projected with the lineage's numbers; the inherited ones
        # are its parent's rows, not copied.
        steps = await conn.fetch(
            "SELECT step FROM agent_actions WHERE run_id = 'run-lin-child' ORDER BY step"
        )
        assert steps[0]["step"] == 11
        before = await snapshot(conn)
        await conn.execute("UPDATE experiments SET forked_from = NULL, fork_step = NULL")
    result = await rebuild_projections(pool, chunk=11)
    assert result.problems == []
    assert result.events_read == len(runs.events)
    async with pool.acquire() as conn:
        assert await snapshot(conn) == before
        await check_family(conn)


async def _migrate_before_lineage(conn: Any) -> None:
    """Apply the migrations before 0008 exactly as `migrate` records them."""
    await conn.execute(
        f"CREATE TABLE {MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for migration in available_migrations():
        if migration.name == LINEAGE_MIGRATION:
            return
        await conn.execute(migration.sql)
        await conn.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )
    raise AssertionError(f"no migration named {LINEAGE_MIGRATION}")


async def _copy_rows(source: Any, target: Any, table: str) -> int:
    """Every row of ``table`` from ``source``, in the columns ``target``'s table has."""
    columns = [
        r["column_name"]
        for r in await target.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            table,
        )
    ]
    names = ", ".join(columns)
    rows = await source.fetch(f"SELECT {names} FROM {table}")
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await target.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({marks})", [tuple(r) for r in rows]
    )
    return len(rows)


@pytest.mark.asyncio
async def test_the_migration_fills_the_lineage_of_an_archive_with_data(pool: Any) -> None:
    """An archive holding forks before 0008 (copied from a projected one, without the new
    columns) gets the same rows once 0008 is applied: the lineage comes from the archive."""
    runs = await family()
    async with pool.acquire() as conn:
        for events in (runs.parent, runs.child, runs.sibling, runs.grandchild):
            await store_batch(conn, events)
        projected = await snapshot(conn)
    name = await asyncio.to_thread(pg_support.create_database, "template0")
    try:
        old = await asyncpg.connect(pg_support.dsn_for(name), timeout=30)
        try:
            await _migrate_before_lineage(old)
            async with pool.acquire() as conn:
                for table in ("mazes", "experiments", "run_events", "agent_actions"):
                    assert await _copy_rows(conn, old, table) > 0, table
                await _copy_rows(conn, old, "model_calls")  # none: built-in agents
            applied = await migrate(old)
            assert applied[0].name == LINEAGE_MIGRATION
            assert await snapshot(old) == projected
            await check_family(old)
        finally:
            await old.close()
    finally:
        await asyncio.to_thread(pg_support.drop_database, name)


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_api_shows_parents_children_and_filters_by_parent(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    runs = await family()
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool) as gateway,
        http_client(gateway) as client,
    ):
        await archive_events(pool, runs.events)

        async def one(run_id: str) -> dict[str, Any]:
            answer = await client.get(f"/api/experiments/{run_id}")
            assert answer.status_code == 200, answer.text
            document: dict[str, Any] = answer.json()
            return document

        parent = await one("run-lin-parent")
        assert parent["experiment"]["forked_from"] is None
        assert parent["experiment"]["fork_step"] is None
        children = parent["children"]
        assert [c["run_id"] for c in children] == ["run-lin-child", "run-lin-sibling"]
        ends = {events[0].run_id: events[-1].payload for events in (runs.child, runs.sibling)}
        for child in children:
            end = ends[child["run_id"]]
            assert child["fork_step"] == EXPECTED_LINEAGE[child["run_id"]][1]
            assert child["provider"] == "builtin"
            assert child["success"] == end.success  # type: ignore[union-attr]
            assert child["status"] in ("succeeded", "stopped")
        assert [c["model_name"] for c in children] == ["frontier", "wall-follower"]

        child = await one("run-lin-child")
        assert child["experiment"]["forked_from"] == "run-lin-parent"
        assert child["experiment"]["fork_step"] == 10
        assert [c["run_id"] for c in child["children"]] == ["run-lin-grandchild"]
        assert [c["fork_step"] for c in child["children"]] == [15]
        # Its own actions only, numbered over the lineage (the first 10 are the parent's).
        assert child["actions"][0]["step"] == 11
        assert (await one("run-lin-grandchild"))["children"] == []

        async def ids(query: str) -> list[str]:
            answer = await client.get(f"/api/experiments{query}")
            assert answer.status_code == 200, answer.text
            return [e["run_id"] for e in answer.json()["experiments"]]

        assert await ids("?forked_from=run-lin-parent") == ["run-lin-sibling", "run-lin-child"]
        assert await ids("?forked_from=run-lin-child&model=random") == ["run-lin-grandchild"]
        assert await ids("?forked_from=run-nobody") == []
        listed = (await client.get("/api/experiments?forked_from=run-lin-child")).json()
        assert listed["experiments"][0]["fork_step"] == 15
        twice = await client.get("/api/experiments?forked_from=a&forked_from=b")
        assert twice.status_code == 400
        assert [p["field"] for p in twice.json()["problems"]] == ["forked_from"]

        # A fork the parent's archive cannot give is refused with the field and the reason
        # (what the viewer's fork form shows).
        for point, field, words in (
            ({"run_id": "run-lin-parent", "after_step": 10_000}, "fork_of.after_step", "between"),
            ({"run_id": "run-nobody", "after_step": 1}, "fork_of.run_id", "not in the archive"),
            ({"run_id": "run-lin-child", "after_step": 3}, "fork_of.after_step", "instead"),
        ):
            body = {"fork_of": point, "agent": {"provider": "builtin", "model": "frontier"}}
            refused = await client.post("/api/experiments", json=body)
            assert refused.status_code == 400, refused.text
            problems = {p["field"]: p["reason"] for p in refused.json()["problems"]}
            assert words in problems[field], problems


def test_the_feed_summary_of_a_forks_start_names_its_parent() -> None:
    start = next(iter(_first_events()))
    payload = json.loads(dump_run_event(start))["payload"]
    summary = run_summary("run.started", payload, "2026-12-01T10:00:00+00:00")
    assert summary is not None
    assert summary["fork_of"] == {"run_id": "run-x", "after_step": 4}
    assert (summary["forked_from"], summary["fork_step"]) == ("run-x", 4)
    plain = dict(payload, spec={**payload["spec"], "fork_of": None})
    summary = run_summary("run.started", plain, "2026-12-01T10:00:00+00:00")
    assert summary is not None
    assert (summary["fork_of"], summary["forked_from"], summary["fork_step"]) == (None,) * 3


def _first_events() -> list[RunEvent]:
    """The run.started of a fork of a short run after its step 4."""
    maze = generators.generate("backtracker", 11, 11, seed=2, name="summary")
    request = ExperimentStart(
        run_id="run-x",
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model="random", seed=1),
        limits=RunLimits(max_footsteps=8, max_actions=20, goal_rule="reached"),
    )
    parent = asyncio.run(played(request, maze))
    limits = {"max_footsteps": 8, "max_actions": 20, "goal_rule": "reached"}
    agent = {"provider": "builtin", "model": "frontier"}
    admitted = admitted_fork("run-y", parent, 4, agent, limits=limits)
    return asyncio.run(played_fork(admitted))[:1]
