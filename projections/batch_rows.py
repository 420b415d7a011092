"""Batch events -> table rows: the pure half of the batch projections (no I/O).

A batch's log (``oriole.batch_events``) is archived verbatim in ``batch_events`` and
projected into ``batches`` (one row per batch) and ``batch_runs`` (one row per launched
attempt). Each function maps typed events to tuples in the column order of the matching
statement in :mod:`projections.batch_store`. Every statement is a no-op when replayed: rows
are inserted only if missing, ``batches`` updates are guarded by the seq of the last event
folded into the row, and an attempt's end is written only once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oriole.batch_events import (
    BATCH_EVENT_TYPES,
    BatchEvent,
    BatchFinished,
    BatchProgress,
    BatchRejected,
    BatchStarted,
    RunEnded,
    RunLaunched,
    batch_run_place,
    parse_batch_event,
)
from oriole.errors import OrioleError
from projections.rows import Row, to_json

#: Every batch event class (for ``isinstance``: it narrows a union of run and batch events).
BATCH_EVENT_CLASSES = BATCH_EVENT_TYPES
#: The event types after which a batch's log has ended.
TERMINAL_TYPES = frozenset({"batch.finished", "batch.rejected"})


class BatchProjectionError(OrioleError):
    """A batch event that cannot be projected (the archive keeps it anyway)."""


def batch_archive_row(event: BatchEvent) -> Row:
    """``batch_events`` columns: batch_id, seq, event_id, type, time, event (JSON text)."""
    return (
        event.batch_id,
        event.seq,
        event.event_id,
        event.type,
        event.time,
        event.model_dump_json(),
    )


def batch_event_from_archive(record: Mapping[str, Any]) -> BatchEvent:
    """The typed event back from a ``batch_events`` row (``event`` as JSON text or a dict)."""
    stored = record["event"]
    return parse_batch_event(stored if isinstance(stored, str | bytes) else to_json(stored))


def place_of(batch_id: str, run_id: str) -> tuple[str, int]:
    """The cell and repetition of a batch's run, read from its id (``BATCH:CELL:rN[:aK]``)."""
    place = batch_run_place(run_id)
    if place is None or place.batch_id != batch_id:
        raise BatchProjectionError(
            f"batch {batch_id}: run id {run_id!r} is not BATCH:CELL:rN of this batch"
        )
    return place.cell, place.repetition


@dataclass(frozen=True, slots=True)
class BatchUpdate:
    """What one event changes in its ``batches`` row: values to set (None: keep) and deltas."""

    batch_id: str
    seq: int
    status: str | None = None
    stop_reason: str | None = None
    detail: str | None = None
    finished_at: Any = None
    #: planned, launched, finished, succeeded, failed, in_flight, spent_usd, spent_tokens
    counts: tuple[Any, ...] = (None,) * 8
    launched_delta: int = 0
    in_flight_delta: int = 0
    usd_delta: float = 0.0
    tokens_delta: int = 0

    def row(self) -> Row:
        return (
            self.batch_id,
            self.seq,
            self.status,
            self.stop_reason,
            self.detail,
            self.finished_at,
            *self.counts,
            self.launched_delta,
            self.in_flight_delta,
            self.usd_delta,
            self.tokens_delta,
        )


@dataclass
class BatchRows:
    """Everything a list of batch events writes besides the archive, in statement order."""

    batches: list[Row] = field(default_factory=list)
    updates: list[Row] = field(default_factory=list)
    launches: list[Row] = field(default_factory=list)
    ends: list[Row] = field(default_factory=list)
    #: Events that could not be projected; they stay in the archive.
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.batches) + len(self.updates) + len(self.launches) + len(self.ends)


def project_batches(events: Iterable[BatchEvent]) -> BatchRows:
    """Rows for ``events``; the updates come out in (batch, seq) order, as they must apply."""
    rows = BatchRows()
    for event in sorted(events, key=lambda e: (e.batch_id, e.seq)):
        if isinstance(event, BatchStarted):
            rows.batches.append(started_row(event))
        elif isinstance(event, BatchRejected):
            rows.batches.append(rejected_row(event))
        elif isinstance(event, RunLaunched):
            try:
                rows.launches.append(launch_row(event))
            except BatchProjectionError as exc:
                rows.problems.append(str(exc))
            rows.updates.append(
                BatchUpdate(event.batch_id, event.seq, launched_delta=1, in_flight_delta=1).row()
            )
        elif isinstance(event, RunEnded):
            try:
                rows.ends.append(end_row(event))
            except BatchProjectionError as exc:
                rows.problems.append(str(exc))
            ended = event.payload
            update = BatchUpdate(
                event.batch_id,
                event.seq,
                in_flight_delta=-1,
                usd_delta=ended.cost_usd,
                tokens_delta=ended.tokens,
            )
            rows.updates.append(update.row())
        elif isinstance(event, BatchProgress):
            counts = _counts(event.payload.model_dump())
            rows.updates.append(BatchUpdate(event.batch_id, event.seq, counts=counts).row())
        elif isinstance(event, BatchFinished):
            end = event.payload
            update = BatchUpdate(
                event.batch_id,
                event.seq,
                status="finished",
                stop_reason=end.stop_reason.value,
                detail=end.detail,
                finished_at=event.time,
                counts=_counts(end.counts.model_dump()),
            )
            rows.updates.append(update.row())
    return rows


_COUNTS = (
    "planned", "launched", "finished", "succeeded", "failed", "in_flight", "spent_usd",
    "spent_tokens",
)  # fmt: skip


def _counts(counts: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(counts[name] for name in _COUNTS)


# --- one function per statement ---------------------------------------------------------------


def started_row(event: BatchStarted) -> Row:
    """``batches`` insert: batch_id, name, labels, status, stop_reason, detail, problems,
    warnings, planned, requested_by, started_at, finished_at, cells, last_seq."""
    started = event.payload
    return (
        event.batch_id,
        started.name,
        to_json(started.labels),
        "running",
        None,
        None,
        None,
        to_json(started.warnings),
        len(started.runs),
        started.requested_by,
        event.time,
        None,
        to_json(started.cells),
        event.seq,
    )


def rejected_row(event: BatchRejected) -> Row:
    rejected = event.payload
    problems = [problem.model_dump() for problem in rejected.problems]
    return (
        event.batch_id,
        None,
        "{}",
        "rejected",
        None,
        "; ".join(f"{p.field}: {p.reason}" for p in rejected.problems),
        to_json(problems),
        "[]",
        0,
        rejected.requested_by,
        event.time,
        event.time,
        "{}",
        event.seq,
    )


def launch_row(event: RunLaunched) -> Row:
    """``batch_runs`` insert: run_id, batch_id, planned_run_id, cell, repetition, attempt,
    launched_at."""
    launched = event.payload
    cell, repetition = place_of(event.batch_id, launched.run_id)
    return (
        launched.run_id,
        event.batch_id,
        launched.planned_run_id,
        cell,
        repetition,
        launched.attempt,
        event.time,
    )


def end_row(event: RunEnded) -> Row:
    """``batch_runs`` upsert of an ended attempt: run_id, batch_id, planned_run_id, cell,
    repetition, attempt, success, failed, stop_reason, cost_usd, tokens, retry, ended_at."""
    ended = event.payload
    cell, repetition = place_of(event.batch_id, ended.run_id)
    return (
        ended.run_id,
        event.batch_id,
        ended.planned_run_id,
        cell,
        repetition,
        ended.attempt,
        ended.success,
        ended.failed,
        ended.stop_reason,
        ended.cost_usd,
        ended.tokens,
        ended.retry,
        event.time,
    )


# --- restoring after a broker restart ------------------------------------------------------


def has_ended(events: Sequence[BatchEvent]) -> bool:
    """True when the log holds ``batch.finished`` or ``batch.rejected``."""
    return any(event.type in TERMINAL_TYPES for event in events)


def unended_attempts(events: Sequence[BatchEvent]) -> list[str]:
    """Run ids of the attempts launched in ``events`` whose ``batch.run_ended`` is not there,
    in launch order."""
    ended = {event.payload.run_id for event in events if isinstance(event, RunEnded)}
    return [
        event.payload.run_id
        for event in events
        if isinstance(event, RunLaunched) and event.payload.run_id not in ended
    ]
