"""Archive and projection throughput in PostgreSQL, rebuild speed, and replay speed.

Event logs are made in memory first (real rules, random agents on generated mazes, not
timed); then they are stored in batches as the projector stores them (COPY-staged archive +
projections, one transaction per batch), stored again (a full redelivery), rebuilt from the
archive, re-verified through the core, and re-published to the replay topic of an embedded
broker. The server is ``ORIOLE_BENCH_DATABASE_URL`` (default: the local PostgreSQL with
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

from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import ActionCompleted, RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, prepare_clients
from oriole.kafka.topics import Topics
from oriole.local_run import LocalRun, ManualClock
from oriole.replay import verify_run
from projections.migrate import migrate
from projections.replay_source import publish_replay
from projections.store import rebuild_projections, store_batch

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
    clock = ManualClock(T0)
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(0.5)
        run.send(decision.to_intent(request.run_id, run.state.seq, run.state.turn))
    return run.events


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


async def _store_all(pool: Any, events: list[RunEvent]) -> tuple[float, int]:
    started = time.perf_counter()
    projected = 0
    async with pool.acquire() as conn:
        for i in range(0, len(events), BATCH):
            result = await store_batch(conn, events[i : i + BATCH])
            projected += result.projected_rows
    return time.perf_counter() - started, projected


async def _measure(database: str) -> dict[str, Any]:
    runs = [await _make_run(i) for i in range(RUNS)]
    events = _interleave(runs)
    actions = sum(isinstance(e, ActionCompleted) for e in events)
    pool = await asyncpg.create_pool(_server_dsn(database), min_size=2, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        seconds, projected = await _store_all(pool, events)
        again, _ = await _store_all(pool, events)
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
    return {
        "runs": RUNS,
        "events": len(events),
        "action_rows": actions,
        "batch_size": BATCH,
        "archive_events_per_second": round(len(events) / seconds),
        "projection_rows_per_second": round(projected / seconds),
        "rows_per_second_archive_plus_projections": round((len(events) + projected) / seconds),
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
