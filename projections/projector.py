"""The projector: run events from Kafka into the archive and the projections.

At-least-once: a batch's offsets are committed only after its transaction commits, so a crash
or a rebalance redelivers events that the archive then recognises. While PostgreSQL is
unreachable the projector keeps the batch, retries with capped exponential backoff and
jitter, and then catches up; the stream processors never wait for it. A record the database
refuses for what it holds (a poison record) is found by splitting the batch, dead-lettered
with the database's reason, and the rest is stored: one record can neither stop the
projector nor make it retry for ever.

It also archives every start request and rejection as it arrives (`start_requests`), so that
`oriole up` can re-publish, after a crash, the requests that never became runs, and every
batch event (`batches.events`: archive and batch projections, in the same transaction as
the run events of the same poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from oriole.backoff import Backoff
from oriole.batch_events import BatchEvent, parse_batch_event
from oriole.events import RunEvent
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import (
    Outgoing,
    dead_letter_for,
    decode_run_event,
)
from oriole.kafka.topics import Topics
from oriole.telemetry import batch_spans
from projections.batch_rows import BATCH_EVENT_CLASSES
from projections.database import CONNECTION_ERRORS
from projections.migrate import prepare_partitions
from projections.partitions import month_of
from projections.run_keys import RunKeys
from projections.start_requests import (
    INSERT_REQUEST,
    MARK_REJECTED,
    Row,
    rejection_row,
    request_row,
)
from projections.store import BatchResult, store_batch

T = TypeVar("T")

log = logging.getLogger("oriole.projector")

EVENTS = Counter(
    "oriole_projector_events_total",
    "Run and batch events received by the projector.",
    ["outcome"],
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
LAG_EVENTS = Gauge(
    "oriole_projector_lag_events",
    "Records on the projector's partitions not yet read (its oriole_consumer_lag, summed).",
)


#: Database errors that say nothing about the events: the server is unreachable, or in a
#: state an operator must fix (disk full, privileges, schema). The batch waits and is retried.
#: Any other error is about the events themselves: the offending record is dead-lettered.
WAIT_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.SyntaxOrAccessError,
    asyncpg.ObjectNotInPrerequisiteStateError,
)


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
        #: True while the consumer runs (between its start and its stop).
        self.consuming = False
        self._consumer: Any = None
        self._producer: Any = None
        #: The partition key (start time) of each run seen, so a batch rarely looks one up.
        self.run_keys = RunKeys()
        #: The month whose partitions (and the next month's) were last made sure of.
        self._partitions_month: date | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            self.topics.runs_events,
            self.topics.experiments_start,
            self.topics.experiments_rejected,
            self.topics.batches_events,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            # A database outage can keep one batch waiting for long; stay in the group.
            max_poll_interval_ms=24 * 3600 * 1000,
        )
        await self._consumer.start()
        self.consuming = True
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=self.batch_size)
                if batches:
                    with batch_spans.projection_batch(batches, self.topics.runs_events):
                        await self._handle(batches, stop)
        finally:
            self.consuming = False
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    def healthy(self) -> bool:
        """For /healthz, cheap: consuming, and PostgreSQL takes the events."""
        return self.consuming and not self.waiting_for_database

    def consumers(self) -> list[tuple[str, Any]]:
        """(group, consumer), for the consumer lag."""
        return [(self.group_id, self._consumer)]

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
        pairs: list[tuple[RunEvent | BatchEvent, Any]] = []
        requests: list[Row] = []
        rejections: list[Row] = []
        offsets: dict[Any, int] = {}
        letters: list[Outgoing] = []
        for tp, records in batches.items():
            for record in records:
                offsets[tp] = record.offset + 1
                try:
                    if tp.topic == self.topics.experiments_start:
                        requests.append(request_row(record))
                    elif tp.topic == self.topics.experiments_rejected:
                        rejection = rejection_row(record.value)
                        if rejection is not None:
                            rejections.append(rejection)
                    elif tp.topic == self.topics.batches_events:
                        pairs.append((parse_batch_event(record.value), record))
                    else:
                        pairs.append((decode_run_event(record.value), record))
                except Exception as exc:  # any record, however hostile, is one dead letter
                    EVENTS.labels("undecodable").inc()
                    letters.append(dead_letter_for(record, exc, self.topics.deadletter))
        # Requests first: a rejection in the same batch marks its request.
        if (requests or rejections) and not await self._store_requests(requests, rejections, stop):
            return
        if not await self._store_isolating(pairs, stop, letters):
            return  # stopping: nothing committed, the batch is redelivered
        for outgoing in letters:
            try:
                await self._producer.send_and_wait(
                    outgoing.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers
                )
            except Exception as exc:
                log.error("a dead letter could not be published: %s", exc)
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:
            log.warning("offset commit failed (%s); the batch will be redelivered", exc)

    async def _store_isolating(
        self,
        pairs: list[tuple[RunEvent | BatchEvent, Any]],
        stop: asyncio.Event,
        letters: list[Outgoing],
    ) -> bool:
        """Store the batch; if it holds a record the database refuses, store the rest.

        The batch is split in halves until the refused records are alone; each of those is
        dead-lettered with the database's reason. Order is kept (first half first). False
        only when stopping.
        """
        try:
            return await self._store([event for event, _ in pairs], stop) is not None
        except Exception as exc:
            if len(pairs) == 1:
                event, record = pairs[0]
                EVENTS.labels("refused").inc()
                log.error(
                    "%s event %s refused by PostgreSQL (%s: %s); dead-lettered",
                    _name(event),
                    event.seq,
                    type(exc).__name__,
                    exc,
                )
                letters.append(dead_letter_for(record, exc, self.topics.deadletter))
                return True
            middle = len(pairs) // 2
            return await self._store_isolating(
                pairs[:middle], stop, letters
            ) and await self._store_isolating(pairs[middle:], stop, letters)

    async def _store_requests(
        self, requests: list[Row], rejections: list[Row], stop: asyncio.Event
    ) -> bool:
        """Archive start requests and mark rejected ones; False only when stopping."""

        async def store(conn: Any) -> bool:
            async with conn.transaction():
                if requests:
                    await conn.executemany(INSERT_REQUEST, requests)
                if rejections:
                    await conn.executemany(MARK_REJECTED, rejections)
            return True

        try:
            return await self._with_database(store, stop) is not None
        except Exception as exc:  # nothing in them can be refused; say so and go on
            log.error("start requests could not be archived (%s: %s)", type(exc).__name__, exc)
            return True

    async def _store(
        self, events: list[RunEvent | BatchEvent], stop: asyncio.Event
    ) -> BatchResult | None:
        """Store ``events``, waiting out an unavailable database; None when stopping.

        Raises what the database says about the events themselves (a poison record).
        """
        started = time.perf_counter()
        if self._partitions_month != month_of(datetime.now(UTC)):
            await self._ensure_partitions()
        runs = [e for e in events if not isinstance(e, BATCH_EVENT_CLASSES)]
        logs = [e for e in events if isinstance(e, BATCH_EVENT_CLASSES)]
        result = await self._with_database(
            lambda conn: store_batch(conn, runs, logs, self.run_keys), stop
        )
        if result is not None:
            BATCH_SECONDS.observe(time.perf_counter() - started)
            self._account(events, result)
        return result

    async def _ensure_partitions(self) -> None:
        """This month's and the next month's partitions, at the first batch and when the
        month turns. Best effort: without them rows go to the DEFAULT partition, and a user
        that may not create tables (``oriole_writer``) leaves it to the next migration."""
        now = datetime.now(UTC)
        self._partitions_month = month_of(now)  # tried once a month, whatever happens
        try:
            async with self.pool.acquire() as conn:
                await prepare_partitions(conn, now)
        except Exception as exc:
            log.warning("month partitions not made sure of (%s: %s)", type(exc).__name__, exc)

    async def _with_database(
        self, work: Callable[[Any], Awaitable[T]], stop: asyncio.Event
    ) -> T | None:
        """``work(conn)``, retried with backoff while the database cannot do it for reasons
        of its own (`WAIT_ERRORS`); None when stopping. Other errors are raised."""
        backoff = Backoff()
        while True:
            try:
                async with self.pool.acquire() as conn:
                    result = await work(conn)
            except WAIT_ERRORS as exc:
                DB_ERRORS.inc()
                delay = backoff.next_delay()
                if not self.waiting_for_database:
                    level = logging.WARNING if isinstance(exc, CONNECTION_ERRORS) else logging.ERROR
                    log.log(level, "PostgreSQL cannot store events now (%r); retrying", exc)
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
            return result

    def _account(self, events: list[RunEvent | BatchEvent], result: BatchResult) -> None:
        EVENTS.labels("archived").inc(result.archived)
        EVENTS.labels("duplicate").inc(result.received - result.archived)
        ROWS.inc(result.projected_rows)
        if events:
            newest = max(event.time for event in events)
            LAG_SECONDS.set(max(0.0, time.time() - newest.timestamp()))
        for conflict in result.conflicts:
            CONFLICTS.inc()
            log.error(
                "%s %s seq %s: event %s conflicts with archived event %s; the archive keeps "
                "the first",
                conflict.kind,
                conflict.run_id,
                conflict.seq,
                conflict.offered,
                conflict.stored,
            )


def _name(event: RunEvent | BatchEvent) -> str:
    """``run <id>`` or ``batch <id>``, for the log."""
    if isinstance(event, BATCH_EVENT_CLASSES):
        return f"batch {event.batch_id}"
    return f"run {event.run_id}"
