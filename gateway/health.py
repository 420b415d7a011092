"""``GET /healthz`` of the gateway: can it read and write Kafka, can it query PostgreSQL?

Unlike the cheap `Gateway.healthy` (what a separate metrics listener reports), this asks
both services, each within a short deadline, so a load balancer sees an outage at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.http11 import Response

from gateway.http import json_response

#: Longest a health probe of Kafka or PostgreSQL may take.
HEALTH_TIMEOUT = 3.0


async def _kafka_ok(hub: Any, producer: Any) -> bool:
    if not hub.running or not hub.healthy or producer is None:
        return False
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), HEALTH_TIMEOUT)
    except Exception:
        return False
    return True


async def _database_ok(probe: Callable[[], Awaitable[Any]]) -> bool:
    try:
        await probe()
    except Exception:
        return False
    return True


async def health_response(
    hub: Any, producer: Any, database_probe: Callable[[], Awaitable[Any]]
) -> Response:
    """200 with both services up, else 503 saying which is down."""
    kafka, database = await asyncio.gather(_kafka_ok(hub, producer), _database_ok(database_probe))
    ok = kafka and database
    return json_response(
        200 if ok else 503,
        {"status": "ok" if ok else "unavailable", "kafka": kafka, "database": database},
    )
