"""A fresh, migrated PostgreSQL database per test, cloned from a per-session template.

The server comes from ``ORIOLE_TEST_DATABASE_URL`` (default: the local server on
127.0.0.1:5432 with trust auth, as on the development machines and in CI).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from projections.migrate import migrate

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_dsn() -> str:
    return os.environ.get("ORIOLE_TEST_DATABASE_URL", DEFAULT_SERVER)


def dsn_for(database: str) -> str:
    parts = urlsplit(server_dsn())
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(server_dsn(), timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_template(name: str) -> None:
    await _admin(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(dsn_for(name), timeout=30)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def create_template() -> str:
    name = f"oriole_tmpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_template(name))
    return name


def create_database(template: str) -> str:
    name = f"oriole_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def server_problem() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(server_dsn(), timeout=10)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
