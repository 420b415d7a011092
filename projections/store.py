"""Writing run events to PostgreSQL: the archive first, then the projections, atomically.

A batch is one transaction: events are COPYed into ``run_events`` (straight in when none is
archived yet, else through a temporary stage and ``INSERT ... ON CONFLICT DO NOTHING``), and
only the events that were new are projected. A redelivered batch therefore changes nothing,
and the projection statements are idempotent on their own as well (conflict-free inserts,
updates guarded by sequence number), so projecting the same events twice is harmless too.
Batch events (:mod:`projections.batch_store`) are archived and projected in the same
transaction.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from oriole.batch_events import BatchEvent
from oriole.events import RunEvent
from projections.batch_store import (
    BATCH_PROJECTION_TABLES,
    archived_batch_events,
    project_batch_events,
    store_batch_events,
)
from projections.rows import (
    EventKey,
    ProjectionRows,
    Row,
    archive_row,
    event_from_archive,
    needed_context,
    project,
)
from projections.run_keys import RunKeys

log = logging.getLogger("oriole.projections")

ARCHIVE_COLUMNS = ("run_id", "seq", "event_id", "type", "schema_version", "time", "payload")
_COLUMNS = ", ".join(ARCHIVE_COLUMNS)
#: What :func:`projections.rows.archive_row` holds: the event and its run's partition key.
ARCHIVE_ROW_COLUMNS = (*ARCHIVE_COLUMNS, "run_started_at")
_ROW_COLUMNS = ", ".join(ARCHIVE_ROW_COLUMNS)

_STAGE = "run_events_stage"
_INSERT_NEW = f"""
    INSERT INTO run_events ({_ROW_COLUMNS})
    SELECT {_ROW_COLUMNS} FROM {_STAGE} ORDER BY run_id, seq
    ON CONFLICT DO NOTHING
    RETURNING run_id, seq"""
_CONFLICTS = f"""
    SELECT s.run_id, s.seq, s.event_id AS offered, e.event_id AS stored
      FROM {_STAGE} s JOIN run_events e ON e.run_id = s.run_id AND e.seq = s.seq
     WHERE e.event_id <> s.event_id
    UNION ALL
    SELECT s.run_id, s.seq, s.event_id, e.event_id
      FROM {_STAGE} s JOIN run_events e ON e.event_id = s.event_id
     WHERE e.run_id <> s.run_id OR e.seq <> s.seq"""
# With the partition key, each looked-up event reads one partition only.
_FETCH_KEYS = f"""
    SELECT {_COLUMNS} FROM run_events
     WHERE (run_id, seq, run_started_at) IN
           (SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[]))"""

_INSERT_MAZE = """
    INSERT INTO mazes (content_hash, name, width, height, grid_data, see_through_walls,
                       goal_x, goal_y, generator, first_seen_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (content_hash) DO UPDATE
       SET name = EXCLUDED.name, generator = EXCLUDED.generator,
           first_seen_at = EXCLUDED.first_seen_at
     WHERE EXCLUDED.first_seen_at < mazes.first_seen_at"""
# (The earliest run's maze row wins, whatever the order runs are projected in: a rebuild
# reads runs by id, and forks share their parent's maze.)
_INSERT_EXPERIMENT = """
    INSERT INTO experiments (
        run_id, provider, model_name, agent_endpoint, prompt_version, prompt_text,
        maze_hash, maze_name, start_x, start_y, comment, labels, warnings, rerun_of,
        model_config, temperature, num_ctx, max_output_tokens, repeat_penalty, top_p, top_k,
        vision_range, max_actions_per_turn, max_footsteps, max_actions, max_duration_seconds,
        max_tokens, max_cost_usd, goal_rule, requested_at, started_at, status,
        position_x, position_y, last_seq, forked_from, fork_step)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32,
            $33, $34, $35, $36, $37)
    ON CONFLICT (run_id) DO NOTHING"""
_INSERT_CALL = """
    INSERT INTO model_calls (
        run_id, seq, call_id, turn, provider, model, input_tokens, output_tokens, cost_usd,
        duration_ms, prompt_eval_ms, eval_ms, tokens_per_second, done_reason, attempts,
        endpoint, context_trimmed, called_at, run_started_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            $19)
    ON CONFLICT (run_id, seq, run_started_at) DO NOTHING"""
ACTION_COLUMNS = (
    "run_id", "step", "seq", "turn", "action_type", "tool_name", "arguments", "reasoning",
    "depth", "problem", "assistant_message", "from_x", "from_y", "to_x", "to_y", "success",
    "tiles_seen", "goal_seen", "goal_reached", "footsteps", "message", "result", "call_id",
    "input_tokens", "output_tokens", "cost_usd", "inference_ms", "prompt_eval_ms", "eval_ms",
    "tokens_per_second", "done_reason", "sent_at", "decided_at", "completed_at",
    "run_started_at",
)  # fmt: skip
_RECOUNT_CALLS = """
    UPDATE experiments e
       SET model_calls = s.calls, input_tokens = s.input_tokens,
           output_tokens = s.output_tokens, cost_usd = s.cost_usd
      FROM (SELECT run_id, count(*) AS calls, sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
              FROM model_calls
             WHERE run_id = ANY($1::text[]) AND run_started_at = ANY($2::timestamptz[])
             GROUP BY run_id) s
     WHERE e.run_id = s.run_id AND e.status = 'running'"""
_PROGRESS = """
    UPDATE experiments
       SET last_action_at = $2, actions = $3, footsteps = $4, turns = GREATEST(turns, $5),
           position_x = $6, position_y = $7, goal_seen = goal_seen OR $8,
           goal_reached = goal_reached OR $9, last_seq = $10
     WHERE run_id = $1 AND last_seq < $10"""
# The run's action counters (migration 7) are counted once, from its projected actions, when
# it finishes: the per-model statistics then read one row per run, not every action.
_FINISH = """
    UPDATE experiments
       SET status = $2, stop_reason = $3, stop_detail = $4, success = $5,
           goal_seen = goal_seen OR $6, goal_reached = goal_reached OR $7,
           position_x = $8, position_y = $9, footsteps = $10, actions = $11, turns = $12,
           model_calls = $13, input_tokens = $14, output_tokens = $15, cost_usd = $16,
           duration_seconds = $17, error_class = $18, error_message = $19,
           completed_at = $20, last_seq = $21,
           moves = c.moves, successful_moves = c.successful_moves, recalls = c.recalls,
           no_tool_calls = c.no_tool_calls, invalid_tool_calls = c.invalid_tool_calls
      FROM (SELECT count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                            'move_east', 'move_west'))
                       AS moves,
                   count(*) FILTER (WHERE x.action_type IN ('move_north', 'move_south',
                                                            'move_east', 'move_west')
                                      AND x.success) AS successful_moves,
                   count(*) FILTER (WHERE x.action_type LIKE 'recall%') AS recalls,
                   count(*) FILTER (WHERE x.action_type = 'no_tool_call') AS no_tool_calls,
                   count(*) FILTER (WHERE x.action_type = 'invalid_tool_call')
                       AS invalid_tool_calls
              FROM agent_actions x
             WHERE x.run_id = $1 AND x.run_started_at = $22) c
     WHERE experiments.run_id = $1 AND experiments.last_seq < $21"""

_CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"

#: Tables derived from the archive (dropped and refilled by a rebuild).
PROJECTION_TABLES = ("agent_actions", "model_calls", "experiments", "mazes")


@dataclass(frozen=True, slots=True)
class ArchiveConflict:
    """An event whose (run, seq) or event id is already archived as a different event.

    ``kind`` is ``run`` (``run_id`` is a run id) or ``batch`` (a batch id).
    """

    run_id: str
    seq: int
    offered: str
    stored: str
    kind: str = "run"


@dataclass
class BatchResult:
    received: int = 0
    archived: int = 0
    projected_rows: int = 0
    conflicts: list[ArchiveConflict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def archive(
    conn: Any, events: Sequence[RunEvent], keys: Mapping[str, datetime]
) -> tuple[set[EventKey], list[ArchiveConflict]]:
    """Store events not yet archived (``keys``: each run's partition key); returns the
    keys stored now and any conflicts."""
    if not events:
        return set(), []
    records = [archive_row(e, keys[e.run_id]) for e in events]
    if await _copy_if_all_new(conn, "run_events", ARCHIVE_ROW_COLUMNS, records):
        return {(e.run_id, e.seq) for e in events}, []
    await _stage(conn, "run_events", ARCHIVE_ROW_COLUMNS, records)
    inserted = await conn.fetch(_INSERT_NEW)
    new_keys = {(r["run_id"], r["seq"]) for r in inserted}
    conflicts: list[ArchiveConflict] = []
    if len(new_keys) < len(events):
        for r in await conn.fetch(_CONFLICTS):
            conflicts.append(
                ArchiveConflict(r["run_id"], r["seq"], str(r["offered"]), str(r["stored"]))
            )
    return new_keys, conflicts


async def _copy_if_all_new(conn: Any, table: str, columns: Sequence[str], rows: list[Row]) -> bool:
    """COPY straight into ``table`` when no row exists yet (the common case, fastest).

    Runs in a savepoint: a key that already exists (a redelivery) rolls back just this
    attempt, and the caller takes the slower staged path that skips known keys.
    """
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(table, records=rows, columns=columns)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def _stage(conn: Any, table: str, columns: Sequence[str], rows: list[Row]) -> str:
    """COPY ``rows`` into ``<table>_stage``, a temporary twin emptied at commit; its name."""
    stage = f"{table}_stage"
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
        f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table(stage, records=rows, columns=columns)
    return stage


async def fetch_events(
    conn: Any, keys: Iterable[EventKey], run_keys: Mapping[str, datetime]
) -> dict[EventKey, RunEvent]:
    """Archived events by (run, seq); ``run_keys`` has each run's partition key."""
    wanted = sorted(keys)
    if not wanted:
        return {}
    records = await conn.fetch(
        _FETCH_KEYS,
        [k[0] for k in wanted],
        [k[1] for k in wanted],
        [run_keys[k[0]] for k in wanted],
    )
    return {(r["run_id"], r["seq"]): event_from_archive(r) for r in records}


async def write_projections(conn: Any, rows: ProjectionRows) -> int:
    """Run the projection statements in dependency order; returns rows offered."""
    statements: list[tuple[str, list[Row]]] = [
        (_INSERT_MAZE, rows.mazes),
        (_INSERT_EXPERIMENT, rows.experiments),
        (_INSERT_CALL, rows.model_calls),
    ]
    for sql, batch in statements:
        if batch:
            await conn.executemany(sql, batch)
    # The widest and most numerous rows: COPY through a stage, then skip known keys.
    await copy_new_rows(conn, "agent_actions", ACTION_COLUMNS, rows.actions)
    if rows.runs_with_calls:
        await conn.execute(
            _RECOUNT_CALLS, sorted(rows.runs_with_calls), sorted(set(rows.runs_with_calls.values()))
        )
    if rows.progress:
        await conn.executemany(_PROGRESS, rows.progress)
    if rows.finishes:
        await conn.executemany(_FINISH, rows.finishes)
    written = sum(len(batch) for _, batch in statements) + len(rows.actions)
    return written + len(rows.progress) + len(rows.finishes)


async def copy_new_rows(conn: Any, table: str, columns: Sequence[str], rows: list[Row]) -> None:
    """Insert rows whose key is not in ``table`` yet, via COPY into a temporary stage."""
    if not rows or await _copy_if_all_new(conn, table, columns, rows):
        return
    stage = await _stage(conn, table, columns, rows)
    names = ", ".join(columns)
    await conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"
    )


async def project_events(
    conn: Any, events: Sequence[RunEvent], keys: Mapping[str, datetime] | None = None
) -> tuple[int, list[str]]:
    """Project ``events`` (already archived), joining with archived events as needed;
    ``keys`` has each run's partition key (looked up when not given).

    Returns the rows written and the events that could not be projected (logged here).
    """
    if not events:
        return 0, []
    if keys is None:
        keys = await RunKeys().resolve(conn, events)
    present = {(e.run_id, e.seq) for e in events}
    context = await fetch_events(conn, needed_context(events) - present, keys)
    rows = project(list(events), context, keys)
    for problem in rows.problems:
        log.error("not projected (kept in the archive): %s", problem)
    return await write_projections(conn, rows), rows.problems


async def store_batch(
    conn: Any,
    events: Sequence[RunEvent],
    batch_events: Sequence[BatchEvent] = (),
    run_keys: RunKeys | None = None,
) -> BatchResult:
    """Archive and project one batch of run events and batch events in one transaction.

    ``run_keys`` is the caller's cache of the runs' partition keys (a projector keeps one);
    without it the keys are looked up for this batch alone.
    """
    result = BatchResult(received=len(events) + len(batch_events))
    async with conn.transaction():
        # Plans are made for each batch's own values: a plan cached while this month's
        # partition was empty (and vacuumed) would keep scanning it whole as it grows.
        await conn.execute(_CUSTOM_PLANS)
        cache = RunKeys() if run_keys is None else run_keys
        keys = await cache.resolve(conn, events) if events else {}
        new_keys, result.conflicts = await archive(conn, events, keys)
        fresh = [e for e in events if (e.run_id, e.seq) in new_keys]
        # One event per key even if the batch carried a duplicate.
        unique = list({(e.run_id, e.seq): e for e in fresh}.values())
        unique.sort(key=lambda e: (e.run_id, e.seq))
        result.archived = len(unique)
        result.projected_rows, result.problems = await project_events(conn, unique, keys)
        if batch_events:
            stored = await store_batch_events(conn, batch_events)
            result.archived += stored.archived
            result.projected_rows += stored.rows
            result.problems += stored.problems
            result.conflicts += [ArchiveConflict(*c, kind="batch") for c in stored.conflicts]
    return result


# --- rebuilding from the archive ----------------------------------------------------------


async def archived_events(
    conn: Any, chunk: int = 5000
) -> AsyncIterator[tuple[list[RunEvent], dict[str, datetime]]]:
    """Every archived event, ordered by run and seq, in chunks (keyset pagination), with
    the partition keys of the chunk's runs."""
    last: EventKey = ("", 0)
    while True:
        records = await conn.fetch(
            f"SELECT {_ROW_COLUMNS} FROM run_events WHERE (run_id, seq) > ($1, $2) "
            "ORDER BY run_id, seq LIMIT $3",
            last[0],
            last[1],
            chunk,
        )
        if not records:
            return
        keys = {r["run_id"]: r["run_started_at"] for r in records}
        yield [event_from_archive(r) for r in records], keys
        last = (records[-1]["run_id"], records[-1]["seq"])


async def run_events_of(conn: Any, run_id: str) -> list[RunEvent]:
    """One run's archived events in order (empty if the run is unknown)."""
    records = await conn.fetch(
        f"SELECT {_COLUMNS} FROM run_events WHERE run_id = $1 ORDER BY seq", run_id
    )
    return [event_from_archive(r) for r in records]


@dataclass
class RebuildResult:
    events_read: int = 0
    rows_written: int = 0
    problems: list[str] = field(default_factory=list)


async def rebuild_projections(pool: Any, *, chunk: int = 5000) -> RebuildResult:
    """Empty every projection and refill it from the archives (run and batch events) in
    one transaction.

    Readers see the old projections until it commits.
    """
    result = RebuildResult()
    async with pool.acquire() as conn, conn.transaction():
        tables = (*PROJECTION_TABLES, *BATCH_PROJECTION_TABLES)
        await conn.execute(f"TRUNCATE {', '.join(tables)}")
        await conn.execute(_CUSTOM_PLANS)  # the emptied tables grow as they are refilled
        async with pool.acquire() as reader, reader.transaction(isolation="repeatable_read"):
            async for events, keys in archived_events(reader, chunk):
                result.events_read += len(events)
                written, problems = await project_events(conn, events, keys)
                result.rows_written += written
                result.problems.extend(problems)
            async for logs in archived_batch_events(reader, chunk):
                result.events_read += len(logs)
                written, problems = await project_batch_events(conn, logs)
                result.rows_written += written
                result.problems.extend(problems)
    return result
