"""Issue 17, gateway: an unknown run is answered at once, and ``after_seq`` is the resume
parameter (``from_seq`` still works, with the same meaning). Real broker, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.frames import QueryError, RecentRuns, parse_run_query
from gateway.server import Gateway
from oriole import generators
from projections.store import store_batch
from tests.batch_support import finished_batch
from tests.gateway_support import (
    Received,
    archive_events,
    database_pool,
    http_client,
    read_feed,
    recorded_run,
    running_gateway,
    ws_url,
)
from tests.kafka_support import (
    eventually,
    make_stack,
    publish,
    running_projector,
    running_worker,
    start_event,
)

#: Far longer than any answer may take: a 4004 well within it was not the grace running out.
GRACE = 120.0
AT_ONCE = 30.0


def _start(run_id: str, seed: int) -> bytes:
    maze = generators.generate("backtracker", 15, 15, seed=seed, name=f"fh-{seed}")
    return start_event(run_id, maze.to_dict(), limits={"max_footsteps": 30})


async def _feed_waiting(gateway: Gateway, run_id: str, count: int) -> asyncio.Task[Received]:
    """A client of the run's feed, once the gateway has subscribed it to live events."""
    task = asyncio.create_task(read_feed(ws_url(gateway, f"/ws/runs/{run_id}")))

    async def subscribed() -> bool:
        assert not task.done(), task.result()  # closed instead of waiting for the run
        return gateway.hub.subscriber_count >= count

    await eventually(subscribed)
    return task


async def _timed(url: str) -> tuple[Received, float]:
    started = time.monotonic()
    received = await read_feed(url)
    return received, time.monotonic() - started


async def _start_request(pool: Any, run_id: str, *, rejected: bool) -> bool:
    condition = "rejected_at IS NOT NULL" if rejected else "TRUE"
    found = await pool.fetchval(
        f"SELECT count(*) FROM start_requests WHERE run_id = $1 AND {condition}", run_id
    )
    return bool(found)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_an_unknown_run_gets_4004_at_once_and_a_requested_one_is_waited_for(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, unknown_run_grace=GRACE) as gateway,
        http_client(gateway) as client,
    ):
        # Nobody ever asked for it: no grace.
        unknown, elapsed = await _timed(ws_url(gateway, "/ws/runs/run-nobody"))
        assert unknown.close_code == 4004
        assert elapsed < AT_ONCE
        (frame,) = unknown.frames
        assert frame["kind"] == "error"
        assert frame["detail"].startswith("unknown run 'run-nobody'")
        assert "no start of it was received" in frame["detail"]

        # Started through this gateway a moment ago (no worker, no projector yet): waited for.
        posted = await client.post("/api/experiments", json=json.loads(_start("run-posted", 1)))
        assert posted.status_code == 202, posted.text
        posted_feed = await _feed_waiting(gateway, "run-posted", 1)

        async with running_projector(stack, pool):
            # Published straight to Kafka: known once the projector archived the request.
            await publish(kafka_broker, stack.topics.experiments_start, _start("run-kafka", 2))
            await eventually(lambda: _start_request(pool, "run-kafka", rejected=False))
            kafka_feed = await _feed_waiting(gateway, "run-kafka", 2)
            refused = start_event("run-refused", maze_name="no-such-maze")
            await publish(kafka_broker, stack.topics.experiments_start, refused)
            async with running_worker(stack):
                received = await asyncio.gather(posted_feed, kafka_feed)
                await eventually(lambda: _start_request(pool, "run-refused", rejected=True))
            rejected, elapsed = await _timed(ws_url(gateway, "/ws/runs/run-refused"))
    for feed in received:
        assert feed.close_code == 1000
        assert feed.kinds()[-1] == "finished"
        assert feed.seqs == list(range(1, len(feed.seqs) + 1))
        assert feed.events[0].type == "run.started"
    assert rejected.close_code == 4004
    assert elapsed < AT_ONCE
    detail = rejected.frames[0]["detail"]
    assert detail.startswith("unknown run 'run-refused': its start was rejected (maze_name: ")
    assert "no-such-maze" in detail


def test_recent_runs_are_bounded_and_note_only_accepted_starts() -> None:
    recent = RecentRuns(size=2)
    for run_id in ("a", "b", "a", "c"):
        recent.note(run_id)
    assert "a" not in recent and "b" in recent and "c" in recent
    recent.note_started(400, b'{"problems": []}')
    recent.note_started(202, b"not json")
    recent.note_started(202, b'{"run_id": "d"}')
    assert "d" in recent and "b" not in recent


def test_after_seq_and_from_seq_are_one_resume_point() -> None:
    assert parse_run_query({"after_seq": ["7"]}).from_seq == 7
    assert parse_run_query({"from_seq": ["7"]}).from_seq == 7
    assert parse_run_query({}).from_seq == 0
    with pytest.raises(QueryError, match="after_seq or from_seq, not both"):
        parse_run_query({"after_seq": ["7"], "from_seq": ["7"]})
    with pytest.raises(QueryError, match="after_seq must be a whole number"):
        parse_run_query({"after_seq": ["-1"]})
    with pytest.raises(QueryError, match="after_seq given 2 times"):
        parse_run_query({"after_seq": ["1", "2"]})


@pytest.mark.slow
@pytest.mark.asyncio
async def test_after_seq_resumes_run_and_batch_feeds(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    events = await recorded_run("run-resumed", max_footsteps=40)
    batch = finished_batch("fh-batch")
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool) as gateway,
    ):
        await archive_events(pool, events)
        async with pool.acquire() as conn:
            await store_batch(conn, [], batch.events)
        run_url = ws_url(gateway, "/ws/runs/run-resumed")
        after = await read_feed(f"{run_url}?after_seq=5")
        older = await read_feed(f"{run_url}?from_seq=5")
        replayed = await read_feed(f"{run_url}?replay=max&after_seq={len(events) - 2}")
        both = await read_feed(f"{run_url}?after_seq=5&from_seq=5")
        bad = await read_feed(f"{run_url}?after_seq=x")
        batch_url = ws_url(gateway, "/ws/batches/fh-batch")
        batch_after = await read_feed(f"{batch_url}?after_seq=10")
        batch_older = await read_feed(f"{batch_url}?from_seq=10")
        batch_both = await read_feed(f"{batch_url}?from_seq=1&after_seq=2")
    assert after.seqs == list(range(6, len(events) + 1))
    assert after.frames == older.frames
    assert after.close_code == older.close_code == 1000
    assert replayed.seqs == [len(events) - 1, len(events)]
    batch_seqs = [f["event"]["seq"] for f in batch_after.frames if f["kind"] == "batch_event"]
    assert batch_seqs == list(range(11, len(batch.events) + 1))
    assert batch_after.frames == batch_older.frames
    for refused in (both, batch_both):
        assert refused.close_code == 4400
        assert refused.frames == [
            {
                "kind": "error",
                "detail": "give after_seq or from_seq, not both (they mean the same: the "
                "events after seq N)",
            }
        ]
    assert bad.close_code == 4400
    assert bad.frames[0]["detail"] == "after_seq must be a whole number >= 0, got 'x'"
