"""The three broker responses the rdkafka bridge rewrites, as pure functions on Kafka frames.

Apart from the proxy (:mod:`oriole.kafka.rdkafka_bridge`), which only moves bytes, so the
wire-protocol knowledge can be read and tested without sockets. Every function takes a
response frame without its 4-byte length prefix (correlation id first) and checks every
bound: a malformed frame raises :class:`ProtocolError`.

What is rewritten (broker -> client only; requests are forwarded unchanged)
    1. ApiVersions (key 18) v3+ responses without an error: the trailing tagged-field section
       is replaced by ``0x00`` (no tagged fields). The API version ranges are untouched.
    2. Metadata (key 3), every version: each broker that advertises exactly the upstream
       ``host:port`` gets the bridge's port instead, so that the client's further connections
       go through the bridge too. The host is kept, so the bridge must listen on the host the
       broker advertises (both are ``127.0.0.1`` by default).
    3. FindCoordinator (key 10), every version (the single coordinator of v0-v3, each entry of
       the ``coordinators`` array of v4+): the same port rewrite, so group consumers work too.

    Ports are rewritten in place, so those frames keep their length.
"""

from __future__ import annotations

import struct
from typing import Final

API_METADATA: Final = 3
API_FIND_COORDINATOR: Final = 10
API_VERSIONS: Final = 18
#: The API keys whose responses :func:`rewrite_response` changes.
REWRITTEN_APIS: Final = frozenset({API_METADATA, API_FIND_COORDINATOR, API_VERSIONS})

_INT32: Final = struct.Struct(">i")


class ProtocolError(ValueError):
    """A frame that is not valid Kafka protocol (the connection is closed)."""


class _Cursor:
    """Reads Kafka primitive types from a response, checking every bound."""

    __slots__ = ("_data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self.pos = pos

    def skip(self, size: int) -> int:
        """Skip ``size`` bytes and return where they started."""
        start = self.pos
        if size < 0 or start + size > len(self._data):
            raise ProtocolError(f"need {size} bytes at offset {start} of {len(self._data)}")
        self.pos = start + size
        return start

    def int16(self) -> int:
        value: int = struct.unpack_from(">h", self._data, self.skip(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack_from(">i", self._data, self.skip(4))[0]
        return value

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self._data[self.skip(1)]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise ProtocolError(f"unsigned varint too long at offset {self.pos}")

    def string(self, flexible: bool) -> bytes | None:
        """A (nullable) string: int16 length, or unsigned varint length + 1 when flexible."""
        size = self.uvarint() - 1 if flexible else self.int16()
        if size < 0:
            return None
        start = self.skip(size)
        return self._data[start : self.pos]

    def array_length(self, flexible: bool) -> int:
        """Element count of a non-null array: int32, or unsigned varint count + 1."""
        count = self.uvarint() - 1 if flexible else self.int32()
        if count < 0:
            raise ProtocolError(f"unexpected null array at offset {self.pos}")
        return count

    def tagged_fields(self) -> None:
        """Skip a tagged-field section: count, then (tag, size, data) per field."""
        for _ in range(self.uvarint()):
            self.uvarint()
            self.skip(self.uvarint())


def rewrite_api_versions_response(response: bytes, version: int) -> bytes:
    """Drop the tagged fields at the end of an ApiVersions v3+ response.

    ``response`` is the frame without its length prefix (correlation id first; ApiVersions
    responses always use header v0). Earlier versions and error responses (which a broker may
    send in the v0 layout) are returned unchanged.
    """
    if version < 3:
        return response
    cursor = _Cursor(response, 4)
    if cursor.int16() != 0:  # error_code
        return response
    for _ in range(cursor.array_length(flexible=True)):
        cursor.skip(6)  # api_key, min_version, max_version
        cursor.tagged_fields()
    cursor.int32()  # throttle_time_ms
    end = cursor.pos
    cursor.tagged_fields()  # validates the section we drop
    if cursor.pos != len(response):
        raise ProtocolError(f"{len(response) - cursor.pos} stray bytes after ApiVersions")
    return response[:end] + b"\x00"


def _rewrite_endpoint(
    cursor: _Cursor, out: bytearray, flexible: bool, upstream: tuple[bytes, int], port: int
) -> None:
    """Read ``host``, ``port``; replace the port if the pair is ``upstream``."""
    host = cursor.string(flexible)
    at = cursor.pos
    if (host, cursor.int32()) == upstream:
        _INT32.pack_into(out, at, port)


def rewrite_metadata_response(
    response: bytes, version: int, upstream_host: str, upstream_port: int, port: int
) -> bytes:
    """Give every broker advertised as ``upstream_host:upstream_port`` the port ``port``.

    ``response`` is the Metadata response of ``version`` without its length prefix. Only the
    brokers array (the first field after ``throttle_time_ms``) is read; the rest is copied.
    """
    flexible = version >= 9
    upstream = (upstream_host.encode(), upstream_port)
    out = bytearray(response)
    cursor = _Cursor(response, 4)  # after the correlation id
    if flexible:
        cursor.tagged_fields()  # response header v1
    if version >= 3:
        cursor.int32()  # throttle_time_ms
    for _ in range(cursor.array_length(flexible)):
        cursor.int32()  # node_id
        _rewrite_endpoint(cursor, out, flexible, upstream, port)
        if version >= 1:
            cursor.string(flexible)  # rack
        if flexible:
            cursor.tagged_fields()
    return bytes(out)


def rewrite_find_coordinator_response(
    response: bytes, version: int, upstream_host: str, upstream_port: int, port: int
) -> bytes:
    """Give every coordinator advertised as ``upstream_host:upstream_port`` the port ``port``.

    ``response`` is the FindCoordinator response of ``version`` without its length prefix:
    v0-v3 hold one coordinator, v4+ an array of them (one per requested key).
    """
    flexible = version >= 3
    upstream = (upstream_host.encode(), upstream_port)
    out = bytearray(response)
    cursor = _Cursor(response, 4)
    if flexible:
        cursor.tagged_fields()  # response header v1
    if version >= 1:
        cursor.int32()  # throttle_time_ms
    if version < 4:
        cursor.int16()  # error_code
        if version >= 1:
            cursor.string(flexible)  # error_message
        cursor.int32()  # node_id
        _rewrite_endpoint(cursor, out, flexible, upstream, port)
    else:
        for _ in range(cursor.array_length(flexible=True)):
            cursor.string(flexible=True)  # key
            cursor.int32()  # node_id
            _rewrite_endpoint(cursor, out, True, upstream, port)
            cursor.int16()  # error_code
            cursor.string(flexible=True)  # error_message
            cursor.tagged_fields()
    return bytes(out)


def rewrite_response(
    api_key: int,
    api_version: int,
    response: bytes,
    upstream_host: str,
    upstream_port: int,
    port: int,
) -> bytes:
    """The response to a request of ``api_key`` (one of :data:`REWRITTEN_APIS`), rewritten."""
    if api_key == API_VERSIONS:
        return rewrite_api_versions_response(response, api_version)
    rewrite = (
        rewrite_metadata_response if api_key == API_METADATA else rewrite_find_coordinator_response
    )
    return rewrite(response, api_version, upstream_host, upstream_port, port)
