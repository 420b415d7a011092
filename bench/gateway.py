"""Live fan-out through the gateway beside a raw websockets broadcast, in the same run.

An embedded broker, a gateway (with a pool on a scratch database) in this process, and 1,000
websocket viewers in two other processes: 20 runs, 50 viewers each. The runs are made in
memory first (random agents on generated mazes, not timed); their first event is archived
so every viewer is caught up and subscribed before anything is published. Then this process
publishes the rest of every run to the run events topic at a controlled rate, stamping each
event's ``time`` when it is published: first a steady phase, then a faster one. Viewers note
receive time minus event time (same machine, same clock) for every event frame.

The baseline, measured in the same run by the same viewer processes: a plain
``websockets`` server in this process that sends the same frames (the same bytes, on the
same rate schedule, stamped the same way) straight to the same number of clients with
``websockets.broadcast``: no Kafka, no hub, no queues. The rounds go raw, gateway,
gateway, raw, each server's two rounds pooled, so that load drifting on a shared machine
weighs on both alike; ``vs_raw_broadcast`` prints the gateway's figures beside the
baseline's with their ratio, and whether the targets of issue 16 are met. On a 2-core
machine the viewers compete with the server for the CPU, so the fast phase measures what the
whole machine sustains; that is why the gateway is compared with a broadcast that meets the
same viewers.

The server is ``ORIOLE_BENCH_DATABASE_URL`` (default: the local PostgreSQL with trust auth).
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.figures import compared

RUNS = 20
VIEWERS_PER_RUN = 50
VIEWER_PROCESSES = 2
#: Events per run in the steady phase, and the total rate of that phase (events/s): above
#: 10,000 deliveries/s with 50 viewers per run, the rate the latency target is set at.
STEADY_EVENTS = 100
STEADY_RATE = 220.0
#: Rate of the fast phase (the rest of every run): more than the machine can deliver.
FAST_RATE = 1000.0
ACTIONS = 250
T0 = datetime(2026, 11, 1, tzinfo=UTC)
_TIME_KEY = b'"time":"'
_SEQ_KEY = b'"seq":'
#: Targets of issue 16 for 1,000 viewers.
TARGET_P99_MS = 100.0
TARGET_DELIVERIES_PER_S = 10_000
TARGET_RATIO_OF_RAW = 0.7


# --- viewers (in child processes) -----------------------------------------------------------


def _viewer_process(jobs: Any, ready: Any, results: Any) -> None:
    """Serve rounds until told to stop (None): the raw broadcast's, then the gateway's."""
    while (job := jobs.get()) is not None:
        urls, boundary = job
        results.put(asyncio.run(_viewers(urls, boundary, ready)))


async def _viewers(urls: list[str], boundary: int, ready: Any) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    latencies: tuple[array[float], array[float]] = (array("d"), array("d"))
    last_receive = [0.0, 0.0]
    outcome = {"finished": 0, "lagging": 0, "other": 0}
    caught_up = 0
    all_caught_up = asyncio.Event()

    async def view(url: str) -> None:
        nonlocal caught_up
        # No keepalive from the viewers: a pong can wait behind many frames in a loaded
        # server's buffer, and the point here is every frame's latency, not liveness.
        async with connect(
            url, compression=None, max_size=None, open_timeout=60, ping_interval=None
        ) as ws:
            async for message in ws:
                now = time.time()
                data = message if isinstance(message, bytes) else message.encode()
                if data.startswith(b'{"kind":"event"'):
                    at = data.index(_SEQ_KEY) + len(_SEQ_KEY)
                    seq = int(data[at : data.index(b",", at)])
                    if seq == 1:
                        continue  # from the archive, not live
                    at = data.index(_TIME_KEY) + len(_TIME_KEY)
                    sent = datetime.fromisoformat(data[at : data.index(b'"', at)].decode())
                    phase = 0 if seq <= boundary else 1
                    latencies[phase].append(now - sent.timestamp())
                    last_receive[phase] = max(last_receive[phase], now)
                elif data.startswith(b'{"kind":"caught_up"'):
                    caught_up += 1
                    if caught_up == len(urls):
                        all_caught_up.set()
                elif data.startswith(b'{"kind":"finished"'):
                    outcome["finished"] += 1
                elif data.startswith(b'{"kind":"lagging"'):
                    outcome["lagging"] += 1
                else:
                    outcome["other"] += 1

    tasks = []
    for url in urls:
        tasks.append(asyncio.create_task(view(url)))
        await asyncio.sleep(0.002)  # do not open 500 connections in the same instant
    waiting = asyncio.create_task(all_caught_up.wait())
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    ready.put(caught_up)
    done = await asyncio.gather(*tasks, return_exceptions=True)
    waiting.cancel()
    errors = [repr(d) for d in done if isinstance(d, BaseException)]
    return {
        "latencies": [lat.tobytes() for lat in latencies],
        "last_receive": last_receive,
        "outcome": outcome,
        "errors": errors[:5],
        "error_count": len(errors),
    }


# --- the gateway side (this process) --------------------------------------------------------


def _server_dsn(database: str | None = None) -> str:
    base = os.environ.get(
        "ORIOLE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    if database is None:
        return base
    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


async def _make_runs() -> list[list[Any]]:
    from oriole import generators
    from oriole.agents.base import Observation
    from oriole.agents.builtin import create_builtin
    from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
    from oriole.local_run import LocalRun, ManualClock

    runs: list[list[Any]] = []
    for index in range(RUNS):
        maze = generators.generate("backtracker", 41, 41, seed=index, name=f"bench-gw-{index}")
        request = ExperimentStart(
            run_id=f"bench-gw-{index:02d}",
            maze=MazeData.from_maze(maze),
            agent=AgentSpec(provider="builtin", model="random", seed=index),
            limits=RunLimits(
                max_footsteps=None,
                max_actions=ACTIONS,
                max_duration_seconds=None,
                goal_rule="reached",
            ),
        )
        clock = ManualClock(T0)
        run = LocalRun(request, maze, clock=clock)
        agent = create_builtin(request.agent)
        while not run.state.is_finished:
            decision = await agent.decide(Observation.from_state(run.state), run.state.actions)
            clock.advance(0.5)
            run.send(decision.to_intent(request.run_id, run.state.seq, run.state.turn))
        runs.append(run.events)
    return runs


def _round_robin(runs: list[list[Any]], first: int, last: int | None) -> list[Any]:
    """Events with ``first <= seq <= last`` of every run, interleaved (in order per run)."""
    merged: list[Any] = []
    longest = max(len(run) for run in runs)
    for i in range(first - 1, longest if last is None else min(last, longest)):
        merged.extend(run[i] for run in runs if i < len(run))
    return merged


#: Hands one stamped event (the model and its JSON bytes) to the system under test.
Deliver = Callable[[Any, bytes], Awaitable[None]]


async def _publish(deliver: Deliver, events: list[Any], rate: float) -> float:
    """Deliver at ``rate`` events/s, each stamped with its publication time; returns start."""
    from oriole.events import dump_run_event

    loop = asyncio.get_running_loop()
    started = loop.time()
    wall = time.time()
    for i, event in enumerate(events):
        delay = started + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stamped = event.model_copy(update={"time": datetime.now(UTC)})
        await deliver(stamped, dump_run_event(stamped))
    return wall


class RawBroadcast:
    """The baseline: a plain websockets server that broadcasts each frame to its run's
    clients the moment it is published (``websockets.broadcast``: no Kafka, no hub, no
    per-client queue, no back-pressure). A client gets the run's first event and
    ``caught_up`` on connecting, as from the gateway's archive, and ``finished`` and a
    normal close after ``run.finished``, so the viewers cannot tell the two servers apart."""

    def __init__(self, firsts: dict[str, Any]) -> None:
        from gateway.frames import event_frame
        from oriole.events import dump_run_event

        self.firsts = {run_id: event_frame(dump_run_event(e)) for run_id, e in firsts.items()}
        self.clients: dict[str, set[Any]] = {run_id: set() for run_id in firsts}
        self.ended = {run_id: asyncio.Event() for run_id in firsts}
        self.server: Any = None

    async def start(self) -> int:
        from websockets.asyncio.server import serve

        from gateway.feeds import WRITE_LIMIT

        self.server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            compression=None,
            write_limit=WRITE_LIMIT,
            # No keepalive: with no back-pressure a ping can wait behind seconds of frames
            # in a slow client's buffer, and the timeout would cut the baseline short.
            ping_interval=None,
        )
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handler(self, ws: Any) -> None:
        from gateway.frames import caught_up_frame

        run_id = ws.request.path.rsplit("/", 1)[-1]
        await ws.send(self.firsts[run_id], text=True)
        await ws.send(caught_up_frame(1), text=True)
        self.clients[run_id].add(ws)
        try:
            await self.ended[run_id].wait()
        finally:
            self.clients[run_id].discard(ws)

    async def deliver(self, event: Any, value: bytes) -> None:
        from websockets.asyncio.server import broadcast

        from gateway.frames import event_frame, finished_frame

        clients = self.clients[event.run_id]
        broadcast(clients, event_frame(value), text=True)
        if event.type == "run.finished":
            broadcast(clients, finished_frame(event.seq), text=True)
            self.ended[event.run_id].set()  # each handler returns: a normal close

    async def flush(self) -> None:
        """Nothing is buffered here: every frame went to the transports when delivered."""


def _cpu_since(before: os.times_result) -> tuple[float, float]:
    """User and system CPU seconds of this process since ``before``."""
    now = os.times()
    return now.user - before.user, now.system - before.system


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Phase:
    """What the viewers saw of one phase of one round (rounds of a server are pooled)."""

    name: str
    published: int
    latencies: list[float]
    seconds: float
    cpu: tuple[float, float]


def _pooled(phases: list[Phase]) -> dict[str, Any]:
    """The figures of one phase over every round of a server: all latencies together,
    deliveries over the phases' summed durations, CPU summed."""
    latencies = [value for phase in phases for value in phase.latencies]
    seconds = max(sum(phase.seconds for phase in phases), 1e-9)
    published = sum(phase.published for phase in phases)
    user = sum(phase.cpu[0] for phase in phases)
    system = sum(phase.cpu[1] for phase in phases)
    figures: dict[str, Any] = {
        "phase": phases[0].name,
        "rounds": len(phases),
        "events_published": published,
        "deliveries_expected": published * VIEWERS_PER_RUN,
        "deliveries": len(latencies),
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(len(latencies) / seconds),
        # This process runs the server and the publisher (the viewers run elsewhere);
        # system time includes the kernel's loopback TCP work for every frame.
        "main_process_user_cpu_s": round(user, 2),
        "main_process_system_cpu_s": round(system, 2),
        "main_process_cpu_us_per_delivery": round(
            1e6 * (user + system) / max(len(latencies), 1), 1
        ),
    }
    if latencies:
        figures |= {
            "latency_ms_p50": round(1000 * statistics.median(latencies), 2),
            "latency_ms_p99": round(1000 * _percentile(latencies, 0.99), 2),
            "latency_ms_max": round(1000 * max(latencies), 2),
        }
    return figures


class Viewers:
    """The viewer processes, kept for both rounds: each round is one job per process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.jobs = [context.Queue() for _ in range(VIEWER_PROCESSES)]
        self.ready, self.results = context.Queue(), context.Queue()
        self.processes = [
            context.Process(target=_viewer_process, args=(jobs, self.ready, self.results))
            for jobs in self.jobs
        ]

    def start(self) -> None:
        for process in self.processes:
            process.daemon = True
            process.start()

    async def connect(self, urls: list[str], boundary: int) -> int:
        """Hand out the urls and wait until every viewer is caught up; returns how many are."""
        share = len(urls) // VIEWER_PROCESSES
        for p, jobs in enumerate(self.jobs):
            jobs.put((urls[p * share : (p + 1) * share], boundary))
        return sum([await asyncio.to_thread(self.ready.get, True, 300) for _ in self.jobs])

    async def reports(self) -> list[dict[str, Any]]:
        """Each process's report, once all its connections were closed by the server."""
        return [await asyncio.to_thread(self.results.get, True, 600) for _ in self.jobs]

    def close(self) -> None:
        for process, jobs in zip(self.processes, self.jobs, strict=True):
            if process.pid is None:
                continue  # never started
            jobs.put(None)
        for process in self.processes:
            if process.pid is None:
                continue
            process.join(30)
            if process.is_alive():
                process.terminate()
                process.join(10)


@dataclass
class Round:
    """One system under test: where viewers connect, and how an event is handed to it."""

    name: str
    port: int
    deliver: Deliver
    flush: Callable[[], Awaitable[None]]


async def _round(round_: Round, viewers: Viewers, runs: list[list[Any]]) -> dict[str, Any]:
    """Connect every viewer to ``round_``, publish both phases, and collect what they saw."""
    boundary = 1 + STEADY_EVENTS
    urls = [
        f"ws://127.0.0.1:{round_.port}/ws/runs/{runs[i % RUNS][0].run_id}"
        for i in range(RUNS * VIEWERS_PER_RUN)
    ]
    connected = await viewers.connect(urls, boundary)
    steady = _round_robin(runs, 2, boundary)
    fast = _round_robin(runs, boundary + 1, None)
    cpu = os.times()
    steady_start = await _publish(round_.deliver, steady, STEADY_RATE)
    await round_.flush()
    steady_cpu = _cpu_since(cpu)
    cpu = os.times()
    fast_start = await _publish(round_.deliver, fast, FAST_RATE)
    await round_.flush()
    reports = await viewers.reports()
    fast_cpu = _cpu_since(cpu)
    phases = []
    for index, (name, published, started, spent) in enumerate(
        (
            ("steady", len(steady), steady_start, steady_cpu),
            ("fast", len(fast), fast_start, fast_cpu),
        )
    ):
        latencies: list[float] = []
        ended = started
        for report in reports:
            values = array("d")
            values.frombytes(report["latencies"][index])
            latencies.extend(values)
            ended = max(ended, report["last_receive"][index])
        phases.append(Phase(name, published, latencies, ended - started, spent))
    outcome = {key: sum(r["outcome"][key] for r in reports) for key in reports[0]["outcome"]}
    return {
        "phases": phases,
        "viewers_connected": connected,
        "viewers_finished": outcome["finished"],
        "viewers_dropped_lagging": outcome["lagging"],
        "viewer_errors": sum(r["error_count"] for r in reports),
        "viewer_error_examples": [e for r in reports for e in r["errors"]][:3],
    }


def _server_figures(name: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One server's rounds as one set of figures (counts summed, phases pooled)."""
    counted = ("viewers_connected", "viewers_finished", "viewers_dropped_lagging")
    return {
        "server": name,
        "rounds": len(rounds),
        "phases": [_pooled([r["phases"][i] for r in rounds]) for i in range(2)],
        **{key: sum(r[key] for r in rounds) for key in (*counted, "viewer_errors")},
        "viewer_error_examples": [e for r in rounds for e in r["viewer_error_examples"]][:3],
    }


async def _raw_round(viewers: Viewers, runs: list[list[Any]]) -> dict[str, Any]:
    """One round against a fresh :class:`RawBroadcast`."""
    raw_server = RawBroadcast({run[0].run_id: run[0] for run in runs})
    try:
        port = await raw_server.start()
        baseline = Round("raw websockets broadcast", port, raw_server.deliver, raw_server.flush)
        return await _round(baseline, viewers, runs)
    finally:
        await raw_server.stop()


def _versus(gateway: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The gateway's figures beside the raw broadcast's, phase by phase, and the targets."""
    versus: dict[str, Any] = {}
    for ours, theirs in zip(gateway["phases"], raw["phases"], strict=True):
        name = ours["phase"]
        versus[f"{name}_deliveries_per_s"] = compared(
            ours["deliveries_per_s"], theirs["deliveries_per_s"], "deliveries/s"
        )
        versus[f"{name}_latency_ms_p99"] = compared(
            ours.get("latency_ms_p99", 0.0), theirs.get("latency_ms_p99", 0.0), "ms"
        )
        # The steadiest figure on a shared machine: CPU time, not wall time.
        versus[f"{name}_cpu_us_per_delivery"] = compared(
            ours["main_process_cpu_us_per_delivery"],
            theirs["main_process_cpu_us_per_delivery"],
            "µs",
        )
    steady = gateway["phases"][0]
    complete = all(
        phase["deliveries"] == phase["deliveries_expected"] for phase in gateway["phases"]
    )
    versus["targets"] = {
        "p99_ms_at_steady_rate_le_100": steady.get("latency_ms_p99", float("inf")) <= TARGET_P99_MS
        and steady["deliveries_per_s"] >= TARGET_DELIVERIES_PER_S,
        "sustained_ge_70_percent_of_raw": (versus["fast_deliveries_per_s"]["ratio"] or 0)
        >= TARGET_RATIO_OF_RAW,
        "every_frame_delivered": complete,
    }
    return versus


async def _measure(bootstrap: str, database: str, home: Path, viewers: Viewers) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    from gateway.server import Gateway
    from oriole.environment.catalogue import MazeCatalogue
    from oriole.environment.settings import load_settings
    from oriole.kafka import ensure_topics
    from oriole.kafka.topics import Topics
    from projections.migrate import migrate
    from projections.store import store_batch

    logging.getLogger("oriole.gateway").setLevel(logging.ERROR)  # no auth warning: loopback
    runs = await _make_runs()
    boundary = 1 + STEADY_EVENTS
    assert all(len(run) > boundary for run in runs), "a run is too short for both phases"
    # Rounds in the order raw, gateway, gateway, raw: a load that drifts during the suite
    # (other work on a shared machine) weighs on both servers alike.
    raw = [await _raw_round(viewers, runs)]
    settings = load_settings(
        env_file=None,
        home=home,
        kafka_bootstrap_servers=bootstrap,
        kafka_broker_kind="tansu",
        kafka_topic_prefix=f"bench-gw-{uuid.uuid4().hex[:6]}",
    ).model_copy(
        # All 1,000 viewers connect from 127.0.0.1: no per-address rate limit for the test.
        update={"gateway_port": 0, "gateway_rate_limit_per_address": 0}
    )
    topics = Topics.from_settings(settings)
    await ensure_topics(bootstrap, topics.specs)
    pool = await asyncpg.create_pool(_server_dsn(database), min_size=2, max_size=8)
    gateway: Gateway | None = None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await store_batch(conn, [run[0] for run in runs])  # viewers catch up on seq 1
        gateway = Gateway(
            settings,
            bootstrap_servers=bootstrap,
            topics=topics,
            pool=pool,
            find_maze=MazeCatalogue.from_settings(settings).get,
        )
        await gateway.start()
        await producer.start()

        async def send(event: Any, value: bytes) -> None:
            await producer.send(topics.runs_events, value, key=event.run_id.encode())

        system = Round("oriole gateway", gateway.port, send, producer.flush)
        ours = [await _round(system, viewers, runs) for _ in range(2)]
    finally:
        await producer.stop()
        if gateway is not None:
            await gateway.stop()
        await pool.close()
    raw.append(await _raw_round(viewers, runs))
    baseline = _server_figures("raw websockets broadcast", raw)
    figures = _server_figures("oriole gateway", ours)
    return {
        "runs": RUNS,
        "viewers": RUNS * VIEWERS_PER_RUN,
        "viewer_processes": VIEWER_PROCESSES,
        "steady_rate_events_per_s": STEADY_RATE,
        "fast_rate_events_per_s": FAST_RATE,
        "raw_broadcast": baseline,
        "gateway": figures,
        "vs_raw_broadcast": _versus(figures, baseline),
    }


async def _run() -> dict[str, Any]:
    from oriole.kafka import EmbeddedBroker, prepare_clients

    database = f"oriole_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_server_dsn())
    await admin.execute(f'CREATE DATABASE "{database}"')
    viewers = Viewers()
    try:
        viewers.start()
        with tempfile.TemporaryDirectory() as scratch:
            broker = EmbeddedBroker(log_dir=Path(scratch))
            await broker.start()
            try:
                prepare_clients(True)
                home = Path(scratch) / "home"
                return await _measure(broker.bootstrap_servers, database, home, viewers)
            finally:
                await broker.stop()
    finally:
        await asyncio.to_thread(viewers.close)
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
