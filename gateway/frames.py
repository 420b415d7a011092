"""Websocket frames and the pure decisions behind the feeds (no I/O here).

Frames are built as UTF-8 bytes once and sent as text frames, so an event that goes to a
thousand clients is serialised once. An event frame embeds the run event exactly as it was
on Kafka (the record's bytes), or as the archive gives it back for archived events.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from oriole.kafka.codec import UndecodableMessage, json_object
from projections.rows import status_of

#: Close codes of docs/gateway.md (4xxx are application codes).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL = 1011
CLOSE_UNKNOWN_RUN = 4004
CLOSE_BAD_QUERY = 4400
CLOSE_LAGGING = 4008

#: Replay speeds accepted besides ``max``.
MIN_SPEED = 1.0
MAX_SPEED = 1000.0

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_EVENT_PREFIX = b'{"kind":"event","event":'
_BATCH_EVENT_PREFIX = b'{"kind":"batch_event","event":'


def dumps(document: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of a frame or an HTTP body."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def event_frame(event_json: bytes) -> bytes:
    """``{"kind": "event", "event": ...}`` around an already-encoded run event."""
    return _EVENT_PREFIX + event_json.strip() + b"}"


def batch_event_frame(event_json: bytes) -> bytes:
    """``{"kind": "batch_event", "event": ...}`` around an already-encoded batch event."""
    return _BATCH_EVENT_PREFIX + event_json.strip() + b"}"


def caught_up_frame(seq: int) -> bytes:
    return dumps({"kind": "caught_up", "seq": seq})


def finished_frame(seq: int) -> bytes:
    return dumps({"kind": "finished", "seq": seq})


def lagging_frame(queue_size: int) -> bytes:
    return dumps(
        {
            "kind": "lagging",
            "detail": (
                f"more than {queue_size} frames behind; reconnect with after_seq set to the "
                "last seq received to resume exactly"
            ),
        }
    )


def error_frame(detail: str) -> bytes:
    return dumps({"kind": "error", "detail": detail})


# --- live events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A run event read from Kafka, decoded once and shared by every subscriber."""

    run_id: str
    seq: int
    type: str
    #: Event time as a POSIX timestamp (for the delivery latency metric).
    timestamp: float
    #: The ``event`` frame, ready to send.
    frame: bytes
    #: The all-runs ``run`` frame, or None for types that feed does not carry.
    summary: bytes | None

    @property
    def finished(self) -> bool:
        return self.type == "run.finished"


#: Run ids a gateway remembers having seen live or started (about 10 MB at most).
RECENT_RUNS = 65_536


class Undecodable(ValueError):
    """A record on the run events topic that is not a run event envelope."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields every logged event has (a run's or a batch's), and the whole document."""

    key: str
    seq: int
    type: str
    time: str
    timestamp: float
    data: dict[str, Any]
    raw: bytes


def read_envelope(value: bytes | None, key_field: str) -> Envelope:
    """Check only the envelope (``key_field`` is ``run_id`` or ``batch_id``), not the
    payload's schema, so an event type added later still reaches the clients that know it."""
    if not value:
        raise Undecodable("empty record")
    try:
        data = json_object(value)
    except UndecodableMessage as exc:
        raise Undecodable(str(exc)) from None
    key, seq, kind, time = (data.get(k) for k in (key_field, "seq", "type", "time"))
    if not isinstance(key, str) or not key:
        raise Undecodable(f"no {key_field}")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise Undecodable("no valid seq")
    if not isinstance(kind, str) or not isinstance(time, str):
        raise Undecodable("no type or time")
    try:
        timestamp = datetime.fromisoformat(time).timestamp()
    except ValueError:
        raise Undecodable(f"bad time {time!r}") from None
    return Envelope(key, seq, kind, time, timestamp, data, value)


def decode_live(value: bytes | None) -> LiveEvent:
    """The envelope fields of a run event record, its frame and its all-runs summary."""
    envelope = read_envelope(value, "run_id")
    run_id, seq, kind, time = envelope.key, envelope.seq, envelope.type, envelope.time
    timestamp, data = envelope.timestamp, envelope.data
    payload = data.get("payload")
    summary = run_summary(kind, payload if isinstance(payload, dict) else {}, time)
    summary_frame = (
        None
        if summary is None
        else dumps(
            {
                "kind": "run",
                "run_id": run_id,
                "type": kind,
                "seq": seq,
                "time": time,
                "summary": summary,
            }
        )
    )
    return LiveEvent(run_id, seq, kind, timestamp, event_frame(envelope.raw), summary_frame)


class RecentRuns:
    """Run ids this gateway knows are on their way though maybe not archived yet: seen live
    by the hub (its ``decode``) or started through ``POST /api/experiments``. Bounded: the
    oldest are forgotten first (by then the projector has archived them)."""

    def __init__(self, size: int = RECENT_RUNS) -> None:
        self.size = size
        self._ids: dict[str, None] = {}

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def note(self, run_id: str) -> None:
        ids = self._ids
        if run_id in ids:
            return
        ids[run_id] = None
        if len(ids) > self.size:
            del ids[next(iter(ids))]

    def decode(self, value: bytes | None) -> LiveEvent:
        """The hub's decoder: :func:`decode_live`, noting the event's run."""
        event = decode_live(value)
        self.note(event.run_id)
        return event

    def note_started(self, status: int, body: bytes | bytearray) -> None:
        """Note the run of an accepted ``POST /api/experiments`` (202 ``{"run_id": ...}``)."""
        if status != 202:
            return
        try:
            run_id = json.loads(body).get("run_id")
        except (ValueError, AttributeError):
            return
        if isinstance(run_id, str):
            self.note(run_id)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _point(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict) and "x" in value and "y" in value:
        return {"x": value["x"], "y": value["y"]}
    return None


def run_summary(kind: str, payload: Mapping[str, Any], time: str) -> dict[str, Any] | None:
    """What the all-runs feed says about an event, with ``Experiment`` field names.

    A client can merge a summary into its experiment list row as is. Types other than
    run.started, action.completed and run.finished are not carried (None).
    """
    if kind == "run.started":
        spec = _object(payload.get("spec"))
        agent, prompt, maze = (_object(spec.get(k)) for k in ("agent", "prompt", "maze"))
        start = _point(spec.get("start"))
        fork = _object(spec.get("fork_of"))
        fork_of = {"run_id": fork.get("run_id"), "after_step": fork.get("after_step")}
        return {
            "status": "running",
            "provider": agent.get("provider"),
            "model_name": agent.get("model"),
            "prompt_version": prompt.get("version"),
            "maze_name": maze.get("name"),
            "comment": spec.get("comment"),
            "labels": spec.get("labels") or {},
            "rerun_of": spec.get("rerun_of"),
            # A fork's parent and step: as in the spec, and under the Experiment names.
            "fork_of": fork_of if fork else None,
            "forked_from": fork.get("run_id"),
            "fork_step": fork.get("after_step"),
            "start": start,
            "position": start,
            "footsteps": 0,
            "actions": 0,
            "turns": 0,
            "started_at": time,
        }
    if kind == "action.completed":
        return {
            "footsteps": payload.get("footsteps"),
            "actions": payload.get("step"),
            "turns": payload.get("turn"),
            "position": _point(payload.get("to")),
            "last_action_at": time,
        }
    if kind == "run.finished":
        return {
            "status": status_of(payload.get("stop_reason"), payload.get("success")),
            "stop_reason": payload.get("stop_reason"),
            "success": payload.get("success"),
            "goal_seen": payload.get("goal_seen"),
            "goal_reached": payload.get("goal_reached"),
            "footsteps": payload.get("footsteps"),
            "actions": payload.get("actions"),
            "turns": payload.get("turns"),
            "position": _point(payload.get("position")),
            "input_tokens": payload.get("input_tokens"),
            "output_tokens": payload.get("output_tokens"),
            "cost_usd": payload.get("cost_usd"),
            "completed_at": time,
        }
    return None


# --- the seam between archive and live ------------------------------------------------------


Verdict = Literal["skip", "send", "gap"]


class Seam:
    """Which events a one-run feed may send: every seq once, in order, gaps detected.

    ``last`` is the last seq sent (or the client's ``from_seq``). A live event at or below
    it was already sent from the archive; one beyond ``last + 1`` means events in between
    have not reached this feed yet and must come from the archive first.
    """

    def __init__(self, last: int) -> None:
        self.last = last

    def verdict(self, seq: int) -> Verdict:
        if seq <= self.last:
            return "skip"
        if seq == self.last + 1:
            return "send"
        return "gap"

    def advance(self, seq: int) -> None:
        if seq != self.last + 1:
            raise ValueError(f"seq {seq} does not follow {self.last}")
        self.last = seq

    def contiguous(self, seqs: Sequence[int]) -> int:
        """How many of ``seqs`` (ascending) extend ``last`` without a hole."""
        expected = self.last + 1
        count = 0
        for seq in seqs:
            if seq < expected:
                count += 1  # already sent: harmless, the caller skips it
                continue
            if seq != expected:
                break
            expected += 1
            count += 1
        return count


def replay_offset(first: float, current: float, speed: float) -> float:
    """Seconds after the replay's start at which an event recorded at ``current`` is due."""
    if math.isinf(speed):
        return 0.0
    return max(0.0, current - first) / speed


# --- requests -----------------------------------------------------------------------------


class QueryError(ValueError):
    """A websocket query the gateway cannot serve (close code 4400)."""


@dataclass(frozen=True, slots=True)
class RunQuery:
    """``/ws/runs/{run_id}?after_seq=N&replay=SPEED`` (and ``/ws/batches/{id}?after_seq=N``)."""

    #: Send the events with a seq above this one: the last seq the client has (0: all).
    #: The query names it ``after_seq``, or ``from_seq``, its first name, with the same meaning.
    from_seq: int = 0
    #: None for the live feed; a factor (``math.inf`` for ``max``) for a replay.
    replay: float | None = None


#: The resume parameter and its older name; both mean "the events after seq N".
RESUME_PARAMETERS = ("after_seq", "from_seq")


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise QueryError(f"{name} given {len(values)} times")
    return values[0]


def _resume_point(params: Mapping[str, list[str]]) -> int:
    """The seq a client resumes after: ``after_seq`` or ``from_seq``, never both (which
    would leave a reader guessing which one the gateway used)."""
    given = [
        (name, raw) for name in RESUME_PARAMETERS if (raw := _single(params, name)) is not None
    ]
    if not given:
        return 0
    if len(given) > 1:
        raise QueryError(
            "give after_seq or from_seq, not both (they mean the same: the events after seq N)"
        )
    name, raw = given[0]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise QueryError(f"{name} must be a whole number >= 0, got {raw!r}")
    return int(raw)


def parse_run_query(params: Mapping[str, list[str]]) -> RunQuery:
    """Validate ``after_seq`` (or ``from_seq``) and ``replay``; other parameters (``token``)
    are ignored."""
    from_seq = _resume_point(params)
    replay: float | None = None
    raw = _single(params, "replay")
    if raw is not None:
        if raw.lower() == "max":
            replay = math.inf
        else:
            try:
                replay = float(raw)
            except ValueError:
                replay = math.nan
            if not MIN_SPEED <= replay <= MAX_SPEED:  # also refuses nan
                raise QueryError(
                    f"replay must be a speed factor from {MIN_SPEED:g} to {MAX_SPEED:g} or "
                    f"'max', got {raw!r}"
                )
    return RunQuery(from_seq, replay)


def valid_run_id(run_id: str) -> bool:
    return bool(_RUN_ID.match(run_id))


@dataclass(frozen=True, slots=True)
class Target:
    """A request path split into its route and query (never logged with the query)."""

    path: str
    params: dict[str, list[str]]


def split_target(target: str) -> Target:
    parts = urlsplit(target)
    return Target(parts.path or "/", parse_qs(parts.query, keep_blank_values=True))


def ws_route(path: str) -> tuple[Literal["runs", "run", "batch"], str] | None:
    """``("runs", "")`` for ``/ws/runs``, ``("run", id)`` for ``/ws/runs/{id}``,
    ``("batch", id)`` for ``/ws/batches/{id}``, else None."""
    if path in ("/ws/runs", "/ws/runs/"):
        return "runs", ""
    kinds: tuple[tuple[str, Literal["run", "batch"]], ...] = (
        ("/ws/runs/", "run"),
        ("/ws/batches/", "batch"),
    )
    for prefix, kind in kinds:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if rest and "/" not in rest:
                return kind, unquote(rest)
    return None
