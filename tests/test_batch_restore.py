"""After a restart of the embedded broker, the archive puts unfinished batches back.

The "restart" is a fresh set of topics, as a new embedded broker has; the archive is filled
directly (no scheduler, no worker): what `restore_unfinished_batches` publishes is checked
record by record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from oriole.batch_events import BatchRunEnded, parse_batch_command, parse_batch_event
from oriole.events import RunFinished
from projections.replay_source import restore_unfinished_batches
from projections.store import store_batch
from tests.batch_support import LogBuilder, finished_batch, running_batch
from tests.kafka_support import TopicReader, make_stack
from tests.projection_support import agent_run

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

REFUSAL = [{"field": "maze_name", "reason": "unknown maze"}]


async def _archive_refused_start(conn: Any, run_id: str) -> None:
    """A start request of ``run_id`` that the maze processor rejected (as the projector
    archives it)."""
    await conn.execute(
        "INSERT INTO start_requests (origin, run_id, message, rejected_at, problems)"
        " VALUES ($1, $2, $3, now(), $4::jsonb)",
        f"old.experiments.start:0:{run_id}@0",
        run_id,
        json.dumps({"type": "experiment.start", "run_id": run_id}).encode(),
        json.dumps(REFUSAL),
    )


async def test_unfinished_batches_and_the_run_ends_they_missed_are_published(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    # b-open: c1:r2 (first attempt) and c2:r1:a2 (a retry) are in flight in its log.
    open_log = running_batch("b-open")
    # c1:r2 finished (the archive has its run.finished) but the broker died before the
    # forwarder told the scheduler; the retry c2:r1:a2 is still running (no end at all).
    finished_run = await agent_run("b-open:c1:r2", max_footsteps=25)
    running_run = (await agent_run("b-open:c2:r1:a2", max_footsteps=25))[:6]
    # b-refused: its only attempt was refused at admission; the rejection is archived.
    refused_log = LogBuilder("b-refused").started(repetitions=1)
    refused_log.launch("c1", 1)
    # Neither a finished nor a rejected batch comes back.
    done_log = finished_batch("b-done")
    rejected_log = LogBuilder("b-rejected").rejected()
    # A started batch whose log shows no launch comes back as it is; a run of it finished
    # before its launch was archived (the scheduler will launch it again, hear "duplicate
    # run id", and must learn its end from the archive).
    fresh_log = LogBuilder("b-fresh", start=open_log.start).started()
    unlogged_run = await agent_run("b-fresh:c1:r1", max_footsteps=25)

    conn = await asyncpg.connect(pg_dsn)
    try:
        logs = [open_log, refused_log, done_log, rejected_log, fresh_log]
        runs = finished_run + running_run + unlogged_run
        await store_batch(conn, runs, [e for log in logs for e in log.events])
        await _archive_refused_start(conn, "b-refused:c1:r1")
        # A refusal of a run that exists (a start repeated after a crash) is not an end.
        await _archive_refused_start(conn, "b-open:c2:r1:a2")
    finally:
        await conn.close()

    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)  # the fresh broker
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        restored = await restore_unfinished_batches(pool, kafka_broker, stack.topics)
    finally:
        await pool.close()
    # Oldest first (b-fresh started with b-open; ids break the tie).
    assert restored == ["b-fresh", "b-open", "b-refused"]

    expected_events = len(open_log.events) + len(refused_log.events) + len(fresh_log.events)
    async with TopicReader(kafka_broker, stack.topics.batches_events) as events:
        await events.until(lambda records: len(records) >= expected_events)
    by_batch: dict[str, list[Any]] = {}
    for record in events.records:
        event = parse_batch_event(record.value)
        assert record.key == event.batch_id.encode()
        assert dict(record.headers)["oriole-type"] == event.type.encode()
        by_batch.setdefault(event.batch_id, []).append(event)
    assert by_batch == {
        "b-open": open_log.events,
        "b-refused": refused_log.events,
        "b-fresh": fresh_log.events,
    }

    async with TopicReader(kafka_broker, stack.topics.batches_commands) as commands:
        await commands.until(lambda records: len(records) >= 3)
    # One partition per batch at most: order only holds within a batch.
    records = sorted(commands.records, key=lambda r: r.key)
    assert [r.key for r in records] == [b"b-fresh", b"b-open", b"b-refused"]
    unlogged, ended, refused = [parse_batch_command(r.value) for r in records]
    assert isinstance(unlogged, BatchRunEnded) and unlogged.run_id == "b-fresh:c1:r1"
    assert isinstance(ended, BatchRunEnded) and isinstance(refused, BatchRunEnded)
    assert (ended.batch_id, ended.run_id, ended.problems) == ("b-open", "b-open:c1:r2", [])
    last = finished_run[-1]
    assert isinstance(last, RunFinished)
    assert ended.finished == last.payload
    assert (refused.batch_id, refused.run_id, refused.finished) == (
        "b-refused", "b-refused:c1:r1", None,
    )  # fmt: skip
    assert [p.model_dump() for p in refused.problems] == REFUSAL


async def test_nothing_to_restore_publishes_nothing(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await store_batch(conn, [], finished_batch("b-over").events)
    finally:
        await conn.close()
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        assert await restore_unfinished_batches(pool, kafka_broker, stack.topics) == []
    finally:
        await pool.close()
    async with TopicReader(kafka_broker, stack.topics.batches_events) as events:
        await events.poll()
        await events.poll()
    assert events.records == []
