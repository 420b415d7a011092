"""Gateway hardening (issue 11) at the door, over raw sockets: authentication before any body
byte, capped bodies, rate limits, Host and Origin checks, and 400 (never 500) for bad heads.
Real gateway, broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_hardening_support import READ_TOKEN, TIMEOUT, WRITE_TOKEN, gateway_with, long_run
from tests.gateway_support import database_pool, http_client
from tests.kafka_support import eventually, make_stack


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
