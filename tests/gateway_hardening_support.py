"""What the gateway hardening tests (issue 11) share: their tokens, a gateway started with
overridden settings, and a run long enough to act on while it goes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from gateway.server import Gateway
from oriole import generators
from oriole.environment.catalogue import MazeCatalogue
from tests.kafka_support import start_event

READ_TOKEN = "read-tok-1b7e55d0"
WRITE_TOKEN = "write-tok-c03e9a21"
ALICE_TOKEN = "alice-tok-6f2d8e90"
#: Generous bound on any single exchange with the gateway in these tests.
TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def gateway_with(
    stack: Any, pool: Any, *, tokens: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """A started gateway on a free loopback port with ``gateway_*`` settings overridden."""
    update: dict[str, Any] = {"gateway_port": 0, "gateway_tokens": tokens or {}, **settings}
    gateway = Gateway(
        stack.settings.model_copy(update=update),
        bootstrap_servers=stack.bootstrap,
        topics=stack.topics,
        pool=pool,
        find_maze=MazeCatalogue.from_settings(stack.settings).get,
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await asyncio.wait_for(gateway.stop(), TIMEOUT)


def long_run(run_id: str) -> dict[str, Any]:
    maze = generators.generate("backtracker", 41, 41, seed=3, name="hardening")
    return json.loads(
        start_event(
            run_id,
            maze.to_dict(),
            agent={"provider": "builtin", "model": "random", "seed": 3},
            limits={"max_footsteps": None, "max_actions": 100_000},
        )
    )
