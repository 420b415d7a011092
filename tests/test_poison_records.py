"""Nothing a client sends can stop a service: poison records, duplicates and takeovers.

Each test reproduces a defect found by trying the stack as an attacker or an unlucky user
would (issue 11), against a real broker, real workers and a real PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import asyncpg
import pytest

from oriole.events import RunEvent, RunStarted
from oriole.kafka.clients import make_producer
from oriole.kafka.codec import DEAD_LETTER_KEEP_BYTES, MAX_MESSAGE_BYTES, encode
from oriole.kafka.topics import Topics
from oriole.schema_base import WireModel
from streams.event_log import read_checkpoints, rebuild
from tests.kafka_support import (
    TopicReader,
    assert_clean_log,
    eventually,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)
from tests.projection_support import agent_run, small_maze

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


def _with_comment(event: RunEvent, comment: str) -> RunEvent:
    """``event`` (a run.started) with another comment: what a bypassed admission would let in."""
    assert isinstance(event, RunStarted)
    spec = event.payload.spec.model_copy(update={"comment": comment})
    payload = event.payload.model_copy(update={"spec": spec})
    return event.model_copy(update={"payload": payload})


async def _publish_events(bootstrap: str, topics: Topics, events: list[RunEvent]) -> None:
    for event in events:
        message: WireModel = event
        out = encode(topics.runs_events, message, event.run_id)
        await publish(bootstrap, out.topic, out.value, key=out.key)


async def test_a_record_postgresql_refuses_is_dead_lettered_and_the_rest_is_stored(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, pg_dsn: str
) -> None:
    """Defect 1: a NUL in a run's text made COPY fail and the projector exit (or retry for ever)."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    good = await agent_run("run-good", max_footsteps=30)
    poisoned = await agent_run("run-nul", max_footsteps=30, seed=2)
    poisoned[0] = _with_comment(poisoned[0], "a\x00b")
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        async with (
            running_projector(stack, pool) as projector,
            TopicReader(kafka_broker, stack.topics.deadletter) as dead,
        ):
            await _publish_events(kafka_broker, stack.topics, poisoned + good)
            await dead.until(lambda records: len(records) >= 1)

            async def all_good_archived() -> bool:
                async with pool.acquire() as conn:
                    count = await conn.fetchval(
                        "SELECT count(*) FROM run_events WHERE run_id = 'run-good'"
                    )
                return int(count) == len(good)

            await eventually(all_good_archived)
            assert not projector.waiting_for_database
        letter = json.loads(dead.records[0].value)
        assert letter["source_topic"] == stack.topics.runs_events
        assert letter["error_class"] == "UntranslatableCharacterError"
        original = json.loads(base64.b64decode(letter["value"]))
        assert (original["run_id"], original["seq"]) == ("run-nul", 1)
        async with pool.acquire() as conn:
            nul_events = await conn.fetchval(
                "SELECT count(*) FROM run_events WHERE run_id = 'run-nul'"
            )
            status = await conn.fetchval("SELECT status FROM experiments WHERE run_id = 'run-good'")
        # Only the refused event is missing: the rest of that run is archived too.
        assert nul_events == len(poisoned) - 1
        assert status in ("succeeded", "stopped")
    finally:
        await pool.close()


async def test_hostile_start_records_are_dead_lettered_and_valid_runs_go_on(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Defect 2 (100,000 × '[' raised RecursionError) and the message-size limit (defect 9)."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    maze = small_maze().to_dict()
    hostile: list[bytes] = [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b"\xff\xfe\x00garbage",
        json.dumps({"run_id": "run-x", "labels": {"k": 1e999}}).encode(),
        b" " * (MAX_MESSAGE_BYTES + 10),
    ]
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
        TopicReader(kafka_broker, stack.topics.deadletter) as dead,
        TopicReader(kafka_broker, stack.topics.experiments_rejected) as rejected,
    ):
        producer = make_producer(kafka_broker, max_request_size=4 * MAX_MESSAGE_BYTES)
        await producer.start()
        try:
            for value in hostile:
                await producer.send_and_wait(stack.topics.experiments_start, value, key=b"hostile")
        finally:
            await producer.stop()
        # Hostile commands straight on the internal command topic, too.
        await publish(kafka_broker, stack.topics.runs_commands, b"[" * 100_000)
        await publish(
            kafka_broker, stack.topics.runs_commands, b'{"type": "agent.intent", "run_id": 5}'
        )
        await publish(kafka_broker, stack.topics.experiments_start, start_event("run-after", maze))
        await log.until(finished(["run-after"]))
        await dead.until(lambda records: len(records) >= 6)
        await rejected.until(lambda records: len(records) >= 4)
    assert_clean_log(run_events(log.records, "run-after"))
    letters = [json.loads(r.value) for r in dead.records]
    reasons = " | ".join(letter["error"] for letter in letters)
    assert "nested too deeply" in reasons
    assert "not valid UTF-8 JSON" in reasons
    assert f"over the limit of {MAX_MESSAGE_BYTES} bytes" in reasons
    # A dead letter of a huge message keeps its head only, so it fits on the topic itself.
    huge = next(letter for letter in letters if letter["value_size"] > MAX_MESSAGE_BYTES)
    assert huge["value_kept"] == DEAD_LETTER_KEEP_BYTES
    # Rejections keep the Kafka key when the run id cannot be read.
    assert {r.key for r in rejected.records} == {b"hostile", b"run-x"}


async def test_a_takeover_rebuilds_from_the_checkpoint_not_from_all_history(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Defect 3: gaining a partition re-read its whole history (7-13 s for 35k events)."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    maze = small_maze().to_dict()
    history = [f"run-old-{i}" for i in range(6)]
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        for run_id in history:
            await publish(
                kafka_broker,
                stack.topics.experiments_start,
                start_event(run_id, maze, limits={"max_footsteps": 40}),
            )
        await log.until(finished(history))
    # The worker stopped cleanly and wrote its checkpoints; a successor reads no history.
    partitions = range(stack.topics.partitions)
    checkpoints = await read_checkpoints(
        kafka_broker, stack.topics.runs_checkpoints, partitions, client_id="test"
    )
    assert set(checkpoints) == set(partitions)
    assert {r for c in checkpoints.values() for r in c.finished} == set(history)
    runs, ends = await rebuild(
        kafka_broker,
        stack.topics.runs_events,
        partitions,
        client_id="test",
        checkpoints=checkpoints,
    )
    assert runs.events_read == 0
    assert set(runs.finished) == set(history)
    assert sum(ends.values()) == len(log.records)
    # Without the checkpoints, the same rebuild reads every event ever written.
    full, _ = await rebuild(kafka_broker, stack.topics.runs_events, partitions, client_id="test")
    assert full.events_read == len(log.records)
    assert set(full.finished) == set(history)


async def test_a_run_id_that_exists_is_refused_after_a_restart(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    """Defect 7: re-publishing the start of a finished run after a restart ran it again."""
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    maze = small_maze().to_dict()
    first = start_event("run-once", maze, limits={"max_footsteps": 40})
    async with (
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
        TopicReader(kafka_broker, stack.topics.experiments_rejected) as rejected,
    ):
        async with running_worker(stack):
            await publish(kafka_broker, stack.topics.experiments_start, first)
            await log.until(finished(["run-once"]))
        # A new worker (a restart): the run is known from the checkpoint, not re-run.
        async with running_worker(stack):
            await publish(kafka_broker, stack.topics.experiments_start, first)
            await rejected.until(lambda records: len(records) >= 1)
    started = [e for e in run_events(log.records, "run-once") if e.type == "run.started"]
    assert len(started) == 1
    assert_clean_log(run_events(log.records, "run-once"))
    problem = json.loads(rejected.records[0].value)["problems"][0]
    assert problem["field"] == "run_id"
    assert "already exists (finished)" in problem["reason"]
