"""The run-end forwarder: tells a batch's scheduler that one of its runs ended.

Runs are keyed by run id and batches by batch id, so the scheduler that owns a batch does
not read its runs' partitions. This consumer (its own group, so several workers share it)
reads ``runs.events`` and ``experiments.rejected``; for a ``run.finished`` — recognised by
its type header, without decoding the other events — or a rejection of a batch's run (the
batch is in the run id, `oriole.batch_events.batch_of_run`) it publishes a
``batch.run_ended`` to ``batches.commands`` keyed by the batch id, and commits only after the
broker has it. A record read twice sends the notice twice; the scheduler's fold ignores the
second.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from oriole.batch_events import BatchRunEnded, batch_of_run
from oriole.events import ExperimentRejected, RunFinished
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import TYPE_HEADER, decode_run_event, encode
from oriole.kafka.topics import Topics

log = logging.getLogger("oriole.streams.batches")

_FINISHED = b"run.finished"


class BatchForwarder:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        client_id: str = "oriole",
        group_id: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.topics = topics
        self.client_id = f"{client_id}-batch-forwarder"
        self.group_id = group_id or f"{topics.prefix}.batch-forwarder"
        self._producer: Any = None
        self._consumer: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id
        )
        self._consumer.subscribe([self.topics.runs_events, self.topics.experiments_rejected])
        await self._consumer.start()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
                if batches:
                    await self._forward(batches)
        finally:
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    async def _forward(self, batches: dict[Any, list[Any]]) -> None:
        sent = []
        commits: dict[Any, int] = {}
        for tp, records in batches.items():
            for record in records:
                commits[tp] = record.offset + 1
                try:
                    notice = self._notice(tp.topic, record)
                except Exception as exc:  # not ours to judge: the log's own readers do
                    log.debug("record %s@%s skipped: %s", tp.topic, record.offset, exc)
                    continue
                if notice is not None:
                    out = encode(self.topics.batches_commands, notice, notice.batch_id)
                    sent.append(
                        await self._producer.send(
                            out.topic, out.value, key=out.key, headers=out.headers
                        )
                    )
        for future in sent:
            await future
        try:
            await self._consumer.commit(commits)
        except Exception as exc:
            log.warning("offset commit failed (%s); the records will be read again", exc)

    def _notice(self, topic: str, record: Any) -> BatchRunEnded | None:
        key = (record.key or b"").decode(errors="replace")
        batch_id = batch_of_run(key)
        if batch_id is None:
            return None
        if topic == self.topics.runs_events:
            if dict(record.headers or ()).get(TYPE_HEADER) != _FINISHED:
                return None
            event = decode_run_event(record.value)
            if not isinstance(event, RunFinished):
                return None
            return BatchRunEnded(batch_id=batch_id, run_id=event.run_id, finished=event.payload)
        rejected = ExperimentRejected.model_validate_json(record.value or b"")
        if rejected.run_id is None or batch_of_run(rejected.run_id) != batch_id:
            return None
        return BatchRunEnded(batch_id=batch_id, run_id=rejected.run_id, problems=rejected.problems)
