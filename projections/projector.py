"""The projector: run events from Kafka into the archive and the projections.

At-least-once: a batch's offsets are committed only after its transaction commits, so a crash
or a rebalance redelivers events that the archive then recognises. While PostgreSQL is
unreachable the projector keeps the batch, retries with capped exponential backoff and
jitter, and then catches up; the stream processors never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import pydantic
from prometheus_client import Counter, Gauge, Histogram

from oriole.events import RunEvent
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import UndecodableMessage, dead_letter_for, decode_run_event
from oriole.kafka.topics import Topics
from projections.database import CONNECTION_ERRORS
from projections.store import BatchResult, store_batch

log = logging.getLogger("oriole.projector")

EVENTS = Counter(
    "oriole_projector_events_total", "Run events received by the projector.", ["outcome"]
)
ROWS = Counter("oriole_projector_rows_total", "Projection rows written.")
DB_ERRORS = Counter(
    "oriole_projector_database_errors_total", "Batches retried because PostgreSQL failed."
)
CONFLICTS = Counter(
    "oriole_projector_archive_conflicts_total",
    "Events whose run and seq (or id) were already archived as a different event.",
)
BATCH_SECONDS = Histogram(
    "oriole_projector_batch_seconds",
    "Time to archive and project one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG_SECONDS = Gauge(
    "oriole_projector_lag_seconds", "Age of the newest event of the last stored batch."
)


class Backoff:
    """Capped exponential backoff with full jitter."""

    def __init__(self, first: float = 0.2, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Projector:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        pool: Any,
        client_id: str = "oriole",
        batch_size: int = 2000,
        group_id: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.topics = topics
        self.pool = pool
        self.client_id = client_id
        self.batch_size = batch_size
        self.group_id = group_id or f"{topics.prefix}.projector"
        #: True while the last attempt to write failed (PostgreSQL unreachable).
        self.waiting_for_database = False
        self._consumer: Any = None
        self._producer: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            self.topics.runs_events,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            # A database outage can keep one batch waiting for long; stay in the group.
            max_poll_interval_ms=24 * 3600 * 1000,
        )
        await self._consumer.start()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                if batches:
                    await self._handle(batches, stop)
        finally:
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    async def drain(self, timeout: float) -> bool:
        """Wait until everything on the run events topic *now* is archived (or timeout).

        Used at shutdown after the workers stopped: with the embedded broker, events not
        archived before it stops are gone for good.
        """
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return True
        assigned = list(consumer.assignment())
        ends = await consumer.end_offsets(assigned)

        async def caught_up() -> None:
            while True:
                committed = [await consumer.committed(tp) or 0 for tp in assigned]
                if all(done >= ends[tp] for done, tp in zip(committed, assigned, strict=True)):
                    return
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(caught_up(), timeout)
        except TimeoutError:
            log.warning("stopping before every run event was archived (timed out)")
            return False
        return True

    async def _handle(self, batches: dict[Any, list[Any]], stop: asyncio.Event) -> None:
        events: list[RunEvent] = []
        offsets: dict[Any, int] = {}
        letters = []
        for tp, records in batches.items():
            for record in records:
                offsets[tp] = record.offset + 1
                try:
                    events.append(decode_run_event(record.value))
                except (UndecodableMessage, pydantic.ValidationError) as exc:
                    EVENTS.labels("undecodable").inc()
                    letters.append(dead_letter_for(record, exc, self.topics.deadletter))
        result = await self._store(events, stop)
        if result is None:
            return  # stopping: nothing committed, the batch is redelivered
        for outgoing in letters:
            await self._producer.send_and_wait(
                outgoing.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers
            )
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:
            log.warning("offset commit failed (%s); the batch will be redelivered", exc)

    async def _store(self, events: list[RunEvent], stop: asyncio.Event) -> BatchResult | None:
        backoff = Backoff()
        while True:
            started = time.perf_counter()
            try:
                async with self.pool.acquire() as conn:
                    result = await store_batch(conn, events)
            except CONNECTION_ERRORS as exc:
                DB_ERRORS.inc()
                delay = backoff.next_delay()
                if not self.waiting_for_database:
                    log.warning("PostgreSQL unavailable (%s); retrying", exc)
                self.waiting_for_database = True
                log.debug("retrying the batch in %.1f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return None
                continue
            if self.waiting_for_database:
                log.info("PostgreSQL is back; catching up")
                self.waiting_for_database = False
            BATCH_SECONDS.observe(time.perf_counter() - started)
            self._account(events, result)
            return result

    def _account(self, events: list[RunEvent], result: BatchResult) -> None:
        EVENTS.labels("archived").inc(result.archived)
        EVENTS.labels("duplicate").inc(result.received - result.archived)
        ROWS.inc(result.projected_rows)
        if events:
            newest = max(event.time for event in events)
            LAG_SECONDS.set(max(0.0, time.time() - newest.timestamp()))
        for conflict in result.conflicts:
            CONFLICTS.inc()
            log.error(
                "run %s seq %s: event %s conflicts with archived event %s; the archive keeps "
                "the first",
                conflict.run_id,
                conflict.seq,
                conflict.offered,
                conflict.stored,
            )
