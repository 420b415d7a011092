"""The projector end to end: real broker, real workers, real PostgreSQL servers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from oriole import generators
from oriole.events import ActionCompleted, RunEvent
from projections.database import EmbeddedPostgres
from projections.migrate import migrate
from projections.rows import archive_row
from tests.kafka_support import (
    TopicReader,
    assert_clean_log,
    eventually,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)
from tests.projection_support import snapshot

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def archived_count(pool: Any) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM run_events"))


async def assert_projection_matches(pool: Any, logs: dict[str, list[RunEvent]]) -> None:
    async with pool.acquire() as conn:
        tables = await snapshot(conn)
    archive = tables["run_events"]
    assert len(archive) == sum(len(events) for events in logs.values())
    by_key = {(r["run_id"], r["seq"]): r for r in archive}
    for events in logs.values():
        for event in events:
            row = by_key[(event.run_id, event.seq)]
            expected = archive_row(event)
            assert (row["event_id"], row["type"], row["time"]) == (
                expected[2],
                expected[3],
                expected[5],
            )
            assert json.loads(row["payload"]) == json.loads(expected[6])
    experiments = {r["run_id"]: r for r in tables["experiments"]}
    assert set(experiments) == set(logs)
    for run_id, events in logs.items():
        end = events[-1].payload
        row = experiments[run_id]
        assert row["stop_reason"] == end.stop_reason.value  # type: ignore[union-attr]
        assert row["footsteps"] == end.footsteps  # type: ignore[union-attr]
        assert (row["position_x"], row["position_y"]) == (end.position.x, end.position.y)  # type: ignore[union-attr]
        outcomes = [e for e in events if isinstance(e, ActionCompleted)]
        actions = [r for r in tables["agent_actions"] if r["run_id"] == run_id]
        assert [a["step"] for a in actions] == [o.payload.step for o in outcomes]
        assert [(a["to_x"], a["to_y"]) for a in actions] == [
            (o.payload.to.x, o.payload.to.y) for o in outcomes
        ]
        assert [json.loads(a["tiles_seen"]) for a in actions] == [
            [list(t) for t in o.payload.tiles_seen] for o in outcomes
        ]


async def test_runs_are_archived_and_projected_through_kafka(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    runs = {
        f"run-{model}": start_event(
            f"run-{model}",
            generators.generate("backtracker", 21, 21, seed=i, name=f"m{i}").to_dict(),
            agent={"provider": "builtin", "model": model, "seed": 3},
            limits={"max_footsteps": 150},
        )
        for i, model in enumerate(("frontier", "random", "wall-follower"))
    }
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        async with (
            running_worker(stack),
            running_projector(stack, pool),
            TopicReader(kafka_broker, stack.topics.runs_events) as log,
        ):
            for run_id, body in runs.items():
                await publish(kafka_broker, stack.topics.experiments_start, body, run_id.encode())
            await log.until(finished(list(runs)))
            logs = {run_id: run_events(log.records, run_id) for run_id in runs}
            total = sum(len(events) for events in logs.values())
            await eventually(lambda: _at_least(pool, total))
        for events in logs.values():
            assert_clean_log(events)
        await assert_projection_matches(pool, logs)
    finally:
        await pool.close()


async def _at_least(pool: Any, total: int) -> bool:
    return await archived_count(pool) >= total


async def test_postgres_down_mid_run_then_back_loses_and_duplicates_nothing(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A second PostgreSQL server (embedded, started by the test) is stopped mid-run."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    server = EmbeddedPostgres(tmp_path / "pg" / "data")
    dsn = await server.start_async()
    pool = None
    try:
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        body = start_event(
            "run-outage",
            generators.generate("backtracker", 31, 31, seed=8, name="outage").to_dict(),
            agent={"provider": "builtin", "model": "random", "seed": 5},
            limits={"max_footsteps": 400, "max_actions": 1200},
        )
        async with (
            running_worker(stack),
            running_projector(stack, pool) as projector,
            TopicReader(kafka_broker, stack.topics.runs_events) as log,
        ):
            await publish(kafka_broker, stack.topics.experiments_start, body, b"run-outage")
            await eventually(lambda: _at_least(pool, 20))
            await server.stop_server_async()  # PostgreSQL goes away mid-run
            await log.until(finished(["run-outage"]))  # the run is not held up
            events = run_events(log.records, "run-outage")
            await eventually(_is_true(lambda: projector.waiting_for_database))
            await server.start_async()  # back: the projector catches up
            await eventually(lambda: _at_least(pool, len(events)))
        assert_clean_log(events)
        await assert_projection_matches(pool, {"run-outage": events})
    finally:
        if pool is not None:
            await pool.close()
        await server.stop_async()


def _is_true(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def test_an_archived_run_is_replayed_to_the_replay_topic(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    """From the archive alone: the run never went through this broker."""
    from oriole.events import parse_run_event
    from oriole.kafka.codec import REPLAY_HEADER
    from projections.replay_source import REPLAY_ID_HEADER, publish_replay
    from projections.store import run_events_of, store_batch
    from tests.projection_support import agent_run

    stack = await make_stack(tmp_path, kafka_broker, topic_prefix, partitions=2)
    recorded = await agent_run("run-archived", "wall-follower")
    conn = await asyncpg.connect(pg_dsn)
    try:
        await store_batch(conn, recorded)
        archived = await run_events_of(conn, "run-archived")
    finally:
        await conn.close()
    replay_id = await publish_replay(kafka_broker, stack.topics, archived)
    async with TopicReader(kafka_broker, stack.topics.runs_replay) as replay:
        await replay.until(lambda records: len(records) >= len(recorded))
    records = replay.records
    assert len(records) == len(recorded)
    assert {r.key for r in records} == {b"run-archived"}
    assert [parse_run_event(r.value) for r in records] == recorded
    for record in records:
        headers = dict(record.headers)
        assert headers[REPLAY_HEADER] == b"1"
        assert headers[REPLAY_ID_HEADER] == replay_id.encode()
