"""Each Tansu compatibility patch, checked against the real embedded broker.

The ``kafka_broker`` fixture has applied the patches in this process. The unpatched
behaviour is shown once, in a separate Python process that never imports the patches.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.protocol.transaction import InitProducerIdRequest
from aiokafka.structs import TopicPartition

from oriole.kafka import TopicSpec, ensure_topics, prepare_clients, tansu_compat

#: 111 records in 3 batches of 37: the last batch holds several records, which is what makes
#: unpatched end offsets wrong (Tansu answers "base offset of the last batch + 1" = 75).
BATCHES = 3
RECORDS_PER_BATCH = 37
TOTAL = BATCHES * RECORDS_PER_BATCH
WRONG_UNPATCHED_END = (BATCHES - 1) * RECORDS_PER_BATCH + 1
ONE_HOUR_MS = 3_600_000
CLIENT_TIMEOUT = 30.0


async def produce_in_batches(bootstrap: str, topic: str) -> None:
    """Write ``TOTAL`` records to partition 0 as ``BATCHES`` explicit record batches."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for batch_number in range(BATCHES):
            batch = producer.create_batch()
            for i in range(RECORDS_PER_BATCH):
                value = f"{batch_number}-{i}".encode()
                assert batch.append(key=None, value=value, timestamp=None) is not None
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


@pytest_asyncio.fixture
async def filled_topic(kafka_broker: str, topic_prefix: str) -> str:
    """A one-partition topic holding ``TOTAL`` records in ``BATCHES`` batches."""
    spec = TopicSpec(prefix=topic_prefix, suffix="batched", partitions=1)
    await ensure_topics(kafka_broker, [spec])
    await produce_in_batches(kafka_broker, spec.name)
    return spec.name


@pytest_asyncio.fixture
async def consumer(kafka_broker: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_broker, fetch_max_wait_ms=100, enable_auto_commit=False
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


def test_patches_are_applied_once_and_only_for_the_embedded_broker(kafka_broker: str) -> None:
    assert tansu_compat.is_applied()
    build = InitProducerIdRequest.build
    classes = InitProducerIdRequest._CLASSES
    assert prepare_clients(True) is True  # again: idempotent
    assert prepare_clients(False) is False  # a real Kafka: nothing to do
    assert InitProducerIdRequest.build is build
    assert InitProducerIdRequest._CLASSES is classes
    assert [c.API_VERSION for c in classes] == [0, 3]


# -- patch A -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_idempotent_producer_can_send(kafka_broker: str, topic_prefix: str) -> None:
    spec = TopicSpec(prefix=topic_prefix, suffix="idempotent", partitions=1)
    await ensure_topics(kafka_broker, [spec])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        offsets = [
            (await producer.send_and_wait(spec.name, f"m{i}".encode(), partition=0)).offset
            for i in range(5)
        ]
    finally:
        await producer.stop()
    assert offsets == [0, 1, 2, 3, 4]


# -- patch B -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_end_offsets_and_seek_to_end_count_every_record(
    filled_topic: str, consumer: AIOKafkaConsumer
) -> None:
    tp = TopicPartition(filled_topic, 0)
    consumer.assign([tp])
    assert await consumer.end_offsets([tp]) == {tp: TOTAL}
    await consumer.seek_to_end(tp)
    assert await consumer.position(tp) == TOTAL
    assert await consumer.beginning_offsets([tp]) == {tp: 0}


@pytest.mark.asyncio
async def test_offsets_for_times_without_match_is_none(
    filled_topic: str, consumer: AIOKafkaConsumer
) -> None:
    tp = TopicPartition(filled_topic, 0)
    consumer.assign([tp])
    future = int(time.time() * 1000) + ONE_HOUR_MS
    assert await consumer.offsets_for_times({tp: future}) == {tp: None}
    # A timestamp before every record still finds the first one.
    found = (await consumer.offsets_for_times({tp: 0}))[tp]
    assert found is not None and found.offset == 0


# -- the same checks without the patches (separate process) --------------------------------

_UNPATCHED_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    async def main(bootstrap, topic, idempotent_topic):
        result = {}
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        try:
            await asyncio.wait_for(producer.start(), 30)
            await asyncio.wait_for(producer.send_and_wait(idempotent_topic, b"x"), 30)
            result["idempotent"] = "ok"
        except Exception as exc:
            result["idempotent"] = type(exc).__name__
        finally:
            await asyncio.wait_for(producer.stop(), 30)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            result["end"] = (await consumer.end_offsets([tp]))[tp]
            future = int(time.time() * 1000) + 3_600_000
            found = (await consumer.offsets_for_times({tp: future}))[tp]
            result["for_future_time"] = None if found is None else found.offset
        finally:
            await consumer.stop()
        print(json.dumps(result))

    asyncio.run(main(*sys.argv[1:]))
    """
)


@pytest.mark.asyncio
async def test_without_the_patches_tansu_breaks_these_behaviours(
    kafka_broker: str, topic_prefix: str, filled_topic: str
) -> None:
    idempotent = TopicSpec(prefix=topic_prefix, suffix="unpatched-idempotent", partitions=1)
    await ensure_topics(kafka_broker, [idempotent])
    completed = subprocess.run(
        [sys.executable, "-c", _UNPATCHED_SCRIPT, kafka_broker, filled_topic, idempotent.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {
        "idempotent": "UnknownError",
        "end": WRONG_UNPATCHED_END,
        "for_future_time": 0,
    }
