"""Plain HTTP on the websockets server: request bodies, responses, static files, auth.

The ``websockets`` library answers HTTP through its ``process_request`` hook, but its
request parser refuses any request with a body. :class:`HttpConnection` swaps in a protocol
whose parser also reads a ``Content-Length`` body (bounded), so ``POST /api/experiments``
works without another web framework. Every HTTP response closes its connection (one request
per connection), which is what the websockets server does anyway.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hmac
import http
import mimetypes
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, SecurityError
from websockets.http11 import Request, Response, parse_headers, parse_line
from websockets.protocol import CONNECTING
from websockets.server import ServerProtocol

from gateway.frames import dumps

#: Largest accepted request body: a start event may embed a big maze (16 MiB, like Kafka's).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Largest websocket message accepted from a client (clients are not expected to send any).
MAX_CLIENT_MESSAGE = 64 * 1024

Scope = Literal["public", "read", "write"]

_ReadLine = Callable[[int, type[Exception]], Generator[None, None, bytes | bytearray]]
_ReadExact = Callable[[int], Generator[None, None, bytes | bytearray]]


@dataclasses.dataclass
class HttpRequest(Request):
    """A request with its body (empty for GET and for websocket handshakes)."""

    body: bytes = b""


class BodyError(ValueError):
    """A request body the gateway will not read; ``status`` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_request(
    read_line: _ReadLine, read_exact: _ReadExact, max_body: int = MAX_BODY_BYTES
) -> Generator[None, None, HttpRequest]:
    """Like ``websockets.http11.Request.parse``, plus a ``Content-Length`` body."""
    request_line = yield from parse_line(read_line)
    try:
        raw_method, raw_path, raw_protocol = request_line.split(b" ", 2)
    except ValueError:
        raise ValueError("invalid HTTP request line") from None
    if raw_protocol not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ValueError("unsupported protocol")
    method = raw_method.decode("ascii")
    path = raw_path.decode("ascii")
    headers = yield from parse_headers(read_line)
    if "Transfer-Encoding" in headers:
        raise BodyError(501, "chunked request bodies are not supported; send Content-Length")
    lengths = set(headers.get_all("Content-Length"))
    body = b""
    if lengths and lengths != {"0"}:
        if len(lengths) > 1:
            raise BodyError(400, "conflicting Content-Length headers")
        raw = lengths.pop()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise BodyError(400, "invalid Content-Length")
        size = int(raw)
        if size > max_body:
            raise BodyError(413, f"request body larger than {max_body} bytes")
        body = bytes((yield from read_exact(size)))
    return HttpRequest(path, headers, method, raw_protocol.decode("ascii"), body=body)


class HttpProtocol(ServerProtocol):
    """The websockets server protocol, reading request bodies too."""

    def parse(self) -> Generator[None]:
        if self.state is CONNECTING:
            try:
                request = yield from parse_request(self.reader.read_line, self.reader.read_exact)
            except BodyError as exc:
                self.handshake_exc = exc
                self.send_response(text_response(exc.status, f"{exc}\n"))
                yield
            except SecurityError as exc:  # request line or headers too long, too many headers
                self.handshake_exc = exc
                self.send_response(text_response(431, "request head too large\n"))
                yield
            except Exception as exc:
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

    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        # serve() builds a plain ServerProtocol; replace it before any byte is read. The
        # gateway passes no origins, extensions (compression off) or subprotocols.
        replacement = HttpProtocol(max_size=MAX_CLIENT_MESSAGE, logger=protocol.logger)
        super().__init__(replacement, *args, **kwargs)


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


# --- authentication ----------------------------------------------------------------------


def same_origin(origin: str | None, host: str | None) -> bool:
    """False when a browser sent the request from another site's page.

    Browsers add ``Origin`` to websocket handshakes and cross-site POSTs; other clients
    (curl, scripts, ``oriole watch``) send none, which is fine. Refusing foreign origins
    keeps a web page the user happens to visit from reading runs off, or starting
    experiments on, a gateway that trusts the network position (no tokens, loopback).
    """
    if origin is None:
        return True
    if host is None:
        return False
    return urlsplit(origin.strip()).netloc.lower() == host.strip().lower()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def token_scope(tokens: Mapping[str, str], presented: str) -> str | None:
    """The scope of ``presented`` (compared in constant time with every token), or None."""
    found: str | None = None
    offered = presented.encode()
    for token, scope in tokens.items():
        if hmac.compare_digest(token.encode(), offered):
            found = scope
    return found


def authorize(tokens: Mapping[str, str], need: Scope, presented: str | None) -> int | None:
    """None when allowed; else the HTTP status to refuse with (401 or 403).

    With no tokens configured everything is allowed (the gateway then listens on loopback
    only). ``write`` implies ``read``.
    """
    if need == "public" or not tokens:
        return None
    if presented is None:
        return 401
    scope = token_scope(tokens, presented)
    if scope is None:
        return 401
    if need == "write" and scope != "write":
        return 403
    return None
