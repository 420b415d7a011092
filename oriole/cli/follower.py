"""Talking to a running stack from the outside: publish a start event, follow a run.

The caller has prepared the Kafka clients for the broker (:func:`.common.stack_connection`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from oriole.environment.stack_file import Connection
from oriole.events import ExperimentRejected, RunEvent, RunFinished
from oriole.experiment import ExperimentStart
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import decode_run_event, encode
from oriole.kafka.topics import Topics


@dataclass(frozen=True, slots=True)
class RunEnded:
    finished: RunFinished | None
    rejected: ExperimentRejected | None
    events: list[RunEvent]


async def publish_start(connection: Connection, request: ExperimentStart) -> None:
    topics = Topics(prefix=connection.topic_prefix)
    producer = make_producer(connection.bootstrap_servers, client_id="oriole-cli")
    await producer.start()
    try:
        out = encode(topics.experiments_start, request, request.run_id)
        await producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers)
    finally:
        await stop_quietly(producer)


class RunFollower:
    """Reads a run's events (and its rejection, if any) from the moment it is created.

    Create it *before* publishing the start event: it positions itself at the current end of
    the topics, so nothing the run writes afterwards can be missed.
    """

    def __init__(self, connection: Connection, run_id: str) -> None:
        self.connection = connection
        self.run_id = run_id
        self.topics = Topics(prefix=connection.topic_prefix)
        self._consumer: Any = None

    async def __aenter__(self) -> RunFollower:
        self._consumer = make_consumer(
            bootstrap_servers=self.connection.bootstrap_servers,
            group_id=None,
            client_id="oriole-cli",
        )
        await self._consumer.start()
        wanted: list[Any] = []
        for topic in (self.topics.runs_events, self.topics.experiments_rejected):
            partitions = self._consumer.partitions_for_topic(topic)
            if partitions is None:
                await self._consumer._client.force_metadata_update()
                partitions = self._consumer.partitions_for_topic(topic) or set()
            wanted.extend(TopicPartition(topic, p) for p in sorted(partitions))
        self._consumer.assign(wanted)
        await self._consumer.seek_to_end(*wanted)
        for tp in wanted:  # resolve the end positions now, before anything is published
            await self._consumer.position(tp)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stop_quietly(self._consumer)

    async def follow(
        self, on_event: Callable[[RunEvent], None] | None = None, timeout: float | None = None
    ) -> RunEnded:
        events: list[RunEvent] = []
        key = self.run_id.encode()

        async def read() -> RunEnded:
            while True:
                batches = await self._consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        if record.key != key:
                            continue
                        if tp.topic == self.topics.experiments_rejected:
                            rejected = ExperimentRejected.model_validate_json(record.value)
                            return RunEnded(None, rejected, events)
                        event = decode_run_event(record.value)
                        if events and event.seq <= events[-1].seq:
                            continue  # a redelivered record
                        events.append(event)
                        if on_event is not None:
                            on_event(event)
                        if isinstance(event, RunFinished):
                            return RunEnded(event, None, events)

        if timeout is None:
            return await read()
        return await asyncio.wait_for(read(), timeout)
