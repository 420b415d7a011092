"""A small HTTP listener for ``/metrics`` and ``/healthz`` of one process.

`oriole worker` and `oriole projector` have no HTTP server of their own, and a Prometheus
scrape or a container health check must not depend on the gateway: this one answers two
paths, with ``Connection: close``, in the process's own event loop (so the metrics it reads
are the ones the services just wrote, never half-updated by another thread).

- ``GET /metrics``: every metric of the registry, Prometheus text format;
- ``GET /healthz``: 200 ``{"process": ..., "status": "ok", "services": {name: true}}`` when
  every service of the process says it is healthy, else 503 with ``"status": "unhealthy"``;
- any other path 404, any other method 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from oriole.addresses import http_url

log = logging.getLogger("oriole.telemetry")

#: What a process's services say about themselves: service name -> healthy.
HealthCheck = Callable[[], Mapping[str, bool]]

#: A request head that takes longer than this (a client that sends nothing) is dropped.
REQUEST_TIMEOUT = 10.0
#: Longest request line or header line accepted; scrapers send a few hundred bytes.
MAX_LINE = 8192
MAX_HEADERS = 100

_ROUTES = ("/metrics", "/healthz")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS[503] = "Service Unavailable"


class MetricsServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        process: str,
        health: HealthCheck,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.process = process
        self.health = health
        self.registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.requested_port, limit=MAX_LINE
        )
        log.info("%s serves /metrics and /healthz on %s", self.process, self.url)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5.0)

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- one connection, one request -----------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                method, path = await asyncio.wait_for(_read_head(reader), REQUEST_TIMEOUT)
            except (TimeoutError, ValueError, asyncio.LimitOverrunError, ConnectionError):
                status, body, kind = 400, _json({"error": "bad request"}), "application/json"
                method = "GET"
            else:
                status, body, kind = self._answer(method, path)
            await _write(writer, status, body, kind, head_only=method == "HEAD")
        except Exception as exc:  # a client that went away; nothing to answer
            log.debug("metrics request failed: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> tuple[int, bytes, str]:
        if path not in _ROUTES:
            return 404, _json({"error": "not found"}), "application/json"
        if method not in ("GET", "HEAD"):
            return 405, _json({"error": f"{method} is not allowed here"}), "application/json"
        if path == "/metrics":
            return 200, generate_latest(self.registry), CONTENT_TYPE_LATEST
        try:
            services = {name: bool(ok) for name, ok in self.health().items()}
        except Exception:
            log.exception("the health check of %s failed", self.process)
            services = {}
        healthy = bool(services) and all(services.values())
        answer = {
            "process": self.process,
            "status": "ok" if healthy else "unhealthy",
            "services": services,
        }
        return 200 if healthy else 503, _json(answer), "application/json"


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path of the request (its query dropped); its headers are skipped."""
    line = (await reader.readline()).decode("latin-1").strip()
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"not an HTTP request line: {line[:80]!r}")
    for _ in range(MAX_HEADERS):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
    else:
        raise ValueError("too many headers")
    return parts[0].upper(), parts[1].split("?", 1)[0]


async def _write(
    writer: asyncio.StreamWriter, status: int, body: bytes, kind: str, *, head_only: bool
) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + (b"" if head_only else body))
    await writer.drain()


def _json(value: object) -> bytes:
    return json.dumps(value).encode()
