"""Batches through the gateway: the read API, requests and cancels, and the progress feed.

Reads come from the batch projections (`batches`, `batch_runs`, migration 0005). A request
is published as it is to ``batches.commands``: the gateway only checks that the body is a
JSON object with a usable batch id (assigning one when it has none); the batch scheduler
admits the spec and writes ``batch.rejected`` when it cannot run it. Both writes are audited
like experiment starts and cancels. :meth:`Batches.feed` serves ``/ws/batches/{batch_id}``
(:mod:`gateway.batch_feed`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pydantic
from websockets.http11 import Request, Response

from gateway import api
from gateway.batch_feed import BatchArchive, BatchFeed, decode_live_batch
from gateway.batch_reports import SUFFIX as REPORT_SUFFIX
from gateway.batch_reports import BatchReports
from gateway.commands import Commands, actor_of
from gateway.feeds import Session
from gateway.frames import QueryError, RunQuery
from gateway.guard import batch_cancel_route
from gateway.http import HttpRequest, error_response, json_response
from gateway.hub import Hub
from oriole.batch_events import (
    BATCH_ID_PATTERN,
    BatchCancel,
    BatchRequest,
    new_batch_id,
)
from oriole.kafka.codec import (
    MessageTooLarge,
    Outgoing,
    UndecodableMessage,
    encode,
    json_object,
)
from oriole.kafka.topics import Topics

log = logging.getLogger("oriole.gateway")

ROUTE = "/api/batches"
STATUSES = ("running", "finished", "rejected")
MAX_OFFSET = 1_000_000_000

_BATCH_ID = re.compile(BATCH_ID_PATTERN)
_BATCH_COLUMNS = (
    "batch_id", "name", "labels", "status", "stop_reason", "detail", "problems", "warnings",
    "planned", "launched", "finished", "succeeded", "failed", "in_flight", "spent_usd",
    "spent_tokens", "requested_by", "started_at", "finished_at",
)  # fmt: skip
_SELECT_BATCHES = f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches"
_SELECT_CELLS = "SELECT cells FROM batches WHERE batch_id = $1"
_SELECT_RUNS = """
    SELECT r.run_id, r.planned_run_id, r.cell, r.repetition, r.attempt, r.ended, r.success,
           r.failed, r.stop_reason, r.cost_usd, r.tokens, r.retry, r.launched_at, r.ended_at,
           e.status AS run_status
      FROM batch_runs r LEFT JOIN experiments e ON e.run_id = r.run_id
     WHERE r.batch_id = $1
     ORDER BY r.launched_at NULLS LAST, r.run_id"""
_BAD_ID = "must be 1-64 letters, digits, _ or -, starting with a letter or digit"


def valid_batch_id(batch_id: str) -> bool:
    return bool(_BATCH_ID.match(batch_id))


def batches_query(params: Mapping[str, list[str]]) -> api.Statement:
    """``GET /api/batches``: ``status``, ``limit``, ``offset``; newest first."""
    problems: list[tuple[str, str]] = []
    args: list[Any] = []
    where = ""
    status = api._one(params, "status", problems)
    if status is not None:
        if status not in STATUSES:
            problems.append(("status", f"must be one of {', '.join(STATUSES)}, got {status!r}"))
        args.append(status)
        where = " WHERE status = $1"
    limit = api._limit(params, problems)
    offset = 0
    raw = api._one(params, "offset", problems)
    if raw is not None:
        if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_OFFSET:
            problems.append(("offset", f"must be a whole number from 0 to {MAX_OFFSET}"))
        else:
            offset = int(raw)
    if problems:
        raise api.InvalidRequest(problems)
    args += [limit, offset]
    sql = (
        f"{_SELECT_BATCHES}{where} ORDER BY started_at DESC, batch_id DESC"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    return api.Statement(sql, tuple(args))


async def list_batches(pool: Any, params: Mapping[str, list[str]]) -> dict[str, Any]:
    query = batches_query(params)
    async with pool.acquire() as conn:
        return {"batches": await api._fetch(conn, query.sql, *query.args)}


async def get_batch(pool: Any, batch_id: str) -> dict[str, Any] | None:
    """The batch, its cells and its runs from one snapshot; None if unknown."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        rows = await api._fetch(conn, f"{_SELECT_BATCHES} WHERE batch_id = $1", batch_id)
        if not rows:
            return None
        cells = await api._fetch(conn, _SELECT_CELLS, batch_id)
        runs = await api._fetch(conn, _SELECT_RUNS, batch_id)
    return {"batch": rows[0], "cells": cells[0]["cells"], "runs": runs}


@dataclass(frozen=True, slots=True)
class Refused:
    """A batch request answered without publishing: the HTTP status, the problems and the
    audit record's detail."""

    status: int
    problems: api.InvalidRequest
    detail: str


def _request_message(body: bytes, topics: Topics, actor: str) -> tuple[str, Outgoing] | Refused:
    """The ``batch.request`` to publish for a body (with its batch id), or why not (in a
    thread: a spec may embed big mazes)."""
    try:
        spec = json_object(body)
    except UndecodableMessage as exc:
        problem = ("body", f"{exc}; expected a batch spec (a JSON object)")
        return Refused(400, api.InvalidRequest([problem]), "not a JSON object")
    batch_id = spec.get("batch_id")
    if batch_id is None:
        batch_id = spec["batch_id"] = new_batch_id()
    if not isinstance(batch_id, str) or not valid_batch_id(batch_id):
        problem = ("batch_id", f"{_BAD_ID}, got {batch_id!r}")
        return Refused(400, api.InvalidRequest([problem]), "not a batch id")
    try:
        request = BatchRequest(batch_id=batch_id, spec=spec, requested_by=actor)
    except pydantic.ValidationError as exc:  # not expected: the spec may be any object
        problem = ("body", str(exc.errors()[0].get("msg", exc)))
        return Refused(400, api.InvalidRequest([problem]), "not a batch request")
    try:
        return batch_id, encode(topics.batches_commands, request, batch_id)
    except MessageTooLarge as exc:
        return Refused(413, api.InvalidRequest([("body", str(exc))]), "too large")


class Batches:
    """The batch routes of one gateway; its hub is started and stopped with the gateway."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        pool: Any,
        commands: Commands,
        database: Callable[[Coroutine[Any, Any, Any]], Coroutine[Any, Any, Any]],
        client_id: str,
        chunk: int,
        unknown_grace: float,
        gap_deadline: float,
    ) -> None:
        self.topics = topics
        self.pool = pool
        self.commands = commands
        self.database = database
        self.hub = Hub(
            bootstrap_servers=bootstrap_servers,
            topic=topics.batches_events,
            client_id=f"{client_id}-batches",
            chunk=chunk,
            decode=decode_live_batch,
        )
        self.reports = BatchReports(pool, database)
        self.feeds = BatchFeed(
            self.hub,
            BatchArchive(pool),
            unknown_grace=unknown_grace,
            gap_deadline=gap_deadline,
        )

    async def start(self) -> None:
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()

    @staticmethod
    def handles(path: str) -> bool:
        return path == ROUTE or path.startswith(ROUTE + "/")

    # -- HTTP ------------------------------------------------------------------------------

    async def write(self, request: Request, path: str) -> Response | None:
        """The POST routes, and 405 for methods a batch route does not take; None: a GET
        (answered by :meth:`read` through the gateway's read API)."""
        method = request.method
        if path == ROUTE:
            if method == "POST":
                return await self.request_batch(request)
            allow = "GET, POST"
        elif (batch_id := batch_cancel_route(path)) is not None:
            if method == "POST":
                return await self.cancel(request, batch_id)
            allow = "POST"
        else:
            allow = "GET"
        if method == "GET" and allow != "POST":
            return None
        return error_response(405, f"{method} is not allowed here", {"Allow": allow})

    async def read(self, path: str, params: Mapping[str, list[str]]) -> Response:
        """``GET /api/batches``, ``GET /api/batches/{batch_id}`` and its ``/report``.

        Raises what the gateway's read API answers itself (400 problems, database down).
        """
        if path == ROUTE:
            return json_response(200, await self.database(list_batches(self.pool, params)))
        batch_id = unquote(path[len(ROUTE) + 1 :])
        if batch_id.endswith(REPORT_SUFFIX):
            batch_id = batch_id[: -len(REPORT_SUFFIX)]
            if batch_id and "/" not in batch_id and valid_batch_id(batch_id):
                return await self.reports.answer(batch_id, params)
            return error_response(404, f"unknown batch {batch_id!r}")
        found = None
        if batch_id and "/" not in batch_id and valid_batch_id(batch_id):
            found = await self.database(get_batch(self.pool, batch_id))
        if found is None:
            return error_response(404, f"unknown batch {batch_id!r}")
        return json_response(200, found)

    async def request_batch(self, request: Request) -> Response:
        """``POST /api/batches``: publish the spec as a ``batch.request``."""
        body = request.body if isinstance(request, HttpRequest) else b""
        verdict = await asyncio.to_thread(_request_message, body, self.topics, actor_of(request))
        if isinstance(verdict, Refused):
            answer = json_response(verdict.status, verdict.problems.document())
            await self.commands.audit(request, "batch.request", None, answer, verdict.detail)
            return answer
        batch_id, message = verdict
        if not await self.commands.publish(message, "the request of batch"):
            answer = error_response(503, "Kafka is unavailable; the batch was not requested")
        else:
            log.info("batch %s requested through the gateway", batch_id)
            answer = json_response(202, {"batch_id": batch_id})
        await self.commands.audit(request, "batch.request", None, answer, batch_id=batch_id)
        return answer

    async def cancel(self, request: Request, batch_id: str) -> Response:
        """``POST /api/batches/{batch_id}/cancel``: a ``batch.cancel`` for the scheduler."""
        if not valid_batch_id(batch_id):
            answer = error_response(400, f"not a batch id: {_BAD_ID}")
            await self.commands.audit(request, "batch.cancel", None, answer, "not a batch id")
            return answer
        cancel = BatchCancel(
            batch_id=batch_id,
            reason="cancelled through the gateway",
            requested_by=actor_of(request),
        )
        out = encode(self.topics.batches_commands, cancel, batch_id)
        if not await self.commands.publish(out, "the cancel of batch"):
            answer = error_response(503, "Kafka is unavailable; the batch was not cancelled")
        else:
            answer = json_response(202, {"batch_id": batch_id, "cancel": "requested"})
        await self.commands.audit(request, "batch.cancel", None, answer, batch_id=batch_id)
        return answer

    # -- websocket -------------------------------------------------------------------------

    def feed(self, session: Session, batch_id: str, query: RunQuery) -> Coroutine[Any, Any, None]:
        """The feed of ``/ws/batches/{batch_id}?from_seq=N``; :class:`QueryError` (4400)
        for a bad id or query, raised before anything is sent."""
        if not valid_batch_id(batch_id):
            raise QueryError(f"{batch_id!r} is not a batch id")
        if query.replay is not None:
            raise QueryError("a batch feed has no replay")
        return self.feeds.run(session, batch_id, query.from_seq)
