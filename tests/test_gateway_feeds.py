"""The gateway's run feeds end to end (real broker, real PostgreSQL): archive then live
without gap or duplicate, resuming from a seq, dropping a client that stops reading, replay."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from oriole import generators
from oriole.events import dump_run_event
from oriole.kafka.codec import encode
from tests.gateway_support import (
    Received,
    StalledClient,
    archive_events,
    archived,
    assert_exact,
    database_pool,
    read_feed,
    recorded_run,
    running_gateway,
    ws_url,
)
from tests.kafka_support import (
    EVENT_TIMEOUT,
    TopicReader,
    eventually,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)


def long_run(run_id: str, *, seed: int = 7, actions: int = 600) -> bytes:
    """A random walk long enough to connect clients while it runs."""
    maze = generators.generate("backtracker", 41, 41, seed=seed, name=f"gw-{seed}")
    return start_event(
        run_id,
        maze.to_dict(),
        agent={"provider": "builtin", "model": "random", "seed": seed},
        limits={"max_footsteps": None, "max_actions": actions},
    )


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def _archived_at_least(pool: Any, run_id: str, count: int) -> bool:
    return await archived(pool, run_id) >= count


# --- one run: archive, then live ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_live_then_archive_seam_has_no_gap_and_no_duplicate(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-seam"
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        running_gateway(stack, pool) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        url = ws_url(gateway, f"/ws/runs/{run_id}")
        everyone = asyncio.create_task(
            read_feed(ws_url(gateway, "/ws/runs"), stop_when=_saw_finish(run_id))
        )
        await publish(kafka_broker, stack.topics.experiments_start, long_run(run_id))
        # No projector yet: nothing is archived when the first client connects mid-run, so
        # everything before its first live event must come from the archive later.
        await log.until(lambda records: len(run_events(records, run_id)) >= 20)
        early_connected = asyncio.Event()
        early = asyncio.create_task(read_feed(url, connected=early_connected))
        await early_connected.wait()
        assert await archived(pool, run_id) == 0
        async with running_projector(stack, pool):
            # The second client connects when the archive is partly written.
            await eventually(lambda: _archived_at_least(pool, run_id, 200))
            late = asyncio.create_task(read_feed(url))
            await log.until(finished([run_id]))
            first, second, summaries = await asyncio.gather(early, late, everyone)
        expected = run_events(log.records, run_id)
    on_kafka = {r.value for r in log.records}
    for received in (first, second):
        assert_exact(received, expected)
        # Live frames carry the Kafka record's bytes unchanged (gap fills come from the
        # archive: equal JSON, checked above, but JSONB may reorder keys).
        live = received.raw[received.kinds().index("caught_up") + 1 : -1]
        prefix = len('{"kind":"event","event":')
        assert any(raw[prefix:-1].encode() in on_kafka for raw in live)
        assert received.close_code == 1000
        assert received.kinds()[-1] == "finished"
        assert received.first("finished")["seq"] == len(expected)
        assert received.kinds().count("caught_up") == 1
        # Connected mid-run: part of the run came after caught_up, i.e. live.
        assert received.first("caught_up")["seq"] < len(expected) - 1
    assert first.first("caught_up")["seq"] == 0  # nothing was archived yet
    assert second.first("caught_up")["seq"] >= 200
    _check_summaries(summaries, run_id, expected)


def _saw_finish(run_id: str) -> Any:
    def check(received: Received) -> bool:
        last = received.frames[-1]
        return bool(last["run_id"] == run_id and last["type"] == "run.finished")

    return check


def _check_summaries(received: Received, run_id: str, expected: list[Any]) -> None:
    """The all-runs feed: every start, outcome and finish of the run, summarised."""
    frames = [f for f in received.frames if f["run_id"] == run_id]
    carried = [e for e in expected if e.type in ("run.started", "action.completed", "run.finished")]
    assert [f["seq"] for f in frames] == [e.seq for e in carried]
    assert {f["kind"] for f in frames} == {"run"}
    assert frames[0]["type"] == "run.started"
    assert frames[0]["summary"]["model_name"] == "random"
    assert frames[0]["summary"]["status"] == "running"
    progress = frames[-2]["summary"]
    last_action = carried[-2].payload
    assert progress["footsteps"] == last_action.footsteps
    assert progress["actions"] == last_action.step
    assert progress["position"] == {"x": last_action.to.x, "y": last_action.to.y}
    end = frames[-1]["summary"]
    assert end["stop_reason"] == expected[-1].payload.stop_reason.value
    assert end["success"] == expected[-1].payload.success


@pytest.mark.slow
@pytest.mark.asyncio
async def test_reconnecting_with_from_seq_resumes_exactly(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-resume"
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        running_projector(stack, pool),
        running_gateway(stack, pool) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        await publish(
            kafka_broker, stack.topics.experiments_start, long_run(run_id, seed=3, actions=400)
        )
        await log.until(lambda records: len(run_events(records, run_id)) >= 5)
        url = ws_url(gateway, f"/ws/runs/{run_id}")
        # Disconnect mid-run, with live events still coming.
        before = await read_feed(url, stop_when=lambda r: len(r.seqs) >= 150)
        last = before.seqs[-1]
        after = await read_feed(f"{url}?from_seq={last}")
        await log.until(finished([run_id]))
        expected = run_events(log.records, run_id)
    assert last < len(expected)
    assert before.seqs == list(range(1, last + 1))
    assert after.seqs[0] == last + 1
    union = Received(frames=before.frames + after.frames)
    assert_exact(union, expected)
    assert after.close_code == 1000
    assert after.kinds()[-1] == "finished"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_client_that_stops_reading_is_dropped_and_others_get_everything(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    run_id = "run-flood"
    # About 3 KB per outcome (a wide view): far more than the socket buffers can hold.
    events = await recorded_run(
        run_id,
        "random",
        size=61,
        rules={"vision_range": 8, "see_through_walls": True},
        max_footsteps=None,
        max_actions=1800,
        max_duration_seconds=None,
        goal_rule="reached",
    )
    records = [encode(stack.topics.runs_events, e, run_id) for e in events]
    dropped_before = _metric("oriole_gateway_clients_dropped_total")
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, queue_size=10) as gateway,
    ):
        # The first event is archived, so both clients are live subscribers once caught up.
        await archive_events(pool, events[:1])
        url = ws_url(gateway, f"/ws/runs/{run_id}")
        normal = Received()
        reader = asyncio.create_task(read_feed(url, received=normal))
        await eventually(_is_true(lambda: "caught_up" in normal.kinds()))
        async with StalledClient("127.0.0.1", gateway.port, f"/ws/runs/{run_id}") as stalled:
            assert (await stalled.frame())[0] == 1  # seq 1 from the archive
            _, caught_up = await stalled.frame()
            assert json.loads(caught_up)["kind"] == "caught_up"
            # From here on it reads nothing. Publish until the gateway gives up on it.
            producer = _producer(kafka_broker)
            await producer.start()
            try:
                sent = 0
                while _metric("oriole_gateway_clients_dropped_total") == dropped_before:
                    assert sent < len(records), "the stalled client was never dropped"
                    for out in records[sent : sent + 500]:
                        await producer.send(out.topic, out.value, key=out.key)
                    await producer.flush()
                    sent += 500
                    await eventually(_has_events(normal, min(sent, len(events))))
                for out in records[sent:]:
                    await producer.send(out.topic, out.value, key=out.key)
                await producer.flush()
            finally:
                await producer.stop()
            frames, code = await asyncio.wait_for(stalled.until_close(), EVENT_TIMEOUT)
        received = await asyncio.wait_for(reader, EVENT_TIMEOUT)
    assert code == 4008
    assert frames[-1]["kind"] == "lagging"
    got = [f["event"]["seq"] for f in frames if f["kind"] == "event"]
    assert got == list(range(2, len(got) + 2))  # in order, nothing skipped, until dropped
    assert len(got) < len(events) - 1
    assert_exact(received, events)
    assert received.close_code == 1000
    assert _metric("oriole_gateway_clients_dropped_total") == dropped_before + 1


def _producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=16 << 20)


def _has_events(received: Received, count: int) -> Any:
    async def check() -> bool:
        return len(received.seqs) >= count

    return check


def _is_true(check: Any) -> Any:
    async def wrapped() -> bool:
        return bool(check())

    return wrapped


# --- replay and archived runs ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_replay_of_an_archived_run(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    events = await recorded_run("run-replay", "random", max_footsteps=150)
    span = (events[-1].time - events[0].time).total_seconds()
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, unknown_run_grace=0.5) as gateway,
    ):
        await archive_events(pool, events)
        url = ws_url(gateway, "/ws/runs/run-replay")
        fastest = await read_feed(f"{url}?replay=max")
        started = time.monotonic()
        paced = await read_feed(f"{url}?replay=1000")
        elapsed = time.monotonic() - started
        tail = await read_feed(f"{url}?replay=max&from_seq={len(events) - 3}")
        live_view = await read_feed(url)  # a finished run through the live feed
        past_end = await read_feed(f"{url}?from_seq={len(events)}")
        unknown = await read_feed(ws_url(gateway, "/ws/runs/run-nobody?replay=max"))
        unknown_live = await read_feed(ws_url(gateway, "/ws/runs/run-nobody"))
        bad_speed = await read_feed(f"{url}?replay=0")
        bad_seq = await read_feed(f"{url}?from_seq=-1")
    for received in (fastest, paced, live_view):
        assert_exact(received, events)
        assert received.kinds()[-2:] == ["caught_up", "finished"]
        assert received.first("finished")["seq"] == len(events)
        assert received.close_code == 1000
    assert elapsed >= span / 1000 * 0.9
    assert tail.seqs == [len(events) - 2, len(events) - 1, len(events)]
    assert past_end.kinds() == ["caught_up", "finished"]
    assert past_end.close_code == 1000
    for received in (unknown, unknown_live):
        assert received.kinds() == ["error"]
        assert received.close_code == 4004
    for received in (bad_speed, bad_seq):
        assert received.kinds() == ["error"]
        assert received.close_code == 4400


@pytest.mark.slow
@pytest.mark.asyncio
async def test_archived_events_are_the_same_json_as_on_kafka(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    """Same fields, values and envelope order (JSONB may reorder keys of free-form objects)."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    events = await recorded_run("run-exact", "frontier", max_footsteps=20)
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool) as gateway,
    ):
        await archive_events(pool, events)
        received = await read_feed(ws_url(gateway, "/ws/runs/run-exact?replay=max"))
    frames = [json.loads(raw) for raw in received.raw[:-2]]
    assert frames == [{"kind": "event", "event": json.loads(dump_run_event(e))} for e in events]
    assert [list(f["event"]) for f in frames] == [
        list(json.loads(dump_run_event(e))) for e in events
    ]
