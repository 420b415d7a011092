"""Traces across Kafka (issue 15): one run is one trace, from admission to the archive.

The end-to-end test runs a real maze processor, agent runner (against a fake Ollama) and
projector on the session's broker with the SDK's in-memory exporter, and checks the spans
by their ids: one trace id for the run, each consumer-side span the child of the span that
produced its record. The others check that tracing off costs no SDK and still writes a valid
``oriole-trace-id``, and that a configured receiver really gets OTLP/HTTP.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oriole.environment.logs import QUIET_LIBRARIES, configure_logging
from oriole.environment.settings import SettingsError, load_settings
from oriole.generators import generate
from oriole.intents import CancelRequest
from oriole.kafka.codec import TRACE_HEADER, encode
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION
from oriole.redaction import redact_url
from oriole.telemetry import tracing
from oriole.telemetry.run_spans import RunContexts, decision, run_span
from oriole.telemetry.trace_ids import format_trace_id, run_span_id, run_trace_id
from tests.fake_llm import FakeOllama, HttpError
from tests.kafka_support import (
    TopicReader,
    eventually,
    finished,
    make_stack,
    publish,
    running_projector,
    running_worker,
    start_event,
)

KEY = "sk-planted-" + uuid.uuid4().hex  # appears only if it leaked


def assert_absent(secret: str, text: str, where: str) -> None:
    if secret in text:
        pytest.fail(f"a secret leaked into {where}", pytrace=False)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, every span kept in memory; off again after."""
    exporter = InMemorySpanExporter()
    tracing.enable(SimpleSpanProcessor(exporter), "oriole-test")
    try:
        yield exporter
    finally:
        tracing.disable()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Oriole's own JSON log handler, writing to a buffer; the root logger restored after."""
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


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


# --- off: no SDK, headers still valid -----------------------------------------------------

OFF_SCRIPT = """
import asyncio, json, re, sys
import gateway.hub, projections.projector, providers.agent, streams.worker
from oriole.environment.settings import load_settings
from oriole.intents import CancelRequest
from oriole.kafka.codec import encode
from oriole.telemetry import tracing
from oriole.telemetry.model_call_spans import model_call
from oriole.telemetry.run_spans import run_span

settings = load_settings(env_file=None)
on = tracing.configure_tracing(settings, "worker", environ={})
headers = dict(encode("t", CancelRequest(run_id="run-off-1", reason="x"), "run-off-1").headers)
with run_span("oriole.maze.timer", "run-off-1") as span:
    inner = tracing.trace_headers("run-off-1")

async def call():
    return 7

coroutine = call()
passed_through = model_call(coroutine, "ollama", "m") is coroutine
asyncio.run(coroutine)
print(json.dumps({
    "on": on,
    "span": span is None,
    "passed_through": passed_through,
    "headers": {k: v.decode() for k, v in headers.items()},
    "inner": [[k, v.decode()] for k, v in inner],
    "sdk": sorted(
        m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
    ),
}))
"""


def test_tracing_off_loads_no_sdk_and_headers_still_carry_a_valid_trace_id() -> None:
    """In a fresh interpreter (this one has the SDK loaded by other tests): every service
    module imported, tracing not configured, a message encoded inside a run's scope."""
    done = subprocess.run(
        [sys.executable, "-c", OFF_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["on"] is False
    assert seen["sdk"] == []
    assert seen["span"] is True and seen["passed_through"] is True
    trace_id = seen["headers"][TRACE_HEADER]
    assert len(trace_id) == 32 and int(trace_id, 16) != 0 and trace_id == trace_id.lower()
    assert trace_id == format_trace_id(run_trace_id("run-off-1"))
    assert "traceparent" not in seen["headers"]
    assert seen["inner"] == [[TRACE_HEADER, trace_id]]


def test_the_receiver_comes_from_the_setting_or_the_standard_variables() -> None:
    assert tracing.traces_url(None, {}) is None
    assert tracing.traces_url("http://c:4318", {}) == "http://c:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/v1/traces/", {}) == "http://c:4318/v1/traces"
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert tracing.traces_url(None, base) == "http://collector:4318/v1/traces"
    specific = base | {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/otlp"}
    assert tracing.traces_url(None, specific) == "http://tempo:4318/otlp"
    assert tracing.traces_url("http://c:4318", {"OTEL_SDK_DISABLED": "true"}) is None
    assert [tracing.service_name(role, {}) for role in tracing.ROLES] == [
        "oriole-worker",
        "oriole-projector",
        "oriole-gateway",
        "oriole-up",
    ]
    assert tracing.service_name("worker", {"OTEL_SERVICE_NAME": "maze-a"}) == "maze-a"
    with pytest.raises(SettingsError, match="ORIOLE_OTEL_ENDPOINT"):
        load_settings(env_file=None, otel_endpoint="collector:4318")
    assert load_settings(env_file=None, otel_endpoint=" ").otel_endpoint is None


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes]]] = []
    received: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        type(self).bodies.append((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()
        type(self).received.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_configured_receiver_gets_the_spans_over_otlp_http() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        settings = load_settings(env_file=None, otel_endpoint=endpoint)
        assert tracing.configure_tracing(settings, "projector", environ={}) is True
        with run_span("oriole.maze.timer", "run-otlp-1"):
            pass
        tracing.disable()  # shuts the provider down: the batch is flushed now
        assert _Receiver.received.wait(30)
    finally:
        tracing.disable()
        server.shutdown()
        server.server_close()
    path, body = _Receiver.bodies[0]
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    resource = request.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "oriole-projector"
    exported = resource.scope_spans[0].spans[0]
    assert exported.name == "oriole.maze.timer"
    assert exported.trace_id == run_trace_id("run-otlp-1").to_bytes(16, "big")


def test_a_traced_message_carries_traceparent_and_the_same_trace_id(
    spans: InMemorySpanExporter,
) -> None:
    message = CancelRequest(run_id="run-hdr-1", reason="x")
    with run_span("oriole.gateway.start", "run-hdr-1", root=True) as span:
        assert span is not None
        headers = dict(encode("t", message, "run-hdr-1").headers)
    context = span.get_span_context()
    trace_id = format_trace_id(context.trace_id)
    assert headers[TRACE_HEADER] == trace_id.encode()
    assert headers["traceparent"] == f"00-{trace_id}-{context.span_id:016x}-03".encode()
    # The run's root gets the ids every process derives from the run id.
    assert context.trace_id == run_trace_id("run-hdr-1")
    assert context.span_id == run_span_id("run-hdr-1")


# --- one run, end to end ------------------------------------------------------------------


def by_id(finished_spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in finished_spans}


def parent_of(span: ReadableSpan, index: dict[int, ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    parent = index.get(span.parent.span_id)
    assert parent is not None, f"the parent of {span.name} is not one of the run's spans"
    return parent


@pytest.mark.slow
@pytest.mark.asyncio
async def test_one_run_is_one_trace_across_kafka(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pool: asyncpg.Pool,
    spans: InMemorySpanExporter,
    json_logs: io.StringIO,
) -> None:
    async with FakeOllama() as fake:
        # The key is planted in the endpoint's userinfo, and the first answer quotes it.
        endpoint = fake.url.replace("http://", f"http://oriole:{KEY}@")
        fake.push(HttpError(500, f"upstream rejected key {KEY} for this model"))
        stack = await make_stack(
            tmp_path,
            kafka_broker,
            topic_prefix,
            partitions=2,
            ollama_endpoints=[endpoint],
            llm_backoff_base_seconds=0.01,
            llm_backoff_max_seconds=0.05,
        )
        run_id = f"run-traced-{uuid.uuid4().hex[:8]}"
        start = start_event(
            run_id,
            generate("backtracker", 15, 15, seed=3).to_dict(),
            agent={"provider": "ollama", "model": "qwen2.5:7b"},
            prompt={"version": DEFAULT_PROMPT_VERSION},
            limits={"max_actions": 3, "max_footsteps": None},
        )
        async with (
            running_worker(stack),
            running_projector(stack, pool),
            TopicReader(stack.bootstrap, stack.topics.runs_events) as reader,
        ):
            await publish(stack.bootstrap, stack.topics.experiments_start, start, run_id.encode())
            await reader.until(finished([run_id]))
            count = sum(1 for r in reader.records if r.key == run_id.encode())

            async def archived() -> bool:
                stored = await pool.fetchval(
                    "SELECT count(*) FROM run_events WHERE run_id = $1", run_id
                )
                names = {s.name for s in spans.get_finished_spans()}
                return int(stored) >= count and "oriole.projector.archive" in names

            await eventually(archived)
        records = [r for r in reader.records if r.key == run_id.encode()]

    trace_id = run_trace_id(run_id)
    finished_spans = list(spans.get_finished_spans())
    run_spans = [s for s in finished_spans if s.context.trace_id == trace_id]
    index = by_id(run_spans)
    names = [s.name for s in run_spans]
    for name in (
        "oriole.maze.admission",
        "oriole.maze.command",
        "oriole.agent.decide",
        "oriole.model.call",
        "oriole.projector.archive",
    ):
        assert name in names, (name, sorted(set(names)))
    # Every span naming the run is in its trace.
    for span in finished_spans:
        if (span.attributes or {}).get("oriole.run_id") == run_id:
            assert span.context.trace_id == trace_id, span.name

    # The root: the admission of a start that carried no context, with the derived ids.
    (admission,) = [s for s in run_spans if s.name == "oriole.maze.admission"]
    assert admission.parent is None and admission.context.span_id == run_span_id(run_id)
    assert (admission.attributes or {})["oriole.admission.outcome"] == "admitted"

    # Across Kafka, every hop: the consumer's parent is the producer that wrote the record.
    commands = [s for s in run_spans if s.name == "oriole.maze.command"]
    decisions = [s for s in run_spans if s.name == "oriole.agent.decide"]
    kinds = {(s.attributes or {}).get("oriole.message_type") for s in commands}
    assert {"run.start", "agent.intent"} <= kinds
    for command in commands:
        expected = (
            "oriole.maze.admission"
            if (command.attributes or {})["oriole.message_type"] == "run.start"
            else "oriole.agent.decide"
        )
        assert parent_of(command, index).name == expected
    assert len(decisions) >= 3
    for decide_span in decisions:
        assert parent_of(decide_span, index).name == "oriole.maze.command"
    # The records themselves: each event's traceparent names the command span that wrote it.
    command_ids = {s.context.span_id for s in commands}
    for record in records:
        headers = dict(record.headers)
        version, trace_hex, span_hex, _ = headers["traceparent"].decode().split("-")
        assert (version, trace_hex) == ("00", format_trace_id(trace_id))
        assert headers[TRACE_HEADER] == trace_hex.encode()
        assert int(span_hex, 16) in command_ids

    # The projector: per run a span in the run's trace under the event's producer, linked
    # to the batch span, which is in a trace of its own and links back to the run.
    archives = [s for s in run_spans if s.name == "oriole.projector.archive"]
    batches = {s.context.span_id: s for s in finished_spans if s.name == "oriole.projector.batch"}
    for archive in archives:
        assert parent_of(archive, index).name in ("oriole.maze.command", "oriole.maze.timer")
        (link,) = archive.links
        batch = batches[link.context.span_id]
        assert batch.context.trace_id != trace_id
        assert any(back.context.trace_id == trace_id for back in batch.links)
    assert sum((s.attributes or {})["oriole.events"] for s in archives) >= len(records)

    # Model calls: children of a decision, with tokens, attempts and the redacted endpoint.
    calls = [s for s in run_spans if s.name == "oriole.model.call"]
    called = [r for r in records if dict(r.headers)["oriole-type"] == b"model.called"]
    assert len(calls) == len(called) >= 2
    for call in calls:
        attributes = call.attributes or {}
        assert parent_of(call, index).name == "oriole.agent.decide"
        assert attributes["oriole.endpoint"] == redact_url(endpoint) == fake.url
        assert attributes["oriole.provider"] == "ollama"
        assert attributes["gen_ai.request.model"] == "qwen2.5:7b"
        assert isinstance(attributes["gen_ai.usage.input_tokens"], int)
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
    assert max((c.attributes or {})["oriole.attempts"] for c in calls) == 2  # the 500 retried

    # The planted key: in no span (attributes, events, status) and no JSON log line.
    for span in finished_spans:
        assert_absent(KEY, span.to_json(), f"the span {span.name}")
    logged = json_logs.getvalue()
    assert_absent(KEY, logged, "the JSON logs")

    # The logs about the run name it and its trace.
    lines = [json.loads(line) for line in logged.splitlines()]
    about_run = [line for line in lines if line.get("run_id") == run_id]
    messages = " | ".join(line["message"] for line in about_run)
    assert f"run {run_id} started" in messages
    assert "call to" in messages  # the transport's retry line, written inside the decision
    assert {line.get("trace_id") for line in about_run} == {format_trace_id(trace_id)}


@pytest.mark.asyncio
async def test_a_decision_span_is_the_child_of_the_event_it_answers(
    spans: InMemorySpanExporter,
) -> None:
    """The runner keeps each run's newest record headers; forgotten runs fall back to the
    run's root."""
    contexts = RunContexts()
    with run_span("oriole.maze.command", "run-dec-1") as producer:
        assert producer is not None
        headers = encode("t", CancelRequest(run_id="run-dec-1", reason="x"), "run-dec-1").headers
    contexts.note("run-dec-1", headers)

    async def decide() -> str:
        return format_trace_id(trace.get_current_span().get_span_context().trace_id)

    from oriole.run_state import RunState

    state = RunState("run-dec-1")
    assert await decision(state, decide, contexts) == format_trace_id(run_trace_id("run-dec-1"))
    contexts.forget("run-dec-1")
    await asyncio.create_task(decision(state, decide, contexts))
    first, second = [s for s in spans.get_finished_spans() if s.name == "oriole.agent.decide"]
    assert first.parent is not None and second.parent is not None
    assert first.parent.span_id == producer.get_span_context().span_id
    assert second.parent.span_id == run_span_id("run-dec-1")
