"""The endpoint pool against real (in-process) HTTP servers: per-endpoint concurrency caps,
request and token rate limits, and cancellation releasing its slot."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from oriole.llm.resilience import RateLimit
from tests.transport_support import WAIT, echo, eventually, policy, request

pytestmark = pytest.mark.asyncio


async def test_per_endpoint_concurrency_cap(make_server: Any, make_pool: Any) -> None:
    server = await make_server()

    async def slow_echo(req: web.Request, n: int) -> web.StreamResponse:
        await asyncio.sleep(0.1)
        return await echo(req, n)

    server.behaviour = slow_echo
    pool = await make_pool([server.url], policy(endpoint_max_concurrency=2))
    results = await asyncio.wait_for(
        asyncio.gather(*(pool.chat(request(str(i)), affinity=f"run-{i}") for i in range(8))),
        WAIT,
    )
    assert sorted(r.reply.message.content for r in results) == [str(i) for i in range(8)]
    assert server.max_in_flight == 2
    assert pool.status()[0].in_flight == 0


async def test_request_rate_limit_delays_the_second_request(
    make_server: Any, make_pool: Any
) -> None:
    server = await make_server()
    pool = await make_pool(
        [server.url],
        policy(),
        rate_limits={"m1": RateLimit(requests_per_minute=1)},
        rate_window_seconds=0.5,
    )
    await pool.chat(request(), affinity="run-1")
    await pool.chat(request(), affinity="run-1")
    await pool.chat(request(model="m2"), affinity="run-1")  # another model: not limited
    assert server.seen[1].at - server.seen[0].at >= 0.45
    assert server.seen[2].at - server.seen[1].at < 0.45


async def test_token_rate_limit_delays_after_the_budget_is_used(
    make_server: Any, make_pool: Any
) -> None:
    server = await make_server()  # replies report 3 + 2 tokens
    pool = await make_pool(
        [server.url],
        policy(),
        rate_limits={"m1": RateLimit(tokens_per_minute=10)},
        rate_window_seconds=0.5,
    )
    for _ in range(3):
        await pool.chat(request(), affinity="run-1")
    # 5 tokens after the first call (under 10): no wait; 10 after the second: wait.
    assert server.seen[2].at - server.seen[1].at >= 0.45


async def test_cancellation_aborts_the_request_and_releases_the_slot(
    make_server: Any, make_pool: Any
) -> None:
    server = await make_server()
    server.behaviour = server.hang
    pool = await make_pool([server.url], policy(endpoint_max_concurrency=1))
    task = asyncio.create_task(pool.chat(request(), affinity="run-1"))
    await eventually(lambda: server.in_flight == 1)
    assert pool.status()[0].in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: server.aborted == 1)
    assert pool.status()[0].in_flight == 0
    assert pool.status()[0].state == "closed"
    server.behaviour = echo
    result = await asyncio.wait_for(pool.chat(request(), affinity="run-1"), WAIT)
    assert result.attempts == 1
