"""The batch scheduler on a real broker: a grid runs to its end within its cap, survives a
killed worker without launching a run twice, and a bad spec launches nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oriole.batch_events import (
    BatchEvent,
    BatchFinished,
    BatchRejected,
    BatchRequest,
    RunEnded,
    RunLaunched,
    parse_batch_event,
)
from oriole.events import RunStarted
from oriole.kafka.codec import encode
from tests.kafka_support import (
    EVENT_TIMEOUT,
    Stack,
    TopicReader,
    make_stack,
    publish,
    run_events,
    running_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


def grid(batch_id: str, *, max_in_flight: int = 4, **extra: Any) -> dict[str, Any]:
    """3 built-in agents x 4 generated mazes x 5 repetitions from a random start = 60 runs."""
    return {
        "batch_id": batch_id,
        "name": "three agents, four mazes",
        "agents": ["frontier", "wall-follower", "random"],
        "mazes": [{"generator": "backtracker", "width": 15, "height": 15, "seeds": [1, 2, 3, 4]}],
        "starts": {"random": 1, "seed": 3},
        "repetitions": 5,
        "limits": {"max_footsteps": 60, "max_actions": 120},
        "caps": {"max_in_flight": max_in_flight},
        **extra,
    }


async def request(stack: Stack, spec: dict[str, Any]) -> None:
    message = BatchRequest(batch_id=spec["batch_id"], spec=spec, requested_by="test")
    out = encode(stack.topics.batches_commands, message, message.batch_id)
    await publish(stack.bootstrap, out.topic, out.value, out.key)


def batch_log(records: list[Any], batch_id: str) -> list[BatchEvent]:
    events = [parse_batch_event(r.value) for r in records if r.key == batch_id.encode()]
    return events


def ended(batch_id: str) -> Any:
    def check(records: list[Any]) -> bool:
        return any(
            isinstance(event, BatchFinished | BatchRejected)
            for event in batch_log(records, batch_id)
        )

    return check


def most_in_flight(events: list[BatchEvent]) -> int:
    """From the log alone: launches minus ends, at its highest."""
    now = most = 0
    for event in events:
        if isinstance(event, RunLaunched):
            now += 1
        elif isinstance(event, RunEnded):
            now -= 1
        most = max(most, now)
    return most


async def test_a_grid_runs_to_its_end_within_its_cap(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.batches_events) as log,
    ):
        await request(stack, grid("grid-1", max_in_flight=4))
        await log.until(ended("grid-1"), timeout=2 * EVENT_TIMEOUT)
    events = batch_log(log.records, "grid-1")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    finish = events[-1]
    assert isinstance(finish, BatchFinished)
    assert finish.payload.stop_reason == "completed"
    assert finish.payload.counts.finished == finish.payload.counts.planned == 60
    assert 1 <= most_in_flight(events) <= 4
    launched = [e.payload.run_id for e in events if isinstance(e, RunLaunched)]
    assert len(launched) == len(set(launched)) == 60


async def test_a_worker_killed_twice_loses_nothing_and_launches_nothing_twice(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """SIGKILL of a whole `oriole worker` process, twice, mid-batch; a third one finishes."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with (
        TopicReader(kafka_broker, stack.topics.batches_events) as log,
        TopicReader(kafka_broker, stack.topics.runs_events) as runs,
    ):
        for number, launches in ((1, 5), (2, 25)):
            with worker_process(stack, tmp_path / f"worker-{number}.log") as worker:
                if number == 1:
                    await request(stack, grid("grid-2", max_in_flight=3))
                await log.until(
                    lambda records, n=launches: (
                        sum(isinstance(e, RunLaunched) for e in batch_log(records, "grid-2")) >= n
                    )
                )
                worker.send_signal(signal.SIGKILL)
                await asyncio.to_thread(worker.wait, 60)
        async with running_worker(stack):
            await log.until(ended("grid-2"), timeout=2 * EVENT_TIMEOUT)
            events = batch_log(log.records, "grid-2")
            run_ids = [e.payload.run_id for e in events if isinstance(e, RunLaunched)]
            await runs.until(
                lambda records: all(
                    any(e.type == "run.finished" for e in run_events(records, r)) for r in run_ids
                )
            )
    finish = events[-1]
    assert isinstance(finish, BatchFinished) and finish.payload.counts.finished == 60
    assert len(run_ids) == len(set(run_ids)) == 60
    for run_id in run_ids:
        logged = run_events(runs.records, run_id)
        assert sum(isinstance(e, RunStarted) for e in logged) == 1, run_id
        assert sum(e.type == "run.finished" for e in logged) == 1, run_id


@contextlib.contextmanager
def worker_process(stack: Stack, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`oriole worker` in its own process on the test's broker and topics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env |= {
        "ORIOLE_HOME": str(stack.settings.home),
        "ORIOLE_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "ORIOLE_KAFKA_BROKER_KIND": "tansu",
        "ORIOLE_KAFKA_TOPIC_PREFIX": stack.topics.prefix,
        "ORIOLE_KAFKA_PARTITIONS": str(stack.topics.partitions),
        "ORIOLE_LOG_FORMAT": "console",
    }
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "oriole", "worker"], env=env, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(60)


async def test_a_spec_with_bad_cells_launches_nothing_and_names_each(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    spec = grid("grid-bad", agents=["frontier", "no-such-agent"])
    spec["mazes"].append({"name": "not-in-the-library"})
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.batches_events) as log,
    ):
        await request(stack, spec)
        await log.until(ended("grid-bad"))
    events = batch_log(log.records, "grid-bad")
    assert [type(e) for e in events] == [BatchRejected]
    rejected = events[0]
    assert isinstance(rejected, BatchRejected)
    fields = " ".join(p.field for p in rejected.payload.problems)
    assert "agents[1]" in fields
    assert "mazes[1]" in fields


async def test_a_usd_budget_stops_launching_and_spends_at_most_one_run_more(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    from tests.fake_llm import FakeOpenAI

    async with FakeOpenAI() as fake:
        stack = await make_stack(
            tmp_path,
            kafka_broker,
            topic_prefix,
            openai_endpoints=[fake.url],
            openai_api_key="sk-test-not-a-secret",
            llm_backoff_base_seconds=0.01,
            llm_backoff_max_seconds=0.05,
        )
        spec = {
            "batch_id": "budget-1",
            "name": "priced model under a budget",
            "agents": [{"agent": "openai:gpt-4o-mini", "options": {"temperature": 0.7}}],
            "mazes": [{"generator": "backtracker", "width": 21, "height": 21, "seeds": [5]}],
            "repetitions": 12,
            "limits": {"max_actions": 6, "max_footsteps": None},
            "caps": {"max_in_flight": 4},
            "budget": {"usd": 0.002},
        }
        async with (
            running_worker(stack),
            TopicReader(kafka_broker, stack.topics.batches_events) as log,
        ):
            await request(stack, spec)
            await log.until(ended("budget-1"), timeout=2 * EVENT_TIMEOUT)
    events = batch_log(log.records, "budget-1")
    finish = events[-1]
    assert isinstance(finish, BatchFinished), finish
    assert finish.payload.stop_reason == "budget", finish.payload.detail
    assert "the next run could spend up to $" in finish.payload.detail
    costs = [e.payload.cost_usd for e in events if isinstance(e, RunEnded)]
    assert costs and all(cost > 0 for cost in costs)
    assert len(costs) < 12
    assert sum(costs) <= 0.002 + max(costs) + 1e-12
    assert finish.payload.counts.spent_usd == pytest.approx(sum(costs))
