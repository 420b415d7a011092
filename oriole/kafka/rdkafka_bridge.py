"""A small TCP proxy that lets librdkafka clients (kcat, confluent-kafka) use the embedded broker.

Development only: it exists for the embedded Tansu broker (:mod:`oriole.kafka.embedded`) and
is neither needed nor wanted in front of a real Kafka cluster.

Why it exists
    librdkafka 2.0.2 (bundled in Debian's ``kcat`` 1.7.1) opens every connection with
    ApiVersions v3. Tansu's v3 response is spec-valid, but after ``throttle_time_ms`` it always
    writes all four tagged fields (SupportedFeatures, FinalizedFeaturesEpoch = -1,
    FinalizedFeatures, ZkMigrationReady = 0), where Apache Kafka omits tagged fields that hold
    their default values. librdkafka 2.0.2 mis-skips them and gives up with "Protocol read
    buffer underflow for ApiVersion v3 ... Local: Read underflow" (``api.version.request=false``
    is ignored by librdkafka 2.x), so it cannot talk to the broker at all.

It rewrites three kinds of response (ApiVersions v3+, Metadata, FindCoordinator; see
:mod:`oriole.kafka.rdkafka_rewrite`) and streams every other frame through byte for byte
(frames may be many MiB; they are never held in memory whole). Only the three rewritten
responses are buffered, up to :data:`MAX_REWRITTEN_FRAME` bytes.

Each client connection gets its own upstream connection. Requests are remembered by
correlation id (only the three rewritten kinds), and a response is matched by its correlation
id. A connection with a protocol error is logged and closed; the server keeps running. When
either side closes, both connections are closed.

Limitations: plain TCP only (no TLS or SASL); a broker advertised under another name than
``upstream_host`` (e.g. ``localhost`` for ``127.0.0.1``) is not rewritten, so clients would
bypass the bridge; half-closed connections are closed entirely. Measured with kcat 1.7.1
(librdkafka 2.0.2: ApiVersions v3, Metadata v4, FindCoordinator v2) and confluent-kafka 2.16
(librdkafka 2.16: Metadata v12, FindCoordinator v2) against Tansu 0.6.

Usage::

    async with RdkafkaBridge("127.0.0.1", broker.port) as bridge:
        subprocess.run(["kcat", "-b", bridge.bootstrap_servers, "-L"])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, Self, TypeAlias

from oriole.kafka.rdkafka_rewrite import (
    REWRITTEN_APIS,
    ProtocolError,
    rewrite_api_versions_response,
    rewrite_find_coordinator_response,
    rewrite_metadata_response,
    rewrite_response,
)

__all__ = [
    "MAX_REWRITTEN_FRAME",
    "RdkafkaBridge",
    "RdkafkaBridgeError",
    "rewrite_api_versions_response",
    "rewrite_find_coordinator_response",
    "rewrite_metadata_response",
]

_log = logging.getLogger(__name__)

#: Largest response the bridge buffers to rewrite (Metadata of a development broker is tiny).
MAX_REWRITTEN_FRAME: Final = 64 * 1024 * 1024
#: Pass-through frames are copied in chunks of this size.
_CHUNK: Final = 256 * 1024
#: Request header prefix every version shares: api_key, api_version, correlation_id.
_REQUEST_PREFIX: Final = struct.Struct(">hhi")
_INT32: Final = struct.Struct(">i")
_CLOSE_TIMEOUT: Final = 5.0

#: Requests awaiting a rewritten response: correlation id -> (api key, api version).
_Pending: TypeAlias = dict[int, tuple[int, int]]
_Forward: TypeAlias = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter, _Pending], Awaitable[None]
]


class RdkafkaBridgeError(RuntimeError):
    """The bridge is used wrongly (e.g. its address is asked for before it started)."""


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await writer.wait_closed()


class RdkafkaBridge:
    """Listens on ``host:port`` and relays every connection to the upstream broker.

    ``port=None`` lets the OS pick a free port at each :meth:`start`. Use as
    ``async with RdkafkaBridge(...) as bridge:`` or call :meth:`start` / :meth:`stop`; clients
    connect to :attr:`bootstrap_servers`.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        if not 1 <= upstream_port <= 65535:
            raise ValueError(f"upstream_port must be between 1 and 65535, got {upstream_port}")
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, got {port}")
        self._upstream_host = upstream_host
        self._upstream_port = upstream_port
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the bridge listens on."""
        if self._port is None:
            raise RdkafkaBridgeError("the bridge has not been started")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for librdkafka clients."""
        return f"{self._host}:{self.port}"

    async def start(self) -> Self:
        """Start listening (returns once the port accepts connections)."""
        if self._server is not None:
            raise RdkafkaBridgeError(f"the bridge is already running on {self.bootstrap_servers}")
        server = await asyncio.start_server(
            self._accept, self._host, self._requested_port or 0, reuse_address=True
        )
        self._port = int(server.sockets[0].getsockname()[1])
        self._server = server
        _log.debug(
            "rdkafka bridge %s -> %s:%s",
            self.bootstrap_servers,
            self._upstream_host,
            self._upstream_port,
        )
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection; safe to repeat."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        while self._connections:
            connections = list(self._connections)
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            self._connections.difference_update(connections)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._server is not None else "stopped"
        return f"<RdkafkaBridge {where} -> {self._upstream_host}:{self._upstream_port}>"

    # -- one connection ------------------------------------------------------------------

    def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        # A plain callback that starts our own task: asyncio's server would log the
        # cancellation of a coroutine callback (by stop()) as an error.
        if self._server is None:  # accepted just before stop()
            client_writer.close()
            return
        task = asyncio.create_task(self._serve(client_reader, client_writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        peer = client_writer.get_extra_info("peername")
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self._upstream_host, self._upstream_port
                )
            except OSError as exc:
                _log.warning(
                    "rdkafka bridge: cannot reach %s:%s for %s: %s",
                    self._upstream_host,
                    self._upstream_port,
                    peer,
                    exc,
                )
                return
            pending: _Pending = {}
            pumps = [
                asyncio.create_task(
                    _pump(
                        peer, "request", _forward_request, client_reader, upstream_writer, pending
                    )
                ),
                asyncio.create_task(
                    _pump(
                        peer,
                        "response",
                        self._forward_response,
                        upstream_reader,
                        client_writer,
                        pending,
                    )
                ),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            await _close(client_writer)
            await _close(upstream_writer)

    async def _forward_response(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: _Pending
    ) -> None:
        """Broker -> client, one frame: rewrite a noted response, stream any other through."""
        length = await reader.readexactly(4)
        (size,) = _INT32.unpack(length)
        if size < 4:
            raise ProtocolError(f"response frame of {size} bytes")
        head = length + await reader.readexactly(4)
        (correlation_id,) = _INT32.unpack_from(head, 4)
        request = pending.pop(correlation_id, None)
        if request is None:
            writer.write(head)
            await _copy(reader, writer, size - 4)
            return
        if size > MAX_REWRITTEN_FRAME:
            raise ProtocolError(f"response of {size} bytes to api key {request[0]}")
        response = head[4:] + await reader.readexactly(size - 4)
        response = rewrite_response(
            *request, response, self._upstream_host, self._upstream_port, self.port
        )
        writer.write(_INT32.pack(len(response)) + response)
        await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int) -> None:
    """Stream ``size`` bytes from ``reader`` to ``writer`` in bounded chunks."""
    while size > 0:
        chunk = await reader.readexactly(min(size, _CHUNK))
        writer.write(chunk)
        size -= len(chunk)
        await writer.drain()
    await writer.drain()


async def _forward_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: _Pending
) -> None:
    """Client -> broker, one frame: forward it unchanged, noting a request to rewrite."""
    length = await reader.readexactly(4)
    (size,) = _INT32.unpack(length)
    if size < _REQUEST_PREFIX.size:
        raise ProtocolError(f"request frame of {size} bytes")
    prefix = await reader.readexactly(_REQUEST_PREFIX.size)
    api_key, api_version, correlation_id = _REQUEST_PREFIX.unpack(prefix)
    if api_key in REWRITTEN_APIS:
        # Noted before the request leaves, so its response cannot arrive first.
        pending[correlation_id] = (api_key, api_version)
    writer.write(length + prefix)
    await _copy(reader, writer, size - _REQUEST_PREFIX.size)


async def _pump(
    peer: object,
    direction: str,
    forward: _Forward,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    pending: _Pending,
) -> None:
    """Forward frames one way until either side fails; log how it ended, never raise."""
    try:
        while True:
            await forward(reader, writer, pending)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        _log.debug("rdkafka bridge: %s closed (%s side): %r", peer, direction, exc)
    except ProtocolError as exc:
        _log.warning("rdkafka bridge: closing %s, bad %s: %s", peer, direction, exc)
    except OSError as exc:
        _log.warning("rdkafka bridge: closing %s (%s side): %s", peer, direction, exc)
    except Exception:
        _log.exception("rdkafka bridge: closing %s after an unexpected error", peer)
