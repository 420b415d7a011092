"""The endpoint pool against real (in-process) HTTP servers: retries, failover, breakers,
health checks, concurrency caps, rate limits, cancellation and signing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import REGISTRY

from oriole.llm.chat import ChatRequest, Message, ModelReply
from oriole.llm.errors import (
    BadRequest,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from oriole.llm.resilience import RateLimit, RetryPolicy
from providers.transport import EndpointPool, TransportPolicy

pytestmark = pytest.mark.asyncio

#: Generous: the machine running the tests may be a loaded 2-core box.
WAIT = 30.0


class EchoWire:
    """A trivial wire format: the reply's content is the last user message."""

    provider = "echo"
    health_path: str | None = "/health"

    def chat_path(self, model: str) -> str:
        return f"/chat/{model}"

    def chat_body(self, request: ChatRequest) -> dict[str, Any]:
        return {"model": request.model, "text": request.messages[-1].content}

    def parse_reply(self, body: bytes) -> ModelReply:
        try:
            data = json.loads(body)
            text = data["text"]
        except (ValueError, KeyError) as exc:
            raise MalformedResponse(f"not an echo reply: {exc}") from exc
        return ModelReply(
            message=Message(role="assistant", content=text),
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        text = body.decode(errors="replace")[:200]
        if status == 429:
            hint = headers.get("Retry-After")
            return RateLimited(text, status=status, retry_after=float(hint) if hint else None)
        if status >= 500:
            return ServerError(text, status=status)
        if status == 400:
            return BadRequest(text, status=status)
        return ProviderError(text, status=status)


def request(text: str = "hello", model: str = "m1") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role="user", content=text),), tools=())


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


Behaviour = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


async def echo(request: web.Request, n: int) -> web.StreamResponse:
    data = await request.json()
    return web.json_response({"text": data["text"], "input_tokens": 3, "output_tokens": 2})


class FakeServer:
    """An aiohttp server whose chat behaviour a test sets; counts what it sees."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = echo
        self.healthy = True
        self.seen: list[Seen] = []
        self.health_checks = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.aborted = 0
        self.port = 0
        #: Set at teardown so that hanging handlers end.
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that hangs up cancels the handler (seen as aborted).
        runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.release.set()
            await runner.cleanup()
            self.release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/health":
            self.health_checks += 1
            return web.Response(status=200 if self.healthy else 503)
        body = await request.read()
        self.seen.append(Seen(request.path, dict(request.headers), body, time.monotonic()))
        n = len(self.seen)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.behaviour(request, n)
        except asyncio.CancelledError:
            self.aborted += 1
            raise
        finally:
            self.in_flight -= 1

    async def hang(self, request: web.Request, n: int) -> web.StreamResponse:
        await self.release.wait()
        return web.Response(status=503)


@pytest_asyncio.fixture
async def make_server() -> AsyncIterator[Callable[[], Awaitable[FakeServer]]]:
    servers: list[FakeServer] = []

    async def make() -> FakeServer:
        server = FakeServer()
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


@pytest_asyncio.fixture
async def make_pool() -> AsyncIterator[Callable[..., Awaitable[EndpointPool]]]:
    pools: list[EndpointPool] = []

    async def make(endpoints: list[str], policy: TransportPolicy, **kwargs: Any) -> EndpointPool:
        kwargs.setdefault("rng", random.Random(1))
        pool = EndpointPool(kwargs.pop("wire", EchoWire()), endpoints, policy, **kwargs)
        pools.append(pool)
        await pool.start()
        return pool

    yield make
    for pool in pools:
        await pool.close()


def policy(**overrides: Any) -> TransportPolicy:
    """Fast retries, no health checks unless asked for."""
    retry = overrides.pop(
        "retry",
        RetryPolicy(
            max_attempts=4,
            backoff_base_seconds=0.01,
            backoff_max_seconds=0.05,
            retry_after_max_seconds=5,
        ),
    )
    values: dict[str, Any] = {
        "request_timeout_seconds": 10.0,
        "connect_timeout_seconds": 5.0,
        "health_check_interval_seconds": 0,
        "breaker_failure_threshold": 3,
        "breaker_reset_seconds": 30,
    }
    values.update(overrides)
    return TransportPolicy(retry=retry, **values)


def affinity_for(pool: EndpointPool, first: str) -> str:
    """An affinity whose preferred endpoint is ``first``."""
    for i in range(10_000):
        if pool.preference(f"run-{i}")[0] == first:
            return f"run-{i}"
    raise AssertionError("no affinity prefers " + first)


async def eventually(check: Callable[[], bool], timeout: float = WAIT) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


def state_of(pool: EndpointPool, url: str) -> str:
    return next(s.state for s in pool.status() if s.url == url)


# -- the basics ------------------------------------------------------------------------


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


# -- failover --------------------------------------------------------------------------


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


# -- capacity --------------------------------------------------------------------------


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


# -- headers, signing, secrets ---------------------------------------------------------


async def test_headers_and_signer_are_applied(make_server: Any, make_pool: Any) -> None:
    server = await make_server()
    signed: list[tuple[str, str]] = []

    async def signer(
        method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        signed.append((method, url))
        return {**headers, "X-Signature": hashlib.sha256(body).hexdigest()}

    pool = await make_pool(
        [server.url],
        policy(health_check_interval_seconds=0.05),
        headers={"Authorization": "Bearer s3cret-key"},
        signer=signer,
    )
    await pool.chat(request("signed"), affinity="run-1")
    [seen] = server.seen
    assert seen.headers["Authorization"] == "Bearer s3cret-key"
    assert seen.headers["X-Signature"] == hashlib.sha256(seen.body).hexdigest()
    assert ("POST", server.url + "/chat/m1") in signed
    await eventually(lambda: ("GET", server.url + "/health") in signed)
    assert "s3cret" not in repr(pool)


async def test_userinfo_never_shows(make_server: Any, make_pool: Any) -> None:
    server = await make_server()
    secret_url = f"http://alice:pa55word@127.0.0.1:{server.port}"
    dead = await make_server()
    await dead.stop()
    dead_url = f"http://bob:hunter2@127.0.0.1:{dead.port}/"
    pool = await make_pool([secret_url, dead_url], policy())
    assert pool.endpoints == [server.url, dead.url + "/"]
    result = await pool.chat(request(), affinity=affinity_for(pool, pool.endpoints[1]))
    assert result.endpoint == server.url
    assert server.seen[0].headers["Authorization"].startswith("Basic ")  # userinfo used
    texts = [repr(pool), str(pool.status()), str(result)]
    for metric in REGISTRY.collect():
        if metric.name.startswith("oriole_provider"):
            texts += [str(sample.labels) for sample in metric.samples]
    for text in texts:
        assert "pa55word" not in text and "hunter2" not in text and "alice" not in text
    with pytest.raises(ProviderUnavailable) as caught:
        await pool.chat(request(), affinity="run-1", endpoint=dead_url)
    assert "hunter2" not in str(caught.value) and "hunter2" not in str(caught.value.retries)


async def test_close_is_idempotent(make_server: Any) -> None:
    server = await make_server()
    async with EndpointPool(EchoWire(), [server.url], policy()) as pool:
        await pool.chat(request(), affinity="run-1")
    await pool.close()
    with pytest.raises(RuntimeError):
        await pool.chat(request(), affinity="run-1")
