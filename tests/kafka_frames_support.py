"""Kafka protocol frames built by hand for the librdkafka bridge tests: primitive encoders,
the responses the bridge rewrites (as Tansu and aiokafka lay them out), and reading a frame."""

from __future__ import annotations

import asyncio
import struct

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


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)
