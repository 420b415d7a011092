"""A run's archived events, for a worker that must read the archive now and then (forks).

A worker writes nothing to PostgreSQL and most workers never fork a run, so the reader opens
its small pool at first use (or borrows the pool of `oriole up`), and a database that is down
costs a refused fork, never a stopped worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from oriole.admission import FindParent, no_archive
from oriole.batch_models import forked_runs
from oriole.environment.settings import Settings
from oriole.events import RunEvent
from oriole.fork import ForkRefused
from oriole.redaction import redact_userinfo
from projections.database import create_pool
from projections.store import run_events_of

log = logging.getLogger("oriole.projections.archive_reader")

#: Longest a start waits for its fork parent to be read from the archive.
PARENT_READ_SECONDS = 30.0
#: Parents read for one batch (its starts list is capped at 100 by the spec).
MAX_PARENTS = 100


class ArchiveReader:
    """``await reader(run_id)``: the run's archived events in order ([] if not archived)."""

    def __init__(
        self, *, pool: Any = None, dsn: str | None = None, settings: Settings | None = None
    ) -> None:
        if pool is None and (dsn is None or settings is None):
            raise ValueError("give a pool, or a dsn and the settings to open one")
        self._pool = pool
        self._owned = pool is None
        self._dsn = dsn
        self._settings = settings
        self._opening = asyncio.Lock()

    async def __call__(self, run_id: str) -> list[RunEvent]:
        pool = await self._ready()
        async with pool.acquire() as conn:
            events = await run_events_of(conn, run_id)
        return events

    async def parents(self, start: dict[str, Any]) -> FindParent:
        """The parent look-up admission needs for ``start`` (a decoded start event): its fork
        parent read now, since admission is pure."""
        fork_of = start.get("fork_of")
        parent_id = fork_of.get("run_id") if isinstance(fork_of, dict) else None
        return await self.runs([parent_id] if isinstance(parent_id, str) else [])

    async def batch_parents(self, spec: dict[str, Any]) -> FindParent:
        """The same for a decoded batch spec: the parents its fork starts name."""
        return await self.runs(forked_runs(spec))

    async def runs(self, run_ids: list[str]) -> FindParent:
        """A look-up of these runs' archived logs, read now. An archive that cannot be read
        refuses the forks with the reason (redacted), never raises."""
        if not run_ids:
            return no_archive
        logs: dict[str, Sequence[RunEvent]] = {}
        try:
            for run_id in dict.fromkeys(run_ids[:MAX_PARENTS]):
                logs[run_id] = await asyncio.wait_for(self(run_id), PARENT_READ_SECONDS)
        except Exception as exc:  # refused with the reason; the caller's service goes on
            reason = redact_userinfo(f"{type(exc).__name__}: {exc}")[:500]
            refusal = ForkRefused("fork_of", f"the archive could not be read ({reason})")
            log.warning("fork parents %s not read: %s", run_ids[:5], reason)

            def refused(run_id: str) -> Sequence[RunEvent]:
                raise refusal

            return refused
        return lambda run_id: logs.get(run_id, [])

    async def _ready(self) -> Any:
        async with self._opening:
            if self._pool is None:
                assert self._dsn is not None and self._settings is not None
                settings = self._settings.model_copy(
                    update={"database_pool_min_size": 0, "database_pool_max_size": 2}
                )
                self._pool = await create_pool(self._dsn, settings)
            return self._pool

    async def close(self) -> None:
        """Close the pool this reader opened (a borrowed one belongs to its owner)."""
        if self._owned and self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)
