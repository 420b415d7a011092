"""What the browser viewer tests share: the gateway serving the viewer, a database pool, and
helpers that find, read and drive elements of the page."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from gateway.server import Gateway
from oriole.environment.catalogue import MazeCatalogue
from tests.chromium_support import Chromium
from tests.kafka_support import Stack

# --- the stack ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_gateway(
    stack: Stack, pool: Any, tokens: dict[str, str] | None = None
) -> AsyncIterator[Gateway]:
    settings = stack.settings.model_copy(
        update={"gateway_host": "127.0.0.1", "gateway_port": 0, "gateway_tokens": tokens or {}}
    )
    gateway = Gateway(
        settings,
        bootstrap_servers=stack.bootstrap,
        topics=stack.topics,
        pool=pool,
        find_maze=MazeCatalogue.from_settings(settings).get,
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@contextlib.asynccontextmanager
async def database(dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


# --- page helpers ---------------------------------------------------------------------------


def by_testid(name: str) -> str:
    return f"document.querySelector('[data-testid={name}]')"


def js(value: Any) -> str:
    """A Python value as a JavaScript literal (JSON is valid JavaScript)."""
    return json.dumps(value)


async def scrub_to(browser: Chromium, step: int) -> None:
    """Drag the scrub bar as a user would: set its value and fire ``input``."""
    await browser.evaluate(
        f"(() => {{ const s = {by_testid('scrub')}; s.value = {step}; "
        "s.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )
    await browser.wait_for(
        f"{by_testid('step-counter')}.textContent.startsWith('Step {step} /')", f"step {step}"
    )
