"""The batch progress feed `/ws/batches/{batch_id}` end to end (real broker, real PostgreSQL):
archived events, then live ones without gap or duplicate, closing after the batch's end."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from oriole.batch_events import BatchEvent, dump_batch_event, parse_batch_event
from oriole.kafka.codec import encode
from projections.store import store_batch
from tests.batch_support import LogBuilder, finished_batch
from tests.gateway_support import Received, database_pool, read_feed, running_gateway, ws_url
from tests.kafka_support import EVENT_TIMEOUT, Stack, eventually, make_stack, publish

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

READ_TOKEN = "read-tok-51c0e6aa"


def events_of(received: Received) -> list[BatchEvent]:
    frames = [f for f in received.frames if f["kind"] == "batch_event"]
    return [parse_batch_event(json.dumps(f["event"])) for f in frames]


async def archive(pool: Any, events: list[BatchEvent]) -> None:
    async with pool.acquire() as conn:
        await store_batch(conn, [], events)


async def publish_live(stack: Stack, events: list[BatchEvent]) -> None:
    """As the scheduler writes them: keyed by batch id, with Oriole's headers."""
    for event in events:
        out = encode(stack.topics.batches_events, event, event.batch_id)
        await publish(stack.bootstrap, out.topic, out.value, out.key)


async def caught_up(received: Received) -> None:
    async def check() -> bool:
        return "caught_up" in received.kinds()

    await eventually(check)


async def test_an_archived_batch_is_sent_whole_then_closed(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    log = finished_batch("bf-done")
    rejected = LogBuilder("bf-rejected").rejected()
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, tokens={READ_TOKEN: "read"}) as gateway,
    ):
        await archive(pool, log.events + rejected.events)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(gateway, "/ws/batches/bf-done")):
                pass
        assert refused.value.response.status_code == 401
        whole = await read_feed(ws_url(gateway, f"/ws/batches/bf-done?token={READ_TOKEN}"))
        assert events_of(whole) == log.events
        assert whole.kinds()[-2:] == ["caught_up", "finished"]
        assert whole.frames[-1] == {"kind": "finished", "seq": len(log.events)}
        assert whole.close_code == 1000
        # The frame embeds the event exactly as the model dumps it.
        assert whole.raw[0] == (
            '{"kind":"batch_event","event":' + dump_batch_event(log.events[0]).decode() + "}"
        )
        tail = await read_feed(
            ws_url(gateway, f"/ws/batches/bf-done?from_seq=15&token={READ_TOKEN}")
        )
        assert [e.seq for e in events_of(tail)] == list(range(16, len(log.events) + 1))
        assert tail.close_code == 1000
        # Nothing left after from_seq: caught up and finished at once.
        done = await read_feed(
            ws_url(gateway, f"/ws/batches/bf-done?from_seq=99&token={READ_TOKEN}")
        )
        assert done.kinds() == ["caught_up", "finished"] and done.close_code == 1000
        refusal = await read_feed(ws_url(gateway, f"/ws/batches/bf-rejected?token={READ_TOKEN}"))
        assert [e.type for e in events_of(refusal)] == ["batch.rejected"]
        assert refusal.close_code == 1000


async def test_archive_then_live_without_gap_or_duplicate(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    log = finished_batch("bf-live")
    events = log.events
    async with database_pool(pg_dsn) as pool, running_gateway(stack, pool) as gateway:
        await archive(pool, events[:5])
        received = Received()
        reader = asyncio.create_task(
            read_feed(ws_url(gateway, "/ws/batches/bf-live"), received=received)
        )
        await caught_up(received)
        assert [e.seq for e in events_of(received)] == [1, 2, 3, 4, 5]
        # Live again what is archived (skipped), then 7.. while 6 reaches only the archive:
        # the feed fills the gap from the archive.
        await publish_live(stack, events[3:5])
        await archive(pool, events[5:6])
        await publish_live(stack, events[6:])
        result = await asyncio.wait_for(reader, EVENT_TIMEOUT)
    assert events_of(result) == events
    assert result.kinds().count("caught_up") == 1
    assert result.frames[-1] == {"kind": "finished", "seq": len(events)}
    assert result.close_code == 1000


async def test_a_batch_only_seen_live_and_an_unknown_one(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    log = LogBuilder("bf-new").started()
    log.launch("c1", 1)
    async with (
        database_pool(pg_dsn) as pool,
        running_gateway(stack, pool, unknown_run_grace=3.0) as gateway,
    ):
        received = Received()
        connected = asyncio.Event()
        reader = asyncio.create_task(
            read_feed(
                ws_url(gateway, "/ws/batches/bf-new"),
                received=received,
                connected=connected,
                stop_when=lambda r: len(events_of(r)) == 2,
            )
        )
        await connected.wait()
        await asyncio.sleep(0.3)  # the feed subscribes right after the handshake
        await publish_live(stack, log.events)
        await asyncio.wait_for(reader, EVENT_TIMEOUT)
        assert events_of(received) == log.events
        assert received.kinds()[0] == "caught_up"  # nothing archived: caught up at seq 0

        unknown = await read_feed(ws_url(gateway, "/ws/batches/bf-nobody"))
        assert unknown.close_code == 4004
        assert unknown.frames == [{"kind": "error", "detail": "unknown batch 'bf-nobody'"}]
        bad = await read_feed(ws_url(gateway, "/ws/batches/a:b"))
        assert bad.close_code == 4400 and bad.frames[0]["kind"] == "error"
        replay = await read_feed(ws_url(gateway, "/ws/batches/bf-new?replay=max"))
        assert replay.close_code == 4400
