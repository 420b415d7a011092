"""Migration 7: the archive and the big projections partitioned by the month their run
started, on a real PostgreSQL. The conversion keeps every row, rows land in their month's
partition (or the DEFAULT one), and writing the same events again inserts nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from oriole.events import RunEvent
from oriole.kafka.topics import Topics
from projections.migrate import migrate, prepare_partitions
from projections.partitions import ensure_partitions, month_of, next_month, partitions
from projections.projector import Projector
from projections.run_keys import RunKeys
from projections.store import store_batch
from tests import pg_support
from tests.archive_support import CONVERTED, checksums, columns, copy_tables, migrate_to, run_at
from tests.projection_support import llm_like_run, snapshot

pytestmark = pytest.mark.asyncio

STARTS = {
    "run-jan": datetime(2025, 1, 10, 8, 0, tzinfo=UTC),
    "run-jan-late": datetime(2025, 1, 31, 23, 59, 50, tzinfo=UTC),  # ends in February
    "run-feb": datetime(2025, 2, 3, 12, 0, tzinfo=UTC),
    "run-jun": datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
}


async def logs() -> dict[str, list[RunEvent]]:
    made = {
        run_id: await run_at(run_id, start, seed=i + 1)
        for i, (run_id, start) in enumerate(STARTS.items())
    }
    made["run-feb-running"] = await run_at(
        "run-feb-running", datetime(2025, 2, 9, tzinfo=UTC), finished=False
    )
    made["run-llm"] = llm_like_run("run-llm")  # model calls; started 2026-11-01
    return made


def interleaved(runs: dict[str, list[RunEvent]]) -> list[RunEvent]:
    merged: list[RunEvent] = []
    for i in range(max(len(run) for run in runs.values())):
        merged.extend(run[i] for run in runs.values() if i < len(run))
    return merged


async def store_in_batches(conn: Any, events: list[RunEvent], size: int = 37) -> int:
    """As the projector stores them (one cache of run keys); the events archived."""
    keys = RunKeys()
    archived = 0
    for i in range(0, len(events), size):
        archived += (await store_batch(conn, events[i : i + size], run_keys=keys)).archived
    return archived


@pytest_asyncio.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg_dsn, timeout=30)
    try:
        yield connection
    finally:
        await connection.close()


async def view_shapes(conn: asyncpg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Every view's columns and their types, in order."""
    rows = await conn.fetch(
        "SELECT c.relname AS view, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type"
        " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0"
        " ORDER BY c.relname, a.attnum"
    )
    shapes: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        shapes.setdefault(row["view"], []).append((row["name"], row["type"]))
    return shapes


def partition_name(table: str, started: datetime) -> str:
    month = month_of(started)
    return f"{table}_p{month.year}_{month.month:02d}"


async def test_migration_converts_an_archive_holding_data_without_losing_a_row(
    conn: asyncpg.Connection,
) -> None:
    runs = await logs()
    await store_in_batches(conn, interleaved(runs))  # the current schema, the projector's way
    old = await asyncio.to_thread(pg_support.create_database, "template0")
    try:
        legacy = await asyncpg.connect(pg_support.dsn_for(old), timeout=30)
        try:
            await migrate_to(legacy, 6)
            await copy_tables(conn, legacy, {**CONVERTED, "mazes": "content_hash",
                                             "experiments": "run_id"})  # fmt: skip
            v6 = {table: await columns(legacy, table) for table in CONVERTED}
            before = await checksums(legacy, CONVERTED, v6)
            assert before["run_events"][0] == sum(len(run) for run in runs.values())
            assert before["model_calls"][0] > 0 and before["agent_actions"][0] > 0

            shapes = await view_shapes(legacy)
            applied = await migrate(legacy)
            assert applied[0].version == 7

            # Every row kept, unchanged, and keyed exactly as the projector keys new rows.
            assert await checksums(legacy, CONVERTED, v6) == before
            now = {table: await columns(conn, table) for table in CONVERTED}
            assert await checksums(legacy, CONVERTED, now) == await checksums(conn, CONVERTED, now)
            placed = await legacy.fetch(
                "SELECT DISTINCT run_id, run_started_at, tableoid::regclass::text AS part"
                " FROM run_events"
            )
            assert {r["run_id"]: r["run_started_at"] for r in placed} == {
                run_id: run[0].time for run_id, run in runs.items()
            }
            for row in placed:
                assert row["part"] == partition_name("run_events", row["run_started_at"])
            # The views were dropped and made again: the same columns, the same rows.
            assert {v: c for v, c in (await view_shapes(legacy)).items() if v in shapes} == shapes
            for view in ("v_experiment_summary", "v_batch_monitor", "v_turn_statistics",
                         "v_action_patterns", "v_model_performance"):  # fmt: skip
                query = f"SELECT count(*) FROM {view}"
                assert await legacy.fetchval(query) == await conn.fetchval(query)
        finally:
            await legacy.close()
    finally:
        await asyncio.to_thread(pg_support.drop_database, old)


async def test_rows_land_in_the_partition_of_their_runs_month(conn: asyncpg.Connection) -> None:
    runs = await logs()
    for run in runs.values():  # some before the events, some after (moved out of DEFAULT)
        if run[0].time.year == 2025:
            await prepare_partitions(conn, run[0].time)
    await store_in_batches(conn, interleaved(runs))
    for run in runs.values():
        await prepare_partitions(conn, run[0].time)
    for table in CONVERTED:
        rows = await conn.fetch(
            f"SELECT run_id, run_started_at, tableoid::regclass::text AS part FROM {table}"
        )
        assert rows
        for row in rows:
            assert row["run_started_at"] == runs[row["run_id"]][0].time
            assert row["part"] == partition_name(table, row["run_started_at"])
    # A run that started a minute before February stays whole in January.
    late = await conn.fetch(
        "SELECT DISTINCT tableoid::regclass::text AS part FROM run_events WHERE run_id = $1",
        "run-jan-late",
    )
    assert [r["part"] for r in late] == ["run_events_p2025_01"]
    assert runs["run-jan-late"][-1].time.month == 2


async def test_a_month_without_partition_lands_in_default_then_moves_to_its_own(
    conn: asyncpg.Connection,
) -> None:
    started = datetime(2019, 3, 10, tzinfo=UTC)
    events = await run_at("run-old", started)
    archived = await store_in_batches(conn, events)
    assert archived == len(events)
    for table in CONVERTED:
        parts = await conn.fetch(f"SELECT DISTINCT tableoid::regclass::text AS p FROM {table}")
        assert [r["p"] for r in parts] in ([f"{table}_default"], [])
    actions = await conn.fetchval("SELECT count(*) FROM agent_actions")
    assert actions > 0

    made = await prepare_partitions(conn, started)
    assert "run_events_p2019_03" in made and "agent_actions_p2019_04" in made
    assert await conn.fetchval("SELECT count(*) FROM run_events_default") == 0
    assert await conn.fetchval("SELECT count(*) FROM run_events_p2019_03") == len(events)
    assert await conn.fetchval("SELECT count(*) FROM agent_actions_p2019_03") == actions
    assert await prepare_partitions(conn, started) == []  # there already
    names = {p.name for p in await partitions(conn)}
    assert {"run_events_default", "model_calls_p2019_03", "model_calls_p2019_04"} <= names


async def test_writing_the_same_events_again_inserts_nothing(conn: asyncpg.Connection) -> None:
    runs = await logs()
    events = interleaved(runs)
    assert await store_in_batches(conn, events) == len(events)
    before = await snapshot(conn)
    # Redelivered in other batch boundaries, by a process that never saw the starts.
    assert await store_in_batches(conn, events, size=101) == 0
    for i in range(0, len(events), 500):
        result = await store_batch(conn, events[i : i + 500])  # no cache: looked up
        assert (result.archived, result.conflicts, result.problems) == (0, [], [])
    assert await snapshot(conn) == before
    # A different event under an archived key is still refused and reported.
    copy = events[7].model_copy(update={"event_id": uuid.uuid4()})
    result = await store_batch(conn, [copy])
    assert result.archived == 0
    assert [(c.run_id, c.seq) for c in result.conflicts] == [(copy.run_id, copy.seq)]
    assert await snapshot(conn) == before


async def test_a_run_keeps_the_key_of_its_archived_rows_in_a_new_process(
    conn: asyncpg.Connection,
) -> None:
    events = await run_at("run-split", datetime(2025, 1, 31, 23, 0, tzinfo=UTC), footsteps=40)
    half = len(events) // 2
    await store_batch(conn, events[:half])
    keys = RunKeys()
    await store_batch(conn, events[half:], run_keys=keys)  # run.started not in this batch
    assert len(keys) == 1  # looked up once, then cached
    stored = await conn.fetch(
        "SELECT DISTINCT run_started_at FROM run_events WHERE run_id = 'run-split'"
        " UNION SELECT DISTINCT run_started_at FROM agent_actions WHERE run_id = 'run-split'"
    )
    assert [r["run_started_at"] for r in stored] == [events[0].time]


async def test_a_user_that_may_not_create_tables_skips_the_partitions(pg_dsn: str) -> None:
    name = f"oriole_test_writer_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_dsn, timeout=30)
    try:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE oriole_writer')
        parts = urlsplit(pg_dsn)
        writer_dsn = urlunsplit(
            parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port or 5432}")
        )
        writer = await asyncpg.connect(writer_dsn, timeout=30)
        try:
            assert await ensure_partitions(writer, datetime(2018, 5, 1, tzinfo=UTC)) == []
            assert await migrate(writer) == []
            events = await run_at("run-writer", datetime(2018, 5, 2, tzinfo=UTC))
            assert (await store_batch(writer, events)).archived == len(events)
        finally:
            await writer.close()
        assert await admin.fetchval("SELECT count(*) FROM run_events_default") == len(events)
    finally:
        await admin.execute(f'DROP OWNED BY "{name}"')
        await admin.execute(f'DROP ROLE "{name}"')
        await admin.close()


async def test_the_projector_makes_this_and_next_months_partitions_when_missing(
    pg_dsn: str,
) -> None:
    now = datetime.now(UTC)
    this, upcoming = month_of(now), next_month(month_of(now))
    names = [f"{t}_p{m.year}_{m.month:02d}" for t in CONVERTED for m in (this, upcoming)]
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            for name in names:
                await conn.execute(f"DROP TABLE IF EXISTS {name}")
        projector = Projector(bootstrap_servers="127.0.0.1:9", topics=Topics("t"), pool=pool)
        events = await run_at("run-now", now)
        assert await projector._store(list(events), asyncio.Event()) is not None
        async with pool.acquire() as conn:
            present = {p.name for p in await partitions(conn)}
            assert set(names) <= present
            part = await conn.fetchval(
                "SELECT DISTINCT tableoid::regclass::text FROM run_events WHERE run_id = 'run-now'"
            )
        assert part == partition_name("run_events", now)
        assert len(projector.run_keys) == 1
    finally:
        await pool.close()
