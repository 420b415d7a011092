"""Start requests are archived as they arrive; the ones that never ran are published again.

Issue 11, defect 8: ten starts acknowledged by the embedded broker 25 ms before a kill -9 of
`oriole up` never ran and left no trace. Here the "crash" is a worker that never got to
them; the "restart" is a fresh set of topics, as a new embedded broker has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from oriole.origin import derived_run_id
from projections.replay_source import republish_unstarted_requests
from projections.start_requests import unstarted_requests
from tests.kafka_support import (
    TopicReader,
    eventually,
    finished,
    make_stack,
    publish,
    running_projector,
    running_worker,
    start_event,
)
from tests.projection_support import small_maze

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def _requests(pool: Any) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT origin, run_id, message, rejected_at, problems FROM start_requests "
            "ORDER BY received_at, origin"
        )
    return [dict(r) for r in rows]


async def test_requests_that_never_ran_are_published_again_after_a_restart(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    maze = small_maze().to_dict()
    before = await make_stack(tmp_path / "before", kafka_broker, topic_prefix)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    named = start_event("run-named", maze, limits={"max_footsteps": 30})
    anonymous = json.loads(start_event("ignored", maze, limits={"max_footsteps": 30}))
    del anonymous["run_id"]
    try:
        # The broker acknowledged them, the projector archived them, no worker ran them.
        async with running_projector(before, pool):
            await publish(kafka_broker, before.topics.experiments_start, named, key=b"k1")
            await publish(
                kafka_broker, before.topics.experiments_start, json.dumps(anonymous).encode()
            )
            await publish(kafka_broker, before.topics.experiments_start, b"\x00 not json")

            async def three_archived() -> bool:
                return len(await _requests(pool)) == 3

            await eventually(three_archived)
        by_message = {bytes(r["message"]): r for r in await _requests(pool)}
        named_row = by_message[named]
        anonymous_row = by_message[json.dumps(anonymous).encode()]
        junk_row = by_message[b"\x00 not json"]
        assert named_row["run_id"] == "run-named"
        # A start naming no run id gets the id the maze processor derives from its record.
        assert anonymous_row["run_id"] == derived_run_id(anonymous_row["origin"])
        assert anonymous_row["origin"].startswith(f"{before.topics.experiments_start}:")
        async with pool.acquire() as conn:
            waiting = await unstarted_requests(conn)
        assert {w.run_id for w in waiting} == {r["run_id"] for r in by_message.values()}

        # A restart: a fresh broker (fresh topics). The requests are published again and run
        # under the run ids they had; the undecodable one is left out.
        after = await make_stack(tmp_path / "after", kafka_broker, f"{topic_prefix}-after")
        republished = await republish_unstarted_requests(pool, kafka_broker, after.topics)
        assert sorted(republished) == sorted([named_row["run_id"], anonymous_row["run_id"]])
        async with (
            TopicReader(kafka_broker, after.topics.runs_events) as log,
            running_projector(after, pool),
            running_worker(after),
        ):
            await log.until(finished(republished))

            async def none_waiting() -> bool:
                async with pool.acquire() as conn:
                    left = await unstarted_requests(conn)
                return [w.run_id for w in left] == [junk_row["run_id"]]

            await eventually(none_waiting)
    finally:
        await pool.close()


async def test_rejections_are_archived_with_their_request(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        async with running_projector(stack, pool), running_worker(stack):
            await publish(
                kafka_broker,
                stack.topics.experiments_start,
                start_event("run-bad", maze_name="no-such-maze", comment="a\u0000b"),
            )
            await publish(kafka_broker, stack.topics.experiments_start, b"[" * 100_000)

            async def both_rejected() -> bool:
                rows = await _requests(pool)
                return len(rows) == 2 and all(r["rejected_at"] is not None for r in rows)

            await eventually(both_rejected)
        rows = await _requests(pool)
        bad = next(r for r in rows if r["run_id"] == "run-bad")
        junk = next(r for r in rows if r["run_id"] != "run-bad")
        fields = {p["field"] for p in json.loads(bad["problems"])}
        assert {"comment", "maze_name"} <= fields
        assert json.loads(junk["problems"])[0]["field"] == "event"
        assert all(r["origin"].startswith(f"{stack.topics.experiments_start}:") for r in rows)
        async with pool.acquire() as conn:
            assert await unstarted_requests(conn) == []
    finally:
        await pool.close()
