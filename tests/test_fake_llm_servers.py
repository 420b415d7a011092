"""The fake LLM servers over real HTTP (httpx), each wire format against its fake, and
the fakes' own SigV4 check and maze brain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from oriole.llm.chat import ChatRequest, ModelReply
from oriole.llm.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ServerError,
    ToolsUnsupported,
)
from tests.fake_llm import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    FakeBedrock,
    FakeLLMServer,
    FakeOllama,
    FakeOpenAI,
    Hang,
    HttpError,
    Kind,
    MalformedBody,
    MazeBrain,
    NoMessage,
    NoToolSupport,
    RecordedRequest,
    Reply,
    sign_bedrock_request,
    sigv4_problem,
    verify_sigv4,
)
from tests.llm_wire_support import BEDROCK, BEDROCK_MODEL, WIRES, chat_request

#: Generous: a loaded 2-core machine must not fail a request that merely ran slowly.
TIMEOUT = httpx.Timeout(30.0)


# -- SigV4 verification ------------------------------------------------------------------


def _signed(url: str, body: bytes, secret: str = TEST_SECRET_KEY) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "x"})
    SigV4Auth(Credentials(TEST_ACCESS_KEY, secret), "bedrock", TEST_REGION).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = httpx.URL(url).netloc.decode()
    return headers


def test_sigv4_verification_accepts_botocore_signatures_and_rejects_tampering() -> None:
    url = "http://127.0.0.1:8123" + BEDROCK.chat_path(BEDROCK_MODEL)
    body = b'{"messages": []}'
    headers = _signed(url, body)
    creds: dict[str, str] = {
        "access_key": TEST_ACCESS_KEY,
        "secret_key": TEST_SECRET_KEY,
        "region": TEST_REGION,
    }
    assert verify_sigv4("POST", url, headers, body, **creds)
    assert not verify_sigv4("POST", url, headers, b'{"messages": [1]}', **creds)
    assert sigv4_problem("POST", url, headers, body + b" ", **creds) == "signature mismatch"
    assert not verify_sigv4("POST", url.replace("v1%3A0", "v2%3A0"), headers, body, **creds)
    assert not verify_sigv4("GET", url, headers, body, **creds)
    wrong_secret = _signed(url, body, secret="not-the-secret")
    assert sigv4_problem("POST", url, wrong_secret, body, **creds) == "signature mismatch"
    assert not verify_sigv4("POST", url, headers, body, **{**creds, "region": "eu-west-1"})
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    assert sigv4_problem("POST", url, unsigned, body, **creds) == "no Authorization header"


# -- over HTTP against the fakes ---------------------------------------------------------

FAKES: dict[str, Callable[[], FakeLLMServer]] = {
    "ollama": FakeOllama,
    "openai": FakeOpenAI,
    "bedrock": FakeBedrock,
}


@pytest_asyncio.fixture(params=["ollama", "openai", "bedrock"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FakeLLMServer]:
    fake = FAKES[request.param]()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        yield http


def _model(kind: str) -> str:
    return BEDROCK_MODEL if kind == "bedrock" else "qwen2.5:7b"


async def _send(
    http: httpx.AsyncClient, server: FakeLLMServer, request: ChatRequest | None = None
) -> httpx.Response:
    wire = WIRES[server.kind]
    request = request or chat_request(model=_model(server.kind))
    body = json.dumps(wire.chat_body(request)).encode()
    url = server.url + wire.chat_path(request.model)
    headers = {"Content-Type": "application/json"}
    if server.kind == "bedrock":
        headers = sign_bedrock_request(url, body)
    return await http.post(url, content=body, headers=headers)


async def _chat(
    http: httpx.AsyncClient, server: FakeLLMServer, request: ChatRequest | None = None
) -> ModelReply:
    """One chat call as a provider would make it: a reply, or the classified error raised."""
    wire = WIRES[server.kind]
    response = await _send(http, server, request)
    if response.is_success:
        return wire.parse_reply(response.content)
    raise wire.parse_error(response.status_code, response.headers, response.content)


@pytest.mark.asyncio
async def test_round_trip_with_the_default_brain(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    replies = [await _chat(client, server) for _ in range(4)]
    wire = WIRES[server.kind]
    assert len(server.chat_requests) == 4
    sent = server.chat_requests[0]
    assert sent.method == "POST"
    assert sent.body == wire.chat_body(chat_request(model=_model(server.kind)))
    assert sent.model == _model(server.kind)
    for reply in replies:
        assert 1 <= len(reply.message.tool_calls) <= 2
        for call in reply.message.tool_calls:
            assert call.name in {"move_north", "move_south", "move_east", "move_west"}
            args = (
                call.arguments if isinstance(call.arguments, dict) else json.loads(call.arguments)
            )
            assert args["reasoning"]
    assert server.reported_usage == [(r.input_tokens, r.output_tokens) for r in replies]
    assert len({out for _, out in server.reported_usage}) > 1  # varies from reply to reply
    if server.kind == "bedrock":
        assert server.signature_ok == [True] * 4
        assert sent.raw_path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    if server.kind == "ollama":
        assert all(r.tokens_per_second and r.duration_ms for r in replies)


@pytest.mark.asyncio
async def test_scripted_replies_then_brain(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(
        Reply(content="I think..."),
        Reply(tool_calls=[("move_west", '{"reasoning": ')], arguments_as="string"),
        Reply(tool_calls=[("move_east", {"reasoning": "r"})], arguments_as="string"),
        Reply(tool_calls=[("move_north", {"reasoning": "r"})], arguments_as="object"),
        Reply(content="x", input_tokens=None, output_tokens=None, done_reason="length"),
    )
    thinking = await _chat(client, server)
    assert thinking.message.content == "I think..."
    assert thinking.message.tool_calls == ()
    assert (thinking.input_tokens, thinking.output_tokens) == (100, 20)
    malformed = await _chat(client, server)
    assert malformed.message.tool_calls[0].arguments == '{"reasoning": '
    as_string = await _chat(client, server)
    assert as_string.message.tool_calls[0].arguments == '{"reasoning": "r"}'
    as_object = await _chat(client, server)
    assert as_object.message.tool_calls[0].arguments == {"reasoning": "r"}
    no_usage = await _chat(client, server)
    assert (no_usage.input_tokens, no_usage.output_tokens, no_usage.done_reason) == (
        None,
        None,
        "length",
    )
    assert server.reported_usage[-1] == (None, None)
    brain = await _chat(client, server)  # script exhausted: the brain answers
    assert brain.message.tool_calls
    assert len(server.reported_usage) == 6


@pytest.mark.asyncio
async def test_tool_call_ids_are_unique(server: FakeLLMServer, client: httpx.AsyncClient) -> None:
    calls = [("move_north", {"reasoning": "a"}), ("move_south", {"reasoning": "b"})]
    server.push(Reply(tool_calls=calls), Reply(tool_calls=calls))
    first, second = await _chat(client, server), await _chat(client, server)
    ids = [c.id for c in first.message.tool_calls]
    assert len(set(ids)) == 2
    if server.kind != "ollama":  # Ollama has no ids; the wire numbers calls per reply
        assert not set(ids) & {c.id for c in second.message.tool_calls}


@pytest.mark.asyncio
async def test_rate_limited_with_retry_after_seconds(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(HttpError(429, "Too many requests, slow down", retry_after="7"))
    with pytest.raises(RateLimited) as caught:
        await _chat(client, server)
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429
    assert "slow down" in caught.value.message


@pytest.mark.asyncio
async def test_rate_limited_with_retry_after_http_date(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    until = datetime.now(UTC) + timedelta(seconds=120)
    server.push(HttpError(429, "throttled", retry_after=format_datetime(until, usegmt=True)))
    with pytest.raises(RateLimited) as caught:
        await _chat(client, server)
    wait = caught.value.retry_after
    assert wait is not None
    # Measured against the response's Date header (aiohttp sets it); seconds resolution.
    assert 60.0 < wait <= 121.0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, ServerError),
        (503, ServerError),
        (404, ModelNotFound),
        (401, AuthenticationFailed),
        (400, BadRequest),
    ],
)
async def test_http_errors_are_classified(
    server: FakeLLMServer,
    client: httpx.AsyncClient,
    status: int,
    expected: type[ProviderError],
) -> None:
    server.push(HttpError(status, f"simulated {status}"))
    with pytest.raises(ProviderError) as caught:
        await _chat(client, server)
    assert type(caught.value) is expected
    assert f"simulated {status}" in caught.value.message


@pytest.mark.asyncio
async def test_no_tool_support(server: FakeLLMServer, client: httpx.AsyncClient) -> None:
    server.push(NoToolSupport())
    model = "llama3.2:3b" if server.kind == "ollama" else _model(server.kind)
    base = chat_request(model=model)
    with pytest.raises(ToolsUnsupported) as caught:
        await _chat(client, server, base)
    if server.kind == "ollama":
        assert "registry.ollama.ai/library/llama3.2:3b does not support tools" in str(caught.value)
    assert not server.reported_usage


@pytest.mark.asyncio
async def test_malformed_body_and_missing_message(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(MalformedBody(), NoMessage())
    with pytest.raises(MalformedResponse, match="not JSON"):
        await _chat(client, server)
    with pytest.raises(MalformedResponse) as caught:
        await _chat(client, server)
    if server.kind == "ollama":
        assert "no message field" in caught.value.message
    assert server.reported_usage == []


@pytest.mark.asyncio
async def test_hang_is_aborted_by_the_client_timeout(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(Hang())
    short = httpx.Timeout(30.0, read=0.5)
    wire = WIRES[server.kind]
    request = chat_request(model=_model(server.kind))
    body = json.dumps(wire.chat_body(request)).encode()
    url = server.url + wire.chat_path(request.model)
    headers = sign_bedrock_request(url, body) if server.kind == "bedrock" else {}
    with pytest.raises(httpx.ReadTimeout):
        await client.post(url, content=body, headers=headers, timeout=short)
    await server.wait_for_chat_requests(1)
    assert server.hanging == 1
    # The server keeps serving other requests while one hangs.
    assert (await _chat(client, server)).message.tool_calls
    async with asyncio.timeout(20):
        await server.stop()
    assert server.hanging == 0


@pytest.mark.asyncio
async def test_stopping_releases_a_request_still_waiting(
    server: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    server.push(Hang())
    pending = asyncio.create_task(_send(client, server))
    await server.wait_for_chat_requests(1)
    async with asyncio.timeout(20):
        await server.stop()
    try:
        response = await asyncio.wait_for(pending, 20)
    except httpx.TransportError:
        pass  # the connection was closed under it: as good as an answer
    else:
        assert response.status_code == 503


@pytest.mark.asyncio
async def test_restart_on_the_same_port(server: FakeLLMServer, client: httpx.AsyncClient) -> None:
    await _chat(client, server)
    port, url = server.port, server.url
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        await _send(client, server)
    await server.start(port=port)
    assert (server.port, server.url) == (port, url)
    assert (await _chat(client, server)).message.tool_calls
    assert len(server.chat_requests) == 2  # the refused one never arrived


@pytest.mark.asyncio
async def test_health_endpoints() -> None:
    async with (
        FakeOllama(models=["qwen2.5:7b"]) as ollama,
        FakeOpenAI() as openai,
        httpx.AsyncClient(timeout=TIMEOUT) as http,
    ):
        tags = await http.get(ollama.url + "/api/tags")
        assert tags.status_code == 200
        assert [m["name"] for m in tags.json()["models"]] == ["qwen2.5:7b"]
        models = await http.get(openai.url + "/models")
        assert models.status_code == 200
        assert models.json()["object"] == "list"
        assert models.json()["data"][0]["id"] == "qwen2.5:7b"
        assert [(r.method, r.path) for r in openai.requests] == [("GET", "/v1/models")]
        assert openai.chat_requests == []
        ollama.healthy = False
        down = await http.get(ollama.url + "/api/tags")
        assert down.status_code == 503
        assert len(ollama.requests) == 2


@pytest.mark.asyncio
async def test_bedrock_rejects_bad_signatures(client: httpx.AsyncClient) -> None:
    async with FakeBedrock() as server:
        request = chat_request(model=BEDROCK_MODEL)
        body = json.dumps(BEDROCK.chat_body(request)).encode()
        url = server.url + BEDROCK.chat_path(BEDROCK_MODEL)
        headers = sign_bedrock_request(url, body)
        tampered = await client.post(url, content=body + b" ", headers=headers)
        assert tampered.status_code == 403
        assert tampered.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
        assert "signature we calculated does not match" in tampered.json()["message"]
        error = BEDROCK.parse_error(403, tampered.headers, tampered.content)
        assert type(error) is AuthenticationFailed
        stranger = sign_bedrock_request(url, body, access_key="AKIDSTRANGER")
        unknown = await client.post(url, content=body, headers=stranger)
        assert type(BEDROCK.parse_error(403, unknown.headers, unknown.content)) is (
            AuthenticationFailed
        )
        good = await client.post(url, content=body, headers=headers)
        assert good.status_code == 200
        assert server.signature_ok == [False, False, True]
        assert server.signature_problems[0] == "signature mismatch"
        assert len(server.reported_usage) == 1  # rejected requests consume no script


def test_maze_brain_is_deterministic() -> None:
    def run(seed: int) -> list[Any]:
        brain = MazeBrain(seed)
        fake = RecordedRequest("POST", "/api/chat", "/api/chat", {}, {}, b"x" * 400, True)
        return [brain(fake) for _ in range(20)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    replies = [r for r in run(1) if isinstance(r, Reply)]
    assert {r.input_tokens for r in replies} == {100}
    assert len({r.output_tokens for r in replies}) > 3


def test_fake_kinds() -> None:
    kinds: list[Kind] = ["ollama", "openai", "bedrock"]
    assert [FAKES[k]().kind for k in kinds] == kinds
