"""TLS and SASL to Kafka: the settings, the options every client gets, and a real mutual-TLS
connection through a TLS front of the session's broker."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import pytest_asyncio

from oriole.environment.settings import SettingsError
from oriole.kafka import clients
from oriole.kafka.clients import (
    configure_kafka_security,
    kafka_security_options,
    make_consumer,
    make_producer,
    security_options,
    stop_quietly,
)
from oriole.kafka.rdkafka_bridge import RdkafkaBridge
from oriole.kafka.topics import TopicError, TopicSpec, ensure_topics, wait_for_broker
from tests.tls_support import Pki, settings

BOOTSTRAP = "kafka1:9093"


@pytest.fixture(autouse=True)
def plaintext_afterwards() -> Iterator[None]:
    """The security options are process-wide: every test leaves them PLAINTEXT."""
    yield
    configure_kafka_security(None)


# --- settings ---------------------------------------------------------------------------------


def test_plaintext_is_the_default_and_adds_no_options() -> None:
    assert settings().kafka_security_protocol == "PLAINTEXT"
    assert kafka_security_options(settings(kafka_bootstrap_servers=BOOTSTRAP)) == {}


def test_sasl_ssl_with_scram_maps_to_aiokafka_arguments(pki: Pki) -> None:
    current = settings(
        kafka_bootstrap_servers=BOOTSTRAP,
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="scram-sha-512",
        kafka_sasl_username="oriole",
        kafka_sasl_password="sasl-secret",
        kafka_ssl_cafile=str(pki.ca),
    )
    options = kafka_security_options(current)
    assert set(options) == {
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
    }
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "oriole"
    assert options["sasl_plain_password"] == "sasl-secret"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert "sasl-secret" not in repr(current)


def test_sasl_plaintext_defaults_to_plain_and_ssl_carries_the_client_certificate(
    pki: Pki,
) -> None:
    options = kafka_security_options(
        settings(
            kafka_bootstrap_servers=BOOTSTRAP,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        )
    )
    assert options["sasl_mechanism"] == "PLAIN" and "ssl_context" not in options
    options = kafka_security_options(
        settings(
            kafka_bootstrap_servers=BOOTSTRAP,
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=str(pki.ca),
            kafka_ssl_certfile=str(pki.client_cert),
            kafka_ssl_keyfile=str(pki.client_key),
            kafka_ssl_check_hostname=False,
        )
    )
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert options["ssl_context"].check_hostname is False


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
            ["ORIOLE_KAFKA_SASL_USERNAME", "ORIOLE_KAFKA_SASL_PASSWORD"],
        ),
        (
            {"kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_username": "u"},
            ["ORIOLE_KAFKA_SASL_MECHANISM", "ORIOLE_KAFKA_SASL_USERNAME"],
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "CERT"},
            ["ORIOLE_KAFKA_SSL_KEYFILE"],
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "KEY"},
            ["ORIOLE_KAFKA_SSL_CERTFILE"],
        ),
        ({"kafka_ssl_cafile": "CA"}, ["ORIOLE_KAFKA_SSL_CAFILE"]),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
            ["ORIOLE_KAFKA_SSL_CAFILE"],
        ),
        (
            {"kafka_bootstrap_servers": "", "kafka_security_protocol": "SSL"},
            ["ORIOLE_KAFKA_SECURITY_PROTOCOL"],
        ),
        ({"kafka_security_protocol": "TLS"}, ["ORIOLE_KAFKA_SECURITY_PROTOCOL"]),
        (
            {"database_sslmode": "verify-full", "database_url": ""},
            ["ORIOLE_DATABASE_SSLMODE"],
        ),
        (
            {"database_sslrootcert": "CA", "database_url": "postgresql://db/x"},
            ["ORIOLE_DATABASE_SSLROOTCERT"],
        ),
    ],
)
def test_combinations_that_cannot_work_are_refused_naming_each_variable(
    values: dict[str, Any], problems: list[str], pki: Pki
) -> None:
    files = {"CERT": pki.client_cert, "KEY": pki.client_key, "CA": pki.ca}
    values = {k: str(files[v]) if v in files else v for k, v in values.items()}
    values.setdefault("kafka_bootstrap_servers", BOOTSTRAP)
    with pytest.raises(SettingsError) as caught:
        settings(**values)
    assert [name for name, _ in caught.value.problems] == problems


def test_a_certificate_that_does_not_load_is_a_settings_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    current = settings(
        kafka_bootstrap_servers=BOOTSTRAP,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(bogus),
    )
    with pytest.raises(SettingsError, match="ORIOLE_KAFKA_SSL_CAFILE: cannot load for TLS"):
        kafka_security_options(current)


# --- every client gets the options --------------------------------------------------------------


@pytest.mark.asyncio
async def test_every_client_factory_uses_the_configured_security(pki: Pki) -> None:
    configure_kafka_security(
        settings(
            kafka_bootstrap_servers=BOOTSTRAP,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="oriole",
            kafka_sasl_password="sasl-secret",
            kafka_ssl_cafile=str(pki.ca),
        )
    )
    expected = security_options()
    producer = make_producer(BOOTSTRAP)
    consumer = make_consumer("t", bootstrap_servers=BOOTSTRAP, group_id="g")
    try:
        for client in (producer.client, consumer._client):
            assert client._security_protocol == "SASL_SSL"
            assert client._ssl_context is expected["ssl_context"]
            assert client._sasl_mechanism == "SCRAM-SHA-256"
            assert client._sasl_plain_username == "oriole"
            assert client._sasl_plain_password == "sasl-secret"
    finally:
        await stop_quietly(producer)
        await stop_quietly(consumer)
    configure_kafka_security(settings())  # the embedded broker: plaintext again
    assert security_options() == {} and clients._security == {}


# --- a real TLS connection ----------------------------------------------------------------------


class TlsBridge(RdkafkaBridge):
    """The session's broker behind TLS: the bridge's port rewriting keeps every further
    connection (metadata, coordinator) on the TLS port."""

    def __init__(self, upstream: str, context: ssl.SSLContext) -> None:
        host, port = upstream.rsplit(":", 1)
        super().__init__(host, int(port))
        self._tls = context

    async def start(self) -> Self:
        server = await asyncio.start_server(self._accept, self._host, 0, ssl=self._tls)
        self._port = int(server.sockets[0].getsockname()[1])
        self._server = server
        return self


def server_context(pki: Pki, *, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest_asyncio.fixture
async def mutual_tls_broker(kafka_broker: str, pki: Pki) -> AsyncIterator[str]:
    async with TlsBridge(kafka_broker, server_context(pki, client_ca=pki.ca)) as bridge:
        yield bridge.bootstrap_servers


@pytest.mark.slow
@pytest.mark.asyncio
async def test_topics_producer_and_consumer_talk_mutual_tls(
    mutual_tls_broker: str, topic_prefix: str, pki: Pki
) -> None:
    configure_kafka_security(
        settings(
            kafka_bootstrap_servers=mutual_tls_broker,
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=str(pki.ca),
            kafka_ssl_certfile=str(pki.client_cert),
            kafka_ssl_keyfile=str(pki.client_key),
        )
    )
    spec = TopicSpec(prefix=topic_prefix, suffix="tls", partitions=1)
    await wait_for_broker(mutual_tls_broker, timeout=60)
    assert await ensure_topics(mutual_tls_broker, [spec], timeout=60) == [spec.name]
    producer = make_producer(mutual_tls_broker)
    consumer = make_consumer(spec.name, bootstrap_servers=mutual_tls_broker, group_id=None)
    try:
        await producer.start()
        await producer.send_and_wait(spec.name, b"over tls", key=b"k")
        await consumer.start()
        async with asyncio.timeout(60):
            record = await consumer.getone()
        assert record.value == b"over tls"
    finally:
        await stop_quietly(producer)
        await stop_quietly(consumer)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_broker_certificate_from_another_ca_is_refused(
    mutual_tls_broker: str, pki: Pki
) -> None:
    configure_kafka_security(
        settings(
            kafka_bootstrap_servers=mutual_tls_broker,
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=str(pki.other_ca),
            kafka_ssl_certfile=str(pki.client_cert),
            kafka_ssl_keyfile=str(pki.client_key),
        )
    )
    with pytest.raises(TopicError, match="did not answer"):
        await wait_for_broker(mutual_tls_broker, timeout=3)
    configure_kafka_security(None)  # and plaintext cannot talk to a TLS listener at all
    with pytest.raises(TopicError):
        await wait_for_broker(mutual_tls_broker, timeout=3)
