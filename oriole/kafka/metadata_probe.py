"""Is a Kafka-API broker answering? One Metadata v0 round trip on a fresh connection.

Used to tell when the embedded broker is ready: lighter than a client's bootstrap, and it
fails fast (a timeout per probe) while the broker is still binding its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
from typing import Final

from aiokafka.protocol.metadata import MetadataRequest_v0

#: Timeout of one probe (connect + Metadata round trip).
PROBE_TIMEOUT: Final = 2.0
_PROBE_CLIENT_ID: Final = "oriole-probe"
_PROBE_CORRELATION_ID: Final = 1


def _metadata_request() -> tuple[object, bytes]:
    request = MetadataRequest_v0([])
    header = request.build_request_header(
        correlation_id=_PROBE_CORRELATION_ID, client_id=_PROBE_CLIENT_ID
    )
    message: bytes = header.encode() + request.encode()
    return request, struct.pack(">i", len(message)) + message


def _parse_metadata_response(request: object, payload: bytes) -> int:
    """Number of brokers in a Metadata response; raises ``ValueError`` if it is not one."""
    buffer = io.BytesIO(payload)
    header = request.parse_response_header(buffer)  # type: ignore[attr-defined]
    if header.correlation_id != _PROBE_CORRELATION_ID:
        raise ValueError(f"unexpected correlation id {header.correlation_id}")
    response = request.RESPONSE_TYPE.decode(buffer)  # type: ignore[attr-defined]
    brokers = len(response.brokers)
    if brokers == 0:
        raise ValueError("metadata lists no brokers")
    return brokers


async def probe_metadata(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> int:
    """Send one Metadata request and return how many brokers the answer lists.

    Raises ``OSError`` (``TimeoutError`` included) when nothing answers in time,
    ``ValueError``, ``EOFError`` or ``struct.error`` when what answers is not a broker.
    """
    request, data = _metadata_request()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(data)
            await writer.drain()
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            return _parse_metadata_response(request, await reader.readexactly(size))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
