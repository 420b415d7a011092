"""End to end through Kafka: start events in, complete ordered run logs out."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from oriole import generators
from oriole.agents.builtin import create_builtin
from oriole.events import RunFinished, StopReason
from oriole.experiment import ExperimentStart
from oriole.kafka.rdkafka_bridge import RdkafkaBridge
from oriole.maze import Maze
from tests.kafka_support import (
    EVENT_TIMEOUT,
    TopicReader,
    assert_clean_log,
    finished,
    make_stack,
    publish,
    run_events,
    running_worker,
    start_event,
)
from tests.support import MAZES_DIR, reference_maze

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def simulate(request_json: bytes, maze: Maze) -> RunFinished:
    """The same run in memory: what the stream processors must reproduce exactly."""
    from oriole.agents.base import Observation
    from oriole.local_run import LocalRun

    request = ExperimentStart.model_validate_json(request_json)
    run = LocalRun(request, maze)
    agent = create_builtin(request.agent)
    while run.state.is_active:
        decision = await agent.decide(Observation.from_state(run.state), list(run.state.actions))
        run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))
    last = run.events[-1]
    assert isinstance(last, RunFinished)
    return last


async def test_frontier_run_on_sparse_maze_from_2_2(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    maze = reference_maze("01_sparse_maze")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    async with running_worker(stack), TopicReader(kafka_broker, stack.topics.runs_events) as log:
        body = start_event(
            "run-sparse", maze.to_dict(), start={"x": 2, "y": 2}, limits={"max_footsteps": 2000}
        )
        await publish(kafka_broker, stack.topics.experiments_start, body, key=b"run-sparse")
        await log.until(finished(["run-sparse"]))
    events = run_events(log.records, "run-sparse")
    assert_clean_log(events)
    end = events[-1].payload
    assert end.stop_reason is StopReason.GOAL_SEEN and end.success
    assert events[0].payload.spec.start.x == 2  # type: ignore[union-attr]
    # Identical to the in-memory run: the processors add nothing and lose nothing.
    expected = await simulate(body, maze)
    assert (end.footsteps, end.actions, end.position) == (
        expected.payload.footsteps,
        expected.payload.actions,
        expected.payload.position,
    )


async def test_twenty_concurrent_runs_on_different_mazes(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    families = ["backtracker", "multiple-paths", "open-field", "pillars", "rooms", "diagonal"]
    mazes = [
        generators.generate(families[i % len(families)], 25 + i, 21 + (i % 5), seed=100 + i)
        for i in range(20)
    ]
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    bodies: dict[str, bytes] = {}
    for i, maze in enumerate(mazes):
        agent = ["frontier", "wall-follower", "random"][i % 3]
        bodies[f"run-{i:02d}"] = start_event(
            f"run-{i:02d}",
            maze.to_dict(),
            agent={"provider": "builtin", "model": agent, "seed": i},
            limits={"max_footsteps": 300, "max_actions": 600},
        )
    async with running_worker(stack), TopicReader(kafka_broker, stack.topics.runs_events) as log:
        await asyncio.gather(
            *(
                publish(kafka_broker, stack.topics.experiments_start, body)  # unkeyed on purpose
                for body in bodies.values()
            )
        )
        await log.until(finished(list(bodies)))
    for i, (run_id, body) in enumerate(bodies.items()):
        events = run_events(log.records, run_id)
        assert_clean_log(events)
        expected = await simulate(body, mazes[i])
        got = events[-1].payload
        assert got.stop_reason == expected.payload.stop_reason, run_id
        assert (got.footsteps, got.actions, got.position) == (
            expected.payload.footsteps,
            expected.payload.actions,
            expected.payload.position,
        ), run_id


async def test_invalid_and_garbage_starts_do_not_stop_valid_runs(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    maze = reference_maze("03_medium_maze")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    topics = stack.topics
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, topics.runs_events) as log,
        TopicReader(kafka_broker, topics.experiments_rejected) as rejected,
        TopicReader(kafka_broker, topics.deadletter) as dead,
    ):
        await publish(kafka_broker, topics.experiments_start, b"{this is not json", key=b"junk")
        await publish(
            kafka_broker,
            topics.experiments_start,
            start_event("run-wall", maze.to_dict(), start={"x": 2, "y": 2}),
            key=b"run-wall",
        )
        await publish(
            kafka_broker,
            topics.experiments_start,
            start_event("run-nomaze", maze_name="no-such-maze", limits={"max_footsteps": 0}),
        )
        await publish(
            kafka_broker, topics.experiments_start, start_event("run-good", maze.to_dict())
        )
        await publish(
            kafka_broker, topics.experiments_start, start_event("run-good", maze.to_dict())
        )
        await log.until(finished(["run-good"]))
        await rejected.until(lambda records: len(records) >= 4)
        await dead.until(lambda records: len(records) >= 1)
    problems = {(r.key or b"").decode(): json.loads(r.value)["problems"] for r in rejected.records}
    assert problems["run-wall"] == [
        {
            "field": "start",
            "reason": "(2,2) is a wall tile in maze 03_medium_maze; choose an open tile, "
            "e.g. (2,1), or leave the start out",
        }
    ]
    # Every problem at once: the bad limit does not hide the unknown maze.
    assert {p["field"] for p in problems["run-nomaze"]} == {"limits.max_footsteps", "maze_name"}
    # An undecodable start keeps its Kafka key in the rejection.
    assert problems["junk"][0]["field"] == "event"
    assert "not valid JSON" in problems["junk"][0]["reason"]
    # The second start of run-good is refused as a duplicate, naming the run id.
    assert problems["run-good"][0]["field"] == "run_id"
    assert "already exists" in problems["run-good"][0]["reason"]
    letter = json.loads(dead.records[0].value)
    assert letter["error_class"] == "UndecodableMessage"
    assert letter["source_topic"] == topics.experiments_start
    # The duplicate start started nothing more; default start moved off the wall.
    events = run_events(log.records, "run-good")
    assert_clean_log(events)
    assert sum(e.type == "run.started" for e in events) == 1
    assert events[0].payload.warnings  # type: ignore[union-attr]


async def test_unknown_maze_name_is_rejected_and_known_names_resolve(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    library = stack.settings.home / "mazes"
    library.mkdir(parents=True)
    maze = generators.generate("open-field", 20, 20, seed=5, name="field")
    maze.save(library / "field.json")
    topics = stack.topics
    async with (
        running_worker(stack),
        TopicReader(kafka_broker, topics.runs_events) as log,
        TopicReader(kafka_broker, topics.experiments_rejected) as rejected,
    ):
        await publish(
            kafka_broker, topics.experiments_start, start_event("run-x", maze_name="nope")
        )
        await publish(
            kafka_broker, topics.experiments_start, start_event("run-f", maze_name="field")
        )
        await log.until(finished(["run-f"]))
        await rejected.until(lambda records: len(records) >= 1)
    problem = json.loads(rejected.records[0].value)["problems"][0]
    assert problem["field"] == "maze_name"
    assert problem["reason"].startswith("unknown maze 'nope' (known: field)")
    started = run_events(log.records, "run-f")[0]
    assert started.payload.spec.maze.grid_data == maze.grid_data()  # type: ignore[union-attr]


def _worker_process(
    stack_home: Path, bootstrap: str, prefix: str, log_file: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ORIOLE_HOME": str(stack_home),
        "ORIOLE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ORIOLE_KAFKA_BROKER_KIND": "tansu",
        "ORIOLE_KAFKA_TOPIC_PREFIX": prefix,
    }
    env.pop("ORIOLE_CONFIG_FILE", None)
    out = log_file.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "oriole", "worker"], env=env, stdout=out, stderr=out, cwd=stack_home
    )


async def test_sigkill_mid_run_then_a_new_worker_finishes_it(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    maze = generators.generate("backtracker", 81, 81, seed=3, density=0.45)
    body = start_event(
        "run-kill",
        maze.to_dict(),
        agent={"provider": "builtin", "model": "frontier", "seed": 1},
        limits={"max_footsteps": 5000, "max_actions": 10000},
    )
    log_file = tmp_path / "workers.log"
    home = stack.settings.home
    home.mkdir(parents=True, exist_ok=True)
    first = _worker_process(home, kafka_broker, topic_prefix, log_file)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with TopicReader(kafka_broker, stack.topics.runs_events) as log:
            await publish(kafka_broker, stack.topics.experiments_start, body)
            await log.until(lambda records: len(records) >= 120)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            killed_at = len(log.records)
            second = _worker_process(home, kafka_broker, topic_prefix, log_file)
            await log.until(finished(["run-kill"]), timeout=EVENT_TIMEOUT)
        events = run_events(log.records, "run-kill")
        assert killed_at < len(events), "the run must have gone on after the kill"
        assert_clean_log(events)
        expected = await simulate(body, maze)
        assert events[-1].payload.footsteps == expected.payload.footsteps  # type: ignore[union-attr]
        assert events[-1].payload.stop_reason == expected.payload.stop_reason  # type: ignore[union-attr]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    if second is not None:
        assert second.returncode == 0, log_file.read_text()[-3000:]


@pytest.mark.skipif(
    shutil.which("kcat") is None, reason="kcat is not installed (apt-get install kcat)"
)
async def test_kcat_publishes_the_printed_start_event(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    if not MAZES_DIR.is_dir():
        pytest.skip("reference mazes not found")
    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    env = {**os.environ, "ORIOLE_HOME": str(stack.settings.home)}
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "oriole",
            "run",
            "--maze",
            str(MAZES_DIR / "01_sparse_maze.json"),
            "--run-id",
            "run-kcat",
            "--max-moves",
            "2000",
            "--print-event",
        ],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    assert printed.count(b"\n") == 1, "one line, so kcat sends it as one message"
    host, port = kafka_broker.rsplit(":", 1)
    async with (
        running_worker(stack),
        RdkafkaBridge(host, int(port)) as bridge,
        TopicReader(kafka_broker, stack.topics.runs_events) as log,
    ):
        # kcat publishes through the bridge, as `oriole up` offers it.
        await asyncio.to_thread(
            subprocess.run,
            [
                "kcat",
                "-P",
                "-b",
                bridge.bootstrap_servers,
                "-t",
                stack.topics.experiments_start,
                "-k",
                "run-kcat",
            ],
            input=printed,
            check=True,
            timeout=60,
        )
        await log.until(finished(["run-kcat"]))
    events = run_events(log.records, "run-kcat")
    assert_clean_log(events)
    assert events[-1].payload.stop_reason is StopReason.GOAL_SEEN  # type: ignore[union-attr]


class _HangingAgent:
    """An agent whose model never answers."""

    name = "hanging"

    async def decide(self, observation: object, history: object) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_timer_ends_a_run_whose_agent_hangs(
    tmp_path: Path, kafka_broker: str, topic_prefix: str
) -> None:
    from streams.agent_runner import AgentRunner
    from streams.maze_processor import MazeProcessor

    stack = await make_stack(tmp_path, kafka_broker, topic_prefix)
    processor = MazeProcessor(
        bootstrap_servers=kafka_broker, topics=stack.topics, find_maze=reference_maze
    )
    runner = AgentRunner(
        bootstrap_servers=kafka_broker,
        topics=stack.topics,
        agent_factory=lambda spec: _HangingAgent(),  # type: ignore[arg-type,return-value]
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(processor.run(stop)), asyncio.create_task(runner.run(stop))]
    try:
        async with TopicReader(kafka_broker, stack.topics.runs_events) as log:
            body = start_event(
                "run-hang", maze_name="01_sparse_maze", limits={"max_duration_seconds": 3}
            )
            await publish(kafka_broker, stack.topics.experiments_start, body)
            await log.until(finished(["run-hang"]))
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), EVENT_TIMEOUT)
    events = run_events(log.records, "run-hang")
    assert_clean_log(events)
    assert [e.type for e in events] == ["run.started", "run.finished"]
    end = events[-1].payload
    assert end.stop_reason is StopReason.MAX_DURATION  # type: ignore[union-attr]
    assert end.duration_seconds >= 3  # type: ignore[union-attr]
