"""Fault suite: real runs through a real stack while its processes are killed and fed junk.

The stack runs as separate processes, as in production: the embedded Tansu broker, a private
PostgreSQL cluster (see ``bench/processes.py``), N ``oriole worker``, one ``oriole projector``
and one ``oriole gateway``. While deterministic built-in agents play long runs, the suite
kill -9s workers and the projector (and restarts them), stops and freezes PostgreSQL, floods
every input topic with malformed and hostile records, and attacks the gateway. Then it waits
for every run to end and checks the outcome from the topics and the archive:

* lost: a start acknowledged by the broker with neither ``run.started`` nor a rejection;
* duplicated: a repeated seq or event id, or a second ``run.started``/``run.finished``;
* stuck: not finished by the deadline; crashed: a service that exited by itself, non-zero;
* archive: for every run, the rows in ``run_events`` equal the events in the log.

``python -m bench faults`` runs the full size (``BENCH_FAULTS_SIZE=ci`` the CI size,
``BENCH_FAULTS_LOGS=DIR`` keeps the services' logs);
``tests/test_faults.py`` runs the CI size. The JSON figures carry ``ok`` and ``failures``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.processes import (
    PG_START_TIMEOUT,
    PrivatePostgres,
    Service,
    kill_postmaster,
    postmaster_pid,
    service_env,
)
from oriole import generators
from oriole.cli.follower import publish_start
from oriole.environment.stack_file import Connection, NoStackError, StackInfo, read_stack
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.embedded import free_port
from oriole.kafka.topics import Topics
from projections.migrate import migrate

T = TypeVar("T")

RUN_PREFIX = "fault-run-"
HOSTILE_PREFIX = "hostile-"
POLL = 0.2


@dataclass(frozen=True)
class FaultConfig:
    """How big the suite is; ``full()`` for the benchmark, ``ci()`` for the test."""

    size: str = "full"
    runs: int = 20
    workers: int = 2
    partitions: int = 4
    maze_size: int = 151
    max_footsteps: int = 5000
    worker_kills: int = 8
    projector_kills: int = 3
    pg_stops: int = 2
    pg_freezes: int = 2
    outage_seconds: float = 4.0
    hostile_records: int = 10_000
    huge_bytes: int = 20 << 20
    huge_records: int = 2
    gateway_body_bytes: int = 80 << 20
    #: Events the log must grow by between two faults (so faults land mid-run).
    spacing_events: int = 400
    recovery_timeout: float = 120.0
    deadline_seconds: float = 900.0
    archive_timeout: float = 120.0
    max_restarts: int = 5
    #: Runs through a whole `oriole up` killed with -9 and restarted (0: skip that part).
    up_runs: int = 4
    up_footsteps: int = 1500

    @classmethod
    def full(cls) -> FaultConfig:
        return cls()

    @classmethod
    def ci(cls) -> FaultConfig:
        return cls(
            size="ci",
            runs=3,
            maze_size=101,
            max_footsteps=900,
            worker_kills=2,
            projector_kills=1,
            pg_stops=1,
            pg_freezes=1,
            outage_seconds=2.0,
            hostile_records=300,
            huge_bytes=2 << 20,
            huge_records=1,
            gateway_body_bytes=20 << 20,  # over the gateway's 16 MiB default cap
            spacing_events=150,
            recovery_timeout=60.0,
            deadline_seconds=120.0,
            archive_timeout=45.0,
            max_restarts=3,
            up_runs=2,
            up_footsteps=600,
        )


# --- what the stack wrote, read from its topics ---------------------------------------------


@dataclass
class RunLog:
    """One run's log as read: (seq, event_id, type) in order, duplicates kept."""

    entries: list[tuple[int, str, str]] = field(default_factory=list)
    #: When the last event was written (its own ``time``, epoch seconds; same machine).
    last_written: float = 0.0

    @property
    def started(self) -> bool:
        return any(kind == "run.started" for _, _, kind in self.entries)

    @property
    def finished(self) -> bool:
        return any(kind == "run.finished" for _, _, kind in self.entries)

    def problems(self) -> list[str]:
        """Duplicates and gaps: what a clean log never has."""
        seqs = [seq for seq, _, _ in self.entries]
        ids = [event_id for _, event_id, _ in self.entries]
        kinds = Counter(kind for _, _, kind in self.entries)
        found = []
        if len(seqs) != len(set(seqs)):
            found.append(f"{len(seqs) - len(set(seqs))} duplicate seq(s)")
        if len(ids) != len(set(ids)):
            found.append(f"{len(ids) - len(set(ids))} duplicate event id(s)")
        for kind in ("run.started", "run.finished"):
            if kinds[kind] > 1:
                found.append(f"{kinds[kind]} x {kind}")
        if seqs and sorted(set(seqs)) != list(range(1, max(seqs) + 1)):
            found.append("gap in seqs")
        return found


class Observer:
    """Reads the run log, rejections and dead letters from the beginning, as they come."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.runs: dict[str, RunLog] = {}
        self.rejected: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.dead_letter_keys: set[str] = set()
        self.hostile_started: set[str] = set()
        self.undecodable_log_records = 0
        self._consumer: Any = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=64 << 20,
            fetch_max_bytes=128 << 20,
        )
        await self._consumer.start()
        await self._consumer._client.force_metadata_update()
        names = (self.topics.runs_events, self.topics.experiments_rejected, self.topics.deadletter)
        wanted = [
            TopicPartition(topic, p)
            for topic in names
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(wanted)

    async def stop(self) -> None:
        await stop_quietly(self._consumer)

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    self._take(tp.topic, record)

    def _take(self, topic: str, record: Any) -> None:
        key = (record.key or b"").decode(errors="replace")
        if topic == self.topics.experiments_rejected:
            self.rejected[key] += 1
        elif topic == self.topics.deadletter:
            self.dead_letter_keys.add(key)
            try:
                self.dead_letters[json.loads(record.value)["source_topic"]] += 1
            except (ValueError, KeyError, TypeError):
                self.dead_letters["?"] += 1
        elif key.startswith(RUN_PREFIX):
            try:
                event = json.loads(record.value)
                entry = (int(event["seq"]), str(event["event_id"]), str(event["type"]))
                written = datetime.fromisoformat(event["time"]).timestamp()
            except (ValueError, KeyError, TypeError):
                self.undecodable_log_records += 1
                return
            log = self.runs.setdefault(key, RunLog())
            log.entries.append(entry)
            log.last_written = max(log.last_written, written)
        elif key.startswith(HOSTILE_PREFIX) and record.value and b'"run.started"' in record.value:
            self.hostile_started.add(key)

    def events_of(self, run_ids: list[str]) -> int:
        return sum(len({s for s, _, _ in self.runs[r].entries}) for r in run_ids if r in self.runs)

    def active(self, run_ids: list[str]) -> list[str]:
        return [r for r in run_ids if not (r in self.runs and self.runs[r].finished)]


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float) -> float | None:
    """Seconds until ``check`` holds (polled), or None if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return round(time.monotonic() - started, 2)
        await asyncio.sleep(POLL)
    return None


@dataclass(frozen=True)
class ArchivedRun:
    rows: int
    seqs: int
    max_seq: int
    started: int
    finished: int

    def problems(self) -> list[str]:
        """What a complete, duplicate-free archived run never has."""
        found = []
        if self.seqs != self.rows or self.max_seq != self.rows:
            found.append(f"{self.rows} rows for seqs 1..{self.max_seq}")
        if self.started > 1 or self.finished > 1:
            found.append(f"{self.started} x run.started, {self.finished} x run.finished")
        return found


async def _fetch(dsn: str, sql: str, *args: object) -> list[Any] | None:
    """Rows of one query on a fresh connection; None while the database cannot be reached."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return list(await conn.fetch(sql, *args, timeout=5))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)


async def archived_runs(dsn: str, prefix: str) -> dict[str, ArchivedRun] | None:
    """What ``run_events`` holds per run whose id starts with ``prefix``; None while the
    database cannot be reached."""
    rows = await _fetch(
        dsn,
        "SELECT run_id, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS m, "
        "count(*) FILTER (WHERE type = 'run.started') AS s, "
        "count(*) FILTER (WHERE type = 'run.finished') AS f "
        "FROM run_events WHERE run_id LIKE $1 GROUP BY run_id",
        prefix + "%",
    )
    if rows is None:
        return None
    return {r["run_id"]: ArchivedRun(r["n"], r["d"], r["m"], r["s"], r["f"]) for r in rows}


async def archived_requests(dsn: str, prefix: str) -> set[str] | None:
    """Run ids of the start requests the projector archived (None while unreachable)."""
    rows = await _fetch(dsn, "SELECT run_id FROM start_requests WHERE run_id LIKE $1", prefix + "%")
    return None if rows is None else {r["run_id"] for r in rows}


# --- hostile records ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    category: str
    topic: str
    key: bytes | None
    value: bytes | None


#: 100,000 unclosed brackets: the record that used to blow the decoder's recursion limit.
DEEP = b"[" * 100_000
#: Valid JSON nested 5,000 deep, inside an otherwise valid start event.
DEEP_VALID = b"[" * 5000 + b"]" * 5000


def _tiny_maze() -> dict[str, Any]:
    return generators.generate("open-field", 8, 8, seed=1, name="tiny").to_dict()


def _start_doc(run_id: str, maze: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A valid start of a 20-step run on a tiny maze, with ``fields`` replaced."""
    doc = {
        "type": "experiment.start",
        "run_id": run_id,
        "maze": maze,
        "agent": {"provider": "builtin", "model": "frontier", "seed": 1},
        "limits": {"max_footsteps": 20},
    }
    return doc | fields


def _dump(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _hostile_id(category: str, n: int) -> str:
    return f"{HOSTILE_PREFIX}{category}-{n}"


def hostile_starts(n: int, maze: dict[str, Any]) -> dict[str, bytes | None]:
    """Start events that must be rejected, by category; each names its own run id, so one
    the stack wrongly admits shows up as a run and tells which check is missing."""

    def doc(category: str, **fields: Any) -> bytes:
        return _dump(_start_doc(_hostile_id(category, n), maze, **fields))

    evil_endpoint = {"provider": "ollama", "model": "qwen2.5:7b", "endpoint": "http://127.0.0.1:1/"}
    hugeint = b'{"type": "experiment.start", "run_id": "%s", "limits": {"max_footsteps": 1%s}}'
    return {
        "utf8": b'{"type": "experiment.start", "run_id": "\xff\xfe\xc3"}',
        "deep-list": DEEP,
        "deep-field": b'{"run_id": "x", "comment": ' + DEEP + b"}",
        "deep-valid": doc("deep-valid")[:-1] + b', "labels": {"a": ' + DEEP_VALID + b"}}",
        "nul": doc("nul", comment="evil\x00nul"),
        "nul-label": doc("nul-label", labels={"k\x00": "v"}),
        "strint": doc("strint", limits={"max_footsteps": "10"}),
        "hugeint": hugeint % (_hostile_id("hugeint", n).encode(), b"0" * 5000),
        "types": _dump({"type": 5, "run_id": _hostile_id("types", n), "maze": "x", "agent": []}),
        "endpoint": doc("endpoint", agent=evil_endpoint),
        "not-object": [b"[1, 2]", b'"text"', b"null", b"42", b""][n % 5],
        "tombstone": None,
        "truncated": doc("truncated")[:200],
        "unknown-field": doc("unknown-field", evil=1),
    }


def hostile_commands(n: int, maze: dict[str, Any]) -> list[bytes]:
    """Bad shapes on the internal command topic (anyone with Kafka access can write it)."""
    run_id = _hostile_id("command", n)
    nameless = _start_doc(run_id, maze) | {"maze": None, "maze_name": "x"}
    return [
        b'{"type": "run.start", "request": {}}',
        b'{"type": "nope"}',
        _dump({"type": "agent.intent", "run_id": run_id}),
        _dump({"type": "agent.intent", "run_id": run_id, "basis_seq": "1", "turn": 1}),
        _dump({"type": "run.start", "schema_version": 1, "request": nameless}),
        _dump({"type": "agent.failure", "run_id": 7}),
        DEEP,
        b"\xfe",
    ]


def hostile_log_records(n: int) -> list[bytes]:
    """Junk on the run log, which the projector, the runners and the gateway read."""
    forged = {
        "type": "action.completed",
        "run_id": _hostile_id("log", n),
        "seq": 1,
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "time": "2026-01-01T00:00:00Z",
        "payload": {"bad": True},
    }
    return [b"not json", DEEP, b'{"type": "run.finished", "seq": "x"}', _dump(forged), b"\xff"]


def hostile_records(topics: Topics, config: FaultConfig, starts: list[bytes]) -> Iterator[Hostile]:
    """``config.hostile_records`` records cycling through every kind of junk on every input
    topic, plus duplicates of the real starts and ``huge_records`` oversized starts."""
    maze = _tiny_maze()
    huge_left, left = config.huge_records, config.hostile_records
    for n in itertools.count():
        batch: list[Hostile] = []
        for category, value in hostile_starts(n, maze).items():
            key = _hostile_id(category, n).encode()
            batch.append(Hostile(category, topics.experiments_start, key, value))
        batch += [
            Hostile("nokey", topics.experiments_start, None, b"\x00\x01 garbage"),
            Hostile("duplicate", topics.experiments_start, None, starts[n % len(starts)]),
        ]
        key = _hostile_id("internal", n).encode()
        cancels = [b'{"type": "run.cancel"}', b'{"type": "run.cancel", "run_id": []}', DEEP]
        commands = hostile_commands(n, maze)
        logs = hostile_log_records(n)
        batch += [
            Hostile("cancel", topics.runs_control, key, cancels[n % len(cancels)]),
            Hostile("command", topics.runs_intents, key, commands[n % len(commands)]),
            Hostile("log", topics.runs_events, key, logs[n % len(logs)]),
            Hostile("replay", topics.runs_replay, key, b"\x00" * 64),
        ]
        if huge_left > 0:
            huge_left -= 1
            head = b'{"type": "experiment.start", "run_id": "%s", "comment": "'
            value = head % _hostile_id("huge", n).encode() + b"A" * config.huge_bytes + b'"}'
            batch.append(Hostile("huge", topics.experiments_start, key, value))
        for record in batch:
            if left <= 0:
                return
            left -= 1
            yield record


# --- the harness ----------------------------------------------------------------------------


@dataclass
class FaultRecord:
    """One fault: when (seconds into the suite), how many runs were active, how long the
    outage lasted and how long, from the fault, until the stack made progress again."""

    kind: str
    at_s: float
    active_runs: int
    outage_s: float
    recover_s: float | None


class Harness:
    """The stack under test and the bookkeeping of what was done to it."""

    def __init__(self, config: FaultConfig, scratch: Path) -> None:
        self.config = config
        self.scratch = scratch
        self.home = scratch / "home"
        self.home.mkdir()
        self.prefix = f"faults-{uuid.uuid4().hex[:8]}"
        self.topics = Topics(self.prefix, config.partitions)
        self.broker = EmbeddedBroker(log_dir=scratch, start_timeout=60)
        self.pg = PrivatePostgres()
        self.services: list[Service] = []
        self.workers: list[Service] = []
        self.projector: Service | None = None
        self.gateway_port = free_port()
        self.run_ids: list[str] = []
        self.acknowledged: list[str] = []
        self.requests: dict[str, ExperimentStart] = {}
        self.faults: list[FaultRecord] = []
        self.stalls: list[dict[str, Any]] = []
        self.publish_seconds: list[float] = []
        self.hostile_sent: Counter[str] = Counter()
        self.hostile_refused: Counter[str] = Counter()
        self.gateway: dict[str, Any] = {}
        self.t0 = time.monotonic()
        self.observer: Observer | None = None

    # -- set up and tear down

    async def start(self) -> None:
        await self.broker.start_async()
        prepare_clients(True, faust=False)
        await ensure_topics(self.broker.bootstrap_servers, self.topics.specs)
        await asyncio.to_thread(self.pg.init)
        conn = await asyncpg.connect(self.pg.dsn, timeout=30)
        try:
            await migrate(conn)  # once, before several services race to do it
        finally:
            await conn.close()
        env = service_env(
            self.home,
            self.broker.bootstrap_servers,
            self.prefix,
            self.pg.dsn,
            ORIOLE_KAFKA_PARTITIONS=str(self.config.partitions),
            ORIOLE_GATEWAY_PORT=str(self.gateway_port),
            ORIOLE_PROJECTION_BATCH_SIZE="500",
        )
        logs = self.scratch / "logs"
        logs.mkdir()
        for i in range(self.config.workers):
            self.workers.append(Service(f"worker-{i}", "worker", env, logs / f"worker-{i}.log"))
        self.projector = Service("projector", "projector", env, logs / "projector.log")
        gateway = Service("gateway", "gateway", env, logs / "gateway.log")
        self.services = [*self.workers, self.projector, gateway]
        for service in self.services:
            service.start()
        self.observer = Observer(self.broker.bootstrap_servers, self.topics)
        await self.observer.start()

    async def close(self) -> None:
        if self.observer is not None:
            await self.observer.stop()
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in self.services))
        await asyncio.to_thread(self.pg.close)
        await self.broker.stop_async()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    @property
    def obs(self) -> Observer:
        assert self.observer is not None
        return self.observer

    async def supervise(self) -> None:
        """Restart services that died by themselves (counted as crashes), like a supervisor."""
        while True:
            for service in self.services:
                if service.restarts < self.config.max_restarts:
                    service.check()
            await asyncio.sleep(0.5)

    # -- runs

    def make_requests(self) -> None:
        size = self.config.maze_size
        for i in range(self.config.runs):
            maze = generators.generate("backtracker", size, size, seed=i)
            run_id = f"{RUN_PREFIX}{i:03d}"
            request = ExperimentStart(
                run_id=run_id,
                maze=MazeData.from_maze(maze),
                agent=AgentSpec(
                    provider="builtin", model=("frontier", "wall-follower")[i % 2], seed=i
                ),
                limits=RunLimits(
                    max_footsteps=self.config.max_footsteps,
                    max_actions=2 * self.config.max_footsteps,
                ),
                comment=f"fault suite run {i}",
            )
            self.run_ids.append(run_id)
            self.requests[run_id] = request

    async def publish(self, run_ids: list[str]) -> None:
        """Publish starts; a start counts as acknowledged once the broker confirmed it."""
        conn = Connection(self.broker.bootstrap_servers, True, self.prefix)
        for run_id in run_ids:
            started = time.monotonic()
            await publish_start(conn, self.requests[run_id])
            self.acknowledged.append(run_id)
            self.publish_seconds.append(time.monotonic() - started)

    # -- archive

    async def archive_counts(self) -> dict[str, tuple[int, int]] | None:
        """(rows, distinct seqs) per run in ``run_events``; None while PostgreSQL is down."""
        found = await archived_runs(self.pg.dsn, RUN_PREFIX)
        return None if found is None else {r: (a.rows, a.seqs) for r, a in found.items()}

    async def archived_total(self) -> int | None:
        counts = await self.archive_counts()
        return None if counts is None else sum(n for n, _ in counts.values())

    async def archive_matches_log(self) -> bool:
        counts = await self.archive_counts()
        if counts is None:
            return False
        return all(counts.get(r, (0, 0))[0] == self.obs.events_of([r]) for r in self.acknowledged)

    # -- faults

    async def pace(self) -> None:
        """Let the runs move on between faults: until the log grew by ``spacing_events``.
        A log that stands still for a minute while runs are active is recorded as a stall."""
        base = self.obs.events_of(self.run_ids)
        at, active = self.now(), len(self.obs.active(self.acknowledged))
        grew = await until(
            lambda: self.obs.events_of(self.run_ids) >= base + self.config.spacing_events, 60
        )
        if grew is None and active:
            after = self.faults[-1].kind if self.faults else "start"
            grown = self.obs.events_of(self.run_ids) - base
            self.stalls.append({"at_s": at, "after": after, "active_runs": active, "events": grown})

    async def kill_worker(self, index: int) -> FaultRecord:
        """kill -9 one worker and start it again; recovered when every active run moved."""
        worker = self.workers[index % len(self.workers)]
        active = self.obs.active(self.acknowledged)
        at, killed = self.now(), time.time()
        worker.kill9()
        worker.start()

        def moved() -> bool:
            return all(
                r in self.obs.runs
                and (self.obs.runs[r].finished or self.obs.runs[r].last_written > killed)
                for r in active
            )

        recovered = await until(moved, self.config.recovery_timeout)
        return FaultRecord("worker_kill", at, len(active), 0.0, self.since(at, recovered))

    def since(self, at: float, recovered: float | None) -> float | None:
        """Seconds from the fault at ``at`` until recovery (None: no recovery in time)."""
        return None if recovered is None else round(self.now() - at, 2)

    async def archive_progress_after(self, kind: str, at: float, outage: float) -> FaultRecord:
        """Recovered when the archive grows again (or has everything the log has)."""
        active = len(self.obs.active(self.acknowledged))
        before = await self.archived_total() or 0

        async def grew() -> bool:
            total = await self.archived_total()
            return total is not None and (total > before or await self.archive_matches_log())

        recovered = await until(grew, self.config.recovery_timeout)
        return FaultRecord(kind, at, active, outage, self.since(at, recovered))

    async def kill_projector(self) -> FaultRecord:
        assert self.projector is not None
        at = self.now()
        self.projector.kill9()
        self.projector.start()
        return await self.archive_progress_after("projector_kill", at, 0.0)

    async def stop_postgres(self) -> FaultRecord:
        at = self.now()
        await asyncio.to_thread(self.pg.stop, "immediate")
        await asyncio.sleep(self.config.outage_seconds)  # the outage itself, not a wait
        await asyncio.to_thread(self.pg.start)
        return await self.archive_progress_after("pg_stop_start", at, self.config.outage_seconds)

    async def freeze_postgres(self) -> FaultRecord:
        at = self.now()
        self.pg.freeze()
        await asyncio.sleep(self.config.outage_seconds)  # the freeze itself, not a wait
        self.pg.thaw()
        return await self.archive_progress_after("pg_freeze", at, self.config.outage_seconds)

    def schedule(self) -> list[Callable[[], Awaitable[FaultRecord]]]:
        """Worker kills interleaved with the other faults, spread over the run."""
        c = self.config
        others: list[Callable[[], Awaitable[FaultRecord]]] = [
            *([self.kill_projector] * c.projector_kills),
            *([self.stop_postgres] * c.pg_stops),
            *([self.freeze_postgres] * c.pg_freezes),
        ]
        kills = [functools.partial(self.kill_worker, i) for i in range(c.worker_kills)]
        plan: list[Callable[[], Awaitable[FaultRecord]]] = []
        for i in range(max(len(kills), len(others))):
            plan.extend(kills[i : i + 1])
            plan.extend(others[i : i + 1])
        return plan

    async def inject_faults(self) -> None:
        """Every fault in turn, publishing a share of the starts after each one."""
        plan = self.schedule()
        waves = [self.run_ids[i :: len(plan) + 1] for i in range(len(plan) + 1)]
        await self.publish(waves[0])
        for step, (fault, wave) in enumerate(zip(plan, waves[1:], strict=True)):
            await self.pace()
            self.faults.append(await fault())
            progress(self, f"{vars(self.faults[-1])}")
            await self.publish(wave)
            if step == len(plan) // 2:
                self.gateway = await attack_gateway(self.gateway_port, self.config)

    async def kill_all_workers(self) -> FaultRecord:
        """The last fault: every worker at once, so the new ones rebuild from the log only."""
        at, active = self.now(), len(self.obs.active(self.acknowledged))
        for worker in self.workers:
            worker.kill9()
            worker.start()
        recovered = await self.settle()
        return FaultRecord("all_workers_kill", at, active, 0.0, self.since(at, recovered))

    # -- hostile flood

    async def flood(self) -> None:
        """Send the hostile records in bursts, spread over the fault phase."""
        producer = make_producer(
            self.broker.bootstrap_servers,
            client_id="faults-hostile",
            max_request_size=self.config.huge_bytes + (1 << 20),
            enable_idempotence=False,
        )
        await producer.start()
        starts = [self.requests[r].model_dump_json().encode() for r in self.run_ids]
        try:
            burst: list[tuple[str, Any]] = []
            for record in hostile_records(self.topics, self.config, starts):
                self.hostile_sent[record.category] += 1
                try:
                    sent = await producer.send(record.topic, record.value, key=record.key)
                    burst.append((record.category, sent))
                except Exception:  # too large for the client, say: refused before the broker
                    self.hostile_refused[record.category] += 1
                if len(burst) >= 50:
                    await self._delivered(burst)
                    burst = []
                    await asyncio.sleep(0.1)  # pacing, so the flood overlaps the faults
            await self._delivered(burst)
        finally:
            await stop_quietly(producer)

    async def _delivered(self, burst: list[tuple[str, Any]]) -> None:
        """Wait for a burst; a record the broker refused is counted, not an error."""
        results = await asyncio.gather(*(sent for _, sent in burst), return_exceptions=True)
        for (category, _), result in zip(burst, results, strict=True):
            if isinstance(result, BaseException):
                self.hostile_refused[category] += 1

    # -- the end

    async def settle(self) -> float | None:
        """Until the maze processors have handled everything sent so far (sentinels through
        every partition of the start and command topics come out the other side)."""
        token = uuid.uuid4().hex[:6]
        producer = make_producer(self.broker.bootstrap_servers, client_id="faults-sentinel")
        await producer.start()
        started = time.monotonic()
        try:
            keys = []
            for p in range(self.config.partitions):
                key = f"sentinel-{token}-s{p}"
                keys.append(key)
                value = _dump({"type": "experiment.start", "run_id": key})
                await producer.send_and_wait(
                    self.topics.experiments_start, value, key=key.encode(), partition=p
                )
            if await until(lambda: all(k in self.obs.rejected for k in keys), 120) is None:
                return None
            keys = []
            for p in range(self.config.partitions):
                key = f"sentinel-{token}-c{p}"
                keys.append(key)
                await producer.send_and_wait(
                    self.topics.runs_intents, b'{"type": "nope"}', key=key.encode(), partition=p
                )
            if await until(lambda: all(k in self.obs.dead_letter_keys for k in keys), 120) is None:
                return None
            return round(time.monotonic() - started, 2)
        finally:
            await stop_quietly(producer)

    async def republish_duplicates(self) -> float | None:
        """Every start again, after the runs ended and the workers restarted: nothing new
        may start (a retry with the same run id is safe, docs/events.md)."""
        producer = make_producer(self.broker.bootstrap_servers, client_id="faults-dup")
        await producer.start()
        try:
            for run_id in self.acknowledged:
                value = self.requests[run_id].model_dump_json().encode()
                await producer.send_and_wait(
                    self.topics.experiments_start, value, key=run_id.encode()
                )
        finally:
            await stop_quietly(producer)
        return await self.settle()


# --- the gateway attack -----------------------------------------------------------------------


async def http_probe(
    port: int, head: bytes, body_size: int = 0, body: bytes = b"", with_body: bool = False
) -> str:
    """Send one raw HTTP request (a body of ``body_size`` spaces, streamed) and return the
    status code (and the answer's body), or what happened instead: ``closed``, ``timeout``."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except (OSError, TimeoutError) as exc:
        return f"connect failed: {type(exc).__name__}"

    async def send() -> None:
        writer.write(head + body)
        chunk = b" " * (1 << 16)
        left = body_size
        while left > 0:
            writer.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        line = await asyncio.wait_for(reader.readline(), 60)
        parts = line.split()
        status = parts[1].decode() if len(parts) >= 2 else "closed"
        if with_body and status != "closed":
            answer = await asyncio.wait_for(reader.read(4096), 10)
            status += " " + answer.partition(b"\r\n\r\n")[2].decode(errors="replace")
        return status
    except (OSError, TimeoutError) as exc:
        return "timeout" if isinstance(exc, TimeoutError) else "closed"
    finally:
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def attack_gateway(port: int, config: FaultConfig) -> dict[str, Any]:
    """An oversized body and DNS rebinding (a foreign ``Host``): both must be refused (4xx or
    a closed connection), and the gateway must stay healthy."""
    host = f"127.0.0.1:{port}".encode()
    size = config.gateway_body_bytes
    small = _dump(_start_doc(f"{HOSTILE_PREFIX}rebind-0", _tiny_maze()))
    probes = {
        "oversized_body": await http_probe(
            port,
            b"POST /api/experiments HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n" % size,
            body_size=size,
        ),
        "rebinding_get": await http_probe(
            port, b"GET /api/experiments HTTP/1.1\r\nHost: evil.example\r\n\r\n"
        ),
        "rebinding_post": await http_probe(
            port,
            b"POST /api/experiments HTTP/1.1\r\nHost: evil.example\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n" % len(small),
            body=small,
        ),
    }
    health = b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    first = await http_probe(port, health, with_body=True)

    async def healthy() -> bool:
        return await http_probe(port, health) == "200"

    accepted = [name for name, status in probes.items() if status.startswith("2")]
    return {
        "probes": probes,
        "accepted": accepted,
        "healthz_after": first,
        "healthy_within_s": await until(healthy, config.recovery_timeout),
    }


# --- kill -9 of a whole `oriole up` --------------------------------------------------------

UP_PREFIX = "up-run-"


@dataclass
class UpStack:
    """`oriole up` as a user runs it: embedded broker and PostgreSQL, in its own home."""

    service: Service
    home: Path

    @classmethod
    def create(cls, scratch: Path) -> UpStack:
        home = scratch / "up-home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
        env |= {
            "ORIOLE_HOME": str(home),
            "ORIOLE_GATEWAY_PORT": str(free_port()),
            "ORIOLE_LOG_FORMAT": "console",
        }
        return cls(Service("up", "up", env, scratch / "up.log"), home)

    async def started(self, timeout: float) -> StackInfo | None:
        """The stack file once it names this process (broker, database and gateway up)."""

        def ours() -> StackInfo | None:
            try:
                info = read_stack(self.home, check_alive=False)
            except NoStackError:
                return None
            process = self.service.process
            return info if info and process and info.pid == process.pid else None

        if await until(lambda: ours() is not None, timeout) is None:
            return None
        return ours()

    def log_text(self) -> str:
        return self.service.log_path.read_text(errors="replace")


def _up_requests(config: FaultConfig, prefix: str = UP_PREFIX) -> list[ExperimentStart]:
    return [
        ExperimentStart(
            run_id=f"{prefix}{i:02d}",
            maze=MazeData.from_maze(generators.generate("backtracker", 101, 101, seed=50 + i)),
            agent=AgentSpec(provider="builtin", model="frontier", seed=i),
            limits=RunLimits(max_footsteps=config.up_footsteps),
        )
        for i in range(config.up_runs)
    ]


async def up_kill(scratch: Path, config: FaultConfig) -> dict[str, Any]:
    """Starts acknowledged before and just before a kill -9 of `oriole up` all end after it
    restarts (same home), each once; the restart cleans the stale stack file and handle."""
    up = UpStack.create(scratch)
    requests = _up_requests(config)
    early, late = requests[: len(requests) // 2], requests[len(requests) // 2 :]
    window = _up_requests(config, prefix=f"{UP_PREFIX}window-")
    figures: dict[str, Any] = {
        "acknowledged_early": len(early),
        "acknowledged_late": len(late),
        "acknowledged_in_window": len(window),
    }
    up.service.start()
    try:
        info = await up.started(PG_START_TIMEOUT + 60)
        if info is None or info.database_url is None:
            return figures | {"error": "oriole up did not start", "log": up.log_text()[-2000:]}
        conn = Connection(info.kafka_bootstrap_servers, True, info.topic_prefix)
        first_dsn = info.database_url
        for request in early:
            await publish_start(conn, request)

        async def early_moving() -> bool:
            found = await archived_runs(first_dsn, UP_PREFIX) or {}
            return all(found.get(r.run_id, ArchivedRun(0, 0, 0, 0, 0)).rows > 50 for r in early)

        figures["early_runs_archived_s"] = await until(early_moving, config.recovery_timeout)
        for request in late:  # acknowledged and archived as requests just before the kill
            await publish_start(conn, request)

        async def late_requests_archived() -> bool:
            found = await archived_requests(first_dsn, UP_PREFIX)
            return found is not None and {r.run_id for r in late} <= found

        figures["late_requests_archived_s"] = await until(
            late_requests_archived, config.recovery_timeout
        )
        # Published right before the kill: inside the documented window (acknowledged by
        # the broker, not yet archived by the projector). Counted, not required to survive.
        for request in window:
            await publish_start(conn, request)
        up.service.kill9()
        killed = time.monotonic()
        up.service.start()
        info = await up.started(PG_START_TIMEOUT + 60)
        if info is None or info.database_url is None:
            return figures | {"error": "oriole up did not restart", "log": up.log_text()[-2000:]}
        figures["restart_s"] = round(time.monotonic() - killed, 2)
        dsn = info.database_url

        async def all_finished() -> bool:
            found = await archived_runs(dsn, UP_PREFIX) or {}
            return all(r.run_id in found and found[r.run_id].finished for r in requests)

        # Restored runs resume at once; a start that was lost never comes, so no long wait.
        figures["all_finished_s"] = await until(all_finished, config.recovery_timeout)
        archived = await archived_runs(dsn, UP_PREFIX) or {}
    finally:
        await asyncio.to_thread(up.service.stop)
        data = up.home / "pgdata"
        stopped = await until(lambda: postmaster_pid(data) is None, 60)
        kill_postmaster(data)  # in case it did not stop: never leave a server behind
    log = up.log_text()
    process = up.service.process
    figures |= {
        "lost": [r.run_id for r in requests if r.run_id not in archived],
        # Documented window (docs/archive.md): how many of the starts published right
        # before the kill survived anyway. Informational.
        "window_survived": sum(r.run_id in archived for r in window),
        "stuck": [
            r.run_id for r in requests if archived.get(r.run_id) and not archived[r.run_id].finished
        ],
        "duplicated": {r: p for r, a in archived.items() if (p := a.problems())},
        "stale_stack_file_cleaned": "stack.json: the stack file of process" in log,
        "stale_pg_handle_pruned": "dropped handles of processes that are gone" in log,
        "exit_code_on_sigterm": None if process is None else process.returncode,
        "pg_stopped_after_last_user": stopped is not None,
    }
    return figures


def _up_failures(figures: dict[str, Any]) -> list[str]:
    if "error" in figures:
        return [f"up_kill: {figures['error']}"]
    failures = [
        f"up_kill {name}: {len(figures[name])}"
        for name in ("lost", "stuck", "duplicated")
        if figures[name]
    ]
    if figures.get("late_requests_archived_s") is None:
        failures.append("up_kill: the late start requests were never archived")
    if figures["exit_code_on_sigterm"] != 0:
        failures.append(f"up_kill crashed: exit code {figures['exit_code_on_sigterm']}")
    if not figures["pg_stopped_after_last_user"]:
        failures.append("up_kill: the embedded PostgreSQL kept running")
    return failures


# --- the suite --------------------------------------------------------------------------------


def _summary(values: list[float | None]) -> dict[str, Any]:
    done = [v for v in values if v is not None]
    return {
        "count": len(values),
        "not_recovered": len(values) - len(done),
        "median_s": round(statistics.median(done), 2) if done else None,
        "max_s": max(done) if done else None,
    }


async def _verdict(h: Harness, seconds: float, settle: float | None) -> dict[str, Any]:
    obs = h.obs
    runs = {r: obs.runs.get(r, RunLog()) for r in h.acknowledged}
    lost = [r for r, log in runs.items() if not log.started and not obs.rejected[r]]
    stuck = [r for r, log in runs.items() if log.started and not log.finished]
    duplicated = {r: p for r, log in runs.items() if (p := log.problems())}
    counts = await h.archive_counts() or {}
    mismatched = {
        r: {"archive": counts.get(r, (0, 0))[0], "log": obs.events_of([r])}
        for r in h.acknowledged
        if counts.get(r, (0, 0))[0] != obs.events_of([r])
    }
    crashes = [c for s in h.services for c in s.crashes]
    by_kind: dict[str, list[float | None]] = {}
    for fault in h.faults:
        by_kind.setdefault(fault.kind, []).append(fault.recover_s)
    failures = []
    for name, bad in (
        ("lost", lost),
        ("duplicated", duplicated),
        ("stuck", stuck),
        ("crashed", crashes),
        ("archive_mismatch", mismatched),
    ):
        if bad:
            failures.append(f"{name}: {len(bad)}")
    hostile_started = Counter(
        r.rsplit("-", 1)[0][len(HOSTILE_PREFIX) :] for r in obs.hostile_started
    )
    return {
        "size": h.config.size,
        "ok": not failures,
        "failures": failures,
        "seconds": round(seconds, 1),
        "runs": {
            "started": len(h.acknowledged),
            "run_started": sum(log.started for log in runs.values()),
            "finished": sum(log.finished for log in runs.values()),
            # Re-published starts are refused ("already exists") or ignored, never run again.
            "duplicate_starts_rejected": sum(obs.rejected[r] for r in h.acknowledged),
            "lost": lost,
            "duplicated": duplicated,
            "stuck": stuck,
            "events": obs.events_of(h.acknowledged),
            "publish_ack_max_s": round(max(h.publish_seconds, default=0.0), 2),
        },
        "services": {
            "crashed": [
                {"service": c.service, "returncode": c.returncode, "error": c.error}
                for c in crashes
            ],
            "killed": {s.name: s.kills for s in h.services if s.kills},
            "alive_at_end": {s.name: s.alive for s in h.services},
        },
        "hostile": {
            "sent": sum(h.hostile_sent.values()),
            "sent_by_category": dict(h.hostile_sent),
            "refused_by_broker": dict(h.hostile_refused),
            "dead_lettered": sum(obs.dead_letters.values()),
            "dead_lettered_by_source": dict(obs.dead_letters),
            "rejected": sum(n for k, n in obs.rejected.items() if k.startswith(HOSTILE_PREFIX)),
            "rejected_without_key": obs.rejected[""],
            "admitted_runs_by_category": dict(hostile_started),
        },
        "faults": [vars(f) for f in h.faults],
        "stalls": h.stalls,
        "recovery": {kind: _summary(values) for kind, values in by_kind.items()},
        "duplicate_starts_settled_s": settle,
        "archive": {"equals_log": not mismatched, "mismatched": mismatched},
        "gateway": h.gateway,
    }


def progress(h: Harness, what: str) -> None:
    """A line on stderr per phase (stdout is for the JSON figures)."""
    print(f"[faults {h.now():7.1f}s] {what}", file=sys.stderr, flush=True)


async def guarded(main: Awaitable[T], background: list[asyncio.Task[Any]]) -> T:
    """``main``, unless a background task (observer, supervisor) fails first: then its
    error, rather than waiting for deadlines on figures nobody updates any more."""
    task = asyncio.ensure_future(main)
    done, _ = await asyncio.wait({task, *background}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    failed = done.pop()
    failed.result()  # raises its error
    raise RuntimeError(f"background task {failed.get_name()} stopped")


async def _scenario(h: Harness) -> float | None:
    """Faults and the flood while the runs play, then the end-of-suite checks."""
    config = h.config
    flood = asyncio.create_task(h.flood(), name="flood")
    await h.inject_faults()
    progress(h, "faults done; waiting for the flood and the runs")
    await flood
    await until(lambda: not h.obs.active(h.acknowledged), config.deadline_seconds)
    progress(h, "runs ended; killing every worker, then re-publishing every start")
    h.faults.append(await h.kill_all_workers())
    settle = await h.republish_duplicates()
    progress(h, "waiting for the archive to hold every event of the log")
    await until(h.archive_matches_log, config.archive_timeout)
    return settle


async def run_faults(config: FaultConfig, keep_logs: Path | None = None) -> dict[str, Any]:
    """The whole suite; returns the JSON figures (``ok`` false on any failure). The services'
    logs are copied to ``keep_logs`` if given (the evidence behind a failure)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oriole-faults-") as scratch:
        h = Harness(config, Path(scratch))
        background: list[asyncio.Task[Any]] = []
        try:
            progress(h, "starting the stack")
            await h.start()
            h.make_requests()
            background = [
                asyncio.create_task(h.obs.run(), name="observer"),
                asyncio.create_task(h.supervise(), name="supervisor"),
            ]
            settle = await guarded(_scenario(h), background)
            figures = await _verdict(h, time.monotonic() - started, settle)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await h.close()
        if config.up_runs:
            progress(h, "kill -9 of a whole `oriole up`, then a restart")
            up = await up_kill(Path(scratch), config)
            figures["up_kill"] = up
            figures["failures"] += _up_failures(up)
            figures["ok"] = not figures["failures"]
        figures["seconds"] = round(time.monotonic() - started, 1)
        if keep_logs is not None:
            shutil.copytree(Path(scratch) / "logs", keep_logs, dirs_exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy(Path(scratch) / "up.log", keep_logs)
        return figures


def main() -> dict[str, Any]:
    """Full size; ``BENCH_FAULTS_SIZE=ci`` for the CI size; ``BENCH_FAULTS_LOGS=DIR`` keeps
    the services' logs."""
    size = os.environ.get("BENCH_FAULTS_SIZE", "full")
    config = FaultConfig.ci() if size == "ci" else FaultConfig.full()
    logs = os.environ.get("BENCH_FAULTS_LOGS")
    return asyncio.run(run_faults(config, Path(logs) if logs else None))
