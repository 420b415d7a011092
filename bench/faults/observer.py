"""What the stack under test wrote, read from its topics as it comes.

The suite judges the stack by its outputs only: the run log, rejections and dead letters.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.faults.config import HOSTILE_PREFIX, RUN_PREFIX
from oriole.kafka.clients import stop_quietly
from oriole.kafka.topics import Topics


@dataclass
class RunLog:
    """One run's log as read: (seq, event_id, type) in order, duplicates kept."""

    entries: list[tuple[int, str, str]] = field(default_factory=list)
    #: When the last event was written (its own ``time``, epoch seconds; same machine).
    last_written: float = 0.0

    @property
    def started(self) -> bool:
        return any(kind == "run.started" for _, _, kind in self.entries)

    @property
    def finished(self) -> bool:
        return any(kind == "run.finished" for _, _, kind in self.entries)

    def problems(self) -> list[str]:
        """Duplicates and gaps: what a clean log never has."""
        seqs = [seq for seq, _, _ in self.entries]
        ids = [event_id for _, event_id, _ in self.entries]
        kinds = Counter(kind for _, _, kind in self.entries)
        found = []
        if len(seqs) != len(set(seqs)):
            found.append(f"{len(seqs) - len(set(seqs))} duplicate seq(s)")
        if len(ids) != len(set(ids)):
            found.append(f"{len(ids) - len(set(ids))} duplicate event id(s)")
        for kind in ("run.started", "run.finished"):
            if kinds[kind] > 1:
                found.append(f"{kinds[kind]} x {kind}")
        if seqs and sorted(set(seqs)) != list(range(1, max(seqs) + 1)):
            found.append("gap in seqs")
        return found


class Observer:
    """Reads the run log, rejections and dead letters from the beginning, as they come."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.runs: dict[str, RunLog] = {}
        self.rejected: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.dead_letter_keys: set[str] = set()
        self.hostile_started: set[str] = set()
        self.undecodable_log_records = 0
        self._consumer: Any = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=64 << 20,
            fetch_max_bytes=128 << 20,
        )
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        names = (self.topics.runs_events, self.topics.experiments_rejected, self.topics.deadletter)
        wanted = [
            TopicPartition(topic, p)
            for topic in names
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(wanted)

    async def stop(self) -> None:
        await stop_quietly(self._consumer)

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    self._take(tp.topic, record)

    def _take(self, topic: str, record: Any) -> None:
        key = (record.key or b"").decode(errors="replace")
        if topic == self.topics.experiments_rejected:
            self.rejected[key] += 1
        elif topic == self.topics.deadletter:
            self.dead_letter_keys.add(key)
            try:
                self.dead_letters[json.loads(record.value)["source_topic"]] += 1
            except (ValueError, KeyError, TypeError):
                self.dead_letters["?"] += 1
        elif key.startswith(RUN_PREFIX):
            try:
                event = json.loads(record.value)
                entry = (int(event["seq"]), str(event["event_id"]), str(event["type"]))
                written = datetime.fromisoformat(event["time"]).timestamp()
            except (ValueError, KeyError, TypeError):
                self.undecodable_log_records += 1
                return
            log = self.runs.setdefault(key, RunLog())
            log.entries.append(entry)
            log.last_written = max(log.last_written, written)
        elif key.startswith(HOSTILE_PREFIX) and record.value and b'"run.started"' in record.value:
            self.hostile_started.add(key)

    def events_of(self, run_ids: list[str]) -> int:
        return sum(len({s for s, _, _ in self.runs[r].entries}) for r in run_ids if r in self.runs)

    def active(self, run_ids: list[str]) -> list[str]:
        return [r for r in run_ids if not (r in self.runs and self.runs[r].finished)]
