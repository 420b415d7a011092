"""The gateway side of `oriole watch`: the ``/ws/runs/{run_id}`` feed, folded with RunState.

Frames are read with the core's decoders (:func:`oriole.kafka.codec.json_object` for the
frame, :func:`oriole.events.run_event_from_dict` for the run event it carries) and the
events folded by :class:`oriole.run_state.RunState`, the fold the worker and replay use.
A lagging or dropped connection resumes with ``from_seq`` set to the last event folded, so
nothing is missed or folded twice. Every failure is a :class:`WatchError` (an
:class:`~oriole.errors.OrioleError`: one line and exit status 2 from the CLI).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import pydantic
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from gateway.frames import CLOSE_BAD_QUERY, CLOSE_LAGGING, CLOSE_UNKNOWN_RUN
from oriole.addresses import http_url
from oriole.environment.settings import Settings
from oriole.environment.stack_file import NoStackError, read_stack
from oriole.errors import OrioleError, ValidationError
from oriole.events import ActionCompleted, RunEvent, run_event_from_dict
from oriole.kafka.codec import UndecodableMessage, json_object
from oriole.memory import ActionRecord
from oriole.run_state import RunState

TOKEN_ENV = "ORIOLE_GATEWAY_TOKEN"
#: Actions kept for the "last actions" panel.
RECENT_ACTIONS = 8
#: Seconds to open a websocket before the gateway counts as unreachable.
OPEN_TIMEOUT = 15.0
#: After a drop, keep retrying this long before giving up (exit 2).
RECONNECT_GIVE_UP = 120.0
#: Longest wait between two reconnection attempts.
MAX_BACKOFF = 10.0

Applied = Literal["dup", "gap", "applied"]


class WatchError(OrioleError):
    """Watching cannot go on: unknown run, refused token, unreachable gateway, a feed that
    is not a run's log (exit 2)."""


@dataclass(frozen=True, slots=True)
class Recent:
    """One of the last actions: the fold's record and the reasoning its decision gave."""

    record: ActionRecord
    reasoning: str | None


@dataclass
class WatchedRun:
    """A run as `oriole watch` follows it: the core's fold plus the state of the feed.

    ``state`` is folded from the run's first event, always (the fold needs the maze of
    ``run.started``). Actions of events at or before ``from_seq`` are not listed among
    the last actions.
    """

    state: RunState
    from_seq: int = 0
    connection: str = "connecting"
    #: The reasoning of each listed step (the decision's, which the fold does not keep).
    reasoning: dict[int, str | None] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def apply(self, event: RunEvent) -> Applied:
        """Fold one event in: ``dup`` if already folded, ``gap`` if events before it are
        missing (resume the feed from ``state.seq``); :class:`WatchError` if the fold
        refuses it."""
        state = self.state
        if event.run_id == state.run_id and event.seq > state.seq + 1:
            return "gap"
        decision = state.pending
        try:
            if not state.apply_if_new(event):
                return "dup"
        except ValidationError as exc:  # a RuleError, or a MazeError from run.started
            raise WatchError(
                f"the gateway's log of run {state.run_id!r} cannot be folded at event "
                f"{event.seq}: {exc}"
            ) from None
        if isinstance(event, ActionCompleted) and event.seq > self.from_seq:
            self.reasoning[event.payload.step] = None if decision is None else decision.reasoning
            while len(self.reasoning) > RECENT_ACTIONS:
                del self.reasoning[next(iter(self.reasoning))]
        return "applied"

    def recent(self) -> list[Recent]:
        """The last actions listed, oldest first."""
        return [
            Recent(record, self.reasoning[record.step])
            for record in self.state.actions[-RECENT_ACTIONS:]
            if record.step in self.reasoning
        ]


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the feed (docs/gateway.md): its ``kind``, the run event of an
    ``event`` frame, the ``detail`` of an ``error`` or ``lagging`` frame."""

    kind: str
    event: RunEvent | None = None
    detail: str = ""


def read_frame(raw: str | bytes) -> Frame:
    """Decode one frame; :class:`WatchError` for one that is not JSON or an event frame
    whose event is not a run event of this version."""
    try:
        data = json_object(raw.encode() if isinstance(raw, str) else raw)
    except UndecodableMessage as exc:
        raise WatchError(f"the gateway sent a frame that cannot be read: {exc}") from None
    kind = data.get("kind")
    if not isinstance(kind, str):
        return Frame("")
    detail = data.get("detail")
    if kind != "event":
        return Frame(kind, detail=detail if isinstance(detail, str) else "")
    document = data.get("event")
    try:
        return Frame(kind, run_event_from_dict(document))
    except pydantic.ValidationError as exc:
        seq = document.get("seq") if isinstance(document, dict) else None
        raise WatchError(
            f"the gateway sent event {seq if isinstance(seq, int) else '?'} that is not a run "
            f"event this version can read ({_first_problem(exc)})"
        ) from None


def _first_problem(exc: pydantic.ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f"; {len(errors) - 1} more" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"


# --- where the gateway is -------------------------------------------------------------------


def gateway_base_url(current: Settings, explicit: str | None = None) -> str:
    """``--url``, else the running stack's gateway, else the configured host and port."""
    if explicit:
        return explicit.rstrip("/")
    try:
        info = read_stack(current.home)
    except NoStackError:
        info = None  # a stale stack file: fall back to the configuration
    if info is not None and info.gateway_url:
        return info.gateway_url.rstrip("/")
    host = current.gateway_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return http_url(host, current.gateway_port)


def run_feed_url(base: str, run_id: str, from_seq: int) -> str:
    """``ws(s)://.../ws/runs/{run_id}?from_seq=N`` for a gateway base URL."""
    try:
        parts = urlsplit(base if "://" in base else f"http://{base}")
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise WatchError(f"bad gateway URL {base!r}: {exc}") from None
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise WatchError(f"the gateway URL must be http(s)://HOST:PORT, got {base!r}")
    path = f"{parts.path.rstrip('/')}/ws/runs/{quote(run_id, safe='')}"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"from_seq": from_seq}), ""))


# --- following the feed ---------------------------------------------------------------------


def _refused(base_url: str, status: int, token: str | None) -> WatchError:
    hint = "" if token else f" (give one with --token or ${TOKEN_ENV})"
    refused = "token refused" if token else "a token is needed"
    return WatchError(
        f"the gateway at {base_url} refused the connection: HTTP {status}, {refused}{hint}"
    )


async def follow(
    run: WatchedRun,
    base_url: str,
    token: str | None,
    on_change: Callable[[], None] = lambda: None,
    *,
    give_up_after: float = RECONNECT_GIVE_UP,
    open_timeout: float = OPEN_TIMEOUT,
) -> None:
    """Fold the run's events into ``run`` until it has finished.

    Reconnects with ``from_seq`` = the last seq folded after ``lagging`` or a drop; raises
    :class:`WatchError` for an unknown run, a refused token, a gateway that cannot be
    reached (at first, or for ``give_up_after`` seconds after a drop), or a feed that is not
    the run's log.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    loop = asyncio.get_running_loop()
    connected_once = False
    failing_since: float | None = None
    attempt = 0
    while True:
        uri = run_feed_url(base_url, run.run_id, run.state.seq)
        close_code: int | None = None
        detail: str | None = None
        lagging = False
        try:
            async with connect(
                uri,
                additional_headers=headers,
                compression=None,
                max_size=None,
                open_timeout=open_timeout,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=5,
            ) as ws:
                connected_once = True
                failing_since = None
                attempt = 0
                run.connection = "loading"
                on_change()
                try:
                    async for raw in ws:
                        frame = read_frame(raw)
                        if frame.event is not None:
                            if run.apply(frame.event) == "gap":
                                run.connection = "missing events; resuming"
                                break
                        elif frame.kind == "caught_up":
                            run.connection = "live"
                        elif frame.kind == "finished":
                            run.connection = "finished"
                        elif frame.kind == "lagging":
                            lagging = True
                            run.connection = "lagging; resuming"
                        elif frame.kind == "error":
                            detail = frame.detail
                        on_change()
                except ConnectionClosed:
                    pass
                close_code = ws.close_code
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                raise _refused(base_url, status, token) from None
            if not connected_once:
                raise WatchError(
                    f"the gateway at {base_url} answered HTTP {status}; is it an Oriole gateway?"
                ) from None
        except InvalidURI as exc:
            raise WatchError(f"bad gateway URL {base_url!r}: {exc}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            if not connected_once:
                reason = str(exc) or type(exc).__name__
                raise WatchError(
                    f"cannot reach the gateway at {base_url} ({reason}); is `oriole up` "
                    "running? (or give --url)"
                ) from None
        if run.state.is_finished:
            run.connection = "finished"
            on_change()
            return
        if close_code == CLOSE_UNKNOWN_RUN:
            raise WatchError(detail or f"unknown run {run.run_id!r}")
        if close_code == CLOSE_BAD_QUERY:
            raise WatchError(f"the gateway refused the request: {detail or 'bad query'}")
        if lagging or close_code == CLOSE_LAGGING:
            continue  # resume at once from the last seq folded
        now = loop.time()
        if failing_since is None:
            failing_since = now
        elif now - failing_since > give_up_after:
            raise WatchError(
                f"lost the gateway at {base_url} and could not reconnect for {give_up_after:.0f} s"
            )
        delay = min(MAX_BACKOFF, 0.5 * 2**attempt)
        attempt += 1
        run.connection = f"connection lost; retrying in {delay:.0f} s"
        on_change()
        await asyncio.sleep(delay)
