"""Helpers for tests that run workers against the session's real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import Settings, load_settings
from oriole.events import RunEvent, RunFinished, parse_run_event
from oriole.kafka import ensure_topics
from oriole.kafka.topics import Topics
from projections.projector import Projector
from streams.maze_processor import ParentsOf
from streams.worker import Worker

#: Waits for real events are generous: a loaded 2-core machine is slow, never wrong.
EVENT_TIMEOUT = 180.0


@dataclass
class Stack:
    settings: Settings
    bootstrap: str
    topics: Topics


async def make_stack(
    tmp_path: Path, bootstrap: str, prefix: str, partitions: int = 4, **overrides: Any
) -> Stack:
    """Settings and topics for a worker on the session's broker; ``overrides`` are settings."""
    settings = load_settings(
        env_file=None,
        home=tmp_path / "home",
        kafka_bootstrap_servers=bootstrap,
        kafka_broker_kind="tansu",
        kafka_topic_prefix=prefix,
        kafka_partitions=partitions,
        **overrides,
    )
    topics = Topics.from_settings(settings)
    await ensure_topics(bootstrap, topics.specs)
    return Stack(settings, bootstrap, topics)


@contextlib.asynccontextmanager
async def running_worker(stack: Stack, parents: ParentsOf | None = None) -> AsyncIterator[Worker]:
    """A worker on ``stack``, ready; ``parents`` reads forks' parents (none: no forks)."""
    worker = Worker.create(
        stack.settings,
        stack.bootstrap,
        stack.topics,
        MazeCatalogue.from_settings(stack.settings).get,
        parents=parents,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        ready = asyncio.create_task(worker.wait_ready())
        done, _ = await asyncio.wait(
            {ready, task}, timeout=EVENT_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        if task in done:
            task.result()  # the worker died: show why
        assert ready in done, "worker did not become ready"
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, EVENT_TIMEOUT)


async def publish(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    """As an external client would: a plain producer, nothing of Oriole's."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=16 << 20)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


class TopicReader:
    """Reads a whole topic from the beginning, record by record, as raw records."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.records: list[Any] = []
        self._consumer: Any = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=16 << 20,
        )
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        if partitions is None:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic) or set()
        self._consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._consumer.stop(), 10)

    async def poll(self) -> list[Any]:
        batches = await self._consumer.getmany(timeout_ms=200)
        new = [r for records in batches.values() for r in records]
        self.records.extend(new)
        return new

    async def until(self, predicate: Any, timeout: float = EVENT_TIMEOUT) -> None:
        async def wait() -> None:
            while not predicate(self.records):
                await self.poll()

        await asyncio.wait_for(wait(), timeout)


def run_events(records: list[Any], run_id: str) -> list[RunEvent]:
    """The run's events in log order (duplicates kept, so tests can detect them)."""
    return [parse_run_event(r.value) for r in records if r.key == run_id.encode()]


def finished(run_ids: list[str]):  # type: ignore[no-untyped-def]
    wanted = {r.encode() for r in run_ids}

    def check(records: list[Any]) -> bool:
        done = {r.key for r in records if r.key in wanted and b'"run.finished"' in r.value}
        return done == wanted

    return check


def assert_clean_log(events: list[RunEvent]) -> None:
    """Gap-free, duplicate-free, ordered, continuous, exactly one terminal event, last."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    assert events[0].type == "run.started"
    assert isinstance(events[-1], RunFinished)
    assert sum(isinstance(e, RunFinished) for e in events) == 1
    position = events[0].payload.spec.start  # type: ignore[union-attr]
    for event in events:
        if event.type == "action.completed":
            assert event.payload.from_ == position  # type: ignore[union-attr]
            position = event.payload.to  # type: ignore[union-attr]


def start_event(run_id: str, maze: dict[str, Any] | None = None, **fields: Any) -> bytes:
    doc: dict[str, Any] = {"type": "experiment.start", "run_id": run_id}
    if maze is not None:
        doc["maze"] = maze
    doc.setdefault("agent", {"provider": "builtin", "model": "frontier", "seed": 1})
    doc.update(fields)
    return json.dumps(doc).encode()


@contextlib.asynccontextmanager
async def running_projector(stack: Stack, pool: Any) -> AsyncIterator[Projector]:
    """A projector on the stack's topics writing to ``pool``, stopped on exit."""
    projector = Projector(
        bootstrap_servers=stack.bootstrap, topics=stack.topics, pool=pool, batch_size=50
    )
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    try:
        yield projector
    finally:
        stop.set()
        await asyncio.wait_for(task, EVENT_TIMEOUT)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = EVENT_TIMEOUT) -> None:
    """Poll a condition until it holds (projector and gateway work asynchronously)."""

    async def wait() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)
