"""The read API over the projections: experiments, one experiment with its maze, views.

Every statement is parameterised; the only names put into SQL text come from the fixed view
whitelist below. Query-string parsing is pure (``*_query`` functions raise
:class:`InvalidRequest`), the I/O is a few statements per request on the shared pool.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

STATUSES = ("running", "succeeded", "failed", "cancelled", "stopped")

_EXPERIMENT_COLUMNS = (
    "run_id", "provider", "model_name", "prompt_version", "maze_name", "maze_hash", "comment",
    "labels", "status", "stop_reason", "stop_detail", "success", "goal_seen", "goal_reached",
    "footsteps", "actions", "turns", "model_calls", "input_tokens", "output_tokens", "cost_usd",
    "started_at", "last_action_at", "completed_at", "duration_seconds", "position_x",
    "position_y", "start_x", "start_y", "model_config", "rerun_of", "error_class",
    "error_message", "forked_from", "fork_step",
)  # fmt: skip
_SELECT_EXPERIMENTS = f"SELECT {', '.join(_EXPERIMENT_COLUMNS)} FROM experiments"
_SELECT_MAZE = """
    SELECT name, width, height, grid_data, goal_x, goal_y, see_through_walls
      FROM mazes WHERE content_hash = $1"""
_SELECT_ACTIONS = """
    SELECT step, turn, action_type, reasoning, assistant_message, from_x, from_y, to_x, to_y,
           success, tiles_seen, footsteps, message, input_tokens, output_tokens, inference_ms,
           completed_at
      FROM agent_actions WHERE run_id = $1 ORDER BY step"""
#: The forks of a run (a run forked more often is listed with ``?forked_from=``, paged).
_SELECT_CHILDREN = f"""
    SELECT run_id, fork_step, provider, model_name, status, success, started_at
      FROM experiments WHERE forked_from = $1
     ORDER BY started_at, run_id LIMIT {MAX_LIMIT}"""


@dataclass(frozen=True, slots=True)
class View:
    """An analysis view the API may read: its SQL name, order, and run_id filter."""

    relation: str
    order_by: str
    has_run_id: bool


VIEWS: Mapping[str, View] = {
    "experiment_summary": View("v_experiment_summary", "started_at DESC, run_id", True),
    "model_performance": View("v_model_performance", "provider, model_name", False),
    "prompt_variant_analysis": View(
        "v_prompt_variant_analysis", "prompt_version, provider, model_name", False
    ),
    "turn_statistics": View("v_turn_statistics", "run_id, turn", True),
    "action_patterns": View("v_action_patterns", "run_id", True),
    "cost_analysis": View("v_cost_analysis", "started_at DESC, run_id", True),
    "daily_summary": View("v_daily_summary", "day DESC", False),
    "batch_monitor": View("v_batch_monitor", "started_at DESC, run_id", True),
}


class InvalidRequest(ValueError):
    """A request the API refuses (HTTP 400): every ``(field, reason)`` found."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))
        self.problems = tuple(problems)

    def document(self) -> dict[str, Any]:
        return {"problems": [{"field": f, "reason": r} for f, r in self.problems]}


# --- query strings (pure) -------------------------------------------------------------------


def _one(params: Mapping[str, list[str]], name: str, problems: list[tuple[str, str]]) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        problems.append((name, f"given {len(values)} times; give it once"))
    return values[-1]


def _limit(params: Mapping[str, list[str]], problems: list[tuple[str, str]]) -> int:
    raw = _one(params, "limit", problems)
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        problems.append(("limit", f"must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}"))
        return DEFAULT_LIMIT
    return int(raw)


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching ``text`` literally at the start (``\\`` is the escape)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def parse_time(raw: str) -> datetime:
    """An ISO 8601 time; a time without zone is taken as UTC."""
    value = datetime.fromisoformat(raw.strip().replace(" ", "+") if "T" in raw else raw.strip())
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    args: tuple[Any, ...]


def experiments_query(params: Mapping[str, list[str]]) -> Statement:
    """``GET /api/experiments`` filters as one parameterised statement (newest first)."""
    problems: list[tuple[str, str]] = []
    conditions: list[str] = []
    args: list[Any] = []

    def add(condition: str, value: Any) -> None:
        args.append(value)
        conditions.append(condition.replace("?", f"${len(args)}"))

    status = _one(params, "status", problems)
    if status is not None:
        if status not in STATUSES:
            problems.append(("status", f"must be one of {', '.join(STATUSES)}, got {status!r}"))
        add("status = ?", status)
    for name, column in (
        ("provider", "provider"),
        ("model", "model_name"),
        ("prompt_version", "prompt_version"),
        ("forked_from", "forked_from"),
    ):
        value = _one(params, name, problems)
        if value is not None:
            add(f"{column} = ?", value)
    comment = _one(params, "comment", problems)
    if comment is not None:
        add("comment LIKE ? ESCAPE '\\'", _like_prefix(comment))
    for label in params.get("label", []):
        key, sep, value = label.partition(":")
        if not sep or not key:
            problems.append(("label", f"must be key:value, got {label!r}"))
            continue
        add("labels @> ?::jsonb", json.dumps({key: value}))
    before = _one(params, "before", problems)
    if before is not None:
        try:
            add("started_at < ?", parse_time(before))
        except ValueError:
            problems.append(("before", f"must be an ISO 8601 time, got {before!r}"))
    limit = _limit(params, problems)
    if problems:
        raise InvalidRequest(problems)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    args.append(limit)
    sql = f"{_SELECT_EXPERIMENTS}{where} ORDER BY started_at DESC, run_id DESC LIMIT ${len(args)}"
    return Statement(sql, tuple(args))


def view_query(name: str, params: Mapping[str, list[str]]) -> Statement | None:
    """``GET /api/views/{name}``; None for a view that is not in the whitelist."""
    view = VIEWS.get(name)
    if view is None:
        return None
    problems: list[tuple[str, str]] = []
    args: list[Any] = []
    where = ""
    run_id = _one(params, "run_id", problems)
    if run_id is not None:
        if view.has_run_id:
            args.append(run_id)
            where = " WHERE run_id = $1"
        else:
            problems.append(("run_id", f"view {name} has no run_id column"))
    limit = _limit(params, problems)
    if problems:
        raise InvalidRequest(problems)
    args.append(limit)
    sql = f"SELECT * FROM {view.relation}{where} ORDER BY {view.order_by} LIMIT ${len(args)}"
    return Statement(sql, tuple(args))


# --- rows to JSON (pure) --------------------------------------------------------------------


def jsonable(value: Any, type_name: str = "") -> Any:
    """A PostgreSQL value as JSON: numbers stay numbers, times become ISO 8601 text.

    ``type_name`` is the column's PostgreSQL type: json/jsonb text is decoded (asyncpg
    returns it as text unless a codec is installed, and the pool is shared).
    """
    if value is None:
        return None
    if type_name in _JSON:
        return json.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


_JSON = frozenset({"json", "jsonb"})


def record_dict(record: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    return {name: jsonable(value, types.get(name, "")) for name, value in record.items()}


def _xy(row: Mapping[str, Any], x: str, y: str) -> dict[str, Any] | None:
    if row.get(x) is None or row.get(y) is None:
        return None
    return {"x": row[x], "y": row[y]}


def experiment_document(row: dict[str, Any]) -> dict[str, Any]:
    """An ``experiments`` row shaped as docs/gateway.md's ``Experiment``."""
    document = {k: v for k, v in row.items() if k not in _FLAT_POINTS}
    document["position"] = _xy(row, "position_x", "position_y")
    document["start"] = _xy(row, "start_x", "start_y")
    return document


_FLAT_POINTS = frozenset({"position_x", "position_y", "start_x", "start_y"})


def maze_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "width": row["width"],
        "height": row["height"],
        "grid_data": row["grid_data"],
        "goal": {"x": row["goal_x"], "y": row["goal_y"]},
        "see_through_walls": row["see_through_walls"],
    }


def action_document(row: Mapping[str, Any]) -> dict[str, Any]:
    document = {k: v for k, v in row.items() if k not in ("from_x", "from_y", "to_x", "to_y")}
    document["from"] = _xy(row, "from_x", "from_y")
    document["to"] = _xy(row, "to_x", "to_y")
    return document


# --- I/O ------------------------------------------------------------------------------------


async def _fetch(conn: Any, statement: str, *args: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; JSON columns decoded whatever the connection's codecs."""
    prepared = await conn.prepare(statement)
    types = {attr.name: attr.type.name for attr in prepared.get_attributes()}
    return [record_dict(record, types) for record in await prepared.fetch(*args)]


async def list_experiments(pool: Any, params: Mapping[str, list[str]]) -> dict[str, Any]:
    query = experiments_query(params)
    async with pool.acquire() as conn:
        rows = await _fetch(conn, query.sql, *query.args)
    return {"experiments": [experiment_document(row) for row in rows]}


async def get_experiment(pool: Any, run_id: str) -> dict[str, Any] | None:
    """The experiment, its maze, its actions and its forks from one snapshot; None if
    unknown."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        rows = await _fetch(conn, f"{_SELECT_EXPERIMENTS} WHERE run_id = $1", run_id)
        if not rows:
            return None
        experiment = experiment_document(rows[0])
        mazes = await _fetch(conn, _SELECT_MAZE, experiment["maze_hash"])
        actions = await _fetch(conn, _SELECT_ACTIONS, run_id)
        children = await _fetch(conn, _SELECT_CHILDREN, run_id)
    return {
        "experiment": experiment,
        "maze": maze_document(mazes[0]) if mazes else None,
        "actions": [action_document(row) for row in actions],
        "children": children,
    }


async def read_view(pool: Any, name: str, params: Mapping[str, list[str]]) -> dict[str, Any] | None:
    query = view_query(name, params)
    if query is None:
        return None
    async with pool.acquire() as conn:
        rows = await _fetch(conn, query.sql, *query.args)
    return {"view": name, "rows": rows}
