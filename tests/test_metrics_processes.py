"""A standalone `oriole worker` and `oriole projector` serve /metrics and /healthz, and their
figures move as the events say (issue 15, item 1 and its first acceptance criterion).

Both run as real processes against the session's embedded broker and a fresh database. The
test scrapes them while a run is in flight and after every run ended, and checks the run,
step, footstep, event and lag figures against the run events read from the topic itself.
Every wait polls an endpoint or the topic until a condition holds, with a generous deadline.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from oriole import generators
from oriole.events import RunEvent, RunFinished
from oriole.intents import CancelRequest
from oriole.kafka.codec import encode
from tests.kafka_support import (
    EVENT_TIMEOUT,
    Stack,
    TopicReader,
    finished,
    make_stack,
    publish,
    run_events,
    start_event,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

#: Generous: the machine running the tests may be a loaded 2-core box.
DEADLINE = 180.0
WORKER_GROUPS = ("maze-processor", "agent-runner", "batch-scheduler", "batch-forwarder")


# --- the processes --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _spawn(name: str, args: list[str], env: dict[str, str], tmp_path: Path) -> Process:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "oriole", *args], env=env, stdout=out, stderr=out
        )
    return Process(name, popen, log)


def _stop(process: Process) -> None:
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
        try:
            process.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process a test starts; each is stopped (SIGTERM, then SIGKILL) at the end."""
    started: list[Process] = []
    yield started
    for process in started:
        _stop(process)


@pytest_asyncio.fixture
async def stack(tmp_path: Path, kafka_broker: str, topic_prefix: str) -> Stack:
    return await make_stack(tmp_path, kafka_broker, topic_prefix, partitions=2)


def _env(stack: Stack, dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env |= {
        "ORIOLE_HOME": str(stack.settings.home),
        "ORIOLE_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "ORIOLE_KAFKA_BROKER_KIND": "tansu",
        "ORIOLE_KAFKA_TOPIC_PREFIX": stack.topics.prefix,
        "ORIOLE_KAFKA_PARTITIONS": "2",
        "ORIOLE_DATABASE_URL": dsn,
        "ORIOLE_LOG_FORMAT": "console",
    }
    return env


async def _until(
    what: str, check: Callable[[], Any], processes: list[Process], timeout: float = DEADLINE
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail with the logs of
    a process that died or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(
                    f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}"
                )
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
        except (httpx.HTTPError, OSError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.2)


# --- reading a scrape -----------------------------------------------------------------------


class Scrape:
    """One /metrics answer: sums of samples by name and label subset."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(have, value) for sample, have, value in self.samples if sample == name]


async def _scrape(client: httpx.AsyncClient, process: Process) -> Scrape:
    answer = await client.get(f"{process.url}/metrics")
    answer.raise_for_status()
    return Scrape(answer.text)


# --- the test -------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


async def test_worker_and_projector_metrics_move_as_the_events_say(
    tmp_path: Path,
    stack: Stack,
    pg_dsn: str,
    processes: list[Process],
    client: httpx.AsyncClient,
) -> None:
    env = _env(stack, pg_dsn)
    topics = stack.topics
    # The worker picks a free port itself (0) and logs it; the projector is told one.
    worker = _spawn("worker", ["worker"], env | {"ORIOLE_METRICS_PORT": "0"}, tmp_path)
    processes.append(worker)
    projector_port = _free_port()
    projector = _spawn(
        "projector", ["projector", "--metrics-port", str(projector_port)], env, tmp_path
    )
    processes.append(projector)
    projector.url = f"http://127.0.0.1:{projector_port}"

    def logged_url() -> str | None:
        found = re.search(r"serves /metrics and /healthz on (http://\S+)", worker.tail())
        return found.group(1) if found else None

    worker.url = await _until("the worker's metrics address in its log", logged_url, processes)

    async def healthy(process: Process) -> dict[str, Any] | None:
        answer = await client.get(f"{process.url}/healthz")
        return answer.json() if answer.status_code == 200 else None

    worker_health = await _until("a healthy worker", lambda: healthy(worker), processes)
    assert worker_health["process"] == "worker"
    assert set(worker_health["services"]) == {
        "maze processor",
        "agent runner",
        "batch scheduler",
        "batch forwarder",
    }
    projector_health = await _until("a healthy projector", lambda: healthy(projector), processes)
    assert projector_health == {
        "process": "projector",
        "status": "ok",
        "services": {"projector": True},
    }
    before = await _scrape(client, worker)
    assert before.total("oriole_runs_started_total") == 0
    assert (await client.get(f"{worker.url}/nothing")).status_code == 404

    long_maze = generators.generate("backtracker", 101, 101, seed=5, density=0.4)
    field = generators.generate("open-field", 24, 16, seed=2, name="field")
    limits = {"max_footsteps": 200_000, "max_actions": 400_000}
    async with TopicReader(stack.bootstrap, topics.runs_events) as log:
        # A run that goes on until it is cancelled: a random walk in a big maze.
        await publish(
            stack.bootstrap,
            topics.experiments_start,
            start_event(
                "run-long",
                long_maze.to_dict(),
                agent={"provider": "builtin", "model": "random", "seed": 7},
                limits=limits,
            ),
        )

        async def in_flight_with_steps() -> Scrape | None:
            scrape = await _scrape(client, worker)
            ok = (
                scrape.total("oriole_runs_in_flight", role="maze") >= 1
                and scrape.total("oriole_runs_started_total", model="random") == 1
                and scrape.total("oriole_run_events_written_total", type="action.completed") > 0
            )
            return scrape if ok else None

        during = await _until("the long run in flight", in_flight_with_steps, processes)
        assert during.total("oriole_runs_finished_total") == 0
        assert during.total("oriole_active_runs", role="maze") >= 1
        steps_then = during.total("oriole_run_events_written_total", type="action.completed")

        async def more_steps() -> bool:
            scrape = await _scrape(client, worker)
            now = scrape.total("oriole_run_events_written_total", type="action.completed")
            return now > steps_then

        await _until("the step counter to move during the run", more_steps, processes)

        # Two short runs that end by themselves, while the long one goes on.
        for run_id in ("run-a", "run-b"):
            await publish(
                stack.bootstrap,
                topics.experiments_start,
                start_event(run_id, field.to_dict(), limits={"max_footsteps": 300}),
            )

        async def short_runs_finished() -> bool:
            scrape = await _scrape(client, worker)
            return scrape.total("oriole_runs_finished_total", model="frontier") == 2

        await _until("the short runs to finish", short_runs_finished, processes)
        cancel = encode(topics.runs_control, CancelRequest(run_id="run-long"), "run-long")
        await publish(stack.bootstrap, cancel.topic, cancel.value, cancel.key)

        await log.until(finished(["run-long", "run-a", "run-b"]), timeout=EVENT_TIMEOUT)
        # Read on until the log is complete as far as the metrics go: nothing else is written.
        await log.poll()
        records = list(log.records)

    events: dict[str, list[RunEvent]] = {
        run_id: run_events(records, run_id) for run_id in ("run-long", "run-a", "run-b")
    }
    finishes = {run_id: evs[-1] for run_id, evs in events.items()}
    assert all(isinstance(event, RunFinished) for event in finishes.values())
    written = [event for evs in events.values() for event in evs]

    async def worker_settled() -> Scrape | None:
        scrape = await _scrape(client, worker)
        return scrape if scrape.total("oriole_run_events_written_total") == len(written) else None

    after = await _until("the worker's counters to match the log", worker_settled, processes)
    # Runs started and finished, by provider, model, prompt version and stop reason.
    assert (
        after.total(
            "oriole_runs_started_total", provider="builtin", model="frontier", prompt_version="none"
        )
        == 2
    )
    assert after.total("oriole_runs_started_total", model="random") == 1
    by_reason: dict[tuple[str, str], int] = {}
    for run_id, finish in finishes.items():
        model = "random" if run_id == "run-long" else "frontier"
        reason = finish.payload.stop_reason.value  # type: ignore[union-attr]
        by_reason[(model, reason)] = by_reason.get((model, reason), 0) + 1
    assert by_reason.get(("random", "cancelled")) == 1
    for (model, reason), count in by_reason.items():
        assert (
            after.total(
                "oriole_runs_finished_total", provider="builtin", model=model, stop_reason=reason
            )
            == count
        ), (model, reason)
    assert after.total("oriole_runs_finished_total") == 3
    # Steps: every event written, by type, as the log holds them.
    for kind in {event.type for event in written}:
        expected = sum(1 for event in written if event.type == kind)
        assert after.total("oriole_run_events_written_total", type=kind) == expected, kind
    # Footsteps and duration histograms at run.finished, by model.
    for model, run_ids in (("frontier", ("run-a", "run-b")), ("random", ("run-long",))):
        footsteps = sum(finishes[r].payload.footsteps for r in run_ids)  # type: ignore[union-attr]
        assert after.total("oriole_run_footsteps_count", model=model) == len(run_ids)
        assert after.total("oriole_run_footsteps_sum", model=model) == footsteps
        assert after.total("oriole_run_duration_seconds_count", model=model) == len(run_ids)
        duration = sum(finishes[r].payload.duration_seconds for r in run_ids)  # type: ignore[union-attr]
        assert after.total("oriole_run_duration_seconds_sum", model=model) == pytest.approx(
            duration
        )
    assert after.total("oriole_run_footsteps_sum") > 0
    assert after.total("oriole_runs_in_flight", role="maze") == 0
    assert after.total("oriole_dead_letters_total") == 0

    # Consumer lag: every partition of every worker group reported, and back to 0.
    prefix = topics.prefix

    async def worker_lag_zero() -> Scrape | None:
        scrape = await _scrape(client, worker)
        lag = scrape.series("oriole_consumer_lag")
        groups = {labels["group"] for labels, _ in lag}
        if groups != {f"{prefix}.{group}" for group in WORKER_GROUPS}:
            return None
        return scrape if all(value == 0 for _, value in lag) else None

    lagged = await _until("the worker's consumer lag to return to 0", worker_lag_zero, processes)
    events_lag = [
        labels
        for labels, _ in lagged.series("oriole_consumer_lag")
        if labels["group"] == f"{prefix}.agent-runner"
    ]
    assert {(labels["topic"], labels["partition"]) for labels in events_lag} == {
        (topics.runs_events, "0"),
        (topics.runs_events, "1"),
    }

    # The projector archived exactly the events of the log, and its lag is 0 in events.
    async def projector_settled() -> Scrape | None:
        scrape = await _scrape(client, projector)
        archived = scrape.total("oriole_projector_events_total", outcome="archived")
        lag = scrape.series("oriole_consumer_lag")
        if archived != len(written) or not lag or any(value for _, value in lag):
            return None
        return scrape if scrape.series("oriole_projector_lag_events") else None

    projected = await _until("the projector to catch up", projector_settled, processes)
    assert projected.total("oriole_projector_lag_events") == 0
    assert {labels["group"] for labels, _ in projected.series("oriole_consumer_lag")} == {
        f"{prefix}.projector"
    }
    assert {labels["topic"] for labels, _ in projected.series("oriole_consumer_lag")} >= {
        topics.runs_events
    }
    assert projected.total("oriole_projector_lag_seconds") >= 0

    for process in (worker, projector):
        process.popen.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.popen.wait, 60)
        assert process.popen.returncode == 0, process.tail()
