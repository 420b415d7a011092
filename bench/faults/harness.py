"""The stack under test as separate processes, and the faults the suite does to it.

One `Harness` owns the broker, the private PostgreSQL cluster and the Oriole services, keeps
the book of what was done (starts published, faults with their recovery times, stalls,
hostile records sent) and offers each fault as a method; the order of it all is in
:mod:`bench.faults.suite`.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.faults.archive import archived_runs
from bench.faults.config import RUN_PREFIX, FaultConfig
from bench.faults.gateway_attack import attack_gateway
from bench.faults.hostile import dump, flood, hostile_records
from bench.faults.observer import Observer
from bench.faults.waiting import until
from bench.processes import PrivatePostgres, Service, service_env
from oriole import generators
from oriole.cli.follower import publish_start
from oriole.environment.stack_file import Connection
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.embedded import free_port
from oriole.kafka.topics import Topics
from projections.migrate import migrate


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
        await self.broker.start()
        prepare_clients(True)
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
        await self.broker.stop()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    @property
    def obs(self) -> Observer:
        assert self.observer is not None
        return self.observer

    def progress(self, what: str) -> None:
        """A line on stderr per phase (stdout is for the JSON figures)."""
        print(f"[faults {self.now():7.1f}s] {what}", file=sys.stderr, flush=True)

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
            self.progress(f"{vars(self.faults[-1])}")
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
        starts = [self.requests[r].model_dump_json().encode() for r in self.run_ids]
        await flood(
            self.broker.bootstrap_servers,
            hostile_records(self.topics, self.config, starts),
            self.config.huge_bytes + (1 << 20),
            self.hostile_sent,
            self.hostile_refused,
        )

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
                value = dump({"type": "experiment.start", "run_id": key})
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
                    self.topics.runs_commands, b'{"type": "nope"}', key=key.encode(), partition=p
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
