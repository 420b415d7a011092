"""`oriole batch` as a user runs it: publish and walk away, then ask how it went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oriole.batch_events import BatchFinished, BatchRejected, parse_batch_event
from tests.kafka_support import (
    EVENT_TIMEOUT,
    Stack,
    TopicReader,
    make_stack,
    publish,
    running_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

TWO_HUNDRED = """
name = "two hundred built-in runs"
agents = ["frontier", "random"]
repetitions = 10

[[mazes]]
generator = "backtracker"
width = 11
height = 11
seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]

[limits]
max_footsteps = 40

[caps]
max_in_flight = 8
"""

BAD = """
name = "two bad cells"
agents = ["frontier", "no-such-agent"]
mazes = [{ name = "nowhere" }, { file = "missing.json" }]
"""


def oriole(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env |= {
        "ORIOLE_HOME": str(stack.settings.home),
        "ORIOLE_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "ORIOLE_KAFKA_BROKER_KIND": "tansu",
        "ORIOLE_KAFKA_TOPIC_PREFIX": stack.topics.prefix,
        "ORIOLE_KAFKA_PARTITIONS": str(stack.topics.partitions),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "oriole", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=EVENT_TIMEOUT,
        check=False,
    )


async def test_two_hundred_runs_finish_with_the_cli_detached(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    spec = tmp_path / "two-hundred.toml"
    spec.write_text(TWO_HUNDRED, encoding="utf-8")
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, stack.topics.batches_events) as log,
    ):
        published = oriole(stack, "batch", "run", str(spec), "--batch-id", "b200", "--json")
        assert published.returncode == 0, published.stderr
        assert json.loads(published.stdout) == {"batch_id": "b200", "runs": 200, "published": True}
        await log.until(
            lambda records: any(
                isinstance(parse_batch_event(r.value), BatchFinished | BatchRejected)
                for r in records
            ),
            timeout=3 * EVENT_TIMEOUT,
        )
        status = oriole(stack, "batch", "status", "b200", "--json")
        listed = oriole(stack, "batch", "list")
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["status"] == "finished"
    assert summary["stop_reason"] == "completed"
    counts = summary["counts"]
    assert (counts["planned"], counts["finished"], counts["launched"]) == (200, 200, 200)
    assert counts["in_flight"] == 0
    assert "b200" in listed.stdout and "completed" in listed.stdout


async def test_a_bad_batch_file_publishes_nothing_and_names_every_problem(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    spec = tmp_path / "bad.toml"
    spec.write_text(BAD, encoding="utf-8")
    refused = oriole(stack, "batch", "run", str(spec))
    assert refused.returncode == 2
    assert "mazes[1].file" in refused.stderr and "missing.json" in refused.stderr
    assert "nothing was published" in refused.stderr
    spec.write_text(BAD.replace(', { file = "missing.json" }', ""), encoding="utf-8")
    refused = oriole(stack, "batch", "run", str(spec))
    assert refused.returncode == 2
    assert "agents[1]" in refused.stderr and "nowhere" in refused.stderr
    # Nothing before the marker: the topic held nothing of the refused files.
    await publish(kafka_broker, stack.topics.batches_commands, b"marker", b"marker")
    async with TopicReader(kafka_broker, stack.topics.batches_commands) as commands:
        await commands.until(lambda records: len(records) >= 1)
    assert [r.value for r in commands.records] == [b"marker"]
