"""Live fan-out: one Kafka consumer per gateway, every event decoded once, queued per client.

The consumer has no group: it is assigned every partition of the run events topic and starts
at the end (the archive serves the past). Each event goes to the subscribers of its run and,
for the types the all-runs feed carries, to the all-runs subscribers. Handing an event to a
subscriber is a non-blocking put into that client's bounded queue: a client that cannot keep
up fills its own queue and is marked lagging (its connection is then closed with 4008), so
it never slows the hub or any other client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import TopicPartition

from gateway.frames import LiveEvent, decode_live
from gateway.metrics import UNDECODABLE
from oriole.kafka.clients import make_consumer, stop_quietly
from oriole.telemetry import batch_spans

log = logging.getLogger("oriole.gateway.hub")

#: Back-off after the consumer failed, before trying again.
_RETRY_DELAY = 1.0
#: Longest the broker may hold a fetch without data. Tansu answers an idle fetch only when
#: this expires, so it bounds the delay Kafka adds to a live event (default clients: 50 ms).
FETCH_MAX_WAIT_MS = 10


class Subscriber:
    """One client's bounded queue of live events.

    ``offer`` never blocks: when the queue is full the subscriber becomes ``lagging``, drops
    everything after that, and ``on_overflow`` is called once (it must not block either).

    While the client's task waits for its queue, it may set ``direct``: ``offer`` then first
    asks it to write the event straight to the connection (no queue, no task switch); it
    returns False when it cannot (the connection's buffer is full, or the event needs the
    task), and the event is queued as usual. Only an empty queue is bypassed, so the order
    of events never changes.
    """

    __slots__ = ("_on_overflow", "direct", "lagging", "queue")

    def __init__(self, size: int, on_overflow: Callable[[], None]) -> None:
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(size)
        self.lagging = False
        self.direct: Callable[[LiveEvent], bool] | None = None
        self._on_overflow = on_overflow

    def offer(self, event: LiveEvent) -> None:
        if self.lagging:
            return
        direct = self.direct
        if direct is not None and self.queue.empty() and direct(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagging = True
            self._on_overflow()


class Hub:
    """The gateway's single reader of the run events topic (or, with another ``decode``, of
    another log keyed like it: the batch events topic, whose ``LiveEvent.run_id`` is then
    the batch id)."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        client_id: str = "oriole-gateway",
        chunk: int = 500,
        decode: Callable[[bytes | None], LiveEvent] = decode_live,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.decode = decode
        self.client_id = client_id
        #: Events fanned out between two yields to the event loop; keep it below the
        #: clients' queue size, so that a burst from one fetch never overflows the queue
        #: of a client that reads: its task empties the queue at every yield.
        self.chunk = max(1, chunk)
        self._runs: dict[str, set[Subscriber]] = {}
        self._all: set[Subscriber] = set()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        #: False after the consumer failed, until a fetch succeeds again.
        self.healthy = False
        #: Events fanned out so far (for tests and the benchmark).
        self.events_seen = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Assign every partition and position at the current end, before returning.

        Anything published after ``start`` returns is therefore seen by the hub.
        """
        consumer = make_consumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            client_id=self.client_id,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            auto_offset_reset="latest",  # the archive serves the past, never the topic
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(
                    f"topic {self.topic} does not exist; start the stack (`oriole up`) first"
                )
            assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_end(*assigned)
            for tp in assigned:  # resolve the end offsets now, not at the first fetch
                await consumer.position(tp)
        except BaseException:
            await stop_quietly(consumer)
            raise
        self._consumer = consumer
        self.healthy = True
        self._task = asyncio.create_task(self._run(), name="gateway hub")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._consumer is not None:
            await stop_quietly(self._consumer)
            self._consumer = None
        self.healthy = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(self, run_id: str | None, subscriber: Subscriber) -> None:
        """Live events of ``run_id`` (None: the all-runs feed) from now on."""
        if run_id is None:
            self._all.add(subscriber)
        else:
            self._runs.setdefault(run_id, set()).add(subscriber)

    def unsubscribe(self, run_id: str | None, subscriber: Subscriber) -> None:
        if run_id is None:
            self._all.discard(subscriber)
            return
        subscribers = self._runs.get(run_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._runs[run_id]

    @property
    def subscriber_count(self) -> int:
        return len(self._all) + sum(len(s) for s in self._runs.values())

    # -- fan-out -----------------------------------------------------------------------

    def dispatch(self, values: Iterable[bytes | None]) -> None:
        """Decode each record value once and offer it to its subscribers (never blocks)."""
        runs = self._runs
        everyone = self._all
        decode = self.decode
        for value in values:
            try:
                event = decode(value)
            except Exception as exc:  # whatever a record holds, the feed goes on
                UNDECODABLE.inc()
                log.warning("skipped a record on %s it cannot read: %s", self.topic, exc)
                continue
            self.events_seen += 1
            # offer() never changes the subscriptions (a lagging client is unsubscribed
            # later, by its own task), so the sets can be iterated as they are.
            subscribers = runs.get(event.run_id)
            if subscribers:
                for subscriber in subscribers:
                    subscriber.offer(event)
            if everyone and event.summary is not None:
                for subscriber in everyone:
                    subscriber.offer(event)

    async def _run(self) -> None:
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.healthy:
                    log.exception("reading %s failed; retrying", self.topic)
                self.healthy = False
                await asyncio.sleep(_RETRY_DELAY)
                continue
            self.healthy = True
            for records in batches.values():
                for start in range(0, len(records), self.chunk):
                    chunk = records[start : start + self.chunk]
                    with batch_spans.delivery(chunk, self._runs):
                        self.dispatch(r.value for r in chunk)
                    await asyncio.sleep(0)  # let every client's task send what it got
