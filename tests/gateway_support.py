"""Helpers for the gateway tests: a running gateway, a projector, websocket readers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.server import Gateway
from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.environment.catalogue import MazeCatalogue
from oriole.events import RunEvent, parse_run_event
from oriole.experiment import (
    AgentSpec,
    ExperimentStart,
    GameRules,
    MazeData,
    PromptSpec,
    RunLimits,
)
from oriole.local_run import LocalRun, ManualClock
from projections.store import store_batch
from tests.kafka_support import EVENT_TIMEOUT, Stack

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def recorded_run(
    run_id: str,
    model: str = "frontier",
    *,
    seed: int = 1,
    hours: int = 0,
    size: int = 21,
    comment: str | None = None,
    labels: dict[str, str] | None = None,
    prompt_version: str | None = None,
    rules: dict[str, Any] | None = None,
    **limits: Any,
) -> list[RunEvent]:
    """A complete run of a built-in agent made in memory, one simulated second per action."""
    maze = generators.generate("backtracker", size, size, seed=seed, name=f"gw-maze-{seed}")
    start_time = T0 + timedelta(hours=hours)
    request = ExperimentStart(
        run_id=run_id,
        requested_at=start_time,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        limits=RunLimits(**({"max_footsteps": 200} | limits)),
        rules=GameRules(**(rules or {})),
        prompt=None if prompt_version is None else PromptSpec(version=prompt_version, text="go"),
        comment=comment,
        labels=labels or {},
    )
    clock = ManualClock(start_time)
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(request.agent)
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(1)
        run.send(decision.to_intent(run_id, run.state.seq, run.state.turn))
    return run.events


@contextlib.asynccontextmanager
async def database_pool(dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.close(), EVENT_TIMEOUT)


@contextlib.asynccontextmanager
async def running_gateway(
    stack: Stack,
    pool: Any,
    *,
    tokens: dict[str, str] | None = None,
    queue_size: int | None = None,
    **options: Any,
) -> AsyncIterator[Gateway]:
    """A started gateway on a free loopback port (stopped, every connection closed, after)."""
    update: dict[str, Any] = {"gateway_port": 0, "gateway_tokens": tokens or {}}
    if queue_size is not None:
        update["gateway_client_queue_size"] = queue_size
    settings = stack.settings.model_copy(update=update)
    gateway = Gateway(
        settings,
        bootstrap_servers=stack.bootstrap,
        topics=stack.topics,
        pool=pool,
        find_maze=MazeCatalogue.from_settings(settings).get,
        **options,
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await asyncio.wait_for(gateway.stop(), EVENT_TIMEOUT)


async def archived(pool: Any, run_id: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM run_events WHERE run_id = $1", run_id))


async def archive_events(pool: Any, events: list[RunEvent]) -> None:
    async with pool.acquire() as conn:
        await store_batch(conn, events)


def ws_url(gateway: Gateway, path: str) -> str:
    return "ws" + gateway.url[len("http") :] + path


def http_client(gateway: Gateway, token: str | None = None) -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=EVENT_TIMEOUT)


@dataclass
class Received:
    """Everything one websocket client got: frames in order, and how it was closed."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    #: The frames' text as received.
    raw: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    @property
    def events(self) -> list[RunEvent]:
        return [
            parse_run_event(json.dumps(f["event"])) for f in self.frames if f["kind"] == "event"
        ]

    @property
    def seqs(self) -> list[int]:
        return [f["event"]["seq"] for f in self.frames if f["kind"] == "event"]

    def kinds(self) -> list[str]:
        return [f["kind"] for f in self.frames]

    def first(self, kind: str) -> dict[str, Any]:
        return next(f for f in self.frames if f["kind"] == kind)


async def read_feed(
    url: str,
    *,
    stop_when: Callable[[Received], bool] | None = None,
    received: Received | None = None,
    connected: asyncio.Event | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = EVENT_TIMEOUT,
) -> Received:
    """Read frames until the server closes (or ``stop_when`` holds, then close ourselves)."""
    result = received if received is not None else Received()

    async def run() -> None:
        async with connect(url, additional_headers=headers, max_size=None) as ws:
            if connected is not None:
                connected.set()
            try:
                async for message in ws:
                    text = message if isinstance(message, str) else message.decode()
                    result.raw.append(text)
                    result.frames.append(json.loads(text))
                    if stop_when is not None and stop_when(result):
                        return
            except ConnectionClosed:
                pass
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason or ""

    await asyncio.wait_for(run(), timeout)
    return result


def assert_exact(received: Received, expected: list[RunEvent]) -> None:
    """Seqs 1..N exactly once each, and each event exactly as it was on Kafka."""
    assert received.seqs == list(range(1, len(expected) + 1))
    assert received.events == expected


# --- a client that stops reading ------------------------------------------------------------


class StalledClient:
    """A raw websocket client with a tiny receive buffer that stops reading when told.

    Nothing in it reads unless asked, so the gateway's writes back up into the kernel's
    buffers and then into the gateway's queue for it, as with a frozen browser tab.
    """

    def __init__(self, host: str, port: int, path: str, receive_buffer: int = 2048) -> None:
        self.host, self.port, self.path = host, port, path
        self.receive_buffer = receive_buffer
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> StalledClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        # A small stream limit too: the reader must not drain the socket on its own.
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=1024)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.transport.abort()

    async def frame(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload)."""
        assert self.reader is not None
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def until_close(self) -> tuple[list[dict[str, Any]], int | None]:
        """Read every frame up to the close frame: (text frames, close code)."""
        frames: list[dict[str, Any]] = []
        while True:
            try:
                opcode, payload = await self.frame()
            except (asyncio.IncompleteReadError, ConnectionError):
                return frames, None
            if opcode == 1:
                frames.append(json.loads(payload))
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return frames, code


def static_files(root: Path) -> Path:
    """A small viewer of our own, so the tests do not depend on the real one."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<!doctype html><title>test viewer</title>\n")
    (root / "app.js").write_text("console.log('viewer');\n")
    (root / "style.css").write_text("body { margin: 0 }\n")
    (root / ".hidden").write_text("secret\n")
    return root
