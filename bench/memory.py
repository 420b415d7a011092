"""Memory: a worker's resident memory per active run, and the embedded broker's per event.

Worker: one ``python -m oriole worker`` process on an embedded broker (configured only through
``ORIOLE_*`` variables). Its RSS is sampled idle, with 50 and then 200 active frontier runs
(101x101 mazes, ``goal_rule=reached`` and no footstep limit, so they stay active for the
whole measurement; each sample is taken once every run has made some steps), and after every
run was cancelled and had finished; then a second wave of as many runs does the same, so that
what finished runs really leave behind is told apart from memory Python keeps for reuse.

Broker: a fresh embedded broker (Tansu, memory store: it keeps every record until it stops,
with neither retention nor compaction) receives records the size of one encoded
``action.completed`` in chunks; its RSS is sampled after each, and the slope of a least
squares line gives the bytes it holds per event. That, divided into the memory one can spare,
says how long an ``oriole up`` session can run (``docs/performance.md``, README).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from aiokafka import TopicPartition

from bench.backbone import _typical_event
from bench.pipeline import READY_TIMEOUT, healthy
from bench.processes import Service, service_env
from oriole import generators
from oriole.events import parse_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.intents import CancelRequest
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import encode
from oriole.kafka.embedded import free_port
from oriole.kafka.topics import Topics, TopicSpec

ACTIVE_SETS = (50, 200)
MAZE_SIZE = 101
MAZES = 20
#: Steps every run has made before a sample is taken.
STEPS_BEFORE_SAMPLE = 20
#: Broker: records per chunk, and chunks.
CHUNK = 50_000
CHUNKS = 6
TIMEOUT = 600.0
MIB = 1024 * 1024


def _rss(process: psutil.Process) -> int:
    return int(process.memory_info().rss)


class _Log:
    """Reads the run events topic: steps per run, and which runs have finished."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.topic = topics.runs_events
        self.consumer = make_consumer(
            bootstrap_servers=bootstrap, group_id=None, client_id="bench-memory"
        )
        self.steps: Counter[str] = Counter()
        self.finished: set[str] = set()
        self.events = 0

    async def start(self) -> None:
        await self.consumer.start()
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self.consumer._client.force_metadata_update()
            partitions = self.consumer.partitions_for_topic(self.topic)
        self.consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])

    def all_stepped(self, run_ids: list[str]) -> bool:
        """Every run has made :data:`STEPS_BEFORE_SAMPLE` steps (or has already ended)."""
        steps, finished = self.steps, self.finished
        return all(steps[r] >= STEPS_BEFORE_SAMPLE or r in finished for r in run_ids)

    async def until(self, done: Any, what: str) -> None:
        """Read until ``done()`` holds (generous deadline)."""
        deadline = time.monotonic() + TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"memory suite: {what} not reached in {TIMEOUT} s")
            batches = await self.consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = parse_run_event(record.value)
                    self.events += 1
                    if event.type == "action.completed":
                        self.steps[event.run_id] += 1
                    elif event.type == "run.finished":
                        self.finished.add(event.run_id)


def _starts(first: int, count: int) -> list[ExperimentStart]:
    mazes = [
        MazeData.from_maze(generators.generate("backtracker", MAZE_SIZE, MAZE_SIZE, seed=s))
        for s in range(MAZES)
    ]
    return [
        ExperimentStart(
            run_id=f"bench-mem-{i:04d}",
            maze=mazes[i % MAZES],
            agent=AgentSpec(provider="builtin", model="frontier", seed=i),
            limits=RunLimits(max_footsteps=None, max_actions=1_000_000, goal_rule="reached"),
        )
        for i in range(first, first + count)
    ]


async def _worker_memory(scratch: Path) -> dict[str, Any]:
    """RSS of one worker process: idle, with 50 and 200 active runs, after they ended, and
    the same again for a second wave."""
    broker = EmbeddedBroker(log_dir=scratch)
    await broker.start()
    worker: Service | None = None
    log: _Log | None = None
    producer = None
    try:
        prefix = f"bench-mem-{uuid.uuid4().hex[:8]}"
        topics = Topics(prefix)
        bootstrap = broker.bootstrap_servers
        await ensure_topics(bootstrap, topics.specs)
        port = free_port()
        home = scratch / "home"
        home.mkdir()
        env = service_env(home, bootstrap, prefix, "", ORIOLE_METRICS_PORT=str(port))
        worker = Service("worker", "worker", env, scratch / "worker.log")
        worker.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not await asyncio.to_thread(healthy, port):
            if not worker.alive or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not get ready; see {worker.log_path}")
            await asyncio.sleep(0.2)
        assert worker.process is not None
        process = psutil.Process(worker.process.pid)
        log = _Log(bootstrap, topics)
        await log.start()
        producer = make_producer(bootstrap, client_id="bench-memory")
        await producer.start()
        samples: list[dict[str, Any]] = [{"after": "start", "rss_mib": _rss(process) / MIB}]
        started: list[str] = []

        def sample(after: str) -> None:
            samples.append(
                {
                    "after": after,
                    "active_runs": len(set(started) - log.finished),
                    "finished_runs": len(log.finished),
                    "steps_so_far": sum(log.steps.values()),
                    "rss_mib": _rss(process) / MIB,
                }
            )

        for wave in (1, 2):
            first = len(started)
            for total in ACTIVE_SETS:
                batch = _starts(len(started), first + total - len(started))
                await _send(producer, topics.experiments_start, batch)
                started.extend(request.run_id for request in batch)
                await log.until(lambda: log.all_stepped(started), f"{total} runs with some steps")
                sample(f"wave {wave}: {total} active")
            cancels = [CancelRequest(run_id=r, reason="memory benchmark") for r in started[first:]]
            await _send(producer, topics.runs_control, cancels)
            await log.until(lambda: log.finished >= set(started), "every run finished")
            sample(f"wave {wave}: all finished")
    finally:
        if producer is not None:
            await stop_quietly(producer)
        if log is not None:
            await stop_quietly(log.consumer)
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        await broker.stop()
    idle = samples[0]["rss_mib"]
    first_wave = {item["after"]: item for item in samples}
    per_run = {
        f"{total} active": round(
            (first_wave[f"wave 1: {total} active"]["rss_mib"] - idle) * 1024 / total, 1
        )
        for total in ACTIVE_SETS
    }
    last = ACTIVE_SETS[-1]
    ended_1 = first_wave["wave 1: all finished"]["rss_mib"]
    ended_2 = first_wave["wave 2: all finished"]["rss_mib"]
    for item in samples:
        item["rss_mib"] = round(item["rss_mib"], 1)
    return {
        "maze": f"{MAZE_SIZE}x{MAZE_SIZE}",
        "samples": samples,
        "kib_per_active_run": per_run,
        # RSS a finished run leaves behind: after the first wave (what Python keeps of the
        # high-water mark, plus whatever is really retained), and what a second wave of as
        # many runs adds on top (only what is really retained per finished run).
        "kib_per_finished_run_after_wave_1": round((ended_1 - idle) * 1024 / last, 1),
        "kib_per_finished_run_added_by_wave_2": round((ended_2 - ended_1) * 1024 / last, 1),
    }


async def _send(producer: Any, topic: str, messages: list[Any]) -> None:
    for message in messages:
        out = encode(topic, message, message.run_id)
        await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
    await producer.flush()


async def _broker_memory(scratch: Path) -> dict[str, Any]:
    """The embedded broker's RSS as records of a typical event's size pile up in it."""
    message = await _typical_event()
    broker = EmbeddedBroker(log_dir=scratch)
    await broker.start()
    producer = None
    try:
        assert broker.pid is not None
        process = psutil.Process(broker.pid)
        spec = TopicSpec(prefix=f"bench-mem-{uuid.uuid4().hex[:8]}", suffix="events", partitions=4)
        await ensure_topics(broker.bootstrap_servers, [spec])
        producer = make_producer(broker.bootstrap_servers, client_id="bench-memory")
        await producer.start()
        points = [(0, _rss(process))]
        for chunk in range(CHUNKS):
            for i in range(CHUNK):
                key = f"run-{(chunk * CHUNK + i) % 1000}".encode()
                await producer.send(spec.name, message.value, key=key, headers=message.headers)
            await producer.flush()
            points.append(((chunk + 1) * CHUNK, _rss(process)))
    finally:
        if producer is not None:
            await stop_quietly(producer)
        await broker.stop()
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    return {
        "record_value_bytes": len(message.value),
        "record_header_bytes": sum(len(k) + len(v) for k, v in message.headers),
        "events": points[-1][0],
        "rss_mib": [round(y / MIB, 1) for _, y in points],
        "bytes_per_event": round(slope),
        "overhead_vs_value": round(slope / len(message.value), 2),
        "million_events_per_gib": round(1024**3 / slope / 1e6, 2) if slope > 0 else None,
    }


async def _run() -> dict[str, Any]:
    prepare_clients(True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "worker").mkdir()
        (root / "broker").mkdir()
        worker = await _worker_memory(root / "worker")
        broker = await _broker_memory(root / "broker")
    return {"worker": worker, "embedded_broker": broker}


def main() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
