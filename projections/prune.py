"""Retention: old finished runs leave the archive and every projection.

``oriole archive prune --before DATE`` removes each run that started before DATE and has
finished, with everything that belongs to it: its events (``run_events``), its projection
rows (``experiments``, ``agent_actions``, ``model_calls``) and its start request. A month
partition (migration 7) all of whose runs go is dropped whole, which costs nothing however
big it is; the runs left in other partitions (the month DATE falls in, the DEFAULT
partition) are deleted row by row.

What stays, whatever its age:

* a run that is still running;
* a run that a remaining run was forked from (``experiments.forked_from``, when the column
  exists), and its own parent, and so on: replaying a fork needs its parent's events;
* every run of a batch that is not removed whole. A batch goes, with its events and its
  rows, only when it has finished, started before DATE, and every run it started goes too.
  A batch is never cut in half: its report would quietly cover fewer runs.

Mazes are kept (small, shared by many runs). Replay of what remains reads nothing that
was removed: runs go whole. A dry run computes the same plan and rolls it back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from oriole.errors import OrioleError, ValidationError
from projections.partitions import PARTITIONED_TABLES, Partition, month_start, partitions

log = logging.getLogger("oriole.prune")

#: The column naming the run a fork continues (migration 8). Prune keeps ancestors of the
#: runs that remain when it exists; a database without it has no forks to protect.
LINEAGE_COLUMN = "forked_from"

#: Taken in the projector's order (archive first), so a prune never deadlocks with it: the
#: projector waits while a prune runs and then catches up.
_LOCK = """
    LOCK TABLE run_events, agent_actions, model_calls, experiments, batch_events, batches,
               batch_runs, start_requests IN SHARE ROW EXCLUSIVE MODE"""

_TEMP_TABLES = """
    CREATE TEMP TABLE oriole_prune_runs (run_id text PRIMARY KEY) ON COMMIT DROP;
    CREATE TEMP TABLE oriole_prune_batches (batch_id text PRIMARY KEY) ON COMMIT DROP"""
_CANDIDATES = """
    INSERT INTO oriole_prune_runs
    SELECT run_id FROM experiments WHERE started_at < $1 AND status <> 'running'"""
_STILL_RUNNING = "SELECT count(*) FROM experiments WHERE started_at < $1 AND status = 'running'"
_HAS_LINEAGE = """
    SELECT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'experiments'::regclass AND attname = $1
                      AND NOT attisdropped)"""
# The parents of every remaining run, their parents, ...: kept.
_KEEP_ANCESTORS = f"""
    WITH RECURSIVE needed (run_id) AS (
        SELECT e.{LINEAGE_COLUMN} FROM experiments e
         WHERE e.{LINEAGE_COLUMN} IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM oriole_prune_runs p WHERE p.run_id = e.run_id)
        UNION
        SELECT e.{LINEAGE_COLUMN} FROM experiments e JOIN needed n ON e.run_id = n.run_id
         WHERE e.{LINEAGE_COLUMN} IS NOT NULL)
    DELETE FROM oriole_prune_runs p USING needed n WHERE p.run_id = n.run_id"""
# A batch goes whole: finished, started before the date, and none of its started runs stays.
_WHOLE_BATCH = """
    b.status <> 'running' AND b.started_at < $1
    AND NOT EXISTS (SELECT 1 FROM batch_runs o JOIN experiments e ON e.run_id = o.run_id
                     WHERE o.batch_id = b.batch_id
                       AND NOT EXISTS (SELECT 1 FROM oriole_prune_runs q
                                        WHERE q.run_id = o.run_id))"""
_KEEP_BATCH_RUNS = f"""
    DELETE FROM oriole_prune_runs p USING batch_runs br
     WHERE br.run_id = p.run_id
       AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = br.batch_id AND {_WHOLE_BATCH})"""
_BATCHES = f"""
    INSERT INTO oriole_prune_batches SELECT b.batch_id FROM batches b WHERE {_WHOLE_BATCH}"""
_ANALYZE = "ANALYZE oriole_prune_runs; ANALYZE oriole_prune_batches"
_COUNT = "SELECT count(*) FROM oriole_prune_runs"

# Start requests of removed runs (and refused attempts of removed batches), and refused
# requests older than the date that belong to no batch.
_START_REQUESTS_WHERE = """
    s.run_id IN (SELECT run_id FROM oriole_prune_runs)
    OR s.run_id IN (SELECT br.run_id FROM batch_runs br
                     WHERE br.batch_id IN (SELECT batch_id FROM oriole_prune_batches))
    OR (s.rejected_at IS NOT NULL AND s.received_at < $1
        AND NOT EXISTS (SELECT 1 FROM batch_runs br WHERE br.run_id = s.run_id))"""
_BY_RUN = "run_id IN (SELECT run_id FROM oriole_prune_runs)"
_BY_BATCH = "batch_id IN (SELECT batch_id FROM oriole_prune_batches)"
#: (table, condition): the plain tables, in the order rows are deleted.
_PLAIN_TABLES: tuple[tuple[str, str], ...] = (
    ("experiments", _BY_RUN),
    ("start_requests", f"({_START_REQUESTS_WHERE})"),
    ("batch_events", _BY_BATCH),
    ("batch_runs", _BY_BATCH),
    ("batches", _BY_BATCH),
)
_USES_DATE = frozenset({"start_requests"})

# Every run in one partition whose rows do not all go: a walk over its primary key index
# from one distinct run id to the next (cheap next to reading the partition).
_RUNS_KEPT_IN = """
    WITH RECURSIVE runs (run_id) AS (
        (SELECT run_id FROM {table} ORDER BY run_id LIMIT 1)
        UNION ALL
        SELECT (SELECT t.run_id FROM {table} t WHERE t.run_id > r.run_id
                 ORDER BY t.run_id LIMIT 1)
          FROM runs r WHERE r.run_id IS NOT NULL)
    SELECT count(*) FROM runs r
     WHERE r.run_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM oriole_prune_runs p WHERE p.run_id = r.run_id)"""
_AVERAGE_ROW_BYTES = """
    SELECT pg_total_relation_size(c.oid)::float8 / greatest(c.reltuples, 1) AS row_bytes,
           c.reltuples FROM pg_class c WHERE c.oid = $1::regclass"""


class PruneError(OrioleError):
    """PostgreSQL refused the prune (nothing was changed)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_before(text: str, now: datetime | None = None) -> datetime:
    """``--before``: a date (midnight UTC) or an ISO 8601 time, not in the future."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            "--before", f"expected a date YYYY-MM-DD or an ISO 8601 time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    if moment > current:
        raise ValidationError(
            "--before",
            f"{moment.isoformat()} is in the future (now {current.isoformat(timespec='seconds')}"
            "); prune removes runs that started before a past date",
        )
    return moment


@dataclass
class PruneReport:
    """What a prune removed (or, for a dry run, would remove)."""

    before: datetime
    dry_run: bool
    runs: int = 0
    events: int = 0
    #: Rows per table (run_events included), whole dropped partitions counted in.
    rows: dict[str, int] = field(default_factory=dict)
    bytes_estimate: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    batches: int = 0
    #: Runs that started before the date and stay: still running, a remaining fork's
    #: ancestor, or in a batch that is not removed whole.
    kept_running: int = 0
    kept_fork_ancestors: int = 0
    kept_in_batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["before"] = self.before.isoformat()
        return document


async def prune_archive(conn: Any, before: datetime, *, dry_run: bool) -> PruneReport:
    """Remove (or, with ``dry_run``, only count) the finished runs started before ``before``,
    in one transaction."""
    report = PruneReport(before=before, dry_run=dry_run)
    transaction = conn.transaction(isolation="repeatable_read")
    await transaction.start()
    try:
        if not dry_run:
            await conn.execute(_LOCK)
        await _plan(conn, report)
        drops, deletes = await _partition_work(conn, report)
        plain = await _plain_work(conn, report)
        if not dry_run:
            await _execute(conn, report, drops, deletes, plain)
    except asyncpg.InsufficientPrivilegeError as exc:
        await transaction.rollback()
        raise PruneError(
            f"PostgreSQL refused the prune ({exc}); it drops and deletes, which needs the "
            "tables' owner (the user that ran the migrations), not oriole_writer or "
            "oriole_reader; nothing was changed"
        ) from exc
    except BaseException:
        await transaction.rollback()
        raise
    if dry_run:
        await transaction.rollback()
    else:
        await transaction.commit()
        log.info(
            "pruned %s runs started before %s (%s events, %s partitions dropped)",
            report.runs,
            before.isoformat(),
            report.events,
            len(report.partitions_dropped),
        )
    return report


async def _plan(conn: Any, report: PruneReport) -> None:
    """Fill ``oriole_prune_runs`` and ``oriole_prune_batches``."""
    before = report.before
    await conn.execute(_TEMP_TABLES)
    await conn.execute(_CANDIDATES, before)
    report.kept_running = int(await conn.fetchval(_STILL_RUNNING, before))
    lineage = bool(await conn.fetchval(_HAS_LINEAGE, LINEAGE_COLUMN))
    while True:  # each rule may keep runs that make the other keep more: until nothing moves
        ancestors = _deleted(await conn.execute(_KEEP_ANCESTORS)) if lineage else 0
        in_batches = _deleted(await conn.execute(_KEEP_BATCH_RUNS, before))
        report.kept_fork_ancestors += ancestors
        report.kept_in_batches += in_batches
        if ancestors == in_batches == 0:
            break
    await conn.execute(_BATCHES, before)
    await conn.execute(_ANALYZE)
    report.runs = int(await conn.fetchval(_COUNT))
    report.batches = int(await conn.fetchval("SELECT count(*) FROM oriole_prune_batches"))


def _deleted(status: str) -> int:
    """The row count of a ``DELETE n`` command status."""
    return int(status.rsplit(" ", 1)[-1])


async def _partition_work(
    conn: Any, report: PruneReport
) -> tuple[list[Partition], list[Partition]]:
    """The partitions to drop whole and those to delete rows from, counted into
    ``report``. Only partitions of months before the date hold runs that go; a month's
    partitions (one per table) are dropped together, when none holds a run that stays."""
    involved = [
        part
        for part in await partitions(conn)
        if part.month is None or month_start(part.month) < report.before
    ]
    months_kept: set[date | None] = {None}  # the DEFAULT partitions are never dropped
    for part in involved:
        if part.month in months_kept:
            continue
        whole = part.upper is not None and part.upper <= report.before
        if not whole or await conn.fetchval(_RUNS_KEPT_IN.format(table=_quote(part.name))):
            months_kept.add(part.month)
    drops: list[Partition] = []
    deletes: list[Partition] = []
    for part in involved:
        name = _quote(part.name)
        if part.month not in months_kept:
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {name}"))
            drops.append(part)
            report.partitions_dropped.append(part.name)
            report.bytes_estimate += part.bytes
        else:
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {name} WHERE {_BY_RUN}"))
            if rows:
                deletes.append(part)
                report.bytes_estimate += round(rows * await _row_bytes(conn, part.name))
        report.rows[part.table] = report.rows.get(part.table, 0) + rows
    for table in PARTITIONED_TABLES:
        report.rows.setdefault(table, 0)
    report.events = report.rows["run_events"]
    return drops, deletes


async def _plain_work(conn: Any, report: PruneReport) -> list[str]:
    """The plain tables rows go from, counted into ``report``."""
    work: list[str] = []
    for table, where in _PLAIN_TABLES:
        args = (report.before,) if table in _USES_DATE else ()
        rows = int(await conn.fetchval(f"SELECT count(*) FROM {table} s WHERE {where}", *args))
        report.rows[table] = rows
        if rows:
            work.append(table)
            report.bytes_estimate += round(rows * await _row_bytes(conn, table))
    return work


async def _row_bytes(conn: Any, relation: str) -> float:
    """Average bytes per row of ``relation``, indexes and TOAST included (an estimate)."""
    row = await conn.fetchrow(_AVERAGE_ROW_BYTES, _quote(relation))
    if row["reltuples"] > 0:
        return float(row["row_bytes"])
    count = await conn.fetchval(f"SELECT count(*) FROM {_quote(relation)}")
    return float(row["row_bytes"]) / max(int(count), 1)


async def _execute(
    conn: Any,
    report: PruneReport,
    drops: list[Partition],
    deletes: list[Partition],
    plain: list[str],
) -> None:
    for part in drops:
        await conn.execute(f"DROP TABLE {_quote(part.name)}")
    for part in deletes:
        await conn.execute(f"DELETE FROM {_quote(part.name)} WHERE {_BY_RUN}")
    for table, where in _PLAIN_TABLES:
        if table in plain:
            args = (report.before,) if table in _USES_DATE else ()
            await conn.execute(f"DELETE FROM {table} s WHERE {where}", *args)
