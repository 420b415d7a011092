"""The librdkafka bridge's response rewriting, by hand: ApiVersions, Metadata and
FindCoordinator responses in the layouts librdkafka and aiokafka read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oriole.kafka.rdkafka_bridge import (
    rewrite_api_versions_response,
    rewrite_find_coordinator_response,
    rewrite_metadata_response,
)
from tests.kafka_frames_support import (
    BRIDGE_PORT,
    CORRELATION_ID,
    HOST,
    UPSTREAM_PORT,
    api_versions_v3,
    find_coordinator_v2,
    find_coordinator_v4,
    i16,
    i32,
    metadata_v1,
    metadata_v12,
    string,
)


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
