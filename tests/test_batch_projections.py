"""Batch events in PostgreSQL (migration 0005): the archive, `batches`, `batch_runs`, the
batch columns of v_batch_monitor, idempotence, rebuild, and the projector reading the topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from oriole.batch_events import BatchEvent, RunLaunched, dump_batch_event
from projections.batch_rows import batch_event_from_archive, place_of
from projections.store import rebuild_projections, store_batch
from tests.batch_support import CELLS, LogBuilder, finished_batch, running_batch
from tests.kafka_support import eventually, make_stack, publish, running_projector
from tests.projection_support import agent_run

pytestmark = pytest.mark.asyncio

BATCH_TABLES = {"batch_events": "batch_id, seq", "batches": "batch_id", "batch_runs": "run_id"}


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def feed(pool: Any, events: list[BatchEvent], sizes: list[int]) -> None:
    """Store ``events`` in consecutive projector batches of the given sizes (cycled)."""
    position, index = 0, 0
    while position < len(events):
        size = sizes[index % len(sizes)]
        async with pool.acquire() as conn:
            await store_batch(conn, [], events[position : position + size])
        position += size
        index += 1


async def tables(pool: Any) -> dict[str, list[dict[str, Any]]]:
    async with pool.acquire() as conn:
        return {
            table: [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")]
            for table, order in BATCH_TABLES.items()
        }


def without_archived_at(snapshot: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {t: [{k: v for k, v in r.items() if k != "archived_at"} for r in rows]
            for t, rows in snapshot.items()}  # fmt: skip


async def test_a_finished_batch_is_archived_and_projected(pool: Any) -> None:
    log = finished_batch("b-fin")
    await feed(pool, log.events, [3, 1, 5])
    snap = await tables(pool)
    archive = snap["batch_events"]
    assert [(r["batch_id"], r["seq"], r["type"]) for r in archive] == [
        (e.batch_id, e.seq, e.type) for e in log.events
    ]
    for row, event in zip(archive, log.events, strict=True):
        assert row["event_id"] == event.event_id and row["time"] == event.time
        assert json.loads(row["event"]) == json.loads(dump_batch_event(event))
        assert batch_event_from_archive(row) == event  # the archive gives the event back
    [batch] = snap["batches"]
    assert {k: v for k, v in batch.items() if k not in ("labels", "warnings", "cells")} == {
        "batch_id": "b-fin",
        "name": "grid",
        "status": "finished",
        "stop_reason": "completed",
        "detail": "all done",
        "problems": None,
        "planned": 4,
        "launched": 5,  # four planned runs, one retried
        "finished": 4,
        "succeeded": 3,  # c1:r2 ended without the goal
        "failed": 0,  # the failed attempt was retried and its retry succeeded
        "in_flight": 0,
        "spent_usd": Decimal("0.0170000000"),
        "spent_tokens": 170,
        "requested_by": "alice",
        "started_at": log.events[0].time,
        "finished_at": log.events[-1].time,
        "last_seq": len(log.events),
    }
    assert json.loads(batch["labels"]) == {"team": "maze"}
    assert json.loads(batch["warnings"]) == ["a warning"]
    assert json.loads(batch["cells"]) == CELLS
    runs = {r["run_id"]: r for r in snap["batch_runs"]}
    assert sorted(runs) == ["b-fin:c1:r1", "b-fin:c1:r2", "b-fin:c2:r1", "b-fin:c2:r1:a2",
                            "b-fin:c2:r2"]  # fmt: skip
    failed = runs["b-fin:c2:r1"]
    assert (failed["planned_run_id"], failed["cell"], failed["repetition"]) == (
        "b-fin:c2:r1", "c2", 1,
    )  # fmt: skip
    assert (failed["attempt"], failed["ended"], failed["failed"], failed["retry"]) == (
        1, True, True, True,
    )  # fmt: skip
    assert failed["stop_reason"] == "failed" and failed["tokens"] == 20
    retry = runs["b-fin:c2:r1:a2"]
    assert (retry["planned_run_id"], retry["attempt"], retry["success"]) == (
        "b-fin:c2:r1", 2, True,
    )  # fmt: skip
    assert retry["cost_usd"] == Decimal("0.004") and retry["retry"] is False
    assert all(r["ended"] and r["launched_at"] < r["ended_at"] for r in runs.values())


async def test_a_running_batch_and_a_rejected_one(pool: Any) -> None:
    running = running_batch("b-run")
    rejected = LogBuilder("b-rej").rejected()
    await feed(pool, running.events + rejected.events, [100])
    snap = await tables(pool)
    batches = {r["batch_id"]: r for r in snap["batches"]}
    live = batches["b-run"]
    assert (live["status"], live["stop_reason"], live["finished_at"]) == ("running", None, None)
    # two first attempts and a retry launched; c1:r1 done; c1:r2 and the retry in flight
    counts = ("launched", "finished", "succeeded", "in_flight")
    assert [live[c] for c in counts] == [4, 1, 1, 2]
    assert (live["spent_usd"], live["spent_tokens"]) == (Decimal("0.0100000000"), 100)
    ended = {r["run_id"]: r["ended"] for r in snap["batch_runs"]}
    assert ended == {"b-run:c1:r1": True, "b-run:c2:r1": True, "b-run:c1:r2": False,
                     "b-run:c2:r1:a2": False}  # fmt: skip
    refused = batches["b-rej"]
    assert (refused["status"], refused["name"], refused["planned"]) == ("rejected", None, 0)
    assert refused["detail"] == "agents: no such agent"
    assert json.loads(refused["problems"]) == [{"field": "agents", "reason": "no such agent"}]
    assert refused["requested_by"] == "bob"
    assert refused["finished_at"] == refused["started_at"] == rejected.events[0].time


async def test_events_read_twice_change_nothing(pool: Any) -> None:
    log = finished_batch("b-twice")
    other = running_batch("b-other")
    await feed(pool, log.events + other.events, [4, 7])
    once = without_archived_at(await tables(pool))
    # Redeliveries: everything again in other chunks, an old event after newer ones, and a
    # batch that mixes known and new events.
    await feed(pool, list(reversed(log.events)), [1])
    await feed(pool, log.events[:6] + other.events, [2, 9])
    async with pool.acquire() as conn:
        result = await store_batch(conn, [], log.events[3:5] * 2)
    assert (result.archived, result.projected_rows, result.conflicts) == (0, 0, [])
    assert without_archived_at(await tables(pool)) == once


async def test_a_different_event_under_an_archived_key_is_refused(pool: Any) -> None:
    log = running_batch("b-conflict")
    await feed(pool, log.events, [100])
    before = without_archived_at(await tables(pool))
    impostor = log.events[1].model_copy(update={"event_id": uuid.uuid4()})
    async with pool.acquire() as conn:
        result = await store_batch(conn, [], [impostor])
    [conflict] = result.conflicts
    assert (conflict.kind, conflict.run_id, conflict.seq) == ("batch", "b-conflict", 2)
    assert conflict.offered == str(impostor.event_id)
    assert conflict.stored == str(log.events[1].event_id)
    assert without_archived_at(await tables(pool)) == before


async def test_run_and_batch_events_of_one_poll_share_a_transaction(pool: Any) -> None:
    run = await agent_run("b-tx:c1:r1", max_footsteps=20)
    log = LogBuilder("b-tx").started()
    log.launch("c1", 1)
    broken = LogBuilder("b-tx").started().events[0].model_copy(update={"seq": 5})
    async with pool.acquire() as conn:
        # An event the database refuses rolls back everything of the poll: a NUL character.
        poison = broken.model_copy(
            update={"payload": broken.payload.model_copy(update={"name": "a\u0000b"})}  # type: ignore[union-attr]
        )
        with pytest.raises(asyncpg.PostgresError):
            await store_batch(conn, run, [*log.events, poison])
        assert await conn.fetchval("SELECT count(*) FROM run_events") == 0
        assert await conn.fetchval("SELECT count(*) FROM batch_events") == 0
        result = await store_batch(conn, run, log.events)
    assert result.archived == len(run) + len(log.events)


async def test_rebuild_refills_the_batch_tables(pool: Any) -> None:
    await feed(pool, finished_batch("b-re1").events + running_batch("b-re2").events, [5])
    before = await tables(pool)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM batch_runs WHERE cell = 'c2'")
        await conn.execute("UPDATE batches SET launched = 0, status = 'running'")
        await conn.execute("INSERT INTO batches (batch_id, status, started_at, last_seq)"
                           " VALUES ('stray', 'running', now(), 1)")  # fmt: skip
    result = await rebuild_projections(pool, chunk=4)
    assert result.problems == []
    assert result.events_read == len(before["batch_events"])
    assert await tables(pool) == before


async def test_a_run_id_that_is_not_of_its_batch_is_reported_and_archived(pool: Any) -> None:
    log = LogBuilder("b-odd").started()
    odd = RunLaunched.model_validate(
        {**log.events[0].model_dump(exclude={"type", "payload", "event_id"}), "seq": 2,
         "payload": {"run_id": "elsewhere:c1:r1", "planned_run_id": "b-odd:c1:r1", "attempt": 1}}
    )  # fmt: skip
    async with pool.acquire() as conn:
        result = await store_batch(conn, [], [*log.events, odd])
    assert result.archived == 2
    assert result.problems == [
        "batch b-odd: run id 'elsewhere:c1:r1' is not BATCH:CELL:rN of this batch"
    ]
    snap = await tables(pool)
    assert snap["batch_runs"] == [] and snap["batches"][0]["launched"] == 1
    assert place_of("b", "b:cell-x:r12:a3") == ("cell-x", 12)


async def test_the_batch_monitor_names_batch_cell_and_repetition(pool: Any) -> None:
    log = LogBuilder("b-mon").started()
    log.launch("c2", 2)
    batch_run = await agent_run("b-mon:c2:r2", max_footsteps=20)
    plain_run = await agent_run("plain-run", max_footsteps=20)
    async with pool.acquire() as conn:
        await store_batch(conn, batch_run + plain_run, log.events)
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'v_batch_monitor' ORDER BY ordinal_position"
            )
        ]
        rows = await conn.fetch(
            "SELECT run_id, batch_id, cell, repetition, final_x FROM v_batch_monitor"
            " ORDER BY run_id"
        )
    # Added at the end: every column of migration 2 keeps its place.
    assert columns[:2] == ["run_id", "model"]
    assert columns[-5:] == ["final_x", "final_y", "batch_id", "cell", "repetition"]
    assert [tuple(r)[:4] for r in rows] == [
        ("b-mon:c2:r2", "b-mon", "c2", 2),
        ("plain-run", None, None, None),
    ]


async def test_a_writer_login_stores_batch_events(pg_dsn: str) -> None:
    name = f"oriole_test_writer_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE oriole_writer')
    try:
        parts = urlsplit(pg_dsn)
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{name}@{parts.hostname or '127.0.0.1'}{port}"
        user_dsn = urlunsplit(parts._replace(netloc=netloc))  # the test server trusts local users
        writer = await asyncpg.connect(user_dsn)
        try:
            log = finished_batch("b-writer")
            await store_batch(writer, [], log.events[:5])
            result = await store_batch(writer, [], log.events)  # known keys: the slow path
            assert result.archived == len(log.events) - 5 and result.problems == []
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await writer.execute("DELETE FROM batch_events")
        finally:
            await writer.close()
    finally:
        await admin.execute(f'DROP OWNED BY "{name}"')
        await admin.execute(f'DROP ROLE "{name}"')
        await admin.close()


@pytest.mark.slow
async def test_the_projector_reads_batch_events_from_kafka(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pool: Any
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix, partitions=2)
    log = finished_batch("b-kafka")
    topic = stack.topics.batches_events
    async with running_projector(stack, pool):
        for event in log.events[:7]:
            await publish(kafka_broker, topic, dump_batch_event(event), b"b-kafka")
        await publish(kafka_broker, topic, b"not a batch event", b"b-kafka")  # dead-lettered
        for event in [*log.events[5:], *log.events]:  # a redelivery, too
            await publish(kafka_broker, topic, dump_batch_event(event), b"b-kafka")

        async def finished() -> bool:
            status = await pool.fetchval("SELECT status FROM batches WHERE batch_id = 'b-kafka'")
            return bool(status == "finished")

        await eventually(finished)
    snap = await tables(pool)
    assert [r["seq"] for r in snap["batch_events"]] == list(range(1, len(log.events) + 1))
    assert snap["batches"][0]["launched"] == 5 and len(snap["batch_runs"]) == 5
