"""Versioned SQL migrations, applied exactly once under an advisory lock.

Migration files are immutable once released: their checksum is recorded when applied and
checked on every start, so an edited file is reported instead of silently diverging. Several
processes starting at once are safe: the first takes the lock and migrates, the others wait
and then find nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from oriole.errors import OrioleError
from projections.partitions import ensure_partitions

MIGRATIONS_TABLE = "oriole_migrations"
#: Key of the transaction-level advisory lock that serialises migrations ("oriole" in ASCII).
MIGRATION_LOCK_KEY = 0x6F72696F6C65
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(OrioleError):
    """The database schema and this version of Oriole disagree."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return "sha256:" + hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


def available_migrations() -> list[Migration]:
    """The migrations shipped in this package, in version order."""
    found: list[Migration] = []
    for entry in resources.files("projections.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


async def applied_migrations(conn: Any) -> list[AppliedMigration]:
    """What the database has applied (empty for a database Oriole never touched)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE)
    if not exists:
        return []
    rows = await conn.fetch(
        f"SELECT version, name, checksum, applied_at FROM {MIGRATIONS_TABLE} ORDER BY version"
    )
    return [AppliedMigration(**dict(row)) for row in rows]


async def migrate(conn: Any) -> list[Migration]:
    """Apply every pending migration in one transaction; returns the ones applied now."""
    available = available_migrations()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        # Checked first: a reader or writer role may not CREATE, even "IF NOT EXISTS".
        if await conn.fetchval("SELECT to_regclass($1)", MIGRATIONS_TABLE) is None:
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
                        version     integer     PRIMARY KEY,
                        name        text        NOT NULL,
                        checksum    text        NOT NULL,
                        applied_at  timestamptz NOT NULL DEFAULT now())"""
            )
        applied = await applied_migrations(conn)
        check_history(available, applied)
        pending = available[len(applied) :]
        for migration in pending:
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        # The month partitions ahead (migration 7 on), under the same lock.
        await ensure_partitions(conn)
    return pending


async def prepare_partitions(conn: Any, now: datetime | None = None) -> list[str]:
    """The month partitions for ``now``'s month and the next, made under the migration
    lock when missing (the projector calls it when the month turns); the names made."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        return await ensure_partitions(conn, now)


def check_history(available: list[Migration], applied: list[AppliedMigration]) -> None:
    """The applied migrations must be a prefix of the shipped ones, unchanged."""
    by_version = {m.version: m for m in available}
    for done in applied:
        shipped = by_version.get(done.version)
        if shipped is None:
            raise MigrationError(
                f"the database is at migration {done.version} ({done.name}), newer than this "
                f"Oriole knows (latest {available[-1].version if available else 0}); "
                "upgrade Oriole or use another database"
            )
        if shipped.checksum != done.checksum:
            raise MigrationError(
                f"migration {done.version:04d}_{done.name}.sql changed after it was applied "
                f"(database {done.checksum}, file {shipped.checksum}); released migrations "
                "are immutable: put the change in a new migration"
            )
