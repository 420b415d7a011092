"""Producer and consumer settings used everywhere (measured on Tansu and fine on Kafka).

Producers: acks=all and idempotence, so a retried send cannot duplicate a run event.
Consumers: manual commits only after the work is durable, and a short fetch wait (Tansu
holds idle fetches for much of ``fetch_max_wait_ms``; 50 ms keeps steps snappy).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

FETCH_MAX_WAIT_MS = 50
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 500
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a 1000x1000 maze in a start event is ~3 MB of JSON


def make_producer(bootstrap_servers: str, *, client_id: str = "oriole", **overrides: Any) -> Any:
    settings: dict[str, Any] = {
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


async def stop_quietly(client: Any, timeout: float = 5.0) -> None:
    """Stop a client without hanging on a dead broker (aiokafka's stop can block)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), timeout)
