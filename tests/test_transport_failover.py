"""The endpoint pool against real (in-process) HTTP servers: timeouts, failover, breakers
and their health checks, pinned endpoints and affinity."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from oriole.llm.errors import ProviderUnavailable, RequestTimeout
from oriole.llm.resilience import RetryPolicy
from tests.transport_support import WAIT, affinity_for, echo, eventually, policy, request, state_of

pytestmark = pytest.mark.asyncio


async def test_hanging_server_is_aborted_and_failed_over(make_server: Any, make_pool: Any) -> None:
    slow, fast = await make_server(), await make_server()
    slow.behaviour = slow.hang
    pool = await make_pool([slow.url, fast.url], policy(request_timeout_seconds=0.75))
    started = time.monotonic()
    result = await pool.chat(request(), affinity=affinity_for(pool, slow.url))
    assert time.monotonic() - started < WAIT
    assert result.endpoint == fast.url
    assert result.attempts == 2
    [retry] = result.retries
    assert (retry.error_class, retry.endpoint) == ("RequestTimeout", slow.url)
    # The request was really aborted: the server saw the client hang up.
    await eventually(lambda: slow.aborted == 1)
    assert pool.status()[0].in_flight == 0


async def test_trickling_server_is_bounded_by_the_request_timeout(
    make_server: Any, make_pool: Any
) -> None:
    server = await make_server()

    async def trickle(req: web.Request, n: int) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(req)
        for _ in range(200):
            await response.write(b" ")
            await asyncio.sleep(0.05)
        return response

    server.behaviour = trickle
    retry = RetryPolicy(max_attempts=1)
    pool = await make_pool([server.url], policy(request_timeout_seconds=0.5, retry=retry))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        await pool.chat(request(), affinity="run-1")
    assert time.monotonic() - started < 5
    assert isinstance(caught.value.__cause__, RequestTimeout)


async def test_connection_refused_fails_over(make_server: Any, make_pool: Any) -> None:
    dead, alive = await make_server(), await make_server()
    await dead.stop()
    pool = await make_pool([dead.url, alive.url], policy())
    result = await pool.chat(request(), affinity=affinity_for(pool, dead.url))
    assert result.endpoint == alive.url
    assert result.retries[0].error_class == "ConnectionFailed"
    assert result.retries[0].endpoint == dead.url


async def test_breaker_opens_and_health_check_closes_it(make_server: Any, make_pool: Any) -> None:
    """Two endpoints, one killed mid-run: the run continues on the other; the breaker opens
    and, once the endpoint is back, closes."""
    a, b = await make_server(), await make_server()
    pool = await make_pool(
        [a.url, b.url],
        policy(
            breaker_failure_threshold=2,
            breaker_reset_seconds=0.3,
            health_check_interval_seconds=0.05,
            health_check_timeout_seconds=2,
        ),
    )
    run = affinity_for(pool, b.url)
    assert (await pool.chat(request(), affinity=run)).endpoint == b.url
    await eventually(lambda: b.health_checks > 0)

    await b.stop()
    for _ in range(5):
        result = await pool.chat(request(), affinity=run)
        assert result.endpoint == a.url
    await eventually(lambda: state_of(pool, b.url) in ("open", "half_open"))
    await eventually(lambda: not next(s for s in pool.status() if s.url == b.url).healthy)

    await b.start()  # same port
    await eventually(lambda: state_of(pool, b.url) == "closed")
    await eventually(lambda: next(s for s in pool.status() if s.url == b.url).healthy)
    result = await pool.chat(request(), affinity=run)
    assert result.endpoint == b.url
    assert result.attempts == 1


async def test_a_busy_endpoint_that_cannot_answer_probes_is_not_opened(
    make_server: Any, make_pool: Any
) -> None:
    """A single-threaded server (llama-cpp-python) answers no probe while it generates; the
    call in flight is the health signal, so failed probes meanwhile do not count."""
    server = await make_server()
    server.healthy = False  # every probe fails while the call below is in flight
    seen_during_call: list[tuple[str, bool]] = []

    async def slow(req: web.Request, n: int) -> web.StreamResponse:
        await eventually(lambda: server.health_checks >= 5)
        status = next(s for s in pool.status() if s.url == server.url)
        seen_during_call.append((status.state, status.healthy))
        return await echo(req, n)

    server.behaviour = slow
    pool = await make_pool(
        [server.url],
        policy(breaker_failure_threshold=1, health_check_interval_seconds=0.02),
    )
    result = await pool.chat(request(), affinity="run-1")
    assert result.attempts == 1
    assert seen_during_call == [("closed", True)]
    # Idle, the same failing probe counts.
    await eventually(lambda: state_of(pool, server.url) == "open")


async def test_open_breaker_everywhere_raises_provider_unavailable(
    make_server: Any, make_pool: Any
) -> None:
    server = await make_server()

    async def fail(req: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=503, text="down")

    server.behaviour = fail
    retry = RetryPolicy(max_attempts=3, backoff_base_seconds=0.01, retry_after_max_seconds=1)
    pool = await make_pool(
        [server.url], policy(breaker_failure_threshold=1, breaker_reset_seconds=60, retry=retry)
    )
    with pytest.raises(ProviderUnavailable) as caught:
        await pool.chat(request(), affinity="run-1")
    assert "open" in caught.value.message and server.url in caught.value.message
    attempts, retries = caught.value.attempts, caught.value.retries
    assert attempts == 2
    assert [r.error_class for r in retries] == ["ServerError", "ProviderUnavailable"]
    assert len(server.seen) == 1


async def test_half_open_trial_after_reset(make_server: Any, make_pool: Any) -> None:
    """With one endpoint, a call waits for the breaker's reset and makes the trial."""
    server = await make_server()

    async def fail_twice(req: web.Request, n: int) -> web.StreamResponse:
        if n <= 2:
            return web.Response(status=500, text="down")
        return await echo(req, n)

    server.behaviour = fail_twice
    pool = await make_pool(
        [server.url], policy(breaker_failure_threshold=2, breaker_reset_seconds=0.2)
    )
    result = await pool.chat(request(), affinity="run-1")
    assert result.attempts == 4
    assert [r.error_class for r in result.retries] == [
        "ServerError",
        "ServerError",
        "ProviderUnavailable",
    ]
    assert pool.status()[0].state == "closed"


async def test_pinned_endpoint(make_server: Any, make_pool: Any) -> None:
    a, b = await make_server(), await make_server()
    pool = await make_pool([a.url, b.url], policy())
    for i in range(5):
        result = await pool.chat(request(), affinity=f"run-{i}", endpoint=b.url)
        assert result.endpoint == b.url
    assert not a.seen
    with pytest.raises(ValueError, match="not one of"):
        await pool.chat(request(), affinity="run-1", endpoint="http://elsewhere:1")


async def test_affinity_sticks_to_one_endpoint(make_server: Any, make_pool: Any) -> None:
    servers = [await make_server() for _ in range(3)]
    pool = await make_pool([s.url for s in servers], policy())
    for run in ("run-a", "run-b", "run-c"):
        preferred = pool.preference(run)[0]
        for _ in range(4):
            assert (await pool.chat(request(), affinity=run)).endpoint == preferred
    firsts = {pool.preference(f"run-{i}")[0] for i in range(60)}
    assert firsts == {s.url for s in servers}
    # Stable: another pool (another process) with the same endpoints agrees.
    other = await make_pool([s.url for s in reversed(servers)], policy())
    assert all(pool.preference(f"r{i}") == other.preference(f"r{i}") for i in range(20))
