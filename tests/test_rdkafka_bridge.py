"""The librdkafka bridge: response rewriting by hand, the proxy against a fake broker, and
kcat (librdkafka 2.0.2) through the bridge against the session's embedded broker."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oriole.kafka.embedded import free_port
from oriole.kafka.rdkafka_bridge import (
    RdkafkaBridge,
    RdkafkaBridgeError,
    rewrite_api_versions_response,
    rewrite_find_coordinator_response,
    rewrite_metadata_response,
)
from oriole.kafka.topics import TopicSpec, ensure_topics

KCAT = shutil.which("kcat")
requires_kcat = pytest.mark.skipif(
    KCAT is None, reason="kcat is not installed (apt-get install kcat) - librdkafka tests skipped"
)
#: Generous: a loaded 2-core machine is slow, never wrong.
TIMEOUT = 60.0

HOST = "127.0.0.1"
UPSTREAM_PORT = 9092
BRIDGE_PORT = 40123
CORRELATION_ID = 4242

#: What Tansu writes after ``throttle_time_ms`` in every ApiVersions v3 response (captured):
#: 4 tagged fields: SupportedFeatures=[], FinalizedFeaturesEpoch=-1, FinalizedFeatures=[],
#: ZkMigrationReady=0.
TANSU_API_VERSIONS_TAGS = bytes.fromhex("04 00 01 01 01 08 ffffffffffffffff 02 01 01 03 01 00")


# -- encoding helpers ----------------------------------------------------------------------


def i16(value: int) -> bytes:
    return struct.pack(">h", value)


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def string(value: str | None) -> bytes:
    if value is None:
        return i16(-1)
    return i16(len(value)) + value.encode()


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def compact_string(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    return uvarint(len(value) + 1) + value.encode()


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


def api_versions_v3(tags: bytes = TANSU_API_VERSIONS_TAGS) -> tuple[bytes, bytes]:
    """(response as Tansu sends it, the same response with an empty tagged-field section)."""
    apis = [(0, 0, 9), (3, 0, 12), (10, 0, 4), (18, 0, 3)]
    body = i32(CORRELATION_ID) + i16(0) + uvarint(len(apis) + 1)
    for key, low, high in apis:
        body += i16(key) + i16(low) + i16(high) + b"\x00"
    body += i32(0)  # throttle_time_ms
    return body + tags, body + b"\x00"


def metadata_v1(ports: tuple[int, int]) -> bytes:
    """Metadata v1: two brokers (the first on ``ports[0]``), controller, one topic."""
    return (
        i32(CORRELATION_ID)
        + i32(2)  # brokers
        + i32(1)
        + string(HOST)
        + i32(ports[0])
        + string(None)  # rack
        + i32(2)
        + string("10.0.0.2")
        + i32(ports[1])
        + string("rack-b")
        + i32(1)  # controller_id
        + i32(1)  # topics
        + i16(0)
        + string("t")
        + b"\x00"  # is_internal
        + i32(1)  # partitions
        + i16(0)
        + i32(0)
        + i32(1)
        + i32(1)
        + i32(1)  # replicas
        + i32(1)
        + i32(1)  # isr
    )


def metadata_v12(ports: tuple[int, int]) -> bytes:
    """Metadata v12 (flexible): header tags, two brokers, a topic, trailing tags."""
    broker_tag = uvarint(1) + uvarint(5) + uvarint(2) + b"xy"  # one unknown tagged field
    return (
        i32(CORRELATION_ID)
        + b"\x00"  # response header v1 tagged fields
        + i32(0)  # throttle_time_ms
        + uvarint(3)  # 2 brokers
        + i32(1)
        + compact_string(HOST)
        + i32(ports[0])
        + compact_string(None)
        + b"\x00"
        + i32(2)
        + compact_string(HOST)
        + i32(ports[1])
        + compact_string("rack-b")
        + broker_tag
        + compact_string("oriole")  # cluster_id
        + i32(1)  # controller_id
        + uvarint(2)  # 1 topic
        + i16(0)
        + compact_string("t")
        + bytes(16)  # topic_id
        + b"\x00"
        + uvarint(1)  # no partitions
        + i32(-2147483648)  # topic_authorized_operations
        + b"\x00"
        + b"\x00"
    )


def find_coordinator_v2(port: int) -> bytes:
    return i32(CORRELATION_ID) + i32(0) + i16(0) + string(None) + i32(1) + string(HOST) + i32(port)


def find_coordinator_v4(ports: tuple[int, int]) -> bytes:
    entries = b""
    for key, port in zip(("g1", "g2"), ports, strict=True):
        entries += (
            compact_string(key)
            + i32(1)
            + compact_string(HOST)
            + i32(port)
            + i16(0)
            + compact_string(None)
            + b"\x00"
        )
    return i32(CORRELATION_ID) + b"\x00" + i32(0) + uvarint(3) + entries + b"\x00"


# -- pure rewrites -------------------------------------------------------------------------


def test_api_versions_v3_loses_its_tagged_fields() -> None:
    tansu, expected = api_versions_v3()
    assert rewrite_api_versions_response(tansu, 3) == expected
    assert rewrite_api_versions_response(expected, 3) == expected  # already empty: unchanged


def test_api_versions_other_versions_and_errors_pass_unchanged() -> None:
    tansu, _ = api_versions_v3()
    assert rewrite_api_versions_response(tansu, 2) == tansu
    error = i32(CORRELATION_ID) + i16(35) + i32(0)  # UNSUPPORTED_VERSION, v0 layout
    assert rewrite_api_versions_response(error, 3) == error


def test_api_versions_rejects_garbage() -> None:
    tansu, _ = api_versions_v3()
    with pytest.raises(ValueError):
        rewrite_api_versions_response(tansu[:-3], 3)
    with pytest.raises(ValueError):
        rewrite_api_versions_response(tansu + b"\x00", 3)


@pytest.mark.parametrize(
    ("build", "version", "ports", "expected"),
    [
        # v1: the second broker has the upstream port but another host: left alone.
        (metadata_v1, 1, (UPSTREAM_PORT, UPSTREAM_PORT), (BRIDGE_PORT, UPSTREAM_PORT)),
        # v12: the second broker has the upstream host but another port: left alone.
        (metadata_v12, 12, (UPSTREAM_PORT, UPSTREAM_PORT + 1), (BRIDGE_PORT, UPSTREAM_PORT + 1)),
        (metadata_v12, 12, (UPSTREAM_PORT, UPSTREAM_PORT), (BRIDGE_PORT, BRIDGE_PORT)),
    ],
    ids=["v1", "v12", "v12-both"],
)
def test_metadata_rewrites_only_upstream_brokers(
    build: Callable[[tuple[int, int]], bytes],
    version: int,
    ports: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    rewritten = rewrite_metadata_response(build(ports), version, HOST, UPSTREAM_PORT, BRIDGE_PORT)
    assert rewritten == build(expected)
    other = build((UPSTREAM_PORT + 1, UPSTREAM_PORT + 1))
    assert rewrite_metadata_response(other, version, HOST, UPSTREAM_PORT, BRIDGE_PORT) == other


def test_metadata_v1_matches_aiokafka_decoding() -> None:
    from aiokafka.protocol.metadata import MetadataResponse_v1

    rewritten = rewrite_metadata_response(
        metadata_v1((UPSTREAM_PORT, UPSTREAM_PORT)), 1, HOST, UPSTREAM_PORT, BRIDGE_PORT
    )
    decoded = MetadataResponse_v1.decode(rewritten[4:])
    assert [tuple(b) for b in decoded.brokers] == [
        (1, HOST, BRIDGE_PORT, None),
        (2, "10.0.0.2", UPSTREAM_PORT, "rack-b"),
    ]
    assert decoded.topics[0][1] == "t"


def test_metadata_v0_and_v9_layouts() -> None:
    v0 = i32(CORRELATION_ID) + i32(1) + i32(1) + string(HOST) + i32(UPSTREAM_PORT) + i32(0)
    expected = v0[:-8] + i32(BRIDGE_PORT) + i32(0)
    assert rewrite_metadata_response(v0, 0, HOST, UPSTREAM_PORT, BRIDGE_PORT) == expected
    v12 = metadata_v12((UPSTREAM_PORT, 1))
    assert rewrite_metadata_response(v12, 9, HOST, UPSTREAM_PORT, BRIDGE_PORT) == metadata_v12(
        (BRIDGE_PORT, 1)
    )


def test_metadata_rejects_truncated_frames() -> None:
    response = metadata_v12((UPSTREAM_PORT, UPSTREAM_PORT))
    with pytest.raises(ValueError):
        rewrite_metadata_response(response[:30], 12, HOST, UPSTREAM_PORT, BRIDGE_PORT)


def test_find_coordinator_v2_and_v4() -> None:
    v2 = find_coordinator_v2(UPSTREAM_PORT)
    assert rewrite_find_coordinator_response(
        v2, 2, HOST, UPSTREAM_PORT, BRIDGE_PORT
    ) == find_coordinator_v2(BRIDGE_PORT)
    v4 = find_coordinator_v4((UPSTREAM_PORT, 1234))
    assert rewrite_find_coordinator_response(
        v4, 4, HOST, UPSTREAM_PORT, BRIDGE_PORT
    ) == find_coordinator_v4((BRIDGE_PORT, 1234))
    v0 = i32(CORRELATION_ID) + i16(0) + i32(1) + string(HOST) + i32(UPSTREAM_PORT)
    assert rewrite_find_coordinator_response(v0, 0, HOST, UPSTREAM_PORT, BRIDGE_PORT) == (
        v0[:-4] + i32(BRIDGE_PORT)
    )


# -- the proxy against a fake broker -------------------------------------------------------


def request(api_key: int, version: int, correlation_id: int, body: bytes = b"") -> bytes:
    return frame(struct.pack(">hhi", api_key, version, correlation_id) + string("test") + body)


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


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


# -- the real broker -----------------------------------------------------------------------


@pytest_asyncio.fixture
async def bridge(kafka_broker: str) -> AsyncIterator[RdkafkaBridge]:
    host, port = kafka_broker.rsplit(":", 1)
    async with RdkafkaBridge(host, int(port), port=free_port()) as running:
        yield running


async def kcat(*args: str, stdin: bytes = b"") -> bytes:
    """Run kcat (without blocking the loop the bridge runs in); return its stdout."""
    assert KCAT is not None
    process = await asyncio.create_subprocess_exec(
        KCAT,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await process.communicate(stdin)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"kcat {' '.join(args)} failed:\n{stderr.decode()}"
    return stdout


async def create_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    spec = TopicSpec(prefix=prefix, suffix="rdkafka", partitions=partitions)
    await ensure_topics(bootstrap, [spec])
    return spec.name


async def poll_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_metadata_lists_the_bridge(bridge: RdkafkaBridge, kafka_broker: str) -> None:
    listing = json.loads(await kcat("-L", "-J", "-b", bridge.bootstrap_servers))
    assert [broker["name"] for broker in listing["brokers"]] == [bridge.bootstrap_servers]
    assert kafka_broker != bridge.bootstrap_servers


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_produces_through_the_bridge(
    bridge: RdkafkaBridge, kafka_broker: str, topic_prefix: str
) -> None:
    topic = await create_topic(kafka_broker, topic_prefix)
    value = '{"maze":"größe ✓","n":1}'.encode()
    await kcat(
        "-P", "-b", bridge.bootstrap_servers, "-t", topic, "-K", "\t", stdin=b"key-1\t" + value
    )

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_broker, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        records: list[Any] = []

        async def got_one() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            records.extend(r for batch in batches.values() for r in batch)
            return bool(records)

        await poll_until(got_one, "the record produced by kcat")
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in records] == [(b"key-1", value)]


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_consumes_through_the_bridge(
    bridge: RdkafkaBridge, kafka_broker: str, topic_prefix: str
) -> None:
    topic = await create_topic(kafka_broker, topic_prefix, partitions=2)
    values = [f'{{"n":{n}}}'.encode() for n in range(5)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
    await producer.start()
    try:
        for n, value in enumerate(values):
            await producer.send_and_wait(topic, value, partition=n % 2)
    finally:
        await producer.stop()

    out = await kcat(
        "-C", "-e", "-q", "-b", bridge.bootstrap_servers, "-t", topic, "-o", "beginning",
        "-f", "%p %s\n",
    )  # fmt: skip
    lines = sorted(out.splitlines())
    assert lines == sorted(f"{n % 2} ".encode() + value for n, value in enumerate(values))


@requires_kcat
@pytest.mark.asyncio
async def test_kcat_group_consumer_finds_the_coordinator_through_the_bridge(
    bridge: RdkafkaBridge, kafka_broker: str, topic_prefix: str
) -> None:
    topic = await create_topic(kafka_broker, topic_prefix)
    await kcat("-P", "-b", bridge.bootstrap_servers, "-t", topic, stdin=b"grouped\n")
    out = await kcat(
        "-b", bridge.bootstrap_servers, "-G", f"{topic_prefix}-group", "-o", "beginning",
        "-e", "-q", "-f", "%s\n",
        # Short timeouts: the group forms after the broker's initial delay (~3 s).
        "-X", "session.timeout.ms=6000", "-X", "max.poll.interval.ms=6000",
        "-X", "heartbeat.interval.ms=500",
        topic,
    )  # fmt: skip
    assert out.splitlines() == [b"grouped"]


@pytest.mark.asyncio
async def test_live_api_versions_lose_their_tags(bridge: RdkafkaBridge, kafka_broker: str) -> None:
    """Without kcat: the embedded broker's own ApiVersions v3 answer, directly and bridged."""
    body = b"\x00" + compact_string("kcat") + compact_string("1.7.1") + b"\x00"
    raw = frame(struct.pack(">hhi", 18, 3, 77) + string("test") + body)
    host, port = kafka_broker.rsplit(":", 1)
    answers = []
    for address in ((host, int(port)), (HOST, bridge.port)):
        reader, writer = await asyncio.open_connection(*address)
        try:
            writer.write(raw)
            async with asyncio.timeout(TIMEOUT):
                answers.append(await read_frame(reader))
        finally:
            writer.close()
    direct, bridged = answers
    assert direct.endswith(TANSU_API_VERSIONS_TAGS), "Tansu changed: is the bridge still needed?"
    assert bridged == direct[: -len(TANSU_API_VERSIONS_TAGS)] + b"\x00"
