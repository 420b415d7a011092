"""Plain HTTP on the websockets server: request bodies, responses, static files, auth.

The ``websockets`` library answers HTTP through its ``process_request`` hook, but its
request parser refuses any request with a body. :class:`HttpConnection` swaps in a protocol
whose parser also reads a ``Content-Length`` body (bounded, and only once the head passed
the :class:`~gateway.guard.Gatekeeper`), so ``POST /api/experiments`` works without another
web framework. Every HTTP response closes its connection (one request
per connection), which is what the websockets server does anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import http
import logging
import mimetypes
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, SecurityError
from websockets.http11 import Request, Response, parse_headers, parse_line
from websockets.protocol import CONNECTING
from websockets.server import ServerProtocol

from gateway.frames import dumps, split_target
from gateway.guard import ANONYMOUS, Admission, Gatekeeper, Refusal, head_problem

# Re-exported: the authentication rules live in gateway.guard now.
from gateway.guard import authorize as authorize
from gateway.guard import bearer_token as bearer_token
from gateway.metrics import HTTP_REQUESTS

#: Default largest request body (``ORIOLE_GATEWAY_MAX_BODY_BYTES``): a start event may embed
#: a big maze (16 MiB, like Kafka's).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Largest websocket message accepted from a client (clients are not expected to send any).
MAX_CLIENT_MESSAGE = 64 * 1024

log = logging.getLogger("oriole.gateway")

_ReadLine = Callable[[int, type[Exception]], Generator[None, None, bytes | bytearray]]


@dataclasses.dataclass
class HttpRequest(Request):
    """A request with its body (empty for GET and for websocket handshakes).

    ``actor`` is the name of the token that authenticated it (``anonymous`` with
    authentication off); ``client`` the peer's address.
    """

    body: bytes = b""
    actor: str = ANONYMOUS
    client: str = ""


class BodyError(ValueError):
    """A request the gateway answers at once without reading on; ``status`` says why."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.headers = dict(headers or {})


def parse_head(read_line: _ReadLine) -> Generator[None, None, tuple[str, str, str, Headers]]:
    """Method, target, protocol and headers; malformed ones raise :class:`BodyError` (400)."""
    request_line = yield from parse_line(read_line)
    try:
        raw_method, raw_path, raw_protocol = request_line.split(b" ", 2)
    except ValueError:
        raise BodyError(400, "invalid HTTP request line") from None
    if raw_protocol not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BodyError(400, "unsupported protocol")
    try:
        method = raw_method.decode("ascii")
        path = raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise BodyError(400, "the request line must be ASCII") from None
    try:
        headers = yield from parse_headers(read_line)
    except (SecurityError, EOFError):
        raise
    except ValueError:
        raise BodyError(400, "invalid HTTP header") from None
    return method, path, raw_protocol.decode("ascii"), headers


def content_length(headers: Headers) -> int:
    """The declared body size (0 without one); a bad or conflicting one is a 400."""
    lengths = set(headers.get_all("Content-Length"))
    if not lengths or lengths == {"0"}:
        return 0
    if len(lengths) > 1:
        raise BodyError(400, "conflicting Content-Length headers")
    raw = lengths.pop()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BodyError(400, "invalid Content-Length")
    return int(raw)


class HttpProtocol(ServerProtocol):
    """The websockets server protocol, reading request bodies too.

    The head is judged by the :class:`Gatekeeper` before any body byte is read: a refused
    request is answered at once and whatever it sends afterwards is discarded unread.
    """

    def __init__(self, gatekeeper: Gatekeeper | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gatekeeper = gatekeeper
        self.client = ""
        self._holds_body_slot = False
        #: Method and route of the request being read, for the log (never the query).
        self._route = "- -"

    def release_body_slot(self) -> None:
        """Give back the body slot (idempotent: the parser and connection_lost both call it)."""
        if self._holds_body_slot and self.gatekeeper is not None:
            self._holds_body_slot = False
            self.gatekeeper.release()

    def read_request(self) -> Generator[None, None, HttpRequest]:
        method, path, protocol, headers = yield from parse_head(self.reader.read_line)
        if head_problem(method, path, Headers()) is None:
            self._route = f"{method} {split_target(path).path}"
        size = content_length(headers)
        verdict: Refusal | Admission = Admission(ANONYMOUS)
        if self.gatekeeper is not None:
            verdict = self.gatekeeper.check(
                method, path, headers, size, self.client, time.monotonic()
            )
        if isinstance(verdict, Refusal):
            raise BodyError(verdict.status, verdict.detail, verdict.headers)
        self._holds_body_slot = verdict.body_slot
        try:
            if "Transfer-Encoding" in headers:
                raise BodyError(
                    501, "chunked request bodies are not supported; send Content-Length"
                )
            body = bytes((yield from self.reader.read_exact(size))) if size else b""
        finally:
            self.release_body_slot()
        return HttpRequest(
            path, headers, method, protocol, body=body, actor=verdict.actor, client=self.client
        )

    def parse(self) -> Generator[None]:
        if self.state is CONNECTING:
            try:
                request = yield from self.read_request()
            except BodyError as exc:
                self.handshake_exc = exc
                HTTP_REQUESTS.labels(str(exc.status)).inc()
                log.debug("%s -> %d (%s)", self._route, exc.status, exc)
                self.send_response(error_response(exc.status, str(exc), exc.headers))
                yield
            except SecurityError as exc:  # request line or headers too long, too many headers
                self.handshake_exc = exc
                self.send_response(error_response(431, "request head too large"))
                yield
            except Exception as exc:  # the client went away mid-request
                self.handshake_exc = InvalidMessage("did not receive a valid HTTP request")
                self.handshake_exc.__cause__ = exc
                self.send_eof()
                self.parser = self.discard()
                next(self.parser)
                yield
            self.events.append(request)
        yield from super(ServerProtocol, self).parse()


class HttpConnection(ServerConnection):
    """A server connection whose protocol reads request bodies (see :class:`HttpProtocol`)."""

    #: Set on the subclass :func:`gated` makes; None: no checks (tests of the parser only).
    gatekeeper: Gatekeeper | None = None

    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        # serve() builds a plain ServerProtocol; replace it before any byte is read. The
        # gateway passes no origins, extensions (compression off) or subprotocols.
        replacement = HttpProtocol(
            self.gatekeeper, max_size=MAX_CLIENT_MESSAGE, logger=protocol.logger
        )
        super().__init__(replacement, *args, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        assert isinstance(self.protocol, HttpProtocol)
        self.protocol.client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        assert isinstance(self.protocol, HttpProtocol)
        self.protocol.release_body_slot()


def gated(gatekeeper: Gatekeeper) -> type[HttpConnection]:
    """The connection class for ``serve(create_connection=...)`` that applies ``gatekeeper``."""

    class GatedConnection(HttpConnection):
        pass

    GatedConnection.gatekeeper = gatekeeper
    return GatedConnection


# --- responses ---------------------------------------------------------------------------


def response(
    status: int,
    body: bytes,
    content_type: str,
    *,
    cache: str = "no-store",
    extra: Mapping[str, str] | None = None,
) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", cache),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    for name, value in (extra or {}).items():
        headers[name] = value
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def json_response(
    status: int, document: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> Response:
    return response(status, dumps(document) + b"\n", "application/json", extra=extra)


def text_response(status: int, text: str) -> Response:
    return response(status, text.encode(), "text/plain; charset=utf-8")


def error_response(status: int, detail: str, extra: Mapping[str, str] | None = None) -> Response:
    return json_response(status, {"error": detail}, extra)


# --- static files ------------------------------------------------------------------------

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


def content_type(path: Path) -> str:
    known = _CONTENT_TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def static_path(root: Path, relative: str) -> Path | None:
    """The file under ``root`` that ``relative`` (URL-encoded) names, or None.

    Refuses anything that could leave ``root``: ``..``, absolute paths, backslashes, NUL,
    hidden files, and symbolic links pointing outside it.
    """
    decoded = unquote(relative)
    if not decoded or "\x00" in decoded or "\\" in decoded:
        return None
    parts = decoded.split("/")
    if any(not part or part.startswith(".") for part in parts):
        return None
    base = root.resolve()
    candidate = (base / decoded).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate
