"""What the stack under test archived in PostgreSQL, read on a fresh connection each time.

Apart from the topic observer because the database comes and goes during the suite (it is
stopped and frozen on purpose): every read here answers None while it cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class ArchivedRun:
    rows: int
    seqs: int
    max_seq: int
    started: int
    finished: int

    def problems(self) -> list[str]:
        """What a complete, duplicate-free archived run never has."""
        found = []
        if self.seqs != self.rows or self.max_seq != self.rows:
            found.append(f"{self.rows} rows for seqs 1..{self.max_seq}")
        if self.started > 1 or self.finished > 1:
            found.append(f"{self.started} x run.started, {self.finished} x run.finished")
        return found


async def _fetch(dsn: str, sql: str, *args: object) -> list[Any] | None:
    """Rows of one query on a fresh connection; None while the database cannot be reached."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return list(await conn.fetch(sql, *args, timeout=5))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)


async def archived_runs(dsn: str, prefix: str) -> dict[str, ArchivedRun] | None:
    """What ``run_events`` holds per run whose id starts with ``prefix``; None while the
    database cannot be reached."""
    rows = await _fetch(
        dsn,
        "SELECT run_id, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m, "
        "count(*) FILTER (WHERE type = 'run.started') AS s, "
        "count(*) FILTER (WHERE type = 'run.finished') AS f "
        "FROM run_events WHERE run_id LIKE $1 GROUP BY run_id",
        prefix + "%",
    )
    if rows is None:
        return None
    return {r["run_id"]: ArchivedRun(r["n"], r["d"], r["m"], r["s"], r["f"]) for r in rows}


async def archived_requests(dsn: str, prefix: str) -> set[str] | None:
    """Run ids of the start requests the projector archived (None while unreachable)."""
    rows = await _fetch(dsn, "SELECT run_id FROM start_requests WHERE run_id LIKE $1", prefix + "%")
    return None if rows is None else {r["run_id"] for r in rows}
