"""Who may send what, decided from the request head alone (pure: no I/O, no clock).

The gateway answers refusals (bad head, foreign Host or Origin, missing token, too large a
body, too many requests) before it reads a single body byte, so an unauthenticated client
cannot make it buffer anything. :class:`Gatekeeper` holds the few pieces of state this
needs (rate-limit windows, the count of bodies being read); the caller passes ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.datastructures import Headers

from gateway.frames import ws_route
from oriole.llm.resilience import RateLimit, SlidingWindowLimiter

Scope = Literal["public", "read", "write"]

#: Host names a gateway answers to when none are configured: a page on another name that
#: resolves to 127.0.0.1 (DNS rebinding) is refused.
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
#: Name recorded for requests when authentication is off.
ANONYMOUS = "anonymous"
#: Rate-limit windows kept per table (least recently used ones are forgotten first).
MAX_TRACKED_KEYS = 1024
#: Seconds a client is told to wait when every body slot is taken.
BUSY_RETRY_AFTER = 1

_METHOD = re.compile(r"^[A-Z]{1,16}$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """A token holder: the scope the token grants and the name the audit trail records."""

    name: str
    scope: Literal["read", "write"]


def token_name(token: str) -> str:
    """A stable name for an unnamed token that does not reveal it (a hash prefix)."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def principals(configured: Mapping[str, Any]) -> dict[str, Principal]:
    """``ORIOLE_GATEWAY_TOKENS`` values (``"write"`` or ``{"scope", "name"}``) as principals."""
    table: dict[str, Principal] = {}
    for token, value in configured.items():
        scope: object
        name: object
        if isinstance(value, str):
            scope, name = value, None
        elif isinstance(value, Mapping):
            scope, name = value.get("scope"), value.get("name")
        else:
            scope, name = getattr(value, "scope", None), getattr(value, "name", None)
        label = name if isinstance(name, str) and name else token_name(token)
        if scope == "read":
            table[token] = Principal(label, "read")
        elif scope == "write":
            table[token] = Principal(label, "write")
        else:
            raise ValueError("a gateway token's scope must be 'read' or 'write'")
    return table


def valid_token_name(name: str) -> bool:
    return bool(_TOKEN_NAME.match(name))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def find_principal(table: Mapping[str, Principal], presented: str) -> Principal | None:
    """The holder of ``presented``, compared in constant time with every token."""
    found: Principal | None = None
    offered = presented.encode()
    for token, principal in table.items():
        if hmac.compare_digest(token.encode(), offered):
            found = principal
    return found


def authorize(tokens: Mapping[str, Any], need: Scope, presented: str | None) -> int | None:
    """None when allowed; else the HTTP status to refuse with (401 or 403).

    With no tokens configured everything is allowed (the gateway then listens on loopback
    only). ``write`` implies ``read``.
    """
    if need == "public" or not tokens:
        return None
    if presented is None:
        return 401
    principal = find_principal(principals(tokens), presented)
    if principal is None:
        return 401
    if need == "write" and principal.scope != "write":
        return 403
    return None


# --- Host and Origin ------------------------------------------------------------------------


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host header (name lower-cased, IPv6 in brackets); None if bad."""
    value = value.strip().lower()
    port_text = ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return None
            port_text = rest[1:]
        if not re.fullmatch(r"\[[0-9a-f:.]+\]", name):
            return None
    else:
        name, _, port_text = value.partition(":")
        if not _HOST_NAME.match(name):
            return None
    if not port_text:
        return name, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


def host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Whether the gateway answers to ``host`` (any port); ``*`` in ``allowed``: any name.

    A request without Host (not a browser: browsers always send it) is let through.
    """
    if host is None:
        return True
    parsed = split_host(host)
    if parsed is None:
        return False
    names = [name.strip().lower() for name in allowed] or list(LOOPBACK_HOSTS)
    return "*" in names or parsed[0] in names


def origin_allowed(origin: str | None, host: str | None, scheme: str = "http") -> bool:
    """False when a browser sent the request from another site's page.

    Browsers add ``Origin`` to websocket handshakes and cross-site POSTs; other clients
    (curl, scripts, ``oriole watch``) send none, which is fine. The origin must be this
    gateway exactly: same scheme, host and port (``null``, sent by sandboxed pages and
    local files, is refused).
    """
    if origin is None:
        return True
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme.lower() != scheme or not parts.hostname or parts.path not in ("", "/"):
        return False
    if parts.username is not None or parts.password is not None or parts.query:
        return False
    ours = split_host(host)
    theirs = split_host(parts.netloc)
    if ours is None or theirs is None:
        return False
    default = _DEFAULT_PORTS.get(scheme)
    return ours[0] == theirs[0] and (ours[1] or default) == (origin_port or default)


# --- the request head -----------------------------------------------------------------------


def head_problem(method: str, target: str, headers: Headers) -> str | None:
    """Why the request head is malformed (a 400), or None.

    Control characters in the target (raw or percent-encoded) would reach queries and
    logs; a second Host or Authorization header leaves unclear whom the request is for.
    """
    if not _METHOD.match(method):
        return "invalid method"
    if not target.startswith("/") or not target.isascii():
        return "the request target must be an ASCII path starting with /"
    if _CONTROL.search(target) or _CONTROL.search(unquote(target.replace("+", " "))):
        return "control characters in the request target"
    for name in ("Host", "Authorization", "Origin", "Content-Length", "Transfer-Encoding"):
        values = headers.get_all(name)
        if len(values) > 1 and name != "Content-Length":
            return f"more than one {name} header"
        if any(not value.isascii() or _CONTROL.search(value) for value in values):
            return f"invalid characters in the {name} header"
    return None


#: Routes whose POST carries a body (a start event, a batch spec).
BODY_ROUTES = ("/api/experiments", "/api/batches")


def needed_scope(method: str, path: str, websocket: bool) -> Scope:
    """What a route needs: ``/api/*`` and websockets read, the write routes write."""
    if method == "POST" and (
        path in BODY_ROUTES
        or cancel_route(path) is not None
        or batch_cancel_route(path) is not None
    ):
        return "write"
    if websocket or path.startswith("/api/"):
        return "read"
    return "public"


def cancel_route(path: str, prefix: str = "/api/experiments/") -> str | None:
    """The run id of ``/api/experiments/{run_id}/cancel`` (or the id under another
    ``prefix``), else None."""
    suffix = "/cancel"
    if path.startswith(prefix) and path.endswith(suffix):
        run_id = path[len(prefix) : -len(suffix)]
        if run_id and "/" not in run_id:
            return unquote(run_id)
    return None


def batch_cancel_route(path: str) -> str | None:
    """The batch id of ``/api/batches/{batch_id}/cancel``, else None."""
    return cancel_route(path, "/api/batches/")


def body_limit(method: str, path: str, start_limit: int) -> int:
    """Largest body a route accepts: a start event or a batch spec may embed big mazes;
    others take none."""
    return start_limit if method == "POST" and path in BODY_ROUTES else 0


# --- rates and slots ------------------------------------------------------------------------


class KeyedRateLimit:
    """A sliding window per key (token name, client address), at most ``max_keys`` kept.

    Built on :class:`SlidingWindowLimiter`; a window remembers at most ``per_minute``
    request times, so memory stays bounded by ``max_keys * per_minute``.
    """

    def __init__(self, per_minute: int, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._windows: OrderedDict[str, SlidingWindowLimiter] = OrderedDict()

    def admit(self, key: str, now: float) -> float:
        """0 and the request counted when it may proceed; else seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        window = self._windows.get(key)
        if window is None:
            window = SlidingWindowLimiter(RateLimit(requests_per_minute=self.per_minute))
            self._windows[key] = window
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        self._windows.move_to_end(key)
        wait = window.delay(now)
        if wait > 0:
            return wait
        window.record_request(now)
        return 0.0


class BodySlots:
    """How many request bodies are being read at once, never more than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def acquire(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use = max(0, self.in_use - 1)


# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer this status (JSON ``{"error": detail}``) without reading any body."""

    status: int
    detail: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Admission:
    """Go on: who asks (``actor``) and whether a body slot was taken for it."""

    actor: str
    body_slot: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """The gateway's settings that the gatekeeper applies."""

    tokens: Mapping[str, Principal]
    allowed_hosts: Sequence[str] = ()
    max_body_bytes: int = 16 * 1024 * 1024
    max_concurrent_bodies: int = 4
    rate_per_token: int = 600
    rate_per_address: int = 600


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}


class Gatekeeper:
    """Decides every request from its head: a :class:`Refusal` or an :class:`Admission`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.by_token = KeyedRateLimit(policy.rate_per_token)
        self.by_address = KeyedRateLimit(policy.rate_per_address)
        self.bodies = BodySlots(policy.max_concurrent_bodies)

    def check(
        self, method: str, target: str, headers: Headers, body_size: int, client: str, now: float
    ) -> Refusal | Admission:
        """The verdict on a request head; ``body_size`` is its Content-Length (0: none).

        An admission with ``body_slot`` must be followed by :meth:`release` once the body is
        read (or the connection is gone).
        """
        problem = head_problem(method, target, headers)
        if problem is not None:
            return Refusal(400, problem)
        wait = self.by_address.admit(client, now)
        if wait > 0:
            return Refusal(429, "too many requests from this address", _retry_after(wait))
        host = headers.get("Host")
        if not host_allowed(host, self.policy.allowed_hosts):
            return Refusal(
                421,
                "this gateway does not answer to that Host name (see ORIOLE_GATEWAY_ALLOWED_HOSTS)",
            )
        parts = urlsplit(target)
        path = parts.path
        websocket = ws_route(path) is not None
        scope = needed_scope(method, path, websocket)
        if scope != "public" and not origin_allowed(headers.get("Origin"), host):
            return Refusal(403, "requests from another site's page are refused")
        actor = ANONYMOUS
        if scope != "public" and self.policy.tokens:
            presented = bearer_token(headers.get("Authorization"))
            if presented is None and websocket:
                query = parse_qs(parts.query, keep_blank_values=True).get("token")
                presented = query[-1] if query else None
            principal = None if presented is None else find_principal(self.policy.tokens, presented)
            if principal is None:
                return Refusal(
                    401, "missing or unknown token", {"WWW-Authenticate": 'Bearer realm="oriole"'}
                )
            if scope == "write" and principal.scope != "write":
                return Refusal(403, "this token may only read")
            actor = principal.name
            wait = self.by_token.admit(principal.name, now)
            if wait > 0:
                return Refusal(429, "too many requests with this token", _retry_after(wait))
        if body_size <= 0:
            return Admission(actor)
        limit = body_limit(method, path, self.policy.max_body_bytes)
        if body_size > limit:
            detail = (
                f"request body larger than {limit} bytes" if limit else "this route takes no body"
            )
            return Refusal(413, detail)
        if not self.bodies.acquire():
            return Refusal(
                503,
                "the gateway is reading too many request bodies; try again",
                _retry_after(BUSY_RETRY_AFTER),
            )
        return Admission(actor, body_slot=True)

    def release(self) -> None:
        """A body taken by an admission was read, or its connection is gone."""
        self.bodies.release()
