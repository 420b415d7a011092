"""End-to-end agent steps per second through Kafka, and intent-to-outcome latency.

Starts the embedded broker and one worker in this process, publishes N frontier runs on
generated mazes at once, and reads the run logs until every run has finished. Latency is
measured from the logs themselves: the intent's `sent_at` (agent runner clock) to the
`action.completed` event's time (maze processor clock), same machine.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oriole import generators
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import load_settings
from oriole.events import ActionCompleted, ActionRequested, parse_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients
from oriole.kafka.topics import Topics
from streams.worker import Worker


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _measure(bootstrap: str, home: Path, runs: int) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        env_file=None,
        home=home,
        kafka_bootstrap_servers=bootstrap,
        kafka_broker_kind="tansu",
        kafka_topic_prefix=prefix,
    )
    topics = Topics.from_settings(settings)
    await ensure_topics(bootstrap, topics.specs)
    worker = Worker.create(settings, bootstrap, topics, MazeCatalogue.from_settings(settings).get)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await worker.wait_ready()
    requests = [
        ExperimentStart(
            run_id=f"bench-{i}",
            maze=MazeData.from_maze(generators.generate("backtracker", 61, 61, seed=i)),
            agent=AgentSpec(provider="builtin", model="frontier", seed=i),
            limits=RunLimits(max_footsteps=400, max_actions=400),
        )
        for i in range(runs)
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    parts = consumer.partitions_for_topic(topics.runs_events)
    if parts is None:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topics.runs_events)
    consumer.assign([TopicPartition(topics.runs_events, p) for p in parts])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 << 20)
    await producer.start()
    started = time.perf_counter()
    for request in requests:
        await producer.send(topics.experiments_start, request.model_dump_json().encode())
    await producer.flush()
    finished: set[str] = set()
    steps = 0
    sent: dict[tuple[str, int], Any] = {}
    latencies: list[float] = []
    while len(finished) < runs:
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                event = parse_run_event(record.value)
                if isinstance(event, ActionRequested):
                    sent[(event.run_id, event.seq)] = event.payload.sent_at
                elif isinstance(event, ActionCompleted):
                    steps += 1
                    requested = sent.pop((event.run_id, event.seq - 1), None)
                    if requested is not None:
                        latencies.append((event.time - requested).total_seconds())
                elif event.type == "run.finished":
                    finished.add(event.run_id)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await producer.stop()
    await consumer.stop()
    return {
        "runs": runs,
        "steps": steps,
        "seconds": round(elapsed, 2),
        "steps_per_s": round(steps / elapsed, 1),
        "intent_to_outcome_ms_p50": round(1000 * statistics.median(latencies), 2),
        "intent_to_outcome_ms_p99": round(1000 * _percentile(latencies, 0.99), 2),
    }


async def _main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        broker = EmbeddedBroker(log_dir=Path(scratch))
        await broker.start()
        try:
            prepare_clients(True)
            single = await _measure(broker.bootstrap_servers, Path(scratch) / "a", 1)
            fifty = await _measure(broker.bootstrap_servers, Path(scratch) / "b", 50)
        finally:
            await broker.stop()
    return {"frontier_1_run": single, "frontier_50_runs": fifty}


def main() -> dict[str, Any]:
    return asyncio.run(_main())
