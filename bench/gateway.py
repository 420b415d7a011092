"""Live fan-out through the gateway: deliveries per second and event-to-client latency.

An embedded broker, a gateway (with a pool on a scratch database) in this process, and 500
websocket viewers in two other processes: 10 runs, 50 viewers each. The runs are made in
memory first (random agents on generated mazes, not timed); their first event is archived
so every viewer is caught up and subscribed before anything is published. Then this process
publishes the rest of every run to the run events topic at a controlled rate, stamping each
event's ``time`` when it is published: first a steady phase, then a faster one. Viewers note
receive time minus event time (same machine, same clock) for every event frame.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

RUNS = 10
VIEWERS_PER_RUN = 50
VIEWER_PROCESSES = 2
#: Events per run in the steady phase, and the total rate of that phase (events/s).
STEADY_EVENTS = 300
STEADY_RATE = 200.0
#: Rate of the fast phase (the rest of every run).
FAST_RATE = 1000.0
ACTIONS = 420
T0 = datetime(2026, 11, 1, tzinfo=UTC)
_TIME_KEY = b'"time":"'
_SEQ_KEY = b'"seq":'


# --- viewers (in child processes) -----------------------------------------------------------


def _viewer_process(urls: list[str], boundary: int, ready: Any, results: Any) -> None:
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
        async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
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
        await asyncio.sleep(0.002)  # do not open 250 connections in the same instant
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


async def _publish(producer: Any, topic: str, events: list[Any], rate: float) -> float:
    """Publish at ``rate`` events/s, each stamped with its publication time; returns start."""
    from oriole.events import dump_run_event

    loop = asyncio.get_running_loop()
    started = loop.time()
    wall = time.time()
    for i, event in enumerate(events):
        delay = started + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stamped = event.model_copy(update={"time": datetime.now(UTC)})
        await producer.send(topic, dump_run_event(stamped), key=event.run_id.encode())
    await producer.flush()
    return wall


def _cpu_since(before: os.times_result) -> tuple[float, float]:
    """User and system CPU seconds of this process since ``before``."""
    now = os.times()
    return now.user - before.user, now.system - before.system


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _phase(
    name: str,
    events: int,
    latencies: list[float],
    started: float,
    ended: float,
    cpu: tuple[float, float],
) -> dict[str, Any]:
    seconds = max(ended - started, 1e-9)
    user, system = cpu
    figures: dict[str, Any] = {
        "phase": name,
        "events_published": events,
        "deliveries_expected": events * VIEWERS_PER_RUN,
        "deliveries": len(latencies),
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(len(latencies) / seconds),
        # This process runs the gateway and the publisher (the viewers run elsewhere);
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


async def _measure(bootstrap: str, database: str, home: Path) -> dict[str, Any]:
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
    settings = load_settings(
        env_file=None,
        home=home,
        kafka_bootstrap_servers=bootstrap,
        kafka_broker_kind="tansu",
        kafka_topic_prefix=f"bench-gw-{uuid.uuid4().hex[:6]}",
    ).model_copy(update={"gateway_port": 0})
    topics = Topics.from_settings(settings)
    await ensure_topics(bootstrap, topics.specs)
    pool = await asyncpg.create_pool(_server_dsn(database), min_size=2, max_size=8)
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
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    await producer.start()
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    urls = [
        f"ws://127.0.0.1:{gateway.port}/ws/runs/{runs[i % RUNS][0].run_id}"
        for i in range(RUNS * VIEWERS_PER_RUN)
    ]
    share = len(urls) // VIEWER_PROCESSES
    processes = [
        context.Process(
            target=_viewer_process,
            args=(urls[p * share : (p + 1) * share], boundary, ready, results),
            daemon=True,
        )
        for p in range(VIEWER_PROCESSES)
    ]
    try:
        for process in processes:
            process.start()
        connected = [await asyncio.to_thread(ready.get, True, 300) for _ in processes]
        steady = _round_robin(runs, 2, boundary)
        fast = _round_robin(runs, boundary + 1, None)
        cpu = os.times()
        steady_start = await _publish(producer, topics.runs_events, steady, STEADY_RATE)
        steady_cpu = _cpu_since(cpu)
        cpu = os.times()
        fast_start = await _publish(producer, topics.runs_events, fast, FAST_RATE)
        reports = [await asyncio.to_thread(results.get, True, 600) for _ in processes]
        fast_cpu = _cpu_since(cpu)
    finally:
        await producer.stop()
        await gateway.stop()
        await pool.close()
        for process in processes:
            if process.pid is None:
                continue  # never started
            process.join(30)
            if process.is_alive():
                process.terminate()
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
        phases.append(_phase(name, published, latencies, started, ended, spent))
    outcome = {key: sum(r["outcome"][key] for r in reports) for key in reports[0]["outcome"]}
    return {
        "runs": RUNS,
        "viewers": len(urls),
        "viewers_connected": sum(connected),
        "steady_rate_events_per_s": STEADY_RATE,
        "fast_rate_events_per_s": FAST_RATE,
        "phases": phases,
        "viewers_finished": outcome["finished"],
        "viewers_dropped_lagging": outcome["lagging"],
        "viewer_errors": sum(r["error_count"] for r in reports),
        "viewer_error_examples": [e for r in reports for e in r["errors"]][:3],
    }


async def _run() -> dict[str, Any]:
    from oriole.kafka import EmbeddedBroker, prepare_clients

    database = f"oriole_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_server_dsn())
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory() as scratch:
            broker = EmbeddedBroker(log_dir=Path(scratch))
            await broker.start()
            try:
                prepare_clients(True)
                return await _measure(broker.bootstrap_servers, database, Path(scratch) / "home")
            finally:
                await broker.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
