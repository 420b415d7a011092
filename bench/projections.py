"""Archive and projection throughput in PostgreSQL, rebuild speed, and replay speed.

Event logs are made in memory first (real rules, random agents on generated mazes, not
timed); then they are stored in batches as the projector stores them (COPY-staged archive +
projections, one transaction per batch), stored again (a full redelivery), rebuilt from the
archive, re-verified through the core, and re-published to the replay topic of an embedded
broker. Interleaved with the first store, batch by batch, the baseline: as many rows as each batch
wrote COPYed raw with asyncpg (``copy_records_to_table``, same connection, one transaction per
batch) into a plain table with the archive's columns and types (no keys, indexes or
projections); ``vs_raw_copy`` prints both rates and their ratio.
The server is ``ORIOLE_BENCH_DATABASE_URL`` (default: the local PostgreSQL with
trust auth); a scratch database is created and dropped.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.core import play_local
from bench.figures import compared
from oriole import generators
from oriole.events import ActionCompleted, RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, prepare_clients
from oriole.kafka.topics import Topics
from oriole.local_run import ManualClock
from oriole.replay import verify_run
from projections.migrate import migrate
from projections.replay_source import publish_replay
from projections.rows import Row, archive_row, keys_from_events
from projections.run_keys import RunKeys
from projections.store import ARCHIVE_ROW_COLUMNS, rebuild_projections, store_batch

RUNS = 40
FOOTSTEPS = 400
BATCH = 2000
T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def _make_run(index: int) -> list[RunEvent]:
    maze = generators.generate("backtracker", 61, 61, seed=index, name=f"bench-{index}")
    request = ExperimentStart(
        run_id=f"bench-{index:03d}",
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="random", seed=index),
        limits=RunLimits(max_footsteps=FOOTSTEPS, max_actions=4 * FOOTSTEPS),
    )
    return await play_local(request, maze, ManualClock(T0), tick_seconds=0.5)


def _interleave(runs: list[list[RunEvent]]) -> list[RunEvent]:
    """Events in the order a projector sees many concurrent runs: round robin."""
    merged: list[RunEvent] = []
    longest = max(len(run) for run in runs)
    for i in range(longest):
        merged.extend(run[i] for run in runs if i < len(run))
    return merged


def _server_dsn(database: str | None = None) -> str:
    base = os.environ.get(
        "ORIOLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    if database is None:
        return base
    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


async def _store_all(
    pool: Any, events: list[RunEvent], raw: list[Row] | None = None
) -> tuple[float, int, float]:
    """Seconds to store ``events`` as the projector does, projection rows written, and (with
    ``raw``, archive rows built beforehand) seconds of the interleaved raw-COPY baseline."""
    seconds = raw_seconds = 0.0
    projected = copied = 0
    run_keys = RunKeys()  # the projector's cache of run start times
    async with pool.acquire() as conn:
        if raw is not None:
            await conn.execute("CREATE TABLE raw_copy (LIKE run_events INCLUDING DEFAULTS)")
        for i in range(0, len(events), BATCH):
            started = time.perf_counter()
            result = await store_batch(conn, events[i : i + BATCH], run_keys=run_keys)
            seconds += time.perf_counter() - started
            projected += result.projected_rows
            if raw is None:
                continue
            # The same number of rows this batch wrote, COPYed raw in one transaction.
            count = min(BATCH, len(events) - i) + result.projected_rows
            records = [raw[(copied + k) % len(raw)] for k in range(count)]  # no keys
            copied += count
            started = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "raw_copy", records=records, columns=ARCHIVE_ROW_COLUMNS
                )
            raw_seconds += time.perf_counter() - started
        if raw is not None:
            await conn.execute("DROP TABLE raw_copy")
    return seconds, projected, raw_seconds


async def _measure(database: str) -> dict[str, Any]:
    runs = [await _make_run(i) for i in range(RUNS)]
    events = _interleave(runs)
    actions = sum(isinstance(e, ActionCompleted) for e in events)
    pool = await asyncpg.create_pool(_server_dsn(database), min_size=2, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        keys = keys_from_events(events)
        raw = [archive_row(e, keys[e.run_id]) for e in events]  # built before timing
        seconds, projected, raw_seconds = await _store_all(pool, events, raw)
        again, _, _ = await _store_all(pool, events)
        started = time.perf_counter()
        rebuilt = await rebuild_projections(pool)
        rebuild_seconds = time.perf_counter() - started
    finally:
        await pool.close()
    started = time.perf_counter()
    verified = [verify_run(run) for run in runs]
    verify_seconds = time.perf_counter() - started
    assert all(report.ok for report in verified)
    publish_seconds = await _publish(runs)
    figure = round((len(events) + projected) / seconds)
    return {
        "runs": RUNS,
        "events": len(events),
        "action_rows": actions,
        "batch_size": BATCH,
        "archive_events_per_second": round(len(events) / seconds),
        "projection_rows_per_second": round(projected / seconds),
        "rows_per_second_archive_plus_projections": figure,
        "vs_raw_copy": compared(figure, round((len(events) + projected) / raw_seconds), "rows/s"),
        "redelivered_events_per_second": round(len(events) / again),
        "rebuild_rows_per_second": round(rebuilt.rows_written / rebuild_seconds),
        "replay_verify_events_per_second": round(len(events) / verify_seconds),
        "replay_to_topic_events_per_second": round(len(events) / publish_seconds),
    }


async def _publish(runs: list[list[RunEvent]]) -> float:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        prepare_clients(True)
        topics = Topics(f"bench-{uuid.uuid4().hex[:6]}")
        started = time.perf_counter()
        for run in runs:
            await publish_replay(broker.bootstrap_servers, topics, run)
        return time.perf_counter() - started
    finally:
        await broker.stop()


async def _run() -> dict[str, Any]:
    database = f"oriole_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_server_dsn())
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        return await _measure(database)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> dict[str, Any]:
    return asyncio.run(_run())
