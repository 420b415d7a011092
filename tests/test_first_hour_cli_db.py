"""Issue 17: `oriole db url` once the stack has stopped, as `oriole replay` works then.

With no `oriole up` running, `db url` starts the embedded PostgreSQL in the background and
prints a URL that still connects after the command has exited; with no database at all it
says so and what to do, and creates nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from projections.database import EmbeddedPostgres
from projections.migrate import MIGRATIONS_TABLE
from tests.test_cli_stack import _env

pytestmark = pytest.mark.slow


def oriole(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oriole", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def latest_migration(dsn: str) -> int:
    async def main() -> int:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return int(await conn.fetchval(f"SELECT max(version) FROM {MIGRATIONS_TABLE}"))
        finally:
            await conn.close()

    return asyncio.run(main())


def reachable(dsn: str) -> bool:
    try:
        latest_migration(dsn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


def test_db_url_without_a_database_says_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = oriole(home, "db", "url")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "there is no database yet" in result.stderr
    assert "`oriole up` creates it" in result.stderr and "ORIOLE_DATABASE_URL" in result.stderr
    assert not (home / "pgdata" / "PG_VERSION").exists()  # asking created nothing


def test_db_url_after_the_stack_stopped_gives_a_url_that_connects(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # What a stopped stack leaves behind: a migrated database and no server running.
    migrated = oriole(home, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    version = oriole(home, "db", "version", "--json")
    latest = json.loads(version.stdout)["latest"]
    data_dir = home / "pgdata"
    assert not (data_dir / "postmaster.pid").exists()
    try:
        result = oriole(home, "db", "url")
        assert result.returncode == 0, result.stderr
        dsn = result.stdout.strip()
        assert dsn.startswith("postgresql://") and "\n" not in dsn
        assert "no `oriole up` is running" in result.stderr
        assert str(data_dir) in result.stderr
        # `db url` has exited; its URL still works, on the database the stack used.
        assert latest_migration(dsn) == latest
        # A stack file left by an `oriole up` killed with -9 does not hide the database.
        (home / "stack.json").write_text(
            json.dumps(
                {
                    "pid": 999999,
                    "kafka_bootstrap_servers": "127.0.0.1:1",
                    "broker_kind": "tansu",
                    "topic_prefix": "oriole",
                    "started_at": "2026-01-01T00:00:00+00:00",
                }
            )
        )
        again = oriole(home, "db", "url")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == dsn
    finally:
        # Attach and release as the last holder: the server stops (as after `oriole replay`).
        server = EmbeddedPostgres(data_dir)
        server.start()
        server.stop()
    assert not reachable(dsn)
