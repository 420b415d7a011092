"""What every fake LLM server shares: listening on 127.0.0.1, recording requests, playing the
script (then the brain) for chat requests, hanging and being released on stop.

Each provider's subclass (``fake_ollama``, ``fake_openai``, ``fake_bedrock``) says which
requests are chat calls and renders replies and errors in that provider's own shapes.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal

from aiohttp import web

from tests.fake_llm_behaviours import (
    ArgumentsAs,
    Behaviour,
    Brain,
    Hang,
    HttpError,
    MalformedBody,
    MazeBrain,
    NoMessage,
    NoToolSupport,
    RecordedRequest,
    Reply,
)

Kind = Literal["ollama", "openai", "bedrock"]

#: How long stop() lets in-flight handlers finish; hung handlers are released before that.
SHUTDOWN_TIMEOUT = 5.0


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        content_type="application/json",
        headers=dict(headers or {}),
    )


class FakeLLMServer:
    """A fake provider server on 127.0.0.1; see ``tests.fake_llm`` for how tests use one."""

    kind: ClassVar[Kind]
    #: The chat endpoint (POST); None when a subclass matches chat requests itself.
    chat_path: ClassVar[str | None] = None
    #: The GET endpoint that lists the models (None: the provider has none).
    health_path: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        script: Iterable[Behaviour] = (),
        brain: Brain | None = None,
        seed: int = 0,
        models: Sequence[str] = ("qwen2.5:7b", "llama3.2:3b"),
    ) -> None:
        self.script: deque[Behaviour] = deque(script)
        self.brain: Brain = brain if brain is not None else MazeBrain(seed)
        self.models = list(models)
        #: While False the health endpoint answers 503.
        self.healthy = True
        self.requests: list[RecordedRequest] = []
        #: (input_tokens, output_tokens) of every successful reply, as reported (None = absent).
        self.reported_usage: list[tuple[int | None, int | None]] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._release = asyncio.Event()
        self._arrived = asyncio.Event()
        self._hanging = 0
        self._ids = 0

    # lifecycle

    async def start(self, port: int | None = None) -> None:
        """Listen on ``port`` (a free one if None); after stop(), the same port may be reused."""
        if self._runner is not None:
            raise RuntimeError("fake server already started")
        self._release = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port or 0, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Release hung requests and close the listener and every connection."""
        runner, self._runner = self._runner, None
        self._release.set()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeLLMServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("fake server was never started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint URL a client is configured with."""
        return self.base_url

    # scripting and inspection

    def push(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next chat requests, one each, in order."""
        self.script.extend(behaviours)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.chat]

    @property
    def hanging(self) -> int:
        """Requests currently held by a Hang behaviour."""
        return self._hanging

    async def wait_for_chat_requests(self, n: int, timeout: float = 30.0) -> None:
        """Wait until at least ``n`` chat requests have arrived (no sleeping in tests)."""
        async with asyncio.timeout(timeout):
            while len(self.chat_requests) < n:
                self._arrived.clear()
                await self._arrived.wait()

    # request handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        is_chat, chat_model = self._chat_route(request)
        if is_chat and chat_model is None and isinstance(body, dict):
            model = body.get("model")
            chat_model = model if isinstance(model, str) else None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            headers=dict(request.headers),
            body=body,
            raw_body=raw,
            chat=is_chat,
            model=chat_model,
        )
        self.requests.append(recorded)
        if is_chat:
            self._arrived.set()
            return await self._chat(request, recorded)
        return self._other(request.method, request.path)

    def _chat_route(self, request: web.Request) -> tuple[bool, str | None]:
        """Whether ``request`` is a chat call, and its model when the path names it."""
        return request.method == "POST" and request.path == self.chat_path, None

    def _other(self, method: str, path: str) -> web.Response:
        if method == "GET" and self.health_path is not None and path == self.health_path:
            if not self.healthy:
                return self._error(HttpError(503, "service unavailable"))
            return json_response(200, self._models_body())
        return web.Response(status=404, text="404 page not found")

    def _refusal(self, request: web.Request, recorded: RecordedRequest) -> web.Response | None:
        """A provider's answer to a chat request it refuses before reading it (None: none)."""
        return None

    async def _chat(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        refused = self._refusal(request, recorded)
        if refused is not None:
            return refused
        if not isinstance(recorded.body, dict):
            return self._error(HttpError(400, "request body is not a JSON object"))
        behaviour = self.script.popleft() if self.script else self.brain(recorded)
        if isinstance(behaviour, Hang):
            self._hanging += 1
            try:
                await self._release.wait()
            finally:
                self._hanging -= 1
            return self._error(HttpError(503, "server shutting down"))
        if isinstance(behaviour, HttpError):
            return self._error(behaviour)
        if isinstance(behaviour, NoToolSupport):
            return self._no_tools(recorded.model or "unknown")
        if isinstance(behaviour, MalformedBody):
            return web.Response(status=200, body=behaviour.body, content_type="application/json")
        if isinstance(behaviour, NoMessage):
            return json_response(200, self._no_message(recorded.model or "unknown"))
        self.reported_usage.append((behaviour.input_tokens, behaviour.output_tokens))
        return json_response(200, self._reply(behaviour, recorded.model or "unknown"))

    # rendering: each provider's own shapes

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _arguments(self, arguments: Any, how: ArgumentsAs) -> Any:
        if how == "string" and not isinstance(arguments, str):
            return json.dumps(arguments)
        return arguments

    def _models_body(self) -> dict[str, Any]:
        raise NotImplementedError

    def _reply(self, reply: Reply, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def _no_message(self, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def _no_tools(self, model: str) -> web.Response:
        raise NotImplementedError

    def _error(self, error: HttpError) -> web.Response:
        raise NotImplementedError
