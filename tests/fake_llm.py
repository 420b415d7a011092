"""In-process fake LLM servers speaking the real wire formats of Ollama, OpenAI-compatible
servers and Bedrock Converse, so provider code is tested over real HTTP without a model.

Each fake records every request, answers chat calls from a script of behaviours (then from
a deterministic ``brain`` that plays a maze plausibly), renders errors in the provider's own
shape and, for Bedrock, checks the SigV4 signature with botocore. Usage::

    async with FakeOllama() as server:
        server.push(Reply(tool_calls=[("move_north", {"reasoning": "open"})]), HttpError(503))
        ...  # point the client at server.url
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

Kind = Literal["ollama", "openai", "bedrock"]
ArgumentsAs = Literal["object", "string"]

#: Credentials the Bedrock fake accepts unless told otherwise (AWS's documentation examples).
TEST_ACCESS_KEY = "AKIDEXAMPLE"
TEST_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEST_REGION = "us-east-1"

#: How long stop() lets in-flight handlers finish; hung handlers are released before that.
SHUTDOWN_TIMEOUT = 5.0

_BEDROCK_CHAT = re.compile(r"^/model/(?P<model>[^/?]+)/converse$")
_BEDROCK_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"


# -- behaviours --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful chat reply; ``tool_calls`` are (name, arguments) pairs.

    ``arguments_as`` picks how arguments travel: ``"object"`` (Ollama's and Bedrock's
    default) or ``"string"`` (OpenAI's default); a string argument is always sent as given,
    which is how a test sends malformed JSON. ``done_reason`` overrides the provider's own.
    """

    content: str = ""
    tool_calls: Sequence[tuple[str, Any]] = ()
    input_tokens: int | None = 100
    output_tokens: int | None = 20
    arguments_as: ArgumentsAs | None = None
    done_reason: str | None = None


@dataclass(frozen=True)
class HttpError:
    """An error response in the provider's own body shape (Bedrock: x-amzn-ErrorType)."""

    status: int
    message: str = "simulated failure"
    retry_after: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class Hang:
    """Never answer: the handler waits until the server stops (the client gives up first)."""


@dataclass(frozen=True)
class NoToolSupport:
    """The provider's real answer when the model (or server setup) cannot call tools."""


@dataclass(frozen=True)
class MalformedBody:
    """HTTP 200 whose body is not JSON (a cut-off document by default)."""

    body: bytes = b'{"model": "fake", "message": {"role": "assistant", "content": "I thi'


@dataclass(frozen=True)
class NoMessage:
    """HTTP 200 JSON without the message (Ollama: no ``message``; OpenAI: no choices;
    Bedrock: no ``output.message``)."""


Behaviour = Reply | HttpError | Hang | NoToolSupport | MalformedBody | NoMessage


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; ``body`` is the parsed JSON (None if not JSON)."""

    method: str
    #: Decoded path; ``raw_path`` keeps the percent-encoding (and query) as sent.
    path: str
    raw_path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    chat: bool
    model: str | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


Brain = Callable[[RecordedRequest], Behaviour]


class MazeBrain:
    """A deterministic stand-in model: one or two moves per reply, mostly keeping its
    heading and sometimes turning, with varying but reproducible token counts."""

    DIRECTIONS = ("north", "east", "south", "west")

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._heading = 0

    def __call__(self, request: RecordedRequest) -> Behaviour:
        calls: list[tuple[str, Any]] = []
        for _ in range(self._rng.choice((1, 1, 2))):
            if self._rng.random() < 0.35:
                self._heading = (self._heading + self._rng.choice((1, 3))) % 4
            direction = self.DIRECTIONS[self._heading]
            reasoning = f"Heading {direction}: that way is still unexplored."
            calls.append((f"move_{direction}", {"reasoning": reasoning}))
        return Reply(
            content="" if self._rng.random() < 0.5 else "Exploring.",
            tool_calls=calls,
            input_tokens=max(1, len(request.raw_body) // 4),
            output_tokens=self._rng.randint(15, 60) * len(calls),
        )


# -- SigV4 verification ------------------------------------------------------------------


def sigv4_problem(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "bedrock",
    session_token: str | None = None,
) -> str | None:
    """Why a request's SigV4 signature is wrong, or ``None`` if it verifies.

    ``url`` must carry the path exactly as received (still percent-encoded). The signature
    is recomputed with botocore from the headers the Authorization header says were signed,
    X-Amz-Date as the timestamp and the SHA-256 of the body actually received.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        return "no Authorization header"
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
        r"\s*Signature=(?P<sig>[0-9a-f]{64})",
        auth.strip(),
    )
    if match is None:
        return (
            "Authorization header is not AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature="
        )
    timestamp = lower.get("x-amz-date")
    if not timestamp:
        return "no X-Amz-Date header"
    parts = match["cred"].split("/")
    if len(parts) != 5:
        return f"malformed credential scope {match['cred']!r}"
    key_id, date, scope_region, scope_service, terminal = parts
    if key_id != access_key:
        return f"unknown access key {key_id!r}"
    if (date, scope_region, scope_service, terminal) != (
        timestamp[:8],
        region,
        service,
        "aws4_request",
    ):
        return f"credential scope {match['cred']!r} does not match {timestamp[:8]}/{region}"
    signed = match["signed"].split(";")
    if "host" not in signed:
        return "the host header is not signed"
    if session_token is not None and (
        "x-amz-security-token" not in signed or lower.get("x-amz-security-token") != session_token
    ):
        return "missing or wrong X-Amz-Security-Token"
    body_hash = hashlib.sha256(body).hexdigest()
    declared = lower.get("x-amz-content-sha256")
    if declared is not None and declared != body_hash:
        return "X-Amz-Content-SHA256 does not match the body"
    missing = [name for name in signed if name not in lower]
    if missing:
        return f"signed headers missing from the request: {missing}"
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: lower[name] for name in signed}
    )
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(Credentials(access_key, secret_key, session_token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["sig"]):
        return "signature mismatch"
    return None


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "bedrock",
    session_token: str | None = None,
) -> bool:
    """Whether a request carries a valid SigV4 signature for these credentials."""
    return (
        sigv4_problem(
            method,
            url,
            headers,
            body,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            service=service,
            session_token=session_token,
        )
        is None
    )


# -- the server --------------------------------------------------------------------------


def _json(status: int, data: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def _ollama_model_ref(model: str) -> str:
    """How Ollama names a model in errors: registry.ollama.ai/library/<name>:<tag>."""
    name = model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"
    if "/" not in name:
        name = "library/" + name
    if name.count("/") < 2:
        name = "registry.ollama.ai/" + name
    return name


class FakeLLMServer:
    """A fake ``kind`` server on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        kind: Kind,
        *,
        script: Iterable[Behaviour] = (),
        brain: Brain | None = None,
        seed: int = 0,
        models: Sequence[str] = ("qwen2.5:7b", "llama3.2:3b"),
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        region: str = TEST_REGION,
        session_token: str | None = None,
        verify_signatures: bool = True,
    ) -> None:
        self.kind: Kind = kind
        self.script: deque[Behaviour] = deque(script)
        self.brain: Brain = brain if brain is not None else MazeBrain(seed)
        self.models = list(models)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.session_token = session_token
        self.verify_signatures = verify_signatures
        #: While False the health endpoint answers 503.
        self.healthy = True
        self.requests: list[RecordedRequest] = []
        #: (input_tokens, output_tokens) of every successful reply, as reported (None = absent).
        self.reported_usage: list[tuple[int | None, int | None]] = []
        #: Bedrock: whether each chat request's signature verified, in order.
        self.signature_ok: list[bool] = []
        #: Bedrock: why a signature failed (None when it verified), parallel to signature_ok.
        self.signature_problems: list[str | None] = []
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
        """The endpoint URL a client is configured with (OpenAI's includes /v1)."""
        return self.base_url + "/v1" if self.kind == "openai" else self.base_url

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
        path = request.path
        chat_model: str | None = None
        is_chat = False
        if self.kind == "ollama":
            is_chat = request.method == "POST" and path == "/api/chat"
        elif self.kind == "openai":
            is_chat = request.method == "POST" and path == "/v1/chat/completions"
        else:
            found = _BEDROCK_CHAT.match(request.raw_path)
            if request.method == "POST" and found is not None:
                is_chat = True
                chat_model = unquote(found["model"])
        if is_chat and chat_model is None and isinstance(body, dict):
            model = body.get("model")
            chat_model = model if isinstance(model, str) else None
        recorded = RecordedRequest(
            method=request.method,
            path=path,
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
        return self._other(request.method, path)

    def _other(self, method: str, path: str) -> web.Response:
        if self.kind == "ollama" and method == "GET" and path == "/":
            return web.Response(text="Ollama is running")
        health = {"ollama": "/api/tags", "openai": "/v1/models"}.get(self.kind)
        if method == "GET" and path == health:
            if not self.healthy:
                return self._error(HttpError(503, "service unavailable"))
            return _json(200, self._models_body())
        return web.Response(status=404, text="404 page not found")

    def _models_body(self) -> dict[str, Any]:
        if self.kind == "ollama":
            return {
                "models": [
                    {
                        "name": name,
                        "model": name,
                        "modified_at": "2025-01-15T10:00:00.000000000Z",
                        "size": 4_683_087_332,
                        "digest": hashlib.sha256(name.encode()).hexdigest(),
                        "details": {
                            "parent_model": "",
                            "format": "gguf",
                            "family": "qwen2",
                            "families": ["qwen2"],
                            "parameter_size": "7.6B",
                            "quantization_level": "Q4_K_M",
                        },
                    }
                    for name in self.models
                ]
            }
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 1_736_935_200, "owned_by": "fake"}
                for name in self.models
            ],
        }

    async def _chat(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if self.kind == "bedrock" and self.verify_signatures:
            problem = sigv4_problem(
                request.method,
                f"http://{request.host}{request.raw_path}",
                recorded.headers,
                recorded.raw_body,
                access_key=self.access_key,
                secret_key=self.secret_key,
                region=self.region,
                session_token=self.session_token,
            )
            self.signature_ok.append(problem is None)
            self.signature_problems.append(problem)
            if problem is not None:
                return self._signature_error(problem)
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
            return _json(200, self._no_message(recorded.model or "unknown"))
        self.reported_usage.append((behaviour.input_tokens, behaviour.output_tokens))
        return _json(200, self._reply(behaviour, recorded.model or "unknown"))

    # rendering

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _arguments(self, arguments: Any, how: ArgumentsAs) -> Any:
        if how == "string" and not isinstance(arguments, str):
            return json.dumps(arguments)
        return arguments

    def _reply(self, reply: Reply, model: str) -> dict[str, Any]:
        if self.kind == "ollama":
            return self._ollama_reply(reply, model)
        if self.kind == "openai":
            return self._openai_reply(reply, model)
        return self._bedrock_reply(reply)

    def _ollama_reply(self, reply: Reply, model: str) -> dict[str, Any]:
        how = reply.arguments_as or "object"
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"function": {"index": i, "name": name, "arguments": self._arguments(a, how)}}
                for i, (name, a) in enumerate(reply.tool_calls)
            ]
        prompt_ns = 150_000 * (reply.input_tokens or 200)
        eval_ns = 25_000_000 * (reply.output_tokens or 10)
        load_ns = 2_345_678
        data: dict[str, Any] = {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": message,
            "done_reason": reply.done_reason or "stop",
            "done": True,
            "total_duration": load_ns + prompt_ns + eval_ns + 1_234_567,
            "load_duration": load_ns,
            "prompt_eval_duration": prompt_ns,
            "eval_duration": eval_ns,
        }
        if reply.input_tokens is not None:
            data["prompt_eval_count"] = reply.input_tokens
        if reply.output_tokens is not None:
            data["eval_count"] = reply.output_tokens
        return data

    def _openai_reply(self, reply: Reply, model: str) -> dict[str, Any]:
        how = reply.arguments_as or "string"
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{self._next_id():08d}",
                    "type": "function",
                    "function": {"name": name, "arguments": self._arguments(a, how)},
                }
                for name, a in reply.tool_calls
            ]
        finish = reply.done_reason or ("tool_calls" if reply.tool_calls else "stop")
        data: dict[str, Any] = {
            "id": f"chatcmpl-{self._next_id():08d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        usage: dict[str, int] = {}
        if reply.input_tokens is not None:
            usage["prompt_tokens"] = reply.input_tokens
        if reply.output_tokens is not None:
            usage["completion_tokens"] = reply.output_tokens
        if reply.input_tokens is not None and reply.output_tokens is not None:
            usage["total_tokens"] = reply.input_tokens + reply.output_tokens
        if usage:
            data["usage"] = usage
        return data

    def _bedrock_reply(self, reply: Reply) -> dict[str, Any]:
        how = reply.arguments_as or "object"
        blocks: list[dict[str, Any]] = []
        if reply.content:
            blocks.append({"text": reply.content})
        for name, arguments in reply.tool_calls:
            use = {
                "toolUseId": f"tooluse_{self._next_id():022d}",
                "name": name,
                "input": self._arguments(arguments, how),
            }
            blocks.append({"toolUse": use})
        stop = reply.done_reason or ("tool_use" if reply.tool_calls else "end_turn")
        usage: dict[str, int] = {}
        if reply.input_tokens is not None:
            usage["inputTokens"] = reply.input_tokens
        if reply.output_tokens is not None:
            usage["outputTokens"] = reply.output_tokens
        if reply.input_tokens is not None and reply.output_tokens is not None:
            usage["totalTokens"] = reply.input_tokens + reply.output_tokens
        data: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": blocks}},
            "stopReason": stop,
            "metrics": {"latencyMs": 300 + 20 * (reply.output_tokens or 10)},
        }
        if usage:
            data["usage"] = usage
        return data

    def _no_message(self, model: str) -> dict[str, Any]:
        if self.kind == "ollama":
            return {
                "model": model,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "done": True,
                "done_reason": "stop",
            }
        if self.kind == "openai":
            return {"id": "chatcmpl-empty", "object": "chat.completion", "choices": []}
        return {"output": {}, "stopReason": "end_turn", "metrics": {"latencyMs": 12}}

    def _no_tools(self, model: str) -> web.Response:
        if self.kind == "ollama":
            return _json(400, {"error": f"{_ollama_model_ref(model)} does not support tools"})
        if self.kind == "openai":
            # llama.cpp without --jinja: a runtime_error, hence 500 and server_error.
            error = {
                "code": 500,
                "message": "tools param requires --jinja flag",
                "type": "server_error",
            }
            return _json(500, {"error": error})
        return self._error(HttpError(400, "This model doesn't support tool use.", None))

    def _error(self, error: HttpError) -> web.Response:
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            headers["Retry-After"] = error.retry_after
        if self.kind == "ollama":
            return _json(error.status, {"error": error.message}, headers)
        if self.kind == "openai":
            kind, code = _OPENAI_ERROR_DEFAULTS.get(
                error.status,
                ("server_error" if error.status >= 500 else "invalid_request_error", None),
            )
            body = {
                "message": error.message,
                "type": error.error_type or kind,
                "param": None,
                "code": code,
            }
            return _json(error.status, {"error": body}, headers)
        kind = error.error_type or _BEDROCK_ERROR_DEFAULTS.get(
            error.status,
            "InternalServerException" if error.status >= 500 else "ValidationException",
        )
        headers["x-amzn-ErrorType"] = f"{kind}:{_BEDROCK_ERROR_NAMESPACE}"
        headers["x-amzn-RequestId"] = f"00000000-0000-4000-8000-{self._next_id():012d}"
        return _json(error.status, {"message": error.message}, headers)

    def _signature_error(self, problem: str) -> web.Response:
        if problem == "no Authorization header":
            return self._error(
                HttpError(
                    403, "Missing Authentication Token", None, "MissingAuthenticationTokenException"
                )
            )
        if problem.startswith("unknown access key"):
            return self._error(
                HttpError(
                    403,
                    "The security token included in the request is invalid.",
                    None,
                    "UnrecognizedClientException",
                )
            )
        message = (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details."
        )
        return self._error(HttpError(403, message, None, "InvalidSignatureException"))


_OPENAI_ERROR_DEFAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}

_BEDROCK_ERROR_DEFAULTS: dict[int, str] = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


class FakeOllama(FakeLLMServer):
    """Ollama: ``POST /api/chat``, ``GET /api/tags``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("ollama", **kwargs)


class FakeOpenAI(FakeLLMServer):
    """An OpenAI-compatible server: ``POST /v1/chat/completions``, ``GET /v1/models``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("openai", **kwargs)


class FakeBedrock(FakeLLMServer):
    """Bedrock runtime: ``POST /model/{modelId}/converse``, SigV4 checked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("bedrock", **kwargs)


def sign_bedrock_request(
    url: str,
    body: bytes,
    *,
    access_key: str = TEST_ACCESS_KEY,
    secret_key: str = TEST_SECRET_KEY,
    region: str = TEST_REGION,
    session_token: str | None = None,
) -> dict[str, str]:
    """Headers that sign a Converse POST with botocore, as a real client would send them."""
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials(access_key, secret_key, session_token)
    SigV4Auth(credentials, "bedrock", region).add_auth(request)
    return dict(request.headers.items())
