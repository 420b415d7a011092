"""The gateway attack: an oversized body and DNS rebinding, sent as raw HTTP.

Raw sockets rather than an HTTP client, so the suite sends exactly what an attacker would
(a body streamed past the size cap, a foreign ``Host``) and sees how the gateway answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bench.faults.config import HOSTILE_PREFIX, FaultConfig
from bench.faults.hostile import dump, start_doc, tiny_maze
from bench.faults.waiting import until


async def http_probe(
    port: int, head: bytes, body_size: int = 0, body: bytes = b"", with_body: bool = False
) -> str:
    """Send one raw HTTP request (a body of ``body_size`` spaces, streamed) and return the
    status code (and the answer's body), or what happened instead: ``closed``, ``timeout``."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except (OSError, TimeoutError) as exc:
        return f"connect failed: {type(exc).__name__}"

    async def send() -> None:
        writer.write(head + body)
        chunk = b" " * (1 << 16)
        left = body_size
        while left > 0:
            writer.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        line = await asyncio.wait_for(reader.readline(), 60)
        parts = line.split()
        status = parts[1].decode() if len(parts) >= 2 else "closed"
        if with_body and status != "closed":
            answer = await asyncio.wait_for(reader.read(4096), 10)
            status += " " + answer.partition(b"\r\n\r\n")[2].decode(errors="replace")
        return status
    except (OSError, TimeoutError) as exc:
        return "timeout" if isinstance(exc, TimeoutError) else "closed"
    finally:
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def attack_gateway(port: int, config: FaultConfig) -> dict[str, Any]:
    """An oversized body and DNS rebinding (a foreign ``Host``): both must be refused (4xx or
    a closed connection), and the gateway must stay healthy."""
    host = f"127.0.0.1:{port}".encode()
    size = config.gateway_body_bytes
    small = dump(start_doc(f"{HOSTILE_PREFIX}rebind-0", tiny_maze()))
    probes = {
        "oversized_body": await http_probe(
            port,
            b"POST /api/experiments HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n" % size,
            body_size=size,
        ),
        "rebinding_get": await http_probe(
            port, b"GET /api/experiments HTTP/1.1\r\nHost: evil.example\r\n\r\n"
        ),
        "rebinding_post": await http_probe(
            port,
            b"POST /api/experiments HTTP/1.1\r\nHost: evil.example\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n" % len(small),
            body=small,
        ),
    }
    health = b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    first = await http_probe(port, health, with_body=True)

    async def healthy() -> bool:
        return await http_probe(port, health) == "200"

    accepted = [name for name, status in probes.items() if status.startswith("2")]
    return {
        "probes": probes,
        "accepted": accepted,
        "healthz_after": first,
        "healthy_within_s": await until(healthy, config.recovery_timeout),
    }
