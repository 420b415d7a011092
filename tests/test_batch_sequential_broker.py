"""The ``sequential`` option on a real broker: the scheduler stops launching once frontier
is conclusively better than random and finishes the batch `conclusive`."""

from __future__ import annotations

from pathlib import Path

import pytest

from oriole.batch_events import BatchFinished, RunEnded, RunLaunched
from tests.kafka_support import EVENT_TIMEOUT, TopicReader, make_stack, running_worker
from tests.test_batch_scheduler import batch_log, ended, grid, request

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


async def test_a_batch_stops_once_the_answer_is_known(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    spec = grid(
        "seq-broker",
        agents=["frontier", "random"],
        mazes=[{"generator": "backtracker", "width": 21, "height": 21, "seeds": [1, 2, 3, 4]}],
        repetitions=10,
        limits={"max_footsteps": 200, "max_actions": 400},
        sequential={"alpha": 0.05},
    )
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.batches_events) as log,
    ):
        await request(stack, spec)
        await log.until(ended("seq-broker"), timeout=2 * EVENT_TIMEOUT)
    events = batch_log(log.records, "seq-broker")
    finish = events[-1]
    assert isinstance(finish, BatchFinished), finish
    assert finish.payload.stop_reason == "conclusive", finish.payload.detail
    assert finish.payload.evidence is not None
    assert finish.payload.evidence.better == "frontier"
    launched = sum(isinstance(e, RunLaunched) for e in events)
    assert launched == sum(isinstance(e, RunEnded) for e in events) < 80
