"""``GET /api/batches/{batch_id}/report``: the comparison report of a batch, as JSON.

The same document as ``oriole report BATCH --json`` (docs/reports.md). A viewer refreshes it
each time a run of the batch ends, so the gateway keeps the last report of each query and
builds a new one only when the batch's log has moved on (its ``last_seq``) or another of its
runs has been projected as finished (the two topics are projected independently); one is
built at a time, in a thread, so a large batch never stalls the feeds.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from websockets.http11 import Response

from gateway import api
from gateway.http import error_response, json_response
from oriole.comparison.report import Selection, build_report
from oriole.errors import ValidationError
from projections.report_source import ReportRuns, SelectionTooLarge, load_report_runs

SUFFIX = "/report"
#: Reports kept (one per batch and query): enough for every batch a team watches at once.
CACHE_SIZE = 32
MAX_SEED = 2**32 - 1

_VERSION = """
    SELECT b.last_seq,
           (SELECT count(*) FROM batch_runs r JOIN experiments e ON e.run_id = r.run_id
             WHERE r.batch_id = b.batch_id AND e.status <> 'running') AS finished
      FROM batches b WHERE b.batch_id = $1"""
Query = tuple[str, tuple[str, ...], str | None, int]


def report_query(batch_id: str, params: Mapping[str, list[str]]) -> Query:
    """``by``, ``baseline`` and ``seed`` read and checked; every problem in one 400."""
    problems: list[tuple[str, str]] = []
    by = api._one(params, "by", problems)
    baseline = api._one(params, "baseline", problems)
    raw_seed = api._one(params, "seed", problems)
    seed = 0
    if raw_seed is not None:
        if not raw_seed.isascii() or not raw_seed.isdigit() or int(raw_seed) > MAX_SEED:
            problems.append(("seed", f"must be a whole number from 0 to {MAX_SEED}"))
        else:
            seed = int(raw_seed)
    if problems:
        raise api.InvalidRequest(problems)
    factors = tuple(part.strip() for part in (by or "").split(",") if part.strip())
    return batch_id, factors, baseline, seed


class BatchReports:
    def __init__(
        self,
        pool: Any,
        database: Callable[[Coroutine[Any, Any, Any]], Coroutine[Any, Any, Any]],
    ) -> None:
        self.pool = pool
        self.database = database
        self._cache: OrderedDict[Query, tuple[tuple[int, int], dict[str, Any]]] = OrderedDict()
        self._building = asyncio.Lock()

    async def _version(self, batch_id: str) -> tuple[int, int] | None:
        """What the report depends on: the batch log's position and its finished runs."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_VERSION, batch_id)
        return None if row is None else (int(row["last_seq"]), int(row["finished"]))

    async def _runs(self, batch_id: str) -> ReportRuns:
        async with self.pool.acquire() as conn:
            return await load_report_runs(conn, batch_id=batch_id)

    async def answer(self, batch_id: str, params: Mapping[str, list[str]]) -> Response:
        query = report_query(batch_id, params)
        version = await self.database(self._version(batch_id))
        if version is None:
            return error_response(404, f"unknown batch {batch_id!r}")
        async with self._building:
            cached = self._cache.get(query)
            if cached is not None and cached[0] == version:
                self._cache.move_to_end(query)
                return json_response(200, cached[1])
            try:
                runs = await self.database(self._runs(batch_id))
            except SelectionTooLarge as exc:
                return error_response(413, str(exc))
            _, by, baseline, seed = query
            selection = Selection(batch_id=batch_id, by=by, baseline=baseline, seed=seed)
            try:
                report = await asyncio.to_thread(_build, runs, selection)
            except ValidationError as exc:
                raise api.InvalidRequest([(exc.field, exc.reason)]) from exc
            self._cache[query] = (version, report)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return json_response(200, report)


def _build(runs: ReportRuns, selection: Selection) -> dict[str, Any]:
    return build_report(runs.records(), selection, running=runs.running)
