"""The websocket feeds: one run (archive, then live, no gap and no duplicate), replay, all runs.

One run: the client is subscribed to the hub *before* the archive is read, so every event
is either in the archive read or in the client's live queue (or both). Archived events are
sent first; live ones follow, skipping any seq already sent; a live event beyond the next
expected seq means the events in between are not archived yet (the projector lags), and
they are read from the archive, retried with a short backoff until a generous deadline.

A run with nothing archived is not always unknown: a run started a moment ago may have no
event yet. The feed waits for its first live event (``unknown_run_grace``) only when the run
is known to be on its way: the hub has seen its events, this gateway published its start, or
the projector archived a start request for it that was not rejected. Any other id gets 4004
at once (a start published straight to Kafka is known once the projector has archived it,
normally within tens of milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from gateway.frames import (
    CLOSE_LAGGING,
    CLOSE_NORMAL,
    CLOSE_UNKNOWN_RUN,
    LiveEvent,
    RecentRuns,
    Seam,
    caught_up_frame,
    error_frame,
    event_frame,
    finished_frame,
    lagging_frame,
    replay_offset,
)
from gateway.hub import Hub, Subscriber
from gateway.metrics import DROPPED, FRAMES, LATENCY
from oriole.events import dump_run_event
from projections.database import CONNECTION_ERRORS
from projections.rows import event_from_archive
from projections.store import ARCHIVE_COLUMNS

log = logging.getLogger("oriole.gateway")

#: Archived events read per statement.
PAGE_SIZE = 500
#: Longest a final frame plus the closing handshake may take before the TCP connection is
#: aborted (a client that stopped reading cannot take part in a closing handshake).
CLOSE_GRACE = 10.0
#: Bytes a connection may hold unsent before writes wait (``serve(write_limit=...)``); live
#: events are written straight from the hub only below it.
WRITE_LIMIT = 32 * 1024

_FINISHED = "run.finished"
_COLUMNS = ", ".join(ARCHIVE_COLUMNS)
_PAGE = f"""
    SELECT {_COLUMNS} FROM run_events
     WHERE run_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4"""
_LAST = "SELECT seq, type FROM run_events WHERE run_id = $1 ORDER BY seq DESC LIMIT 1"
#: The start requests of a run (projections/start_requests.py), one still open first.
_REQUESTED = """
    SELECT rejected_at IS NULL AS open, problems FROM start_requests
     WHERE run_id = $1 ORDER BY rejected_at IS NULL DESC, received_at DESC LIMIT 1"""
_NO_END = 2**31 - 1  # larger than any seq (an integer column)


class GapError(RuntimeError):
    """Events between the archive and the live stream did not reach the archive in time."""


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    seq: int
    type: str
    timestamp: float
    frame: bytes


class Archive:
    """Reads one run's events from ``run_events``, as frames ready to send."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def page(
        self, run_id: str, after: int, before: int = _NO_END, limit: int = PAGE_SIZE
    ) -> list[ArchivedEvent]:
        records = await self.pool.fetch(_PAGE, run_id, after, before, limit)
        events = []
        for record in records:
            # Through the typed model, so the frame carries the event as it was on Kafka.
            event = event_from_archive(record)
            events.append(
                ArchivedEvent(
                    event.seq,
                    event.type,
                    event.time.timestamp(),
                    event_frame(dump_run_event(event)),
                )
            )
        return events

    async def last(self, run_id: str) -> tuple[int, str] | None:
        """Seq and type of the run's last archived event; None if nothing is archived."""
        record = await self.pool.fetchrow(_LAST, run_id)
        return None if record is None else (int(record["seq"]), str(record["type"]))

    async def requested(self, run_id: str) -> str | None:
        """Whether a start of the run was received: ``"open"`` (not rejected: the run may
        still start), the rejection's problems as text, or None (never requested)."""
        record = await self.pool.fetchrow(_REQUESTED, run_id)
        if record is None:
            return None
        if record["open"]:
            return "open"
        problems = record["problems"]
        found = json.loads(problems) if isinstance(problems, str) else problems
        reasons = [
            f"{p.get('field')}: {p.get('reason')}" for p in found or [] if isinstance(p, dict)
        ]
        return "; ".join(reasons) or "rejected"


class _DirectFrames:
    """Frames written straight from the hub, added to ``FRAMES`` once per turn of the event
    loop instead of once per frame: an event for a thousand viewers is a thousand frames
    written in one hub dispatch, and a Prometheus increment (under a lock) costs 0.83 µs
    a frame against 0.11 µs for this tally (docs/performance.md). The count stays exact;
    ``/metrics`` sees it once the dispatch has yielded."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = 0

    def add(self) -> None:
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending += 1

    def flush(self) -> None:
        pending, self.pending = self.pending, 0
        if pending:
            FRAMES.inc(pending)


_DIRECT_FRAMES = _DirectFrames()


class Session:
    """One websocket client: counted sends, a bounded close, and a drop when it lags."""

    def __init__(self, ws: ServerConnection, queue_size: int) -> None:
        self.ws = ws
        self.queue_size = queue_size
        #: The task running this client's feed (cancelled when the client lags).
        self.feed_task: asyncio.Task[None] | None = None
        self.drop_task: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    def subscriber(self) -> Subscriber:
        return Subscriber(self.queue_size, self._lagging)

    async def send(self, frame: bytes) -> None:
        await self.ws.send(frame, text=True)
        FRAMES.inc()

    def writable(self) -> bool:
        """True when a frame can be written at once, without waiting for the client."""
        ws = self.ws
        return (
            self.close_code is None
            and ws.protocol.state is State.OPEN
            and ws.transport.get_write_buffer_size() < WRITE_LIMIT
        )

    def send_now(self, frame: bytes) -> None:
        """Write a frame synchronously (only when :meth:`writable`; no waiting)."""
        broadcast((self.ws,), frame, text=True)
        _DIRECT_FRAMES.add()

    async def finish(self, code: int, reason: str = "", frame: bytes | None = None) -> None:
        """Send ``frame`` (if any) and close with ``code``; abort after :data:`CLOSE_GRACE`."""
        if self.close_code is not None:
            return
        self.close_code = code
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                if frame is not None:
                    await self.send(frame)
                await self.ws.close(code, reason)
        except ConnectionClosed:
            pass
        except TimeoutError:
            self.ws.transport.abort()

    def _lagging(self) -> None:
        """Called by the hub (synchronously) when this client's queue overflowed."""
        DROPPED.inc()
        self.drop_task = asyncio.get_running_loop().create_task(self._drop())

    async def _drop(self) -> None:
        feed = self.feed_task
        if feed is not None and feed is not asyncio.current_task():
            feed.cancel()  # it may be blocked sending to this very client
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feed
        log.info("websocket client dropped: more than %d frames behind", self.queue_size)
        if self.close_code is not None:
            # It was already being closed, and that was cut short: cut the connection too.
            self.ws.transport.abort()
            return
        await self.finish(CLOSE_LAGGING, "lagging", lagging_frame(self.queue_size))


def _observe_latency(timestamp: float) -> None:
    LATENCY.observe(max(0.0, time.time() - timestamp))


class Feeds:
    """The three websocket feeds, over the hub and the archive."""

    def __init__(
        self,
        hub: Hub,
        archive: Archive,
        *,
        unknown_run_grace: float,
        gap_deadline: float,
        recent: RecentRuns | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.archive = archive
        #: Runs on their way (give it as the hub's ``decode`` too, or it knows only starts).
        self.recent = recent or RecentRuns()
        self.unknown_run_grace = unknown_run_grace
        self.gap_deadline = gap_deadline
        self.clock = clock

    # -- one run, live -----------------------------------------------------------------

    async def run(self, session: Session, run_id: str, from_seq: int) -> None:
        subscriber = session.subscriber()
        self.hub.subscribe(run_id, subscriber)  # first: nothing can fall between the two
        try:
            seam = Seam(from_seq)
            finished = await self._send_archived(session, run_id, seam)
            pending: LiveEvent | None = None
            if finished is None and seam.last == from_seq:
                last = await self.archive.last(run_id)
                if last is None:
                    unknown = await self._why_unknown(run_id, subscriber)
                    if unknown is None:  # on its way: wait for its first event
                        pending = await self._first_live(subscriber)
                    if pending is None:
                        # Nothing live: maybe the projector archived it meanwhile.
                        finished = await self._send_archived(session, run_id, seam)
                        last = await self.archive.last(run_id)
                        if last is None:
                            detail = f"unknown run {run_id!r}" + (unknown or "")
                            await session.finish(
                                CLOSE_UNKNOWN_RUN, "unknown run", error_frame(detail)
                            )
                            return
                if last is not None and last[1] == _FINISHED and last[0] <= seam.last:
                    finished = last[0]
            await session.send(caught_up_frame(seam.last))
            if finished is not None:
                await session.finish(CLOSE_NORMAL, "", finished_frame(finished))
                return
            await self._follow(session, run_id, seam, subscriber, pending)
        finally:
            self.hub.unsubscribe(run_id, subscriber)

    async def _why_unknown(self, run_id: str, subscriber: Subscriber) -> str | None:
        """None when a run with nothing archived is on its way (its first event is worth
        waiting for), else why it is unknown (the end of the 4004 frame's detail)."""
        if not subscriber.queue.empty() or run_id in self.recent:
            return None
        requested = await self.archive.requested(run_id)
        if requested == "open" or not subscriber.queue.empty() or run_id in self.recent:
            return None
        if requested is not None:
            return f": its start was rejected ({requested})"
        return ": nothing is archived or live, and no start of it was received"

    async def _first_live(self, subscriber: Subscriber) -> LiveEvent | None:
        try:
            async with asyncio.timeout(self.unknown_run_grace):
                return await subscriber.queue.get()
        except TimeoutError:
            return None

    async def _send_archived(
        self, session: Session, run_id: str, seam: Seam, before: int = _NO_END
    ) -> int | None:
        """Send archived events after ``seam.last`` (below ``before``) while contiguous.

        Returns the seq of ``run.finished`` if it was sent.
        """
        while True:
            page = await self.archive.page(run_id, seam.last, before)
            usable = seam.contiguous([event.seq for event in page])
            for event in page[:usable]:
                if event.seq <= seam.last:
                    continue
                await session.send(event.frame)
                seam.advance(event.seq)
                if event.type == _FINISHED:
                    return event.seq
            if usable < len(page) or len(page) < PAGE_SIZE:
                return None

    async def _follow(
        self,
        session: Session,
        run_id: str,
        seam: Seam,
        subscriber: Subscriber,
        pending: LiveEvent | None,
    ) -> None:
        queue = subscriber.queue

        def direct(event: LiveEvent) -> bool:
            # Called by the hub while this task waits on its empty queue.
            verdict = seam.verdict(event.seq)
            if verdict == "skip":
                return True
            if verdict == "gap" or event.finished or not session.writable():
                return False  # this task handles it
            session.send_now(event.frame)
            seam.advance(event.seq)
            _observe_latency(event.timestamp)
            return True

        while True:
            if pending is not None:
                event, pending = pending, None
            else:
                subscriber.direct = direct
                try:
                    event = await queue.get()
                finally:
                    subscriber.direct = None
            verdict = seam.verdict(event.seq)
            if verdict == "skip":
                continue
            if verdict == "gap":
                await self._fill_gap(session, run_id, seam, event.seq)
            await session.send(event.frame)
            seam.advance(event.seq)
            _observe_latency(event.timestamp)
            if event.finished:
                await session.finish(CLOSE_NORMAL, "", finished_frame(event.seq))
                return

    async def _fill_gap(self, session: Session, run_id: str, seam: Seam, upto: int) -> None:
        """Send the archived events between ``seam.last`` and ``upto`` (exclusive)."""
        deadline = self.clock() + self.gap_deadline
        delay = 0.05
        while True:
            try:
                await self._send_archived(session, run_id, seam, before=upto)
            except CONNECTION_ERRORS as exc:  # the database is away for a moment: retry
                log.warning("reading the archive of %s failed: %s", run_id, exc)
            if seam.last + 1 >= upto:
                return
            if self.clock() >= deadline:
                raise GapError(
                    f"events {seam.last + 1}-{upto - 1} of run {run_id!r} did not reach the "
                    f"archive within {self.gap_deadline:g} s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- one run, replayed ---------------------------------------------------------------

    async def replay(self, session: Session, run_id: str, from_seq: int, speed: float) -> None:
        """Archived events only, paced by their recorded times divided by ``speed``."""
        seam = Seam(from_seq)
        loop = asyncio.get_running_loop()
        first: float | None = None
        started = loop.time()
        finished: int | None = None
        while finished is None:
            page = await self.archive.page(run_id, seam.last)
            usable = seam.contiguous([event.seq for event in page])
            for event in page[:usable]:
                if event.seq <= seam.last:
                    continue
                if first is None:
                    first, started = event.timestamp, loop.time()
                delay = started + replay_offset(first, event.timestamp, speed) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await session.send(event.frame)
                seam.advance(event.seq)
                if event.type == _FINISHED:
                    finished = event.seq
                    break
            if usable < len(page) or len(page) < PAGE_SIZE:
                break
        if finished is None:
            last = await self.archive.last(run_id)
            if last is None:
                await session.finish(
                    CLOSE_UNKNOWN_RUN,
                    "unknown run",
                    error_frame(f"no archived run {run_id!r}"),
                )
                return
            finished = last[0] if last[1] == _FINISHED else seam.last
        await session.send(caught_up_frame(seam.last))
        await session.finish(CLOSE_NORMAL, "", finished_frame(finished))

    # -- all runs ------------------------------------------------------------------------

    async def all_runs(self, session: Session) -> None:
        subscriber = session.subscriber()

        def direct(event: LiveEvent) -> bool:
            # Called by the hub while this task waits on its empty queue.
            if event.summary is None:
                return True
            if not session.writable():
                return False
            session.send_now(event.summary)
            _observe_latency(event.timestamp)
            return True

        self.hub.subscribe(None, subscriber)
        try:
            queue = subscriber.queue
            while True:
                subscriber.direct = direct
                try:
                    event = await queue.get()
                finally:
                    subscriber.direct = None
                if event.summary is not None:
                    await session.send(event.summary)
                    _observe_latency(event.timestamp)
        finally:
            self.hub.unsubscribe(None, subscriber)
