"""TLS to PostgreSQL: the settings in the DSN, and real encrypted connections to a private
cluster with ssl on and a certificate of the test's own CA."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import asyncpg
import pytest

from bench.processes import PrivatePostgres, private_postgres_problem
from oriole.environment.settings import Settings
from projections.database import DatabaseError, create_pool, with_tls
from tests import pg_support
from tests.tls_support import Pki, settings


def test_the_tls_settings_go_into_the_dsn_query_replacing_its_own(pki: Pki) -> None:
    current = settings(
        database_url="postgresql://oriole@db/oriole?sslmode=disable&application_name=x",
        database_sslmode="VERIFY-FULL",
        database_sslrootcert=str(pki.ca),
    )
    dsn = with_tls(current.database_url, current)
    assert dsn == (
        f"postgresql://oriole@db/oriole?application_name=x&sslmode=verify-full&sslrootcert={pki.ca}"
    )
    plain = settings(database_url="postgresql://oriole@db/oriole?sslmode=require")
    assert with_tls(plain.database_url, plain) == plain.database_url  # the DSN's own stands


def server_ssl() -> bool:
    async def probe() -> bool:
        conn = await asyncpg.connect(pg_support.server_dsn(), timeout=30, ssl=False)
        try:
            return bool(await conn.fetchval("SHOW ssl") == "on")
        finally:
            await conn.close()

    return asyncio.run(probe())


@pytest.fixture(scope="module")
def pg_ssl() -> bool:
    return server_ssl()


async def ssl_in_use(dsn: str, current: Settings) -> bool:
    pool = await create_pool(dsn, current)
    try:
        return bool(await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def tls_postgres(pki: Pki) -> Iterator[PrivatePostgres]:
    """A private cluster (never the shared server) with ``ssl = on`` and a server
    certificate for 127.0.0.1 signed by the test CA; trust auth over TLS or without."""
    problem = private_postgres_problem()
    if problem is not None:
        pytest.skip(f"a private PostgreSQL cluster cannot run here: {problem}")
    cluster = PrivatePostgres(tls=(pki.server_cert, pki.server_key))
    try:
        try:
            cluster.init()  # pg_ctl -w: returns once the server accepts connections
        except subprocess.CalledProcessError as exc:
            log = cluster.log.read_text(errors="replace") if cluster.log.exists() else ""
            pytest.fail(f"private PostgreSQL with ssl on did not start: {exc}\n{log[-2000:]}")
        yield cluster
    finally:
        cluster.close()


@pytest.mark.asyncio
async def test_sslmode_require_gives_an_encrypted_connection(
    tls_postgres: PrivatePostgres,
) -> None:
    dsn = tls_postgres.dsn
    current = settings(database_url=dsn, database_sslmode="require")
    assert await ssl_in_use(dsn, current)
    assert not await ssl_in_use(dsn, settings(database_url=dsn, database_sslmode="disable"))


@pytest.mark.asyncio
async def test_verify_full_with_the_ca_that_signed_the_server_connects_encrypted(
    tls_postgres: PrivatePostgres, pki: Pki
) -> None:
    dsn = tls_postgres.dsn  # host 127.0.0.1: the certificate's IP SAN
    current = settings(
        database_url=dsn, database_sslmode="verify-full", database_sslrootcert=str(pki.ca)
    )
    assert await ssl_in_use(dsn, current)


@pytest.mark.asyncio
async def test_verify_full_with_a_ca_that_did_not_sign_the_server_fails_clearly(
    tls_postgres: PrivatePostgres, pki: Pki
) -> None:
    password = "tls-test-secret"
    dsn = tls_postgres.dsn.replace("postgres@", f"postgres:{password}@", 1)
    current = settings(
        database_url=dsn, database_sslmode="verify-full", database_sslrootcert=str(pki.other_ca)
    )
    with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL") as caught:
        await create_pool(dsn, current)
    message = str(caught.value)
    assert "certificate verify failed" in message
    assert password not in message


@pytest.mark.asyncio
async def test_require_against_a_server_without_ssl_fails_instead_of_going_plaintext(
    pg_ssl: bool,
) -> None:
    if pg_ssl:
        pytest.skip("the server has ssl on; the encrypted tests above cover it")
    dsn = pg_support.server_dsn()
    current = settings(database_url=dsn, database_sslmode="require", database_pool_min_size=1)
    with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL") as caught:
        await create_pool(dsn, current)
    assert "SSL" in str(caught.value) or "ssl" in str(caught.value)
    # ... while prefer (libpq's default) still connects, unencrypted.
    assert not await ssl_in_use(dsn, settings(database_url=dsn, database_sslmode="prefer"))
