"""The topic catalogue and its explicit creation on the real embedded broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from oriole.environment.settings import load_settings
from oriole.kafka import TopicError, Topics, TopicSpec, ensure_topics, wait_for_broker
from oriole.kafka.embedded import free_port

EXPECTED_SUFFIXES = [
    "experiments.start",
    "experiments.rejected",
    "runs.events",
    "runs.commands",
    "runs.control",
    "runs.replay",
    "runs.checkpoints",
    "deadletter",
    "audit",
    "batches.commands",
    "batches.events",
]


@pytest_asyncio.fixture
async def admin(kafka_broker: str) -> AsyncIterator[Any]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_broker, request_timeout_ms=30_000)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {entry["topic"]: len(entry["partitions"]) for entry in described}


def test_catalogue_names_follow_the_prefix() -> None:
    topics = Topics(prefix="acme", partitions=6)
    assert [spec.name for spec in topics.specs] == [f"acme.{s}" for s in EXPECTED_SUFFIXES]
    assert topics.experiments_start == "acme.experiments.start"
    assert topics.experiments_rejected == "acme.experiments.rejected"
    assert topics.runs_events == "acme.runs.events"
    assert topics.runs_commands == "acme.runs.commands"
    assert topics.runs_control == "acme.runs.control"
    assert topics.runs_replay == "acme.runs.replay"
    assert topics.runs_checkpoints == "acme.runs.checkpoints"
    assert topics.audit == "acme.audit"
    assert topics.deadletter == "acme.deadletter"
    assert {spec.partitions for spec in topics.specs} == {6}
    assert all(
        spec.config == {"retention.ms": "-1", "max.message.bytes": str(16 * 1024 * 1024)}
        for spec in topics.specs
    )
    assert all(spec.key and spec.description for spec in topics.specs)


def test_catalogue_from_settings(tmp_path: Path) -> None:
    settings = load_settings(
        env_file=None,
        home=tmp_path,
        kafka_topic_prefix="lab",
        kafka_partitions=8,
        kafka_replication_factor=3,
    )
    topics = Topics.from_settings(settings)
    assert topics.runs_events == "lab.runs.events"
    assert {(s.partitions, s.replication_factor) for s in topics.specs} == {(8, 3)}


def test_topic_spec_rejects_zero_partitions() -> None:
    with pytest.raises(ValueError, match="partitions must be at least 1"):
        TopicSpec(prefix="p", suffix="s", partitions=0)


@pytest.mark.asyncio
async def test_ensure_topics_creates_every_topic_with_its_partitions(
    kafka_broker: str, topic_prefix: str, admin: Any
) -> None:
    topics = Topics(prefix=topic_prefix, partitions=3)
    names = [spec.name for spec in topics.specs]

    created = await ensure_topics(kafka_broker, topics.specs)

    assert created == names
    assert await partition_counts(admin, names) == dict.fromkeys(names, 3)
    configs = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topics.runs_events)]
    )
    entries = configs[0].resources[0][4]
    assert ("retention.ms", "-1") in [(entry[0], entry[1]) for entry in entries]


@pytest.mark.asyncio
async def test_ensure_topics_is_idempotent(
    kafka_broker: str, topic_prefix: str, admin: Any
) -> None:
    topics = Topics(prefix=topic_prefix, partitions=2)
    names = [spec.name for spec in topics.specs]
    assert await ensure_topics(kafka_broker, topics.specs) == names
    assert await ensure_topics(kafka_broker, topics.specs) == []
    assert await partition_counts(admin, names) == dict.fromkeys(names, 2)


@pytest.mark.asyncio
async def test_partition_mismatch_is_a_clear_error(kafka_broker: str, topic_prefix: str) -> None:
    await ensure_topics(kafka_broker, Topics(prefix=topic_prefix, partitions=2).specs)
    with pytest.raises(TopicError) as info:
        await ensure_topics(kafka_broker, Topics(prefix=topic_prefix, partitions=5).specs)
    message = str(info.value)
    assert f"{topic_prefix}.runs.events has 2, expected 5" in message
    assert "ORIOLE_KAFKA_PARTITIONS" in message
    assert "cannot add partitions" in message


@pytest.mark.asyncio
async def test_wait_for_broker_gives_up_with_a_clear_error() -> None:
    closed = f"127.0.0.1:{free_port()}"
    with pytest.raises(TopicError, match=f"Kafka at {closed} did not answer within 1 s"):
        await wait_for_broker(closed, timeout=1.0)
