"""Oriole's Kafka topics and their explicit creation at start-up.

Topics are always created explicitly, never auto-created: Tansu auto-creates unknown topics
with 4 partitions regardless of configuration, and it cannot add partitions later
(CreatePartitions is not supported), so a topic must be born with its final partition count.
``retention.ms=-1`` keeps records forever on a real Kafka; the embedded broker keeps
everything in memory anyway (it implements neither retention nor compaction), and the
PostgreSQL archive, not the broker, is the long-term store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from aiokafka.admin import (
    NewTopic,
)
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    KafkaError,
    for_code,
)

from oriole.errors import OrioleError
from oriole.kafka.clients import make_admin, security_options
from oriole.kafka.codec import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from oriole.environment.settings import Settings

__all__ = [
    "AUDIT",
    "BATCHES_COMMANDS",
    "BATCHES_EVENTS",
    "DEADLETTER",
    "EXPERIMENTS_REJECTED",
    "EXPERIMENTS_START",
    "RUNS_CHECKPOINTS",
    "RUNS_COMMANDS",
    "RUNS_CONTROL",
    "RUNS_EVENTS",
    "RUNS_REPLAY",
    "TopicError",
    "TopicSpec",
    "Topics",
    "ensure_topics",
    "wait_for_broker",
]

# Topic name suffixes; the full name is "<prefix>.<suffix>".
EXPERIMENTS_START: Final = "experiments.start"
EXPERIMENTS_REJECTED: Final = "experiments.rejected"
RUNS_EVENTS: Final = "runs.events"
RUNS_COMMANDS: Final = "runs.commands"
RUNS_CONTROL: Final = "runs.control"
RUNS_REPLAY: Final = "runs.replay"
RUNS_CHECKPOINTS: Final = "runs.checkpoints"
DEADLETTER: Final = "deadletter"
AUDIT: Final = "audit"
BATCHES_COMMANDS: Final = "batches.commands"
BATCHES_EVENTS: Final = "batches.events"

#: Keep records forever (a real Kafka would otherwise drop them after 7 days), and refuse
#: messages over Oriole's limit at the broker (Kafka enforces it; the embedded broker does
#: not, so every consumer also dead-letters a bigger message unread).
DEFAULT_TOPIC_CONFIG: Final[Mapping[str, str]] = MappingProxyType(
    {"retention.ms": "-1", "max.message.bytes": str(MAX_MESSAGE_BYTES)}
)

_TOPIC_ALREADY_EXISTS: Final = 36
_POLL_INTERVAL: Final = 0.1
_ADMIN_CLIENT_ID: Final = "oriole-admin"


class TopicError(OrioleError, RuntimeError):
    """Topics cannot be created or do not have the expected shape."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: ``<prefix>.<suffix>``, its partition count and topic configs."""

    prefix: str
    suffix: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TOPIC_CONFIG))
    key: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"{self.name}: partitions must be at least 1")
        if self.replication_factor < 1:
            raise ValueError(f"{self.name}: replication_factor must be at least 1")

    @property
    def name(self) -> str:
        """Full topic name."""
        return f"{self.prefix}.{self.suffix}"


# (suffix, record key, description) of every topic, in creation order.
_CATALOGUE: Final[tuple[tuple[str, str, str], ...]] = (
    (
        EXPERIMENTS_START,
        "experiment id (optional)",
        "Experiment-start events; external clients publish here.",
    ),
    (
        EXPERIMENTS_REJECTED,
        "requested experiment/run id",
        "Rejections of invalid experiment-start events, with the reason.",
    ),
    (RUNS_EVENTS, "run id", "The run event log: every event of every run, in order."),
    (
        RUNS_COMMANDS,
        "run id",
        "Every command to the maze processor: forwarded starts and cancels, agent intents "
        "and failures.",
    ),
    (RUNS_CONTROL, "run id", "Control requests for runs, e.g. cancel."),
    (RUNS_REPLAY, "run id", "Archived runs re-published for replay."),
    (
        RUNS_CHECKPOINTS,
        "partition number",
        "Per partition of the run event log, where a process taking it over starts reading.",
    ),
    (DEADLETTER, "original key", "Poison messages with the error and the original bytes."),
    (AUDIT, "run id", "The gateway's audit trail: who started or cancelled which run."),
    (
        BATCHES_COMMANDS,
        "batch id",
        "Batch requests and cancels from clients, and the ends of batch runs (forwarded).",
    ),
    (BATCHES_EVENTS, "batch id", "Each batch's event log, written by its scheduler."),
)


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic catalogue for one prefix: names as attributes, specs for creation."""

    prefix: str = "oriole"
    partitions: int = 4
    replication_factor: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        """The catalogue for ``settings.kafka_topic_prefix`` and partition settings."""
        return cls(
            prefix=settings.kafka_topic_prefix,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
        )

    def name(self, suffix: str) -> str:
        """Full name of the topic with ``suffix``."""
        return f"{self.prefix}.{suffix}"

    @property
    def experiments_start(self) -> str:
        return self.name(EXPERIMENTS_START)

    @property
    def experiments_rejected(self) -> str:
        return self.name(EXPERIMENTS_REJECTED)

    @property
    def runs_events(self) -> str:
        return self.name(RUNS_EVENTS)

    @property
    def runs_commands(self) -> str:
        return self.name(RUNS_COMMANDS)

    @property
    def runs_control(self) -> str:
        return self.name(RUNS_CONTROL)

    @property
    def runs_replay(self) -> str:
        return self.name(RUNS_REPLAY)

    @property
    def runs_checkpoints(self) -> str:
        return self.name(RUNS_CHECKPOINTS)

    @property
    def deadletter(self) -> str:
        return self.name(DEADLETTER)

    @property
    def audit(self) -> str:
        return self.name(AUDIT)

    @property
    def batches_commands(self) -> str:
        return self.name(BATCHES_COMMANDS)

    @property
    def batches_events(self) -> str:
        return self.name(BATCHES_EVENTS)

    @property
    def specs(self) -> tuple[TopicSpec, ...]:
        """Every topic, all with the configured partition count (run-keyed ones must be)."""
        return tuple(
            TopicSpec(
                prefix=self.prefix,
                suffix=suffix,
                partitions=self.partitions,
                replication_factor=self.replication_factor,
                key=key,
                description=description,
            )
            for suffix, key, description in _CATALOGUE
        )


# -- broker helpers ------------------------------------------------------------------------


async def wait_for_broker(
    bootstrap_servers: str, timeout: float = 30.0, *, client_id: str = _ADMIN_CLIENT_ID
) -> None:
    """Wait until a Metadata request to ``bootstrap_servers`` succeeds.

    Raises :class:`TopicError` with the last client error after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        client = AIOKafkaClient(
            **security_options(),
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            request_timeout_ms=max(1000, int(min(remaining, 10.0) * 1000)),
        )
        try:
            async with asyncio.timeout(max(remaining, 0.1)):
                await client.bootstrap()
        except (KafkaError, OSError, TimeoutError) as exc:
            last_error: BaseException = exc
        else:
            return
        finally:
            await client.close()
        if time.monotonic() >= deadline:
            raise TopicError(
                f"Kafka at {bootstrap_servers} did not answer within {timeout:g} s "
                f"(last error: {last_error!r})"
            )
        await asyncio.sleep(_POLL_INTERVAL)


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    *,
    client_id: str = _ADMIN_CLIENT_ID,
    timeout: float = 30.0,
) -> list[str]:
    """Create missing topics and check that existing ones have the expected partitions.

    Returns the names of the topics created by this call. An existing topic is fine as long
    as its partition count matches; otherwise :class:`TopicError` is raised: changing the
    count would move run keys to other partitions, and Tansu cannot add partitions at all.
    Topic configs of existing topics are not compared.
    """
    wanted = {spec.name: spec for spec in specs}
    if not wanted:
        return []
    admin = make_admin(bootstrap_servers, client_id=client_id, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            created = await _create(admin, wanted)
            await _check_partitions(admin, wanted)
    except TimeoutError as exc:
        raise TopicError(
            f"creating topics on {bootstrap_servers} took longer than {timeout:g} s"
        ) from exc
    finally:
        await admin.close()
    return created


async def _create(admin: Any, wanted: Mapping[str, TopicSpec]) -> list[str]:
    new_topics = [
        NewTopic(
            name=spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            topic_configs=dict(spec.config),
        )
        for spec in wanted.values()
    ]
    response = await admin.create_topics(new_topics)
    created: list[str] = []
    problems: list[str] = []
    for topic, error_code, *rest in response.topic_errors:
        if error_code == 0:
            created.append(topic)
        elif error_code != _TOPIC_ALREADY_EXISTS:
            message = rest[0] if rest and rest[0] else for_code(error_code).__name__
            problems.append(f"{topic}: {message} (error {error_code})")
    if problems:
        raise TopicError("cannot create topics: " + "; ".join(problems))
    return created


async def _check_partitions(admin: Any, wanted: Mapping[str, TopicSpec]) -> None:
    described: list[dict[str, Any]] = await admin.describe_topics(list(wanted))
    found = {entry["topic"]: entry for entry in described}
    missing: list[str] = []
    mismatched: list[str] = []
    for name, spec in wanted.items():
        entry = found.get(name)
        if entry is None or entry.get("error_code", 0) != 0:
            code = None if entry is None else entry.get("error_code")
            missing.append(f"{name} (error {code})")
        elif (actual := len(entry["partitions"])) != spec.partitions:
            mismatched.append(f"{name} has {actual}, expected {spec.partitions}")
    if missing:
        raise TopicError("topics not found after creation: " + ", ".join(missing))
    if mismatched:
        raise TopicError(
            "existing topics have another partition count than configured "
            f"(ORIOLE_KAFKA_PARTITIONS): {'; '.join(mismatched)}. Oriole does not change "
            "partition counts (that would move run keys to other partitions, and the "
            "embedded broker cannot add partitions at all): set ORIOLE_KAFKA_PARTITIONS to "
            "the existing count, or delete the topics (restarting the embedded broker "
            "deletes everything)"
        )
