"""Migration 0003: the oriole_reader and oriole_writer roles give each process only what it
needs, on a real PostgreSQL, through login roles made members of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from projections.migrate import available_migrations, migrate
from projections.store import store_batch
from tests.projection_support import agent_run

pytestmark = pytest.mark.asyncio

VIEWS = (
    "v_experiment_summary",
    "v_model_performance",
    "v_prompt_variant_analysis",
    "v_turn_statistics",
    "v_action_patterns",
    "v_cost_analysis",
    "v_daily_summary",
    "v_batch_monitor",
)


def as_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}{port}"))


@pytest_asyncio.fixture
async def login_as(pg_dsn: str) -> AsyncIterator[Callable[[str], Awaitable[asyncpg.Connection]]]:
    """Makes LOGIN roles that are members of a group role; drops them afterwards."""
    made: list[str] = []

    async def make(group: str) -> asyncpg.Connection:
        name = f"oriole_test_{group.split('_')[-1]}_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(pg_dsn, timeout=30)
        try:
            await admin.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {group}')
        finally:
            await admin.close()
        made.append(name)
        # The test server trusts local connections: no password needed.
        return await asyncpg.connect(as_user(pg_dsn, name), timeout=30)

    yield make
    admin = await asyncpg.connect(pg_dsn, timeout=30)
    try:
        for name in made:
            # Privileges of a dropped role live in this test's database only.
            await admin.execute(f'DROP OWNED BY "{name}"')
            await admin.execute(f'DROP ROLE "{name}"')
    finally:
        await admin.close()


async def test_the_roles_exist_after_migrating_and_migrating_again_changes_nothing(
    pg_dsn: str,
) -> None:
    conn = await asyncpg.connect(pg_dsn, timeout=30)
    try:
        assert [m.name for m in available_migrations()][2] == "roles"
        roles = await conn.fetch(
            "SELECT rolname, rolcanlogin FROM pg_roles"
            " WHERE rolname IN ('oriole_reader', 'oriole_writer') ORDER BY rolname"
        )
        assert [(r["rolname"], r["rolcanlogin"]) for r in roles] == [
            ("oriole_reader", False),
            ("oriole_writer", False),
        ]
        assert await migrate(conn) == []  # already applied by the template
    finally:
        await conn.close()


async def test_a_reader_reads_tables_and_views_but_cannot_write(
    pg_dsn: str, login_as: Callable[[str], Awaitable[asyncpg.Connection]]
) -> None:
    events = await agent_run(f"run-{uuid.uuid4().hex[:8]}")
    owner = await asyncpg.connect(pg_dsn, timeout=30)
    try:
        await store_batch(owner, events)
    finally:
        await owner.close()
    reader = await login_as("oriole_reader")
    try:
        assert await reader.fetchval("SELECT count(*) FROM run_events") == len(events)
        assert await reader.fetchval("SELECT count(*) FROM experiments") == 1
        for view in VIEWS:
            await reader.fetch(f"SELECT * FROM {view}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute("INSERT INTO run_events SELECT * FROM run_events LIMIT 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute("UPDATE experiments SET comment = 'x'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute("DELETE FROM run_events")
    finally:
        await reader.close()


async def test_a_writer_stores_a_batch_but_cannot_delete_or_change_the_schema(
    pg_dsn: str, login_as: Callable[[str], Awaitable[asyncpg.Connection]]
) -> None:
    events = await agent_run(f"run-{uuid.uuid4().hex[:8]}")
    writer = await login_as("oriole_writer")
    try:
        half = len(events) // 2
        await store_batch(writer, events[:half])
        await store_batch(writer, events[: half + 5])  # a redelivery: staged path, temp table
        result = await store_batch(writer, events)
        assert result.problems == [] and result.conflicts == []
        assert await writer.fetchval("SELECT count(*) FROM run_events") == len(events)
        status = await writer.fetchval("SELECT status FROM experiments")
        assert status != "running"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute("DELETE FROM run_events")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute("TRUNCATE agent_actions")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute("CREATE TABLE sneaky (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute("DELETE FROM oriole_migrations")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute("UPDATE oriole_migrations SET checksum = 'x'")
    finally:
        await writer.close()
