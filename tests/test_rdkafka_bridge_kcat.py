"""kcat (librdkafka 2.0.2) through the librdkafka bridge against the session's embedded
broker: metadata, producing, consuming, a group's coordinator, and live ApiVersions."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oriole.kafka.embedded import free_port
from oriole.kafka.rdkafka_bridge import RdkafkaBridge
from oriole.kafka.topics import TopicSpec, ensure_topics
from tests.kafka_frames_support import (
    HOST,
    TANSU_API_VERSIONS_TAGS,
    TIMEOUT,
    compact_string,
    frame,
    read_frame,
    string,
)

KCAT = shutil.which("kcat")
requires_kcat = pytest.mark.skipif(
    KCAT is None, reason="kcat is not installed (apt-get install kcat) - librdkafka tests skipped"
)


@pytest_asyncio.fixture
async def bridge(kafka_broker: str) -> AsyncIterator[RdkafkaBridge]:
    host, port = kafka_broker.rsplit(":", 1)
    async with RdkafkaBridge(host, int(port), port=free_port()) as running:
        yield running


async def kcat(*args: str, stdin: bytes = b"") -> bytes:
    """Run kcat (without blocking the loop the bridge runs in); return its stdout."""
    assert KCAT is not None
    process = await asyncio.create_subprocess_exec(
        KCAT,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await process.communicate(stdin)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"kcat {' '.join(args)} failed:\n{stderr.decode()}"
    return stdout


async def create_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    spec = TopicSpec(prefix=prefix, suffix="rdkafka", partitions=partitions)
    await ensure_topics(bootstrap, [spec])
    return spec.name


async def poll_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_metadata_lists_the_bridge(bridge: RdkafkaBridge, kafka_broker: str) -> None:
    listing = json.loads(await kcat("-L", "-J", "-b", bridge.bootstrap_servers))
    assert [broker["name"] for broker in listing["brokers"]] == [bridge.bootstrap_servers]
    assert kafka_broker != bridge.bootstrap_servers


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_produces_through_the_bridge(
    bridge: RdkafkaBridge, kafka_broker: str, topic_prefix: str
) -> None:
    topic = await create_topic(kafka_broker, topic_prefix)
    value = '{"maze":"größe ✓","n":1}'.encode()
    await kcat(
        "-P", "-b", bridge.bootstrap_servers, "-t", topic, "-K", "\t", stdin=b"key-1\t" + value
    )

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_broker, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        records: list[Any] = []

        async def got_one() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            records.extend(r for batch in batches.values() for r in batch)
            return bool(records)

        await poll_until(got_one, "the record produced by kcat")
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in records] == [(b"key-1", value)]


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_consumes_through_the_bridge(
    bridge: RdkafkaBridge, kafka_broker: str, topic_prefix: str
) -> None:
    topic = await create_topic(kafka_broker, topic_prefix, partitions=2)
    values = [f'{{"n":{n}}}'.encode() for n in range(5)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
    await producer.start()
    try:
        for n, value in enumerate(values):
            await producer.send_and_wait(topic, value, partition=n % 2)
    finally:
        await producer.stop()

    out = await kcat(
        "-C", "-e", "-q", "-b", bridge.bootstrap_servers, "-t", topic, "-o", "beginning",
        "-f", "%p %s\n",
    )  # fmt: skip
    lines = sorted(out.splitlines())
    assert lines == sorted(f"{n % 2} ".encode() + value for n, value in enumerate(values))


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_group_consumer_finds_the_coordinator_through_the_bridge(
    bridge: RdkafkaBridge, kafka_broker: str, topic_prefix: str
) -> None:
    topic = await create_topic(kafka_broker, topic_prefix)
    await kcat("-P", "-b", bridge.bootstrap_servers, "-t", topic, stdin=b"grouped\n")
    out = await kcat(
        "-b", bridge.bootstrap_servers, "-G", f"{topic_prefix}-group", "-o", "beginning",
        "-e", "-q", "-f", "%s\n",
        # Short timeouts: the group forms after the broker's initial delay (~3 s).
        "-X", "session.timeout.ms=6000", "-X", "max.poll.interval.ms=6000",
        "-X", "heartbeat.interval.ms=500",
        topic,
    )  # fmt: skip
    assert out.splitlines() == [b"grouped"]


@pytest.mark.asyncio
async def test_live_api_versions_lose_their_tags(bridge: RdkafkaBridge, kafka_broker: str) -> None:
    """Without kcat: the embedded broker's own ApiVersions v3 answer, directly and bridged."""
    body = b"\x00" + compact_string("kcat") + compact_string("1.7.1") + b"\x00"
    raw = frame(struct.pack(">hhi", 18, 3, 77) + string("test") + body)
    host, port = kafka_broker.rsplit(":", 1)
    answers = []
    for address in ((host, int(port)), (HOST, bridge.port)):
        reader, writer = await asyncio.open_connection(*address)
        try:
            writer.write(raw)
            async with asyncio.timeout(TIMEOUT):
                answers.append(await read_frame(reader))
        finally:
            writer.close()
    direct, bridged = answers
    assert direct.endswith(TANSU_API_VERSIONS_TAGS), "Tansu changed: is the bridge still needed?"
    assert bridged == direct[: -len(TANSU_API_VERSIONS_TAGS)] + b"\x00"
