"""The websocket feed of one batch: its archived events, then the live ones, no gap, no duplicate.

The design of the one-run feed (:mod:`gateway.feeds`), simplified: a batch's log is small
and slow (a few events per run of the batch), so every event goes through the client's
queue. The client is subscribed to the batch hub (a :class:`~gateway.hub.Hub` on the batch
events topic) *before* the archive is read; archived events are sent first, live ones
follow, skipping any seq already sent; a live event beyond the next expected seq means the
projector has not archived the events in between yet, and they are read from the archive,
retried until a deadline. The feed closes normally after ``batch.finished`` or
``batch.rejected``; a batch neither archived nor seen live within a short grace gets 4004.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.feeds import PAGE_SIZE, ArchivedEvent, GapError, Session
from gateway.frames import (
    CLOSE_NORMAL,
    CLOSE_UNKNOWN_RUN,
    LiveEvent,
    Seam,
    batch_event_frame,
    caught_up_frame,
    error_frame,
    finished_frame,
    read_envelope,
)
from gateway.hub import Subscriber
from oriole.batch_events import dump_batch_event
from projections.batch_rows import TERMINAL_TYPES, batch_event_from_archive
from projections.batch_store import BATCH_ARCHIVE_COLUMNS
from projections.database import CONNECTION_ERRORS

log = logging.getLogger("oriole.gateway")

_COLUMNS = ", ".join(BATCH_ARCHIVE_COLUMNS)
_PAGE = f"""
    SELECT {_COLUMNS} FROM batch_events
     WHERE batch_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4"""
_LAST = "SELECT seq, type FROM batch_events WHERE batch_id = $1 ORDER BY seq DESC LIMIT 1"
_NO_END = 2**31 - 1


def decode_live_batch(value: bytes | None) -> LiveEvent:
    """The envelope of a batch event record and its frame (``run_id`` holds the batch id).

    Only the envelope is checked, so an event type added later still reaches the clients.
    """
    envelope = read_envelope(value, "batch_id")
    return LiveEvent(
        envelope.key,
        envelope.seq,
        envelope.type,
        envelope.timestamp,
        batch_event_frame(envelope.raw),
        None,
    )


class BatchArchive:
    """Reads one batch's events from ``batch_events``, as frames ready to send."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def page(
        self, batch_id: str, after: int, before: int = _NO_END, limit: int = PAGE_SIZE
    ) -> list[ArchivedEvent]:
        records = await self.pool.fetch(_PAGE, batch_id, after, before, limit)
        events = []
        for record in records:
            event = batch_event_from_archive(record)
            frame = batch_event_frame(dump_batch_event(event))
            events.append(ArchivedEvent(event.seq, event.type, event.time.timestamp(), frame))
        return events

    async def last(self, batch_id: str) -> tuple[int, str] | None:
        """Seq and type of the batch's last archived event; None if nothing is archived."""
        record = await self.pool.fetchrow(_LAST, batch_id)
        return None if record is None else (int(record["seq"]), str(record["type"]))


class BatchFeed:
    """``/ws/batches/{batch_id}`` over the batch hub and the archive."""

    def __init__(
        self,
        hub: Any,
        archive: BatchArchive,
        *,
        unknown_grace: float,
        gap_deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.archive = archive
        self.unknown_grace = unknown_grace
        self.gap_deadline = gap_deadline
        self.clock = clock

    async def run(self, session: Session, batch_id: str, from_seq: int) -> None:
        subscriber = session.subscriber()
        self.hub.subscribe(batch_id, subscriber)  # first: nothing can fall between the two
        try:
            seam = Seam(from_seq)
            end = await self._send_archived(session, batch_id, seam)
            pending: LiveEvent | None = None
            if end is None and seam.last == from_seq:
                last = await self.archive.last(batch_id)
                if last is None:
                    pending = await self._first_live(subscriber)
                    if pending is None:  # nothing live: maybe archived meanwhile
                        end = await self._send_archived(session, batch_id, seam)
                        last = await self.archive.last(batch_id)
                        if last is None:
                            await session.finish(
                                CLOSE_UNKNOWN_RUN,
                                "unknown batch",
                                error_frame(f"unknown batch {batch_id!r}"),
                            )
                            return
                if last is not None and last[1] in TERMINAL_TYPES and last[0] <= seam.last:
                    end = last[0]
            await session.send(caught_up_frame(seam.last))
            if end is not None:
                await session.finish(CLOSE_NORMAL, "", finished_frame(end))
                return
            await self._follow(session, batch_id, seam, subscriber, pending)
        finally:
            self.hub.unsubscribe(batch_id, subscriber)

    async def _first_live(self, subscriber: Subscriber) -> LiveEvent | None:
        try:
            async with asyncio.timeout(self.unknown_grace):
                return await subscriber.queue.get()
        except TimeoutError:
            return None

    async def _send_archived(
        self, session: Session, batch_id: str, seam: Seam, before: int = _NO_END
    ) -> int | None:
        """Send archived events after ``seam.last`` (below ``before``) while contiguous;
        the seq of a terminal event if one was sent."""
        while True:
            page = await self.archive.page(batch_id, seam.last, before)
            usable = seam.contiguous([event.seq for event in page])
            for event in page[:usable]:
                if event.seq <= seam.last:
                    continue
                await session.send(event.frame)
                seam.advance(event.seq)
                if event.type in TERMINAL_TYPES:
                    return event.seq
            if usable < len(page) or len(page) < PAGE_SIZE:
                return None

    async def _follow(
        self,
        session: Session,
        batch_id: str,
        seam: Seam,
        subscriber: Subscriber,
        pending: LiveEvent | None,
    ) -> None:
        while True:
            if pending is not None:
                event, pending = pending, None
            else:
                event = await subscriber.queue.get()
            verdict = seam.verdict(event.seq)
            if verdict == "skip":
                continue
            if verdict == "gap":
                end = await self._fill_gap(session, batch_id, seam, event.seq)
                if end is not None:
                    await session.finish(CLOSE_NORMAL, "", finished_frame(end))
                    return
            await session.send(event.frame)
            seam.advance(event.seq)
            if event.type in TERMINAL_TYPES:
                await session.finish(CLOSE_NORMAL, "", finished_frame(event.seq))
                return

    async def _fill_gap(self, session: Session, batch_id: str, seam: Seam, upto: int) -> int | None:
        """Send the archived events between ``seam.last`` and ``upto`` (exclusive)."""
        deadline = self.clock() + self.gap_deadline
        delay = 0.05
        while True:
            try:
                end = await self._send_archived(session, batch_id, seam, before=upto)
                if end is not None:
                    return end
            except CONNECTION_ERRORS as exc:  # the database is away for a moment: retry
                log.warning("reading the archive of batch %s failed: %s", batch_id, exc)
            if seam.last + 1 >= upto:
                return None
            if self.clock() >= deadline:
                raise GapError(
                    f"events {seam.last + 1}-{upto - 1} of batch {batch_id!r} did not reach "
                    f"the archive within {self.gap_deadline:g} s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
