"""Archived runs back onto Kafka: the replay topic, keyed and ordered, marked as replay.

Works from the archive alone, so a run whose original topics are gone (the embedded broker
keeps nothing across restarts) can still be streamed to any subscriber.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from oriole.events import RunEvent, dump_run_event
from oriole.kafka import ensure_topics, prepare_clients
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.codec import REPLAY_HEADER, TRACE_HEADER, TYPE_HEADER, VERSION_HEADER
from oriole.kafka.topics import Topics
from oriole.stack import Connection
from projections.store import run_events_of

#: Header naming one replay, so a subscriber can tell two replays of the same run apart.
REPLAY_ID_HEADER = "oriole-replay-id"


async def publish_replay(connection: Connection, topics: Topics, events: Sequence[RunEvent]) -> str:
    """Publish ``events`` (one run, in seq order) to the replay topic; returns the replay id."""
    replay_id = str(uuid.uuid4())
    marks = [(REPLAY_HEADER, b"1"), (REPLAY_ID_HEADER, replay_id.encode())]
    await _publish(connection, topics, topics.runs_replay, [events], marks)
    return replay_id


async def restore_unfinished_runs(pool: Any, connection: Connection, topics: Topics) -> list[str]:
    """Put the archived logs of unfinished runs back on a fresh, empty broker.

    The embedded broker forgets everything when it stops; the archive does not. Before the
    workers start, every run the archive still shows as running gets its log back on the run
    events topic, so a maze processor rebuilds it and it carries on (or its duration limit
    ends it) instead of staying "running" forever. The projector sees only duplicates.
    """
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT run_id FROM experiments WHERE status = 'running' ORDER BY started_at"
        )
        logs = [await run_events_of(conn, row["run_id"]) for row in rows]
    logs = [events for events in logs if events]
    if logs:
        await _publish(connection, topics, topics.runs_events, logs, [])
    return [events[0].run_id for events in logs]


async def _publish(
    connection: Connection,
    topics: Topics,
    topic: str,
    logs: Sequence[Sequence[RunEvent]],
    extra_headers: list[tuple[str, bytes]],
) -> None:
    prepare_clients(connection.tansu, faust=False)
    await ensure_topics(connection.bootstrap_servers, topics.specs)
    producer = make_producer(connection.bootstrap_servers, client_id="oriole-replay")
    await producer.start()
    try:
        pending = []
        for events in logs:
            for event in events:
                headers = [
                    (TYPE_HEADER, event.type.encode()),
                    (VERSION_HEADER, str(event.schema_version).encode()),
                    (TRACE_HEADER, event.run_id.encode()),
                    *extra_headers,
                ]
                pending.append(
                    await producer.send(
                        topic, dump_run_event(event), key=event.run_id.encode(), headers=headers
                    )
                )
        for future in pending:
            await future
    finally:
        await stop_quietly(producer)
