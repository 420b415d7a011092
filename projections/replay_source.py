"""Archived runs back onto Kafka: the replay topic, keyed and ordered, marked as replay.

Works from the archive alone, so a run whose original topics are gone (the embedded broker
keeps nothing across restarts) can still be streamed to any subscriber.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from oriole.events import RunEvent, dump_run_event
from oriole.kafka import ensure_topics, prepare_clients
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.codec import REPLAY_HEADER, TRACE_HEADER, TYPE_HEADER, VERSION_HEADER
from oriole.kafka.topics import Topics
from oriole.stack import Connection

#: Header naming one replay, so a subscriber can tell two replays of the same run apart.
REPLAY_ID_HEADER = "oriole-replay-id"


async def publish_replay(connection: Connection, topics: Topics, events: Sequence[RunEvent]) -> str:
    """Publish ``events`` (one run, in seq order) to the replay topic; returns the replay id."""
    prepare_clients(connection.tansu, faust=False)
    await ensure_topics(connection.bootstrap_servers, topics.specs)
    replay_id = str(uuid.uuid4())
    producer = make_producer(connection.bootstrap_servers, client_id="oriole-replay")
    await producer.start()
    try:
        pending = []
        for event in events:
            headers = [
                (TYPE_HEADER, event.type.encode()),
                (VERSION_HEADER, str(event.schema_version).encode()),
                (TRACE_HEADER, event.run_id.encode()),
                (REPLAY_HEADER, b"1"),
                (REPLAY_ID_HEADER, replay_id.encode()),
            ]
            pending.append(
                await producer.send(
                    topics.runs_replay,
                    dump_run_event(event),
                    key=event.run_id.encode(),
                    headers=headers,
                )
            )
        for future in pending:
            await future
    finally:
        await stop_quietly(producer)
    return replay_id
