"""Logs (issue 15, item 5): lines about a run name the run and its trace; a breaker or an
endpoint's health is logged once per change, not at every probe; a planted key never shows.

Tracing is off here: the trace id in the logs is the one every process derives from the run
id, the same the ``oriole-trace-id`` header carries (tests/test_tracing.py covers tracing on).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oriole.environment.logs import QUIET_LIBRARIES, JsonFormatter, configure_logging
from oriole.environment.settings import load_settings
from oriole.generators import generate
from oriole.kafka.codec import TRACE_HEADER
from oriole.llm.errors import ServerError
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION
from oriole.llm.resilience import CircuitBreaker, RetryPolicy
from oriole.llm.wire.ollama import OllamaWire
from oriole.telemetry.log_context import RunContextFilter
from oriole.telemetry.run_spans import run_span
from oriole.telemetry.trace_ids import trace_id_hex
from providers.endpoint import Endpoint
from providers.transport import EndpointPool, TransportPolicy
from tests.fake_llm import FakeOllama, HttpError
from tests.kafka_support import (
    TopicReader,
    finished,
    make_stack,
    publish,
    running_worker,
    start_event,
)

KEY = "sk-planted-" + uuid.uuid4().hex


def assert_absent(secret: str, text: str, where: str) -> None:
    if secret in text:
        pytest.fail(f"a secret leaked into {where}", pytrace=False)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Oriole's own JSON log handler writing to a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    buffer = io.StringIO()
    try:
        configure_logging(load_settings(env_file=None, log_format="json", log_level="DEBUG"))
        root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def lines_of(buffer: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


# --- the run's scope ----------------------------------------------------------------------


def test_a_line_written_in_a_run_scope_names_the_run_and_its_trace(
    json_logs: io.StringIO,
) -> None:
    logger = logging.getLogger("some.library")  # not Oriole's: the scope covers any logger
    with run_span("oriole.maze.command", "run-log-1"):
        logger.warning("inside")
        logger.info("about another", extra={"run_id": "run-log-2"})
    logger.warning("outside")
    inside, other, outside = lines_of(json_logs)
    assert (inside["run_id"], inside["trace_id"]) == ("run-log-1", trace_id_hex("run-log-1"))
    assert (other["run_id"], other["trace_id"]) == ("run-log-2", trace_id_hex("run-log-2"))
    assert "run_id" not in outside and "trace_id" not in outside


def test_the_filter_alone_fills_both_fields_for_the_formatter() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    with run_span("oriole.maze.timer", "run-log-3"):
        RunContextFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["trace_id"] == trace_id_hex("run-log-3") and entry["run_id"] == "run-log-3"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_runs_log_lines_carry_its_ids_and_never_the_planted_key(
    kafka_broker: str, topic_prefix: str, tmp_path: Path, json_logs: io.StringIO
) -> None:
    """A real worker, a fake Ollama whose endpoint URL holds the key and whose first answer
    quotes it (logged by the transport's retry line, written inside the run's decision)."""
    async with FakeOllama() as fake:
        endpoint = fake.url.replace("http://", f"http://oriole:{KEY}@")
        fake.push(HttpError(500, f"upstream rejected key {KEY}"))
        stack = await make_stack(
            tmp_path,
            kafka_broker,
            topic_prefix,
            partitions=1,
            ollama_endpoints=[endpoint],
            llm_backoff_base_seconds=0.01,
            llm_backoff_max_seconds=0.05,
        )
        run_id = f"run-logged-{uuid.uuid4().hex[:8]}"
        start = start_event(
            run_id,
            generate("backtracker", 11, 11, seed=5).to_dict(),
            agent={"provider": "ollama", "model": "qwen2.5:7b"},
            prompt={"version": DEFAULT_PROMPT_VERSION},
            limits={"max_actions": 2, "max_footsteps": None},
        )
        async with (
            running_worker(stack),
            TopicReader(stack.bootstrap, stack.topics.runs_events) as reader,
        ):
            await publish(stack.bootstrap, stack.topics.experiments_start, start, run_id.encode())
            await reader.until(finished([run_id]))
    assert_absent(KEY, json_logs.getvalue(), "the JSON logs")
    about_run = [line for line in lines_of(json_logs) if line.get("run_id") == run_id]
    messages = [line["message"] for line in about_run]
    assert any(m == f"run {run_id} started" for m in messages), messages
    assert any(m.startswith("ollama call to ") and "***" in m for m in messages), messages
    expected = trace_id_hex(run_id)
    assert {line["trace_id"] for line in about_run} == {expected}
    # The same trace id the run's records carry.
    headers = {dict(r.headers)[TRACE_HEADER] for r in reader.records if r.key == run_id.encode()}
    assert headers == {expected.encode()}


# --- breakers and health: once per change -------------------------------------------------


def breaker_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_an_endpoint_that_stays_down_logs_its_circuit_opening_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oriole.providers")
    ep = Endpoint("ollama", "http://127.0.0.1:9", CircuitBreaker(3, 30.0), 4)
    now = 100.0
    for _ in range(3):
        ep.judge(ServerError("ollama: HTTP 500"), now)
    assert ep.breaker.state(now) == "open"
    for _ in range(20):  # every failed probe after the reset period re-opens the breaker
        now += 31.0
        assert ep.breaker.state(now) == "half_open"
        ep.probed(False, False, now)
        assert ep.breaker.state(now) == "open"
    assert len(breaker_lines(caplog, "circuit open")) == 1
    assert len(breaker_lines(caplog, "failing its health check")) == 1
    now += 31.0
    ep.probed(True, False, now)  # the server answers again
    for _ in range(5):
        now += 31.0
        ep.probed(True, False, now)
    assert len(breaker_lines(caplog, "circuit closed")) == 1
    assert len(breaker_lines(caplog, "healthy again")) == 1
    ep.judge(ServerError("ollama: HTTP 500"), now)  # one failure: still closed, no line
    assert len(breaker_lines(caplog, "circuit open")) == 1


def _refused_url() -> str:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.asyncio
async def test_the_health_loop_against_a_dead_server_logs_one_opening_and_no_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real pool and its health loop; the clock moves 31 s per reading (one per probe),
    so every probe finds the breaker half-open, as after each reset period of an outage.
    The pool starts inside a run's scope (as in a run's first model call): its probes must
    not be logged as that run's."""
    caplog.set_level(logging.DEBUG, logger="oriole.providers")
    probes = 25
    readings = 0
    enough = asyncio.Event()

    def clock() -> float:
        nonlocal readings
        readings += 1
        if readings > probes:
            enough.set()
        return readings * 31.0

    policy = TransportPolicy(
        retry=RetryPolicy(max_attempts=1),
        breaker_failure_threshold=1,
        breaker_reset_seconds=30.0,
        health_check_interval_seconds=0.001,
        health_check_timeout_seconds=5.0,
    )
    pool = EndpointPool(OllamaWire(), [_refused_url()], policy, clock=clock)
    try:
        with run_span("oriole.agent.decide", "run-pool-1"):
            await pool.start()
        await asyncio.wait_for(enough.wait(), 60)
    finally:
        await pool.close()
    opened = breaker_lines(caplog, "circuit open")
    assert len(opened) == 1
    assert len(breaker_lines(caplog, "failing its health check")) == 1
    status = pool.status()[0]  # every probe failed and counted: the outage went on
    assert status.state != "closed" and status.consecutive_failures >= probes - 2
    assert getattr(opened[0], "run_id", None) is None
