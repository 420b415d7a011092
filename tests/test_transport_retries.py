"""The endpoint pool against real (in-process) HTTP servers: a success, and which failures
are retried (rate limits after Retry-After, server errors, malformed replies) and which not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from oriole.llm.errors import BadRequest, ProviderUnavailable, ServerError
from tests.transport_support import echo, policy, request

pytestmark = pytest.mark.asyncio


async def test_success(make_server: Any, make_pool: Any) -> None:
    server = await make_server()
    pool = await make_pool([server.url], policy())
    result = await pool.chat(request("hi there"), affinity="run-1")
    assert result.reply.message.content == "hi there"
    assert result.reply.input_tokens == 3
    assert result.endpoint == server.url
    assert result.attempts == 1
    assert result.retries == ()
    assert result.wall_ms > 0
    assert server.seen[0].path == "/chat/m1"
    assert server.seen[0].headers["Content-Type"] == "application/json"
    assert json.loads(server.seen[0].body) == {"model": "m1", "text": "hi there"}
    [status] = pool.status()
    assert (status.state, status.healthy, status.in_flight) == ("closed", True, 0)


async def test_rate_limited_then_success_honours_retry_after(
    make_server: Any, make_pool: Any
) -> None:
    server = await make_server()

    async def throttle_once(req: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        return await echo(req, n)

    server.behaviour = throttle_once
    pool = await make_pool([server.url], policy())
    result = await pool.chat(request(), affinity="run-1")
    assert result.attempts == 2
    [retry] = result.retries
    assert (retry.attempt, retry.error_class, retry.status) == (1, "RateLimited", 429)
    assert retry.endpoint == server.url
    assert retry.wait_ms >= 1000
    assert server.seen[1].at - server.seen[0].at >= 0.95
    # Throttling is not the endpoint's fault: the breaker did not count it.
    assert pool.status()[0].consecutive_failures == 0


async def test_server_errors_are_retried_then_given_up(make_server: Any, make_pool: Any) -> None:
    server = await make_server()

    async def fail(req: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=500, text=f"failure {n}")

    server.behaviour = fail
    pool = await make_pool([server.url], policy(breaker_failure_threshold=10))
    with pytest.raises(ProviderUnavailable) as caught:
        await pool.chat(request(), affinity="run-1")
    error = caught.value
    attempts, retries = error.attempts, error.retries
    assert attempts == 4 == len(server.seen)
    assert [r.attempt for r in retries] == [1, 2, 3, 4]
    assert {r.error_class for r in retries} == {"ServerError"}
    assert retries[-1].wait_ms == 0
    assert "failure 4" in error.message and "4 attempts" in error.message
    assert error.endpoint == server.url
    assert isinstance(error.__cause__, ServerError)


async def test_bad_request_is_not_retried(make_server: Any, make_pool: Any) -> None:
    server = await make_server()

    async def reject(req: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=400, text="bad tools")

    server.behaviour = reject
    pool = await make_pool([server.url], policy(breaker_failure_threshold=1))
    with pytest.raises(BadRequest) as caught:
        await pool.chat(request(), affinity="run-1")
    assert caught.value.status == 400
    assert caught.value.attempts == 1
    assert len(server.seen) == 1
    # A client error says nothing against the endpoint.
    assert pool.status()[0].state == "closed"


async def test_malformed_reply_is_retried(make_server: Any, make_pool: Any) -> None:
    server = await make_server()

    async def garbage_once(req: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return web.Response(text="<html>proxy error</html>")
        return await echo(req, n)

    server.behaviour = garbage_once
    pool = await make_pool([server.url], policy())
    result = await pool.chat(request(), affinity="run-1")
    assert result.attempts == 2
    assert result.retries[0].error_class == "MalformedResponse"
