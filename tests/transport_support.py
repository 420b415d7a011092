"""What the endpoint pool tests share: an echo wire format, in-process HTTP servers whose
chat behaviour a test sets, pools over them (fixtures ``make_server`` and ``make_pool``,
registered as a plugin in conftest.py) and fast policies."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from aiohttp import web

from oriole.llm.chat import ChatRequest, Message, ModelReply
from oriole.llm.errors import BadRequest, MalformedResponse, ProviderError, RateLimited, ServerError
from oriole.llm.resilience import RetryPolicy
from providers.transport import EndpointPool, TransportPolicy

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
