"""The librdkafka bridge as a proxy against a fake broker: rewriting and streaming, and which
failures close which connections."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from oriole.kafka.embedded import free_port
from oriole.kafka.rdkafka_bridge import RdkafkaBridge, RdkafkaBridgeError
from tests.kafka_frames_support import (
    CORRELATION_ID,
    HOST,
    TIMEOUT,
    UPSTREAM_PORT,
    api_versions_v3,
    frame,
    i32,
    metadata_v1,
    read_frame,
    string,
)


def request(api_key: int, version: int, correlation_id: int, body: bytes = b"") -> bytes:
    return frame(struct.pack(">hhi", api_key, version, correlation_id) + string("test") + body)


class FakeBroker:
    """Answers ApiVersions with Tansu's tagged fields, Metadata v1 with its own address, and
    echoes any other request's body (after the 8-byte header prefix) back as the response."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeBroker:
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                payload = await read_frame(reader)
                api_key, _version, correlation_id = struct.unpack_from(">hhi", payload)
                if api_key == 18:
                    response = api_versions_v3()[0]
                elif api_key == 3:
                    response = metadata_v1((self.port, 1))
                else:
                    response = i32(CORRELATION_ID) + payload[8:]
                writer.write(frame(i32(correlation_id) + response[4:]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture
async def fake_bridge() -> AsyncIterator[tuple[FakeBroker, RdkafkaBridge]]:
    async with FakeBroker() as broker, RdkafkaBridge(HOST, broker.port) as bridge:
        yield broker, bridge


async def connect(bridge: RdkafkaBridge) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, bridge.port, limit=1 << 20)


async def closes(reader: asyncio.StreamReader) -> bool:
    """True if the peer closes the connection (EOF or reset) within the timeout."""
    async with asyncio.timeout(TIMEOUT):
        try:
            return await reader.read() == b""
        except ConnectionError:
            return True


@pytest.mark.asyncio
async def test_proxy_rewrites_and_streams(fake_bridge: tuple[FakeBroker, RdkafkaBridge]) -> None:
    broker, bridge = fake_bridge
    big = bytes(range(256)) * (17 * 4096)  # 17 MiB, beyond any single read
    reader, writer = await connect(bridge)
    try:
        # Pipelined, as librdkafka does; the responses come back in order.
        writer.write(request(18, 3, 1, b"\x00\x00\x00\x00"))
        writer.write(request(0, 7, 2, big))
        writer.write(request(3, 1, 3, i32(-1)))
        writer.write(request(3, 1, 4, i32(-1)) + request(18, 2, 5))
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            api_versions = await read_frame(reader)
            echoed = await read_frame(reader)
            metadata = await read_frame(reader)
            metadata_again = await read_frame(reader)
            api_versions_v2 = await read_frame(reader)
    finally:
        writer.close()
    assert api_versions == i32(1) + api_versions_v3()[1][4:]
    assert echoed == i32(2) + string("test") + big
    assert metadata == i32(3) + metadata_v1((bridge.port, 1))[4:]
    assert metadata_again[4:] == metadata[4:]
    assert api_versions_v2 == i32(5) + api_versions_v3()[0][4:]  # v2 is left alone
    assert broker.port != bridge.port


@pytest.mark.asyncio
async def test_protocol_error_closes_only_that_connection(
    fake_bridge: tuple[FakeBroker, RdkafkaBridge],
) -> None:
    _, bridge = fake_bridge
    bad_reader, bad_writer = await connect(bridge)
    good_reader, good_writer = await connect(bridge)
    try:
        bad_writer.write(i32(3) + b"abc")  # shorter than a request header
        await bad_writer.drain()
        assert await closes(bad_reader)
        good_writer.write(request(0, 7, 9, b"ok"))
        await good_writer.drain()
        async with asyncio.timeout(TIMEOUT):
            assert await read_frame(good_reader) == i32(9) + string("test") + b"ok"
    finally:
        bad_writer.close()
        good_writer.close()


@pytest.mark.asyncio
async def test_unreachable_upstream_and_stop_close_connections() -> None:
    dead_port = free_port()
    async with RdkafkaBridge(HOST, dead_port) as bridge:
        reader, writer = await connect(bridge)
        assert await closes(reader)
        writer.close()
    async with FakeBroker() as broker:
        bridge = await RdkafkaBridge(HOST, broker.port).start()
        reader, writer = await connect(bridge)
        writer.write(request(0, 7, 1, b"x"))
        async with asyncio.timeout(TIMEOUT):
            await read_frame(reader)  # the connection is established end to end
        await bridge.stop()
        assert await closes(reader)
        writer.close()
        await bridge.stop()  # idempotent
        with pytest.raises(OSError):
            socket.create_connection((HOST, bridge.port), timeout=5).close()


def test_bridge_address_needs_start() -> None:
    bridge = RdkafkaBridge(HOST, UPSTREAM_PORT)
    with pytest.raises(RdkafkaBridgeError):
        _ = bridge.bootstrap_servers
    with pytest.raises(ValueError):
        RdkafkaBridge(HOST, 0)
