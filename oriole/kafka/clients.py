"""Producer and consumer settings used everywhere (measured on Tansu and fine on Kafka).

Producers: acks=all and idempotence, so a retried send cannot duplicate a run event.
Consumers: manual commits only after the work is durable, and a short fetch wait (Tansu
holds idle fetches for much of ``fetch_max_wait_ms``; 50 ms keeps steps snappy).
Security: TLS and SASL options (:func:`kafka_security_options`) set once per process with
:func:`configure_kafka_security` go into every client made here and by
:mod:`oriole.kafka.topics`, so the many call sites that only know a bootstrap string need not
carry them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from oriole.environment.settings import Settings, SettingsError, env_var_name
from oriole.kafka.codec import MAX_MESSAGE_BYTES  # a 1000x1000 maze in a start is ~3 MB

FETCH_MAX_WAIT_MS = 50
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 500

#: The process's TLS/SASL client options; empty means PLAINTEXT (the embedded broker).
_security: dict[str, Any] = {}


def kafka_security_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured TLS and SASL (empty for PLAINTEXT).

    The TLS context comes from aiokafka's ``create_ssl_context`` (system CAs unless
    ``kafka_ssl_cafile``); a file it cannot load is a :class:`SettingsError`. SCRAM uses the
    same ``sasl_plain_*`` arguments as PLAIN in aiokafka.
    """
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT" or settings.embedded_broker:
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        key_password = settings.kafka_ssl_key_password
        try:
            context = create_ssl_context(
                cafile=settings.kafka_ssl_cafile,
                certfile=settings.kafka_ssl_certfile,
                keyfile=settings.kafka_ssl_keyfile,
                # Never let OpenSSL prompt on a terminal for an encrypted key.
                password=key_password.get_secret_value() if key_password is not None else "",
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            names = [
                env_var_name(name)
                for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
                if getattr(settings, name) is not None
            ]
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
            raise SettingsError(
                [(", ".join(names) or "ORIOLE_KAFKA_SSL_*", f"cannot load for TLS: {reason}")]
            ) from None
        context.check_hostname = settings.kafka_ssl_check_hostname
        options["ssl_context"] = context
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            password.get_secret_value() if password is not None else None
        )
    return options


def configure_kafka_security(settings: Settings | None) -> None:
    """Use ``settings``' TLS/SASL in every Kafka client of this process (None: PLAINTEXT).

    Called once by the CLI after loading the settings, before any client is made.
    """
    options = {} if settings is None else kafka_security_options(settings)
    _security.clear()
    _security.update(options)


def security_options() -> dict[str, Any]:
    """The process's TLS/SASL client options (see :func:`configure_kafka_security`)."""
    return dict(_security)


def make_producer(bootstrap_servers: str, *, client_id: str = "oriole", **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        **_security,
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_request_size": MAX_MESSAGE_BYTES,
        "max_batch_size": 1024 * 1024,
    }
    settings.update(overrides)
    return AIOKafkaProducer(**settings)


def make_consumer(
    *topics: str,
    bootstrap_servers: str,
    group_id: str | None,
    client_id: str = "oriole",
    **overrides: Any,
) -> Any:
    settings: dict[str, Any] = {
        **_security,
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_partition_fetch_bytes": MAX_MESSAGE_BYTES,
        "fetch_max_bytes": 4 * MAX_MESSAGE_BYTES,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        "rebalance_timeout_ms": 2 * SESSION_TIMEOUT_MS,
    }
    settings.update(overrides)
    return AIOKafkaConsumer(*topics, **settings)


def make_admin(bootstrap_servers: str, *, client_id: str = "oriole", timeout: float = 30.0) -> Any:
    """An admin client with the configured security, for topics and consumer groups."""
    return AIOKafkaAdminClient(
        **_security,
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=int(timeout * 1000),
    )


async def stop_quietly(client: Any, timeout: float = 5.0) -> None:
    """Stop a client without hanging on a dead broker (aiokafka's stop can block)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), timeout)
