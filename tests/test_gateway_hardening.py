"""Gateway hardening (issue 11): auth before bodies, caps and rates, Host/Origin, a frozen
database, and the audit trail of write actions. Real gateway, broker and PostgreSQL, plus
the pure parts (gateway/guard.py, oriole/audit.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from websockets.datastructures import Headers

from gateway.guard import (
    Admission,
    Gatekeeper,
    KeyedRateLimit,
    Policy,
    Refusal,
    head_problem,
    host_allowed,
    origin_allowed,
    principals,
    token_name,
)
from gateway.hub import Hub
from gateway.server import Gateway
from oriole import generators
from oriole.audit import AuditRecord, outcome_of
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import GatewayToken, load_settings
from tests.gateway_support import database_pool, http_client
from tests.kafka_support import (
    TopicReader,
    eventually,
    finished,
    make_stack,
    running_worker,
    start_event,
)

READ_TOKEN = "read-tok-1b7e55d0"
WRITE_TOKEN = "write-tok-c03e9a21"
ALICE_TOKEN = "alice-tok-6f2d8e90"
#: Generous bound on any single exchange with the gateway in these tests.
TIMEOUT = 30.0


# --- helpers ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway_with(
    stack: Any, pool: Any, *, tokens: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """A started gateway on a free loopback port with ``gateway_*`` settings overridden."""
    update: dict[str, Any] = {"gateway_port": 0, "gateway_tokens": tokens or {}, **settings}
    gateway = Gateway(
        stack.settings.model_copy(update=update),
        bootstrap_servers=stack.bootstrap,
        topics=stack.topics,
        pool=pool,
        find_maze=MazeCatalogue.from_settings(stack.settings).get,
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await asyncio.wait_for(gateway.stop(), TIMEOUT)


class RawAnswer:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/") else 0
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(port: int, data: bytes) -> RawAnswer:
    """Send ``data`` as is and read the answer: all of it (the gateway closes after an HTTP
    answer), or just the head of a websocket's 101."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        if not answer.startswith(b"HTTP/1.1 101"):
            answer += await asyncio.wait_for(reader.read(), TIMEOUT)
        return RawAnswer(answer)
    finally:
        writer.transport.abort()


def head(method: str, target: str, port: int, *extra: str, host: str | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_head(target: str, port: int, *extra: str, host: str | None = None) -> bytes:
    return head(
        "GET",
        target,
        port,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *extra,
        host=host,
    )


def long_run(run_id: str) -> dict[str, Any]:
    maze = generators.generate("backtracker", 41, 41, seed=3, name="hardening")
    return json.loads(
        start_event(
            run_id,
            maze.to_dict(),
            agent={"provider": "builtin", "model": "random", "seed": 3},
            limits={"max_footsteps": None, "max_actions": 100_000},
        )
    )


# --- defect 1: authentication before bodies, caps, rates --------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_refusals_come_before_any_body_byte_is_read(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    tokens = {READ_TOKEN: "read", WRITE_TOKEN: "write"}
    huge = "Content-Length: 16777216"
    async with (
        database_pool(pg_dsn) as pool,
        gateway_with(stack, pool, tokens=tokens, gateway_max_body_bytes=4096) as gateway,
    ):
        port = gateway.port
        # Only the head is sent: an answer proves no body byte was waited for.
        anonymous = await raw_request(port, head("POST", "/api/experiments", port, huge))
        assert anonymous.status == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await raw_request(
            port, head("POST", "/api/experiments", port, huge, "Authorization: Bearer nope")
        )
        assert wrong.status == 401
        reader = await raw_request(
            port,
            head("POST", "/api/experiments", port, huge, f"Authorization: Bearer {READ_TOKEN}"),
        )
        assert reader.status == 403
        writer = f"Authorization: Bearer {WRITE_TOKEN}"
        too_big = await raw_request(port, head("POST", "/api/experiments", port, huge, writer))
        assert too_big.status == 413
        assert "4096" in too_big.json()["error"]
        for method, target in (("GET", "/api/experiments"), ("POST", "/api/experiments/x/cancel")):
            no_body = await raw_request(
                port, head(method, target, port, "Content-Length: 10", writer)
            )
            assert no_body.status == 413, (method, target)
            assert no_body.json() == {"error": "this route takes no body"}
        assert gateway.gatekeeper.bodies.in_use == 0


@pytest.mark.slow
@pytest.mark.asyncio
async def test_bodies_read_at_once_are_capped(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        database_pool(pg_dsn) as pool,
        gateway_with(stack, pool, gateway_max_concurrent_bodies=1) as gateway,
    ):
        port = gateway.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            # A slow client: its head is admitted, half of its body sent.
            writer.write(head("POST", "/api/experiments", port, "Content-Length: 20") + b"[1, 2")
            await writer.drain()

            async def slot_taken() -> bool:
                return gateway.gatekeeper.bodies.in_use == 1

            await eventually(slot_taken, TIMEOUT)
            busy = await raw_request(
                port, head("POST", "/api/experiments", port, "Content-Length: 2") + b"{}"
            )
            assert busy.status == 503
            assert int(busy.headers["retry-after"]) >= 1
            # A request without a body needs no slot.
            assert (await raw_request(port, head("GET", "/healthz", port))).status in (200, 503)
            writer.write(b" " * 15)  # the rest of the slow body
            await writer.drain()
            slow = RawAnswer(await asyncio.wait_for(reader.read(), TIMEOUT))
            assert slow.status == 400  # read in full, then refused: not JSON
        finally:
            writer.transport.abort()
        assert gateway.gatekeeper.bodies.in_use == 0
        after = await raw_request(
            port, head("POST", "/api/experiments", port, "Content-Length: 2") + b"[]"
        )
        assert after.status == 400


@pytest.mark.slow
@pytest.mark.asyncio
async def test_rates_are_limited_per_address_and_per_token(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with database_pool(pg_dsn) as pool:
        async with (
            gateway_with(stack, pool, gateway_rate_limit_per_address=3) as gateway,
            http_client(gateway) as client,
        ):
            assert [(await client.get("/healthz")).status_code for _ in range(3)] == [200] * 3
            limited = await client.get("/healthz")
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            assert "error" in limited.json()
        tokens = {READ_TOKEN: "read", WRITE_TOKEN: "write"}
        async with gateway_with(
            stack,
            pool,
            tokens=tokens,
            gateway_rate_limit_per_token=2,
            gateway_rate_limit_per_address=0,
        ) as gateway:
            async with http_client(gateway, READ_TOKEN) as reader:
                codes = [(await reader.get("/api/experiments")).status_code for _ in range(3)]
                assert codes == [200, 200, 429]
            async with http_client(gateway, WRITE_TOKEN) as other:
                assert (await other.get("/api/experiments")).status_code == 200


# --- defect 2: Host, Origin, bad heads --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_dns_rebinding_and_foreign_origins_are_refused(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    body = json.dumps(long_run("run-rebound")).encode()
    async with database_pool(pg_dsn) as pool:
        async with gateway_with(stack, pool) as gateway:  # no tokens: loopback trust
            port = gateway.port
            evil = f"evil.example:{port}"
            read = await raw_request(port, head("GET", "/api/experiments", port, host=evil))
            assert read.status == 421
            assert "Host" in read.json()["error"]
            started = await raw_request(
                port,
                head("POST", "/api/experiments", port, f"Content-Length: {len(body)}", host=evil)
                + body,
            )
            assert started.status == 421
            handshake = await raw_request(port, ws_head("/ws/runs", port, host=evil))
            assert handshake.status == 421
            for name in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
                answer = await raw_request(port, head("GET", "/api/experiments", port, host=name))
                assert answer.status == 200, name
            ours = f"Origin: http://127.0.0.1:{port}"
            assert (
                await raw_request(port, head("GET", "/api/experiments", port, ours))
            ).status == (200)
            opened = await raw_request(port, ws_head("/ws/runs", port, ours))
            assert opened.status == 101
            for origin in (
                f"https://127.0.0.1:{port}",
                f"ws://127.0.0.1:{port}",
                f"http://127.0.0.1:{port + 1}",
                "http://127.0.0.1",
                "null",
                f"http://evil.example:{port}",
            ):
                refused = await raw_request(
                    port, head("GET", "/api/experiments", port, f"Origin: {origin}")
                )
                assert refused.status == 403, origin
                assert refused.json()["error"]
                socket_refused = await raw_request(
                    port, ws_head("/ws/runs", port, f"Origin: {origin}")
                )
                assert socket_refused.status == 403, origin
        async with gateway_with(stack, pool, gateway_allowed_hosts=["oriole.test"]) as gateway:
            port = gateway.port
            named = await raw_request(
                port, head("GET", "/api/experiments", port, host=f"oriole.test:{port}")
            )
            assert named.status == 200
            loopback = await raw_request(port, head("GET", "/api/experiments", port))
            assert loopback.status == 421  # the configured list replaces the default


@pytest.mark.slow
@pytest.mark.asyncio
async def test_bad_heads_get_400_never_500(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pg_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oriole")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    tokens = {READ_TOKEN: "read"}
    async with (
        database_pool(pg_dsn) as pool,
        gateway_with(stack, pool, tokens=tokens) as gateway,
    ):
        port = gateway.port
        auth = f"Authorization: Bearer {READ_TOKEN}"
        bad = [
            b"GET /api/experiments/a\x00b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/experiments/a\x01b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            head("GET", "/api/experiments/a%00b", port, auth),
            head("GET", "/api/experiments?comment=%00", port, auth),
            head("GET", "/api/views/batch_monitor?run_id=x%1f", port, auth),
            head("GET", "/api/experiments", port, auth, auth),
            head("GET", "/api/experiments", port, auth, "Host: evil.example"),
            head("GET", "/api/experiments", port, auth, "Origin: a", "Origin: b"),
            "GET /api/exp\u00e9riments HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
            b"GET /api/experiments HTTP/1.1\r\nHost: h\xc3\xa9\xff\r\n"
            + auth.encode()
            + b"\r\n\r\n",
            b"GET /api/experiments HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
            b"GET /api/experiments HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS\r\n\r\n",
        ]
        for request in bad:
            answer = await raw_request(port, request)
            assert answer.status == 400, (request, answer.raw[:80])
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["error"]
        still = await raw_request(port, head("GET", "/api/experiments", port, auth))
        assert still.status == 200
    ours = [r for r in caplog.records if r.name.startswith("oriole")]
    assert not [r for r in ours if r.levelno >= logging.ERROR or r.exc_info]
    assert READ_TOKEN not in "\n".join(caplog.handler.format(r) for r in ours)


# --- defect 3: a frozen database -------------------------------------------------------------


class FreezableProxy:
    """A TCP relay to PostgreSQL that can stop relaying, like a server under SIGSTOP.

    While frozen it accepts connections and reads what it is sent but forwards nothing in
    either direction; thawing forwards what was held back, so clean-up completes.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.thawed = asyncio.Event()
        self.thawed.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.thawed.set()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self.thawed.wait()
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.append(upstream_writer)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                await self.thawed.wait()
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_frozen_database_gets_a_prompt_503(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    real = urlsplit(pg_dsn)
    async with FreezableProxy(real.hostname or "127.0.0.1", real.port or 5432) as proxy:
        userinfo = real.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
        pool = await asyncpg.create_pool(
            urlunsplit(real._replace(netloc=netloc)), min_size=1, max_size=2
        )
        try:
            async with (
                gateway_with(stack, pool, gateway_database_timeout=0.5) as gateway,
                http_client(gateway) as client,
            ):
                assert (await client.get("/api/experiments")).status_code == 200
                proxy.thawed.clear()
                for path in ("/api/experiments", "/api/experiments/x", "/api/views/daily_summary"):
                    began = time.monotonic()
                    answer = await asyncio.wait_for(client.get(path), TIMEOUT)
                    took = time.monotonic() - began
                    assert answer.status_code == 503, path
                    assert answer.json() == {"error": "the database is unavailable; try again"}
                    assert took < 5.0, (path, took)
                began = time.monotonic()
                health = await asyncio.wait_for(client.get("/healthz"), TIMEOUT)
                assert health.status_code == 503 and health.json()["database"] is False
                assert time.monotonic() - began < 5.0
                proxy.thawed.set()

                async def recovered() -> bool:
                    return (await client.get("/api/experiments")).status_code == 200

                await eventually(recovered, TIMEOUT)
        finally:
            proxy.thawed.set()
            await asyncio.wait_for(pool.close(), TIMEOUT)


# --- defect 4: cancel and the audit trail ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_start_and_cancel_leave_an_audit_trail_by_token_name(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pg_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oriole")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    tokens: dict[str, Any] = {
        ALICE_TOKEN: {"scope": "write", "name": "alice"},
        WRITE_TOKEN: "write",
        READ_TOKEN: "read",
    }
    unnamed = "token-" + hashlib.sha256(WRITE_TOKEN.encode()).hexdigest()[:8]
    run_id = "run-audited"
    async with (
        database_pool(pg_dsn) as pool,
        running_worker(stack),
        gateway_with(stack, pool, tokens=tokens) as gateway,
        TopicReader(kafka_broker, stack.topics.runs_events) as events,
        TopicReader(kafka_broker, stack.topics.audit) as audit,
        http_client(gateway, ALICE_TOKEN) as alice,
        http_client(gateway, WRITE_TOKEN) as writer,
        http_client(gateway, READ_TOKEN) as reader,
    ):
        started = await alice.post("/api/experiments", json=long_run(run_id))
        assert started.status_code == 202, started.text
        await events.until(lambda records: any(r.key == run_id.encode() for r in records))
        assert (await reader.post(f"/api/experiments/{run_id}/cancel")).status_code == 403
        assert (await writer.get(f"/api/experiments/{run_id}/cancel")).status_code == 405
        assert (await writer.post("/api/experiments/bad%20id/cancel")).status_code == 400
        cancelled = await writer.post(f"/api/experiments/{run_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json() == {"run_id": run_id, "cancel": "requested"}
        await events.until(finished([run_id]))
        last = json.loads(events.records[-1].value)
        finish = [json.loads(r.value) for r in events.records if b'"run.finished"' in r.value]
        assert finish[0]["payload"]["stop_reason"] == "cancelled", last
        await audit.until(lambda records: len(records) >= 3)
        records = [AuditRecord.model_validate_json(r.value) for r in audit.records]
        raw = b"".join(r.value for r in audit.records)
    assert [(r.action, r.run_id, r.token_name, r.status, r.outcome) for r in records] == [
        ("experiment.start", run_id, "alice", 202, "accepted"),
        ("experiment.cancel", None, unnamed, 400, "refused"),
        ("experiment.cancel", run_id, unnamed, 202, "accepted"),
    ]
    assert all(r.client == "127.0.0.1" for r in records)
    for secret in (ALICE_TOKEN, WRITE_TOKEN, READ_TOKEN):
        assert secret.encode() not in raw
    logged = [r for r in caplog.records if r.name == "oriole.audit"]
    assert len(logged) == 3
    assert "alice" in logged[0].getMessage()
    text = "\n".join(
        caplog.handler.format(r) for r in caplog.records if r.name.startswith("oriole")
    )
    for secret in (ALICE_TOKEN, WRITE_TOKEN, READ_TOKEN):
        assert secret not in text


# --- pure parts -------------------------------------------------------------------------------


def test_hosts_default_to_loopback_names_on_any_port() -> None:
    for host in ("localhost", "LOCALHOST:8080", "127.0.0.1:1", "[::1]:8080", "[::1]", None):
        assert host_allowed(host, ())
    for host in ("evil.example", "evil.example:8080", "127.0.0.2", "localhost.evil", "", "a b"):
        assert not host_allowed(host, ())
    for host in ("[::1", "[::1]x", "localhost:0", "localhost:99999", "localhost:x", "h\xe9"):
        assert not host_allowed(host, ())
    assert host_allowed("oriole.example.org:443", ["oriole.example.org"])
    assert not host_allowed("localhost", ["oriole.example.org"])
    assert host_allowed("anything.example", ["*"])


def test_origins_must_be_this_gateway_exactly() -> None:
    assert origin_allowed(None, "127.0.0.1:8080")
    assert origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert origin_allowed("http://LOCALHOST:8080", "localhost:8080")
    assert origin_allowed("http://localhost", "localhost:80")
    assert origin_allowed("http://[::1]:8080", "[::1]:8080")
    for origin in (
        "https://127.0.0.1:8080",
        "ws://127.0.0.1:8080",
        "http://127.0.0.1:8081",
        "http://127.0.0.1",
        "null",
        "",
        "http://user@127.0.0.1:8080",
        "http://127.0.0.1:8080/path",
        "http://127.0.0.1:99999",
        "file://",
    ):
        assert not origin_allowed(origin, "127.0.0.1:8080"), origin
    assert not origin_allowed("http://127.0.0.1:8080", None)


def test_malformed_heads_are_named() -> None:
    fine = Headers([("Host", "127.0.0.1"), ("Authorization", "Bearer x")])
    assert head_problem("GET", "/api/experiments?x=%20", fine) is None
    for method, target in (
        ("GET", "/a\x00"),
        ("GET", "/a%00"),
        ("GET", "/a?b=%0d%0a"),
        ("GET", "/a\x7f"),
        ("GET", "api"),
        ("GET", "/caf\xe9"),
        ("get", "/"),
        ("G ET", "/"),
    ):
        assert head_problem(method, target, fine) is not None, (method, target)
    for name in ("Host", "Authorization"):
        twice = Headers([(name, "a"), (name, "b")])
        assert head_problem("GET", "/", twice) == f"more than one {name} header"
    assert head_problem("GET", "/", Headers([("Host", "h\xe9")])) is not None


def test_tokens_get_stable_names_that_are_not_the_secret() -> None:
    name = token_name("s3cret-token")
    assert name == "token-" + hashlib.sha256(b"s3cret-token").hexdigest()[:8]
    assert name == token_name("s3cret-token") and "s3cret" not in name
    table = principals(
        {
            "a": "read",
            "b": {"scope": "write", "name": "alice"},
            "c": GatewayToken(scope="write"),
            "d": GatewayToken(scope="read", name="bob"),
        }
    )
    assert [(p.name, p.scope) for p in table.values()] == [
        (token_name("a"), "read"),
        ("alice", "write"),
        (token_name("c"), "write"),
        ("bob", "read"),
    ]
    with pytest.raises(ValueError):
        principals({"x": "admin"})


def test_token_settings_accept_both_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ORIOLE_GATEWAY_TOKENS",
        '{"s3cret-1": "read", "s3cret-2": {"scope": "write", "name": "al"}}',
    )
    monkeypatch.setenv("ORIOLE_GATEWAY_ALLOWED_HOSTS", "Oriole.Example.org, [::1]")
    settings = load_settings(env_file=None)
    assert settings.gateway_tokens == {
        "s3cret-1": "read",
        "s3cret-2": GatewayToken(scope="write", name="al"),
    }
    assert settings.gateway_allowed_hosts == ["oriole.example.org", "[::1]"]
    assert settings.gateway_max_body_bytes == 16 * 1024 * 1024
    assert settings.gateway_database_timeout == 3.0
    assert "s3cret" not in repr(settings)


def test_rate_windows_slide_and_stay_bounded() -> None:
    limit = KeyedRateLimit(per_minute=2, max_keys=2)
    assert [limit.admit("a", t) for t in (0.0, 1.0)] == [0.0, 0.0]
    assert limit.admit("a", 2.0) == pytest.approx(58.0)
    assert limit.admit("a", 60.0) == 0.0  # the first request left the window
    assert limit.admit("b", 2.0) == 0.0
    limit.admit("c", 2.0)
    assert set(limit._windows) == {"b", "c"}  # the least recently used key went
    assert KeyedRateLimit(per_minute=0).admit("a", 0.0) == 0.0


def test_the_gatekeeper_decides_from_the_head_alone() -> None:
    keeper = Gatekeeper(
        Policy(
            tokens=principals({"w": "write", "r": "read"}),
            max_body_bytes=100,
            max_concurrent_bodies=1,
            rate_per_token=0,
            rate_per_address=0,
        )
    )

    def check(method: str, target: str, size: int = 0, **headers: str) -> Refusal | Admission:
        return keeper.check(method, target, Headers(list(headers.items())), size, "1.2.3.4", 0.0)

    refused = check("POST", "/api/experiments", 10**9)
    assert isinstance(refused, Refusal) and refused.status == 401
    refused = check("POST", "/api/experiments", 10**9, Authorization="Bearer r")
    assert isinstance(refused, Refusal) and refused.status == 403
    refused = check("POST", "/api/experiments", 101, Authorization="Bearer w")
    assert isinstance(refused, Refusal) and refused.status == 413
    refused = check("GET", "/api/experiments", 1, Authorization="Bearer r")
    assert isinstance(refused, Refusal) and refused.status == 413
    assert check("GET", "/ws/runs?token=r") == Admission(token_name("r"))
    assert isinstance(check("GET", "/api/experiments?token=r"), Refusal)  # HTTP: header only
    assert check("GET", "/healthz") == Admission("anonymous")
    taken = check("POST", "/api/experiments", 100, Authorization="Bearer w")
    assert taken == Admission(token_name("w"), body_slot=True)
    busy = check("POST", "/api/experiments", 5, Authorization="Bearer w")
    assert isinstance(busy, Refusal) and busy.status == 503 and "Retry-After" in busy.headers
    keeper.release()
    assert isinstance(check("POST", "/api/experiments", 5, Authorization="Bearer w"), Admission)


def test_audit_records_name_the_outcome() -> None:
    assert [outcome_of(s) for s in (202, 400, 403, 503)] == [
        "accepted",
        "refused",
        "refused",
        "failed",
    ]
    record = AuditRecord(
        action="experiment.cancel",
        run_id="run-1",
        token_name="alice",
        client="127.0.0.1",
        status=202,
        outcome="accepted",
    )
    document = json.loads(record.model_dump_json())
    assert document["type"] == "gateway.audit"
    assert set(document) == {
        "type",
        "schema_version",
        "time",
        "action",
        "run_id",
        "token_name",
        "client",
        "status",
        "outcome",
        "detail",
    }


def test_the_live_hub_skips_hostile_records_and_goes_on() -> None:
    """A record nested 100,000 deep on the events topic raised RecursionError in the hub's
    task, which ended every live feed of the gateway."""
    hub = Hub(bootstrap_servers="127.0.0.1:9", topic="t.runs.events")
    hub.dispatch([b"[" * 100_000, b"1" * 5000, b"\xff\xfe", None, b'{"run_id": 5}'])
    assert hub.events_seen == 0
