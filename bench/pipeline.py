"""The pipeline users run: worker, projector and gateway as separate processes, end to end.

One embedded broker and one scratch PostgreSQL database; for each configuration (one
worker process, then two sharing the consumer groups, so the partitions split between them)
a fresh topic prefix and fresh ``python -m oriole worker|projector|gateway`` processes,
configured only through ``ORIOLE_*`` variables as a deployment runs them. Frontier runs on
generated mazes are published at once, 1 and then 50; each run gets a websocket viewer on
the gateway as soon as its ``run.started`` is in the log. A set is done when every run has
finished **and** every one of its events is archived (the projector's rows counted in
PostgreSQL), and steps/s is the ``action.completed`` count over that time.

Baselines from the same run: the raw aiokafka produce→consume hop of
:func:`bench.backbone._raw_hop` on the same broker (intent→outcome p50 is compared with its
round trip); the two-worker figure is compared with the one-worker one (the scaling ratio).

Where a step's CPU goes: each process's CPU time (psutil) over the 50-run set, divided by the
steps; and a cProfile of one worker process (a separate, profiled 50-run set: profiling
slows it, so it gives shares only), its functions grouped into stages by
:data:`STAGE_RULES` (:func:`stage_times`), the shares applied to the unprofiled worker's CPU
per step. ``docs/performance.md`` holds the figures and what bounds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil  # type: ignore[import-untyped]

from bench.backbone import _raw_hop
from bench.figures import compared
from bench.processes import Service, service_env
from oriole import generators
from oriole.events import ActionCompleted, ActionRequested, parse_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import encode
from oriole.kafka.embedded import free_port
from oriole.kafka.topics import Topics
from projections.migrate import migrate

RUN_SETS = (1, 50)
WORKER_COUNTS = (1, 2)
MAZE_SIZE = 61
FOOTSTEPS = 400
#: Generous: a loaded 2-core machine may take long to start Python processes.
READY_TIMEOUT = 180.0
DONE_TIMEOUT = 600.0
#: How often the archive is counted while the projector catches up.
POLL_SECONDS = 0.02
#: Issue 16's targets for the 50-run set.
TARGET_STEPS_PER_S = 2000.0
TARGET_LATENCY_RATIO = 1.5

#: A worker whose profile is switched on by SIGUSR1 and written by SIGUSR2 (to argv[1]),
#: so that it covers the measured runs and not the start-up.
_PROFILED = """
import cProfile, os, signal, sys
import time
profile = cProfile.Profile(time.thread_time)  # CPU time: waiting in epoll costs nothing
path = sys.argv[1]
def _dump(*_):
    profile.disable()
    profile.dump_stats(path + ".part")
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
signal.signal(signal.SIGUSR2, _dump)
sys.argv = ["oriole", *sys.argv[2:]]
from oriole.cli import main
main()
"""


@dataclass
class ProfiledService(Service):
    """An Oriole service run under :data:`_PROFILED` (profile written to ``profile``)."""

    profile: Path = field(default_factory=Path)

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _PROFILED, str(self.profile), self.command],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.env["ORIOLE_HOME"],
            )


def _server_dsn(database: str | None = None) -> str:
    base = os.environ.get(
        "ORIOLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    if database is None:
        return base
    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def healthy(port: int) -> bool:
    """Whether the process listening on ``port`` answers /healthz with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class Stack:
    """The services of one configuration, each a process of its own; ``close`` reaps all."""

    def __init__(
        self,
        scratch: Path,
        bootstrap: str,
        dsn: str,
        workers: int,
        profile: Path | None = None,
    ) -> None:
        self.prefix = f"bench-pipe-{uuid.uuid4().hex[:8]}"
        self.topics = Topics(self.prefix)
        self.bootstrap = bootstrap
        self.gateway_port = free_port()
        home = scratch / self.prefix
        home.mkdir()
        logs = home / "logs"
        logs.mkdir()
        base = service_env(
            home,
            bootstrap,
            self.prefix,
            dsn,
            ORIOLE_GATEWAY_PORT=str(self.gateway_port),
            ORIOLE_GATEWAY_RATE_LIMIT_PER_ADDRESS="0",
        )
        self.health_ports: list[int] = [self.gateway_port]
        self.services: list[Service] = []
        for i in range(workers):
            env = self._env(base)
            log = logs / f"worker-{i}.log"
            if profile is not None and i == 0:
                self.services.append(
                    ProfiledService(f"worker-{i}", "worker", env, log, profile=profile)
                )
            else:
                self.services.append(Service(f"worker-{i}", "worker", env, log))
        self.services.append(Service("projector", "projector", self._env(base), logs / "proj.log"))
        self.services.append(Service("gateway", "gateway", base, logs / "gateway.log"))

    def _env(self, base: dict[str, str]) -> dict[str, str]:
        port = free_port()
        self.health_ports.append(port)
        return base | {"ORIOLE_METRICS_PORT": str(port)}

    async def start(self) -> None:
        await ensure_topics(self.bootstrap, self.topics.specs)
        for service in self.services:
            service.start()
        deadline = time.monotonic() + READY_TIMEOUT
        # Every process healthy at the same moment: each worker then owns its partitions
        # after the last rebalance (a worker that is revoked is not ready).
        while not all(
            await asyncio.gather(*(asyncio.to_thread(healthy, p) for p in self.health_ports))
        ):
            dead = [s.name for s in self.services if not s.alive]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"services not ready (exited: {dead}); logs in {self.logs}")
            await asyncio.sleep(0.2)

    @property
    def logs(self) -> Path:
        return self.services[0].log_path.parent

    def processes(self) -> dict[str, psutil.Process]:
        found = {}
        for service in self.services:
            if service.process is not None:
                with contextlib.suppress(psutil.Error):
                    found[service.name] = psutil.Process(service.process.pid)
        return found

    def signal(self, name: str, sig: int) -> None:
        for service in self.services:
            if service.name == name and service.process is not None:
                service.process.send_signal(sig)

    def close(self) -> None:
        for service in self.services:
            service.stop()


# --- one set of runs ------------------------------------------------------------------------


def _requests(tag: str, runs: int) -> list[ExperimentStart]:
    """Frontier runs on generated mazes (as the backbone suite plays them)."""
    return [
        ExperimentStart(
            run_id=f"{tag}-{i:03d}",
            maze=MazeData.from_maze(
                generators.generate("backtracker", MAZE_SIZE, MAZE_SIZE, seed=i)
            ),
            agent=AgentSpec(provider="builtin", model="frontier", seed=i),
            limits=RunLimits(max_footsteps=FOOTSTEPS, max_actions=FOOTSTEPS),
        )
        for i in range(runs)
    ]


async def _view(port: int, run_id: str) -> int:
    """A viewer of one run on the gateway: the event frames it got until ``finished``.

    It connects once the run is in the log; should the gateway not know the run yet (4004:
    neither its hub nor the archive has it), it asks again, up to a deadline."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + 30
    while True:
        frames = 0
        try:
            url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}"
            async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
                async for message in ws:
                    data = message if isinstance(message, bytes) else message.encode()
                    if data.startswith(b'{"kind":"event"'):
                        frames += 1
                    elif data.startswith(b'{"kind":"finished"'):
                        return frames
        except ConnectionClosed:
            pass
        if time.monotonic() > deadline:
            return frames
        await asyncio.sleep(0.1)


def _cpu(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds (user + system) of each process so far."""
    seconds = {}
    for name, process in processes.items():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds[name] = times.user + times.system
    return seconds


async def _projected(pool: Any, run_ids: list[str], events: int) -> None:
    """Until the archive holds ``events`` rows of these runs and none is still running."""
    deadline = time.monotonic() + DONE_TIMEOUT
    while True:
        rows = await pool.fetchval(
            "SELECT count(*) FROM run_events WHERE run_id = ANY($1)", run_ids
        )
        running = await pool.fetchval(
            "SELECT count(*) FROM experiments WHERE run_id = ANY($1) AND status <> 'running'",
            run_ids,
        )
        if rows >= events and running == len(run_ids):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{rows} of {events} events archived after {DONE_TIMEOUT} s")
        await asyncio.sleep(POLL_SECONDS)


async def _play(
    stack: Stack, pool: Any, processes: dict[str, psutil.Process], runs: int, tag: str
) -> dict[str, Any]:
    """Publish ``runs`` starts at once; follow the log until every run is finished and
    projected; the figures of the set."""
    requests = _requests(tag, runs)
    run_ids = [r.run_id for r in requests]
    topic = stack.topics.runs_events
    consumer = make_consumer(
        bootstrap_servers=stack.bootstrap,
        group_id=None,
        client_id="bench-pipeline",
        auto_offset_reset="latest",
    )
    producer = make_producer(stack.bootstrap, client_id="bench-pipeline")
    viewers: dict[str, asyncio.Task[int]] = {}
    await consumer.start()
    await producer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        from aiokafka import TopicPartition

        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:
            await consumer.position(tp)
        cpu_before, wall_before = _cpu(processes), os.times()
        started = time.perf_counter()
        for request in requests:
            out = encode(stack.topics.experiments_start, request, request.run_id)
            await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
        await producer.flush()
        finished: set[str] = set()
        events: Counter[str] = Counter()
        steps = 0
        sent: dict[tuple[str, int], Any] = {}
        latencies: list[float] = []
        wanted = set(run_ids)
        deadline = time.monotonic() + DONE_TIMEOUT
        while len(finished) < runs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(finished)} of {runs} runs finished")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = parse_run_event(record.value)
                    if event.run_id not in wanted:
                        continue
                    events[event.run_id] += 1
                    if isinstance(event, ActionRequested):
                        sent[(event.run_id, event.seq)] = event.payload.sent_at
                    elif isinstance(event, ActionCompleted):
                        steps += 1
                        requested = sent.pop((event.run_id, event.seq - 1), None)
                        if requested is not None:
                            latencies.append((event.time - requested).total_seconds())
                    elif event.type == "run.started":
                        viewing = _view(stack.gateway_port, event.run_id)
                        viewers[event.run_id] = asyncio.create_task(viewing)
                    elif event.type == "run.finished":
                        finished.add(event.run_id)
        all_finished = time.perf_counter() - started
        await _projected(pool, run_ids, sum(events.values()))
        elapsed = time.perf_counter() - started
        cpu_after, wall_after = _cpu(processes), os.times()
        frames = await asyncio.wait_for(asyncio.gather(*viewers.values()), DONE_TIMEOUT)
        complete = sum(f == events[r] for f, r in zip(frames, viewers, strict=True))
    finally:
        for task in viewers.values():
            task.cancel()
        await stop_quietly(producer)
        await stop_quietly(consumer)
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    cpu["bench (publisher, log reader, viewers)"] = (
        wall_after.user - wall_before.user + wall_after.system - wall_before.system
    )
    return {
        "runs": runs,
        "steps": steps,
        "events": sum(events.values()),
        "seconds": round(elapsed, 2),
        "steps_per_s": round(steps / elapsed, 1),
        "seconds_until_all_finished": round(all_finished, 2),
        "projection_lag_after_last_finish_s": round(elapsed - all_finished, 3),
        "intent_to_outcome_ms_p50": round(1000 * statistics.median(latencies), 2),
        "intent_to_outcome_ms_p99": round(1000 * _percentile(latencies, 0.99), 2),
        # Viewers that got every event of their run from the gateway (archive + live).
        "viewers_complete": complete,
        "viewer_frames": sum(frames),
        "cpu_us_per_step": {
            name: round(1e6 * spent / max(steps, 1), 1) for name, spent in cpu.items()
        },
        "cpu_s": {name: round(spent, 2) for name, spent in cpu.items()},
    }


# --- where a worker's CPU goes --------------------------------------------------------------

#: (path fragment, function name or "*", stage), first match wins: the entry points of
#: each stage. A function matched by none is charged to the stages of its callers, in
#: proportion to the time it spent under each (see :func:`stage_times`).
STAGE_RULES: tuple[tuple[str, str, str], ...] = (
    ("oriole/kafka/codec.py", "decode_run_event", "decode"),
    ("oriole/kafka/codec.py", "command_from_message", "decode"),
    ("oriole/kafka/codec.py", "json_object", "decode"),
    ("oriole/kafka/codec.py", "decode_command", "decode"),
    ("oriole/events.py", "parse_run_event", "decode"),
    ("oriole/kafka/codec.py", "encode", "encode"),
    ("oriole/events.py", "dump_run_event", "encode"),
    ("oriole/run_state.py", "apply", "fold"),
    ("oriole/run_state.py", "apply_if_new", "fold"),
    ("streams/event_log.py", "fold", "fold"),
    ("oriole/rules.py", "*", "rules (intent → events)"),
    ("streams/maze_processor.py", "_handle_command", "rules (intent → events)"),
    ("oriole/agents/", "*", "decide"),
    ("oriole/telemetry/run_spans.py", "decision", "decide"),
    ("streams/agent_runner.py", "_decide", "decide"),
    ("streams/agent_runner.py", "_consider", "decide"),
    ("streams/agent_runner.py", "_send", "produce"),
    ("streams/maze_processor.py", "_send", "produce"),
    ("streams/maze_processor.py", "_flush", "produce"),
    ("streams/maze_processor.py", "_checkpoint", "produce"),
    ("aiokafka/producer/", "*", "produce"),
    ("aiokafka/consumer/", "*", "consume"),
    ("streams/agent_runner.py", "run", "consume"),
    ("streams/maze_processor.py", "run", "consume"),
    ("streams/maze_processor.py", "_process", "consume"),
    ("prometheus_client/", "*", "metrics, tracing, logs"),
    ("oriole/telemetry/", "*", "metrics, tracing, logs"),
    ("streams/metrics.py", "*", "metrics, tracing, logs"),
    ("logging/", "*", "metrics, tracing, logs"),
    ("asyncio/base_events.py", "_run_once", "event loop"),
    ("asyncio/events.py", "_run", "event loop"),
    ("selectors.py", "select", "event loop"),
    ("~", "<method 'run' of '_contextvars.Context' objects>", "event loop"),
    ("~", "<method 'poll' of 'select.epoll' objects>", "event loop"),
)
#: Where a function nobody classified lands when the event loop itself calls it (a task's
#: coroutine or a callback): by its module. The worker's sockets are Kafka connections.
FALLBACK_RULES: tuple[tuple[str, str], ...] = (
    ("aiokafka/producer/", "produce"),
    ("aiokafka/consumer/", "consume"),
    ("aiokafka/", "kafka network I/O (both directions)"),
    ("asyncio/selector_events.py", "kafka network I/O (both directions)"),
    ("asyncio/streams.py", "kafka network I/O (both directions)"),
    ("asyncio/", "event loop"),
    ("streams/", "other worker code"),
)

Key = tuple[str, int, str]
#: The event loop's calls of a task step or a callback: below them, :data:`FALLBACK_RULES`.
_LOOP_CALLS = (
    ("~", "<method 'run' of '_contextvars.Context' objects>"),
    ("asyncio/events.py", "_run"),
)


def _loop_call(key: Key) -> bool:
    return any(fragment in key[0] and name == key[2] for fragment, name in _LOOP_CALLS)


def _rule(key: Key) -> str | None:
    filename, _, name = key
    for fragment, function, stage in STAGE_RULES:
        if fragment in filename and function in ("*", name):
            return stage
    return None


def _fallback(key: Key) -> str:
    for fragment, stage in FALLBACK_RULES:
        if fragment in key[0]:
            return stage
    return "other"


def stage_times(stats: dict[Key, Any]) -> dict[str, float]:
    """Own time of every profiled function, charged to stages: a classified function's to
    its stage, another's to its callers' stages, split as its own time was between them."""
    shares: dict[Key, dict[str, float]] = {}

    def share(key: Key, seen: frozenset[Key]) -> dict[str, float]:
        if key in shares:
            return shares[key]
        stage = _rule(key)
        if stage is not None:
            shares[key] = {stage: 1.0}
            return shares[key]
        callers = stats[key][4] if key in stats else {}
        weights = {c: edge[2] for c, edge in callers.items() if c not in seen}
        total = sum(weights.values())
        mix: dict[str, float] = {}
        for caller, weight in weights.items():
            fraction = weight / total if total else 1 / len(weights)
            parent = {_fallback(key): 1.0} if _loop_call(caller) else share(caller, seen | {key})
            for name, part in parent.items():
                mix[name] = mix.get(name, 0.0) + fraction * part
        # Inside a recursion cycle the answer leaves out the cycle's edge: close enough.
        shares[key] = mix or {_fallback(key): 1.0}
        return shares[key]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # long caller chains
    times: dict[str, float] = {}
    for key, (_, _, own, _, _) in stats.items():
        for name, part in share(key, frozenset()).items():
            times[name] = times.get(name, 0.0) + own * part
    return times


def _stage_table(profile: Path, us_per_step: float) -> dict[str, Any]:
    """The profiled worker's time by stage: share of its profiled time, and that share of
    the unprofiled worker's CPU per step."""
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    times = stage_times(stats)
    total = sum(times.values()) or 1.0
    ordered = sorted(times.items(), key=lambda item: -item[1])
    return {
        name: {
            "share": round(spent / total, 3),
            "us_per_step": round(us_per_step * spent / total, 1),
        }
        for name, spent in ordered
    }


def _top_functions(profile: Path, count: int = 15) -> list[str]:
    """The functions with the most own time in the profile, for the report."""
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values()) or 1.0
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:count]
    return [
        f"{100 * v[2] / total:5.1f}%  {k[2]} ({'/'.join(Path(k[0]).parts[-2:])}:{k[1]})"
        for k, v in top
    ]


# --- the suite ------------------------------------------------------------------------------


async def _configuration(
    scratch: Path,
    broker: EmbeddedBroker,
    dsn: str,
    pool: Any,
    workers: int,
    run_sets: tuple[int, ...] | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Start a stack with ``workers`` worker processes and play each set of runs on it."""
    stack = Stack(scratch, broker.bootstrap_servers, dsn, workers, profile)
    try:
        await stack.start()
        processes = stack.processes()
        if broker.pid is not None:
            processes["broker (tansu)"] = psutil.Process(broker.pid)
        figures: dict[str, Any] = {}
        for runs in run_sets or RUN_SETS:
            if profile is not None:
                stack.signal("worker-0", signal.SIGUSR1)
            tag = f"{stack.prefix}-{runs}"
            figures[f"runs_{runs}"] = found = await _play(stack, pool, processes, runs, tag)
            _progress(
                f"{workers} worker(s){' (profiled)' if profile else ''}, {runs} run(s): "
                f"{found['steps_per_s']} steps/s in {found['seconds']} s"
            )
            if profile is not None:
                stack.signal("worker-0", signal.SIGUSR2)
                deadline = time.monotonic() + READY_TIMEOUT
                while not profile.exists():  # written by the worker on SIGUSR2
                    if time.monotonic() > deadline:
                        raise TimeoutError("the profiled worker wrote no profile")
                    await asyncio.sleep(0.1)
        return figures
    finally:
        await asyncio.to_thread(stack.close)


def _progress(what: str) -> None:
    """A line on stderr per step of the suite (stdout is for the JSON figures)."""
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _versus(figures: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "vs_raw_hop_latency_p50": compared(
            figures["intent_to_outcome_ms_p50"], raw["round_trip_ms_p50"], "ms"
        ),
        "vs_raw_hop_throughput": compared(figures["steps_per_s"], raw["msgs_per_s"], "per s"),
    }


async def _run() -> dict[str, Any]:
    database = f"oriole_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_server_dsn())
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            async with (
                EmbeddedBroker(log_dir=scratch) as broker,
                asyncpg.create_pool(_server_dsn(database), min_size=1, max_size=2) as pool,
            ):
                prepare_clients(True)
                async with pool.acquire() as conn:
                    await migrate(conn)  # once, before several services race to do it
                raw = await _raw_hop(broker.bootstrap_servers)
                result: dict[str, Any] = {"raw_kafka_hop": raw}
                dsn = _server_dsn(database)
                for workers in WORKER_COUNTS:
                    sets = await _configuration(scratch, broker, dsn, pool, workers)
                    for figures in sets.values():
                        figures |= _versus(figures, raw)
                    result[f"workers_{workers}"] = sets
                profile = scratch / "worker.prof"
                await _configuration(scratch, broker, dsn, pool, 1, (RUN_SETS[-1],), profile)
                result["worker_profile_top"] = _top_functions(profile)
                single = result["workers_1"][f"runs_{RUN_SETS[-1]}"]
                worker_us = single["cpu_us_per_step"]["worker-0"]
                result["worker_cpu_by_stage"] = _stage_table(profile, worker_us)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return _summary(result)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """The scaling ratio and the targets of issue 16 beside the figures."""
    last = f"runs_{RUN_SETS[-1]}"
    one, two = result["workers_1"][last], result["workers_2"][last]
    result["scaling_2_workers_vs_1"] = compared(two["steps_per_s"], one["steps_per_s"], "steps/s")
    best = max(one, two, key=lambda figures: figures["steps_per_s"])
    result["targets"] = {
        f"steps_per_s_ge_{TARGET_STEPS_PER_S:g}_with_{RUN_SETS[-1]}_runs": best["steps_per_s"]
        >= TARGET_STEPS_PER_S,
        "intent_to_outcome_p50_le_1.5x_raw_hop": all(
            (figures["vs_raw_hop_latency_p50"]["ratio"] or 0) <= TARGET_LATENCY_RATIO
            for figures in (one, two)
        ),
    }
    return result


def main() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
