"""Shared fixtures: one real embedded Kafka broker (Tansu) per test session.

Tests that need Kafka take ``kafka_broker`` (the bootstrap string) and ``topic_prefix`` (a
fresh prefix per test, so tests never see each other's topics on the shared broker). The
fixture applies the Tansu client patches, exactly as Oriole does when it starts the embedded
broker itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from oriole.kafka import EmbeddedBroker, prepare_clients

#: Support modules whose fixtures several test modules of one subject share: registered as
#: plugins, so a test asks for them by name, as for the fixtures below.
pytest_plugins = [
    "tests.tls_support",
    "tests.transport_support",
    "tests.views_support",
]

# Helpers that assert, moved out of test modules: their failures keep pytest's detailed
# messages (plugins above are rewritten anyway).
pytest.register_assert_rewrite(
    "tests.builtin_agents_support",
    "tests.chromium_support",
    "tests.replay_support",
    "tests.watch_support",
)

#: Generous: the machine running the tests may be a loaded 2-core box.
BROKER_START_TIMEOUT = 60.0


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def embedded_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedBroker]:
    """The session's broker process (stopped, and its process reaped, at session end)."""
    log_dir: Path = tmp_path_factory.mktemp("tansu-logs")
    async with EmbeddedBroker(log_dir=log_dir, start_timeout=BROKER_START_TIMEOUT) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_broker(embedded_broker: EmbeddedBroker) -> str:
    """Bootstrap servers (``127.0.0.1:PORT``) of the session's embedded broker."""
    prepare_clients(True)
    return embedded_broker.bootstrap_servers


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database on the test PostgreSQL server."""
    from tests import pg_support

    problem = pg_support.server_problem()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL at {pg_support.server_dsn()} is not reachable ({problem}); start it "
            "(`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or "
            "set ORIOLE_TEST_DATABASE_URL"
        )
    name = pg_support.create_template()
    try:
        yield name
    finally:
        pg_support.drop_database(name)


@pytest.fixture
def pg_dsn(pg_template: str) -> Iterator[str]:
    """DSN of a fresh, fully migrated database that only this test uses."""
    from tests import pg_support

    name = pg_support.create_database(pg_template)
    try:
        yield pg_support.dsn_for(name)
    finally:
        pg_support.drop_database(name)
