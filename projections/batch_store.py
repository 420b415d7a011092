"""Writing batch events to PostgreSQL: the archive (``batch_events``), then the projections.

Called by :func:`projections.store.store_batch` inside its transaction, so run events and
batch events of one projector batch are committed together. Only the events that were new
to the archive are projected, and every projection statement is idempotent on its own
(inserts skip known keys, ``batches`` updates are guarded by ``last_seq``, an attempt's end
is written once), so a redelivered event changes nothing. A batch log is small next to run
logs: plain statements, no COPY.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from oriole.batch_events import BatchEvent
from projections.batch_rows import (
    BatchRows,
    batch_archive_row,
    batch_event_from_archive,
    project_batches,
)

log = logging.getLogger("oriole.projections")

BATCH_ARCHIVE_COLUMNS = ("batch_id", "seq", "event_id", "type", "time", "event")
_COLUMNS = ", ".join(BATCH_ARCHIVE_COLUMNS)
#: Tables derived from ``batch_events`` (emptied and refilled by a rebuild).
BATCH_PROJECTION_TABLES = ("batch_runs", "batches")

_INSERT_EVENTS = f"""
    INSERT INTO batch_events ({_COLUMNS})
    SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::timestamptz[],
                         $6::jsonb[])
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING
    RETURNING batch_id, seq"""
_STORED_IDS = """
    SELECT batch_id, seq, event_id FROM batch_events
     WHERE (batch_id, seq) IN (SELECT * FROM unnest($1::text[], $2::int[]))
        OR event_id = ANY($3::uuid[])"""
_INSERT_BATCH = """
    INSERT INTO batches (batch_id, name, labels, status, stop_reason, detail, problems,
                         warnings, planned, requested_by, started_at, finished_at, cells,
                         last_seq)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (batch_id) DO NOTHING"""
# A value to set (NULL: keep the column) or, for the counters, a delta to add.
_UPDATE_BATCH = """
    UPDATE batches
       SET status = coalesce($3, status), stop_reason = coalesce($4, stop_reason),
           detail = coalesce($5, detail), finished_at = coalesce($6, finished_at),
           planned = coalesce($7, planned),
           launched = coalesce($8, launched + $15),
           finished = coalesce($9, finished),
           succeeded = coalesce($10, succeeded),
           failed = coalesce($11, failed),
           in_flight = coalesce($12, greatest(in_flight + $16, 0)),
           spent_usd = coalesce($13::numeric, spent_usd + $17::numeric),
           spent_tokens = coalesce($14::bigint, spent_tokens + $18::bigint),
           last_seq = $2
     WHERE batch_id = $1 AND last_seq < $2"""
_INSERT_LAUNCH = """
    INSERT INTO batch_runs (run_id, batch_id, planned_run_id, cell, repetition, attempt,
                            launched_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (run_id) DO NOTHING"""
_UPSERT_END = """
    INSERT INTO batch_runs (run_id, batch_id, planned_run_id, cell, repetition, attempt,
                            ended, success, failed, stop_reason, cost_usd, tokens, retry,
                            ended_at)
    VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (run_id) DO UPDATE
       SET ended = true, success = EXCLUDED.success, failed = EXCLUDED.failed,
           stop_reason = EXCLUDED.stop_reason, cost_usd = EXCLUDED.cost_usd,
           tokens = EXCLUDED.tokens, retry = EXCLUDED.retry, ended_at = EXCLUDED.ended_at
     WHERE NOT batch_runs.ended"""


@dataclass
class BatchStoreResult:
    archived: int = 0
    rows: int = 0
    #: (batch id, seq, offered event id, stored event id) of events refused by the archive.
    conflicts: list[tuple[str, int, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def archive_batch_events(
    conn: Any, events: Sequence[BatchEvent]
) -> tuple[list[BatchEvent], list[tuple[str, int, str, str]]]:
    """Store the events not archived yet; returns those (one per key) and any conflicts."""
    if not events:
        return [], []
    records = [batch_archive_row(event) for event in events]
    columns = [list(column) for column in zip(*records, strict=True)]
    inserted = await conn.fetch(_INSERT_EVENTS, *columns)
    new_keys = {(r["batch_id"], r["seq"]) for r in inserted}
    fresh = list(
        {(e.batch_id, e.seq): e for e in events if (e.batch_id, e.seq) in new_keys}.values()
    )
    conflicts: list[tuple[str, int, str, str]] = []
    if len(new_keys) < len(events):
        stored = await conn.fetch(_STORED_IDS, columns[0], columns[1], [e.event_id for e in events])
        by_key = {(r["batch_id"], r["seq"]): r["event_id"] for r in stored}
        by_id = {r["event_id"]: (r["batch_id"], r["seq"]) for r in stored}
        for event in events:
            key = (event.batch_id, event.seq)
            if key in new_keys:
                continue
            known = by_key.get(key)
            if known is not None and known != event.event_id:
                conflicts.append((*key, str(event.event_id), str(known)))
            elif by_id.get(event.event_id, key) != key:
                conflicts.append((*key, str(event.event_id), str(event.event_id)))
    return fresh, conflicts


async def write_batch_projections(conn: Any, rows: BatchRows) -> int:
    """Run the batch projection statements in dependency order; returns rows offered."""
    for sql, batch in (
        (_INSERT_BATCH, rows.batches),
        (_UPDATE_BATCH, rows.updates),
        (_INSERT_LAUNCH, rows.launches),
        (_UPSERT_END, rows.ends),
    ):
        if batch:
            await conn.executemany(sql, batch)
    return len(rows)


async def project_batch_events(conn: Any, events: Sequence[BatchEvent]) -> tuple[int, list[str]]:
    """Project archived ``events``; the rows written and the events that could not be."""
    rows = project_batches(events)
    for problem in rows.problems:
        log.error("not projected (kept in the archive): %s", problem)
    return await write_batch_projections(conn, rows), rows.problems


async def store_batch_events(conn: Any, events: Sequence[BatchEvent]) -> BatchStoreResult:
    """Archive and project ``events`` (the caller holds the transaction)."""
    result = BatchStoreResult()
    fresh, result.conflicts = await archive_batch_events(conn, events)
    result.archived = len(fresh)
    result.rows, result.problems = await project_batch_events(conn, fresh)
    return result


# --- reading the archive --------------------------------------------------------------------


async def batch_events_of(conn: Any, batch_id: str, after: int = 0) -> list[BatchEvent]:
    """One batch's archived events after seq ``after``, in order (empty if unknown)."""
    records = await conn.fetch(
        f"SELECT {_COLUMNS} FROM batch_events WHERE batch_id = $1 AND seq > $2 ORDER BY seq",
        batch_id,
        after,
    )
    return [batch_event_from_archive(r) for r in records]


async def archived_batch_events(conn: Any, chunk: int = 5000) -> AsyncIterator[list[BatchEvent]]:
    """Every archived batch event, ordered by batch and seq, in chunks (keyset pagination)."""
    last: tuple[str, int] = ("", 0)
    while True:
        records = await conn.fetch(
            f"SELECT {_COLUMNS} FROM batch_events WHERE (batch_id, seq) > ($1, $2) "
            "ORDER BY batch_id, seq LIMIT $3",
            last[0],
            last[1],
            chunk,
        )
        if not records:
            return
        yield [batch_event_from_archive(r) for r in records]
        last = (records[-1]["batch_id"], records[-1]["seq"])


#: Batches whose archived log has no ``batch.finished`` or ``batch.rejected``, oldest first.
UNFINISHED_BATCHES = """
    SELECT batch_id FROM batch_events
     GROUP BY batch_id
    HAVING bool_and(type NOT IN ('batch.finished', 'batch.rejected'))
     ORDER BY min(time), batch_id"""
