"""Runs started at chosen times, archives at migration 6, and table checksums, for the tests
of the partitioned archive and of `oriole archive prune`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.local_run import LocalRun, ManualClock
from projections.migrate import MIGRATIONS_TABLE, available_migrations

#: The tables migration 7 converts, each with its key (the order of the checksums).
CONVERTED = {
    "run_events": "run_id, seq",
    "agent_actions": "run_id, step",
    "model_calls": "run_id, seq",
}
#: Every table holding rows of runs, with its key.
RUN_TABLES = {
    **CONVERTED,
    "experiments": "run_id",
    "mazes": "content_hash",
    "start_requests": "origin",
    "batch_events": "batch_id, seq",
    "batches": "batch_id",
    "batch_runs": "run_id",
}


async def run_at(
    run_id: str, started: datetime, *, seed: int = 1, footsteps: int = 25, finished: bool = True
) -> list[RunEvent]:
    """A run of the frontier agent whose run.started is at ``started``, one second per
    action; without its last events (still running) when ``finished`` is False."""
    maze = generators.generate("backtracker", 15, 15, seed=seed, name=f"arch-{seed}")
    request = ExperimentStart(
        run_id=run_id,
        requested_at=started,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="frontier", seed=seed),
        limits=RunLimits(max_footsteps=footsteps),
    )
    clock = ManualClock(started)
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(1)
        run.send(decision.to_intent(run_id, run.state.seq, run.state.turn))
    return run.events if finished else run.events[: len(run.events) // 2]


async def migrate_to(conn: Any, version: int) -> None:
    """Apply the shipped migrations up to ``version`` only, as `migrate` records them."""
    await conn.execute(
        f"CREATE TABLE {MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL,"
        " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for migration in available_migrations()[:version]:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )


async def columns(conn: Any, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        table,
    )
    return [row["attname"] for row in rows]


async def copy_tables(source: Any, target: Any, tables: dict[str, str]) -> None:
    """Copy every row of ``tables`` from ``source`` to ``target``: the target's columns."""
    for table, key in tables.items():
        wanted = await columns(target, table)
        names = ", ".join(wanted)
        records = await source.fetch(f"SELECT {names} FROM {table} ORDER BY {key}")
        if records:
            await target.copy_records_to_table(
                table, records=[tuple(r) for r in records], columns=wanted
            )


async def checksums(conn: Any, tables: dict[str, str], names: dict[str, list[str]]) -> Any:
    """(rows, md5 of every row's ``names`` columns in key order) per table."""
    sums: dict[str, tuple[int, str]] = {}
    for table, key in tables.items():
        cols = ", ".join(names[table])
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(ROW({cols})::text, E'\\n'"
            f" ORDER BY {key}), '')) AS sum FROM {table}"
        )
        sums[table] = (row["n"], row["sum"])
    return sums


async def row_counts(conn: Any) -> dict[str, int]:
    return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in RUN_TABLES}


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=30)
