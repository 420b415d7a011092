"""The archive at scale: insert rate, view and API latency, and bytes per run at 1M and 5M
events (opt-in: it takes minutes and a few GB of disk).

A few dozen runs are played in process (built-in agents on generated mazes, a quarter of
them "LLM-like": a model call per turn, reasoning text on every action), then replicated with
new run ids and run.started times spread over the last twelve months, one month partition
each, and stored in a scratch database through the projector's own write path
(:func:`projections.store.store_batch` with the projector's cache of run keys, batches of
2,000 events, 40 runs interleaved as a projector sees concurrent runs). Every fifth batch
the same number of rows is COPYed raw into a plain table with the archive's columns and no
keys (the baseline). At each size, after ``VACUUM ANALYZE`` (what autovacuum does after a
bulk load), each analysis view and ``GET /api/experiments`` are timed through the read API's
own functions (p50/p95 over ``ORIOLE_BENCH_ARCHIVE_REQUESTS`` requests, default 30), and
the tables' sizes divided by the runs. Sizes: ``ORIOLE_BENCH_ARCHIVE_SIZES`` (events,
comma-separated, default ``1000000,5000000``; e.g. ``200000`` for a quick run). The
server is ``ORIOLE_BENCH_DATABASE_URL`` as for the projections suite.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.core import play_local
from bench.figures import compared
from bench.projections import _server_dsn
from gateway.api import VIEWS, get_experiment, list_experiments, read_view
from oriole import generators
from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import RunEvent
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.intents import ModelCall
from oriole.kafka.codec import decode_run_event, encode
from oriole.local_run import LocalRun, ManualClock
from projections.migrate import migrate, prepare_partitions
from projections.partitions import month_of, month_start, next_month
from projections.prune import prune_archive
from projections.rows import Row, archive_row
from projections.run_keys import RunKeys
from projections.store import ARCHIVE_ROW_COLUMNS, store_batch

BATCH = 2000
CONCURRENT = 40
RAW_EVERY = 5
MONTHS = 12
T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: Built-in agents on 61x61 mazes: (agent, footsteps limit); LLM-like runs come on top.
BASE_RUNS = [("random", 400), ("frontier", 600), ("wall-follower", 600)] * 6
LLM_RUNS = 6
REASONING = (
    "The corridor to the east is still unexplored and the goal was not in sight from the "
    "last junction, so I keep the wall on my right and move on; if this is a dead end I "
    "will recall the map and go back to the fork two turns ago."
)
TABLES = ("run_events", "agent_actions", "model_calls", "experiments", "mazes")


def _sizes() -> list[int]:
    raw = os.environ.get("ORIOLE_BENCH_ARCHIVE_SIZES", "1000000,5000000")
    return sorted(int(part) for part in raw.split(",") if part.strip())


def _requests() -> int:
    return max(30, int(os.environ.get("ORIOLE_BENCH_ARCHIVE_REQUESTS", "30")))


def _request(run_id: str, agent: str, footsteps: int, seed: int) -> tuple[ExperimentStart, Any]:
    maze = generators.generate("backtracker", 61, 61, seed=seed, name=f"scale-{seed}")
    request = ExperimentStart(
        run_id=run_id,
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model=agent, seed=seed),
        limits=RunLimits(max_footsteps=footsteps, max_actions=4 * footsteps),
        comment=f"scale {agent}",
        labels={"suite": "archive_scale", "agent": agent},
    )
    return request, maze


async def _llm_like(index: int) -> list[RunEvent]:
    """A frontier agent's moves dressed as an LLM's: two actions a turn, one model call each
    turn, reasoning and tool arguments on every action (the size LLM runs have)."""
    request, maze = _request(f"base-llm-{index}", "frontier", 300, 100 + index)
    request = request.model_copy(
        update={"agent": AgentSpec(provider="ollama", model=f"qwen2.5:{7 + index % 2 * 7}b")}
    )
    clock = ManualClock(T0)
    run = LocalRun(request, maze, clock=clock)
    agent = create_builtin(AgentSpec(provider="builtin", model="frontier", seed=index))
    step = 0
    while not run.state.is_finished:
        decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
        clock.advance(1.5)
        turn = step // 2 + 1
        call = None
        if step % 2 == 0:
            call = ModelCall(
                call_id=f"call-{turn}",
                provider="ollama",
                model=request.agent.model,
                input_tokens=1800 + 40 * turn,
                output_tokens=120,
                cost_usd=0.0,
                duration_ms=1400.0,
                prompt_eval_ms=300.0,
                eval_ms=1100.0,
                tokens_per_second=95.0,
                done_reason="stop",
            )
        intent = decision.to_intent(request.run_id, run.state.seq, run.state.turn)
        run.send(
            intent.model_copy(
                update={
                    "turn": max(turn, run.state.turn),
                    "model_call": call,
                    "reasoning": REASONING,
                    "tool_name": intent.action.value,
                    "arguments": {},
                }
            )
        )
        step += 1
    return run.events


async def _base_runs() -> list[list[RunEvent]]:
    runs = []
    for i, (agent, footsteps) in enumerate(BASE_RUNS):
        request, maze = _request(f"base-{i}", agent, footsteps, i + 1)
        runs.append(await play_local(request, maze, ManualClock(T0), tick_seconds=0.5))
    runs += [await _llm_like(i) for i in range(LLM_RUNS)]
    return runs


def _replica(base: list[RunEvent], run_id: str, started: datetime) -> list[RunEvent]:
    """``base`` as another run: new run id, event ids and times (the payloads as they were)."""
    shift = started - base[0].time
    return [
        event.model_copy(
            update={"run_id": run_id, "event_id": uuid.uuid4(), "time": event.time + shift}
        )
        for event in base
    ]


class Archive:
    """Replicas of the base runs, in start order, ``CONCURRENT`` at a time interleaved."""

    def __init__(self, bases: list[list[RunEvent]], first_start: datetime, events: int) -> None:
        self.bases = bases
        self.first_start = first_start
        per_run = sum(len(run) for run in bases) / len(bases)
        # Spread over the twelve months whatever the size, so every partition is used.
        self.spacing = timedelta(days=MONTHS * 30.4) / (events / per_run)
        self.runs = 0
        self.run_ids: list[str] = []

    def events(self) -> Iterator[RunEvent]:
        while True:
            group = []
            for _ in range(CONCURRENT):
                base = self.bases[self.runs % len(self.bases)]
                run_id = f"scale-{self.runs:06d}"
                started = self.first_start + self.spacing * self.runs
                group.append(_replica(base, run_id, started))
                self.run_ids.append(run_id)
                self.runs += 1
            for i in range(max(len(run) for run in group)):
                yield from (run[i] for run in group if i < len(run))


async def _fill(conn: Any, events: Iterator[RunEvent], count: int, keys: RunKeys) -> dict[str, Any]:
    """Store ``count`` events as the projector does; the rate beside raw COPY of as many rows."""
    seconds = raw_seconds = 0.0
    stored = projected = raw_rows = sampled_rows = 0
    batch_no = 0
    while stored < count:
        batch = [next(events) for _ in range(min(BATCH, count - stored))]
        started = time.perf_counter()
        result = await store_batch(conn, batch, run_keys=keys)
        seconds += time.perf_counter() - started
        stored += len(batch)
        projected += result.projected_rows
        batch_no += 1
        if batch_no % RAW_EVERY:
            continue
        records = _raw_rows(batch, len(batch) + result.projected_rows)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "raw_copy", records=records, columns=ARCHIVE_ROW_COLUMNS
            )
        raw_seconds += time.perf_counter() - started
        raw_rows += len(records)
        sampled_rows += len(batch) + result.projected_rows
        await conn.execute("TRUNCATE raw_copy")
    rows_per_second = round((stored + projected) / seconds)
    return {
        "events": stored,
        "projection_rows": projected,
        "seconds": round(seconds, 1),
        "events_per_second": round(stored / seconds),
        "rows_per_second": rows_per_second,
        "vs_raw_copy": compared(rows_per_second, round(raw_rows / raw_seconds), "rows/s"),
    }


def _raw_rows(batch: list[RunEvent], count: int) -> list[Row]:
    """``count`` archive rows of the batch (repeated): a keyless table takes any time."""
    rows = [archive_row(e, e.time) for e in batch]
    return [rows[k % len(rows)] for k in range(count)]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def _latency(pool: Any, run_ids: list[str], requests: int) -> dict[str, Any]:
    """p50/p95 (ms) of each API request over ``requests`` sequential requests."""
    rng = random.Random(7)
    probes: dict[str, Any] = {
        "GET /api/experiments": lambda: list_experiments(pool, {}),
        "GET /api/experiments?status=succeeded": lambda: list_experiments(
            pool, {"status": ["succeeded"]}
        ),
        "GET /api/experiments?model=random": lambda: list_experiments(pool, {"model": ["random"]}),
        "GET /api/experiments?label=agent:frontier": lambda: list_experiments(
            pool, {"label": ["agent:frontier"]}
        ),
        "GET /api/experiments/{run_id}": lambda: get_experiment(pool, rng.choice(run_ids)),
    }
    for name, view in VIEWS.items():
        probes[f"view {view.relation}"] = lambda name=name: read_view(pool, name, {})
        if view.has_run_id:
            probes[f"view {view.relation}?run_id"] = lambda name=name: read_view(
                pool, name, {"run_id": [rng.choice(run_ids)]}
            )
    figures: dict[str, Any] = {}
    for name, probe in probes.items():
        await probe()  # warm: plan cache, buffers
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            await probe()
            samples.append((time.perf_counter() - started) * 1000)
        figures[name] = {
            "p50_ms": round(percentile(samples, 0.5), 1),
            "p95_ms": round(percentile(samples, 0.95), 1),
            "max_ms": round(max(samples), 1),
        }
    return figures


#: Bytes of a table, indexes and TOAST included; a partitioned one's partitions summed.
_TABLE_BYTES = """
    SELECT CASE WHEN c.relkind = 'p'
                THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
                        FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
                ELSE pg_total_relation_size(c.oid) END
      FROM pg_class c WHERE c.oid = $1::regclass"""


async def _sizes_per_run(conn: Any, runs: int, events: int) -> dict[str, Any]:
    sizes = {}
    for table in TABLES:
        sizes[table] = int(await conn.fetchval(_TABLE_BYTES, table))
    total = sum(sizes.values())
    return {
        "runs": runs,
        "events_per_run": round(events / runs),
        "bytes_per_run": {table: round(size / runs) for table, size in sizes.items()},
        "bytes_per_run_total": round(total / runs),
        "bytes_per_event_total": round(total / events),
        "total_mb": round(total / 1e6),
    }


def _kafka_sizes(bases: list[list[RunEvent]]) -> dict[str, Any]:
    """What the run events topic holds per run: value, key and headers as Oriole sends
    them (record and batch framing add about 20 bytes a record, uncompressed)."""
    sizes = []
    decode_seconds = 0.0
    for run in bases:
        size = 0
        for event in run:
            out = encode("oriole.runs.events", event, event.run_id)
            size += len(out.value) + len(out.key or b"")
            size += sum(len(k) + len(v) for k, v in out.headers)
            started = time.perf_counter()
            decode_run_event(out.value)
            decode_seconds += time.perf_counter() - started
        sizes.append((size, len(run)))
    events = sum(n for _, n in sizes)
    return {
        "bytes_per_event": round(sum(s for s, _ in sizes) / events),
        "bytes_per_run": round(sum(s for s, _ in sizes) / len(sizes)),
        "decode_microseconds_per_event": round(decode_seconds / events * 1e6, 1),
    }


async def _prune_oldest(conn: Any, first: datetime) -> dict[str, Any]:
    """Prune the oldest three months: a dry run, then for real (timed)."""
    before = month_start(next_month(next_month(next_month(month_of(first)))))
    started = time.perf_counter()
    await prune_archive(conn, before, dry_run=True)
    dry_seconds = time.perf_counter() - started
    started = time.perf_counter()
    real = await prune_archive(conn, before, dry_run=False)
    return {
        "before": before.date().isoformat(),
        "runs": real.runs,
        "rows": real.rows,
        "partitions_dropped": len(real.partitions_dropped),
        "bytes_estimate": real.bytes_estimate,
        "dry_run_seconds": round(dry_seconds, 2),
        "prune_seconds": round(time.perf_counter() - started, 2),
    }


async def _measure(database: str) -> dict[str, Any]:
    bases = await _base_runs()
    per_run = sum(len(run) for run in bases) / len(bases)
    now = datetime.now(UTC)
    first = month_start(month_of(now - timedelta(days=MONTHS * 30.4)))
    archive = Archive(bases, first, max(_sizes()))
    pool = await asyncpg.create_pool(_server_dsn(database), min_size=2, max_size=4)
    result: dict[str, Any] = {
        "base_runs": len(bases),
        "events_per_base_run": round(per_run),
        "kafka": _kafka_sizes(bases),
        "sizes": {},
    }
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            month = month_of(first)
            while month <= month_of(now):
                await prepare_partitions(conn, month_start(month))
                month = next_month(month)
            await conn.execute("CREATE TABLE raw_copy (LIKE run_events INCLUDING DEFAULTS)")
        keys = RunKeys()
        events = archive.events()
        stored = 0
        for size in _sizes():
            async with pool.acquire() as conn:
                fill = await _fill(conn, events, size - stored, keys)
                stored = size
                await conn.execute("VACUUM ANALYZE")
                runs = int(await conn.fetchval("SELECT count(*) FROM experiments"))
                sizes = await _sizes_per_run(conn, runs, stored)
            finished = archive.run_ids[: max(1, runs - CONCURRENT)]
            result["sizes"][str(size)] = {
                "insert": fill,
                "latency": await _latency(pool, finished, _requests()),
                "storage": sizes,
            }
        async with pool.acquire() as conn:
            result["prune_oldest_three_months"] = await _prune_oldest(conn, first)
    finally:
        await pool.close()
    return result


async def _run() -> dict[str, Any]:
    database = f"oriole_bench_scale_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_server_dsn())
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        return await _measure(database)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> dict[str, Any]:
    return asyncio.run(_run())
