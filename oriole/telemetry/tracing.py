"""Traces across Kafka: one run is one trace, from its start to the viewer.

The OpenTelemetry API is always imported; the SDK and the OTLP/HTTP exporter only when a
receiver is configured (:func:`configure_tracing`). Off, every helper here returns at once
without calling OpenTelemetry (no tracer, no context switches, no ``opentelemetry.sdk``
import), and the services only pay for the log context (which run a log line is about).

How the context crosses Kafka: `oriole.kafka.codec.encode` asks :func:`trace_headers` for
the headers of each message. With a span current they are W3C ``traceparent`` (and
``tracestate``), injected by the configured propagator, plus ``oriole-trace-id`` holding the
context's trace id; without one (tracing off, or nothing traced yet) only
``oriole-trace-id``, the trace id derived from the message key
(`oriole.telemetry.trace_ids`). A consumer-side span takes the record's headers: its parent
is the producer-side span that wrote them. A run's first span (the gateway's start or the
admission of the start event) gets the ids derived from the run id, and a span whose record
carried no context hangs under that root, so a run stays one trace even across timers and
clients that do not trace.

Span attributes never hold message text: errors are recorded by class only, endpoints
through `oriole.redaction.redact_url`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util.types import AttributeValue

from oriole.redaction import redact_url
from oriole.run_state import RunState
from oriole.telemetry.log_context import CURRENT_RUN, RunLog
from oriole.telemetry.trace_ids import (
    FORCED_IDS,
    format_trace_id,
    run_span_id,
    run_trace_id,
    trace_id_hex,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from oriole.environment.settings import Settings

__all__ = [
    "ROLES",
    "TRACE_HEADER",
    "admission",
    "configure_tracing",
    "consuming",
    "decision",
    "delivery",
    "disable",
    "enable",
    "enabled",
    "gateway_start",
    "model_call",
    "projection_batch",
    "run_coroutine",
    "run_span",
    "service_name",
    "trace_headers",
    "traces_url",
]

log = logging.getLogger("oriole.telemetry")

T = TypeVar("T")
Headers = list[tuple[str, bytes]]
Attributes = dict[str, AttributeValue]

#: The header every Oriole message carries: the trace id of its context (32 hex digits).
TRACE_HEADER = "oriole-trace-id"
#: The process roles, each its own service name (``oriole-<role>``).
ROLES = ("worker", "projector", "gateway", "up")
#: Links one projection-batch span keeps (the SDK's default limit).
MAX_LINKS = 128

_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


def enabled() -> bool:
    return _tracer is not None


# --- turning it on ------------------------------------------------------------------------


def traces_url(setting: str | None, environ: Mapping[str, str]) -> str | None:
    """Where spans go: ``ORIOLE_OTEL_ENDPOINT``, else the standard OTLP variables; None: off.

    A base URL gets ``/v1/traces`` appended (as the OTLP spec does for
    ``OTEL_EXPORTER_OTLP_ENDPOINT``); the signal-specific variable is used as it is.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if setting:
        return _with_traces_path(setting)
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return _with_traces_path(base) if base else None


def _with_traces_path(base: str) -> str:
    base = base.strip().rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def service_name(role: str, environ: Mapping[str, str]) -> str:
    """``OTEL_SERVICE_NAME`` if set, else ``oriole-<role>``."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    return environ.get("OTEL_SERVICE_NAME", "").strip() or f"oriole-{role}"


def configure_tracing(
    settings: Settings, role: str, environ: Mapping[str, str] | None = None
) -> bool:
    """Turn tracing on for this process if a receiver is configured; True if it is on."""
    env = os.environ if environ is None else environ
    name = service_name(role, env)
    url = traces_url(settings.otel_endpoint, env)
    if url is None:
        return False
    from oriole.telemetry.tracing_sdk import otlp_processor

    enable(otlp_processor(url), name)
    log.info("tracing on: spans of %s go to %s", name, redact_url(url))
    return True


def enable(processor: SpanProcessor, service: str) -> TracerProvider:
    """Trace with the SDK, every finished span to ``processor`` (tests pass an in-memory
    exporter's); replaces any earlier set-up. Not the global provider: only Oriole's spans."""
    global _tracer, _provider
    from oriole.telemetry.tracing_sdk import provider_with

    disable()
    provider = provider_with(processor, service)
    _provider = provider
    _tracer = provider.get_tracer("oriole")
    return provider


def disable() -> None:
    """Back to off; the provider flushes what it holds."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


# --- headers ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _derived_header(basis: str) -> bytes:
    return trace_id_hex(basis).encode()


def trace_headers(basis: str | None) -> Headers:
    """The trace headers of a message produced now (``basis``: its key, usually a run id)."""
    if _tracer is not None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            headers = [(name, value.encode()) for name, value in carrier.items()]
            headers.append((TRACE_HEADER, format_trace_id(context.trace_id).encode()))
            return headers
    if basis:
        return [(TRACE_HEADER, _derived_header(basis))]
    return []


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    """Reads a Kafka record's headers (a list of name, bytes pairs) for the propagator."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [
            value.decode("latin-1")
            for name, value in carrier
            if name.lower() == key and isinstance(value, bytes)
        ]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


_GETTER = _HeaderGetter()


def _remote_parent(headers: Sequence[tuple[str, bytes]] | None) -> Context | None:
    """The producer-side context a record's headers carry, or None."""
    if not headers:
        return None
    context = propagate.extract(headers, context=Context(), getter=_GETTER)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _run_root(run_id: str) -> Context:
    """A context whose parent is the run's root span (ids derived from the run id)."""
    root = SpanContext(
        trace_id=run_trace_id(run_id),
        span_id=run_span_id(run_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(root), Context())


def _start(
    tracer: trace.Tracer,
    name: str,
    run_id: str | None,
    headers: Sequence[tuple[str, bytes]] | None,
    *,
    root: bool = False,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Attributes | None = None,
    links: Sequence[Link] | None = None,
    start_time: int | None = None,
) -> Span:
    """A span whose parent is the record's producer, else (``root``) the run's root span
    itself, else a child of the run's root."""
    parent = _remote_parent(headers)
    token: Token[tuple[int, int] | None] | None = None
    if parent is None:
        if run_id is None:
            parent = Context()
        elif root:
            parent = Context()
            token = FORCED_IDS.set((run_trace_id(run_id), run_span_id(run_id)))
        else:
            parent = _run_root(run_id)
    try:
        return tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=start_time,
        )
    finally:
        if token is not None:
            FORCED_IDS.reset(token)


def _fail(span: Span, error: BaseException | None) -> None:
    """Mark a span failed by the error's class only: its text may hold anything."""
    if error is not None and span.is_recording():
        name = type(error).__name__
        span.set_attribute("error.type", name)
        span.set_status(Status(StatusCode.ERROR, name))


# --- a run's scope: span and log context --------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _untraced_log(run_id: str) -> RunLog:
    return RunLog(run_id, trace_id_hex(run_id))


@functools.lru_cache(maxsize=8192)
def _untraced_log_of_key(key: bytes) -> RunLog:
    return _untraced_log(key.decode("utf-8", "replace"))


class _LogScope:
    """Tracing off: only the run's log context (the cheap path of every helper below)."""

    __slots__ = ("_log", "_token")

    def __init__(self, run_log: RunLog) -> None:
        self._log = run_log
        self._token: Token[RunLog | None] | None = None

    def __enter__(self) -> None:
        self._token = CURRENT_RUN.set(self._log)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            CURRENT_RUN.reset(self._token)
            self._token = None


_NO_SCOPE: AbstractContextManager[None] = nullcontext()


class _RunScope:
    """While open: the run's span is current (tracing on) and log lines name the run."""

    __slots__ = (
        "_log_token",
        "_span",
        "_span_scope",
        "attributes",
        "headers",
        "kind",
        "name",
        "record",
        "root",
        "run_id",
        "start_time",
    )

    def __init__(
        self,
        name: str,
        run_id: str | None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        *,
        root: bool = False,
        kind: SpanKind = SpanKind.CONSUMER,
        attributes: Attributes | Callable[[], Attributes] | None = None,
        start_time: int | None = None,
        record: Any = None,
    ) -> None:
        self.name = name
        self.run_id = run_id
        self.headers = headers
        self.root = root
        self.kind = kind
        self.attributes = attributes
        self.start_time = start_time
        self.record = record
        self._span: Span | None = None
        self._span_scope: AbstractContextManager[Span] | None = None
        self._log_token: Token[RunLog | None] | None = None

    def __enter__(self) -> Span | None:
        tracer = _tracer
        run_id = self.run_id
        if tracer is None:
            if run_id is not None:
                self._log_token = CURRENT_RUN.set(_untraced_log(run_id))
            return None
        attributes = self.attributes() if callable(self.attributes) else dict(self.attributes or {})
        if self.record is not None:
            attributes.update(_record_attributes(self.record))
        if run_id is not None:
            attributes["oriole.run_id"] = run_id
        span = _start(
            tracer,
            self.name,
            run_id,
            self.headers,
            root=self.root,
            kind=self.kind,
            attributes=attributes,
            start_time=self.start_time,
        )
        self._span = span
        self._span_scope = trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        )
        self._span_scope.__enter__()
        if run_id is not None:
            trace_id = format_trace_id(span.get_span_context().trace_id)
            self._log_token = CURRENT_RUN.set(RunLog(run_id, trace_id))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._log_token is not None:
            CURRENT_RUN.reset(self._log_token)
            self._log_token = None
        if self._span_scope is not None and self._span is not None:
            _fail(self._span, exc)
            scope, self._span_scope, self._span = self._span_scope, None, None
            scope.__exit__(exc_type, exc, tb)


def _record_attributes(record: Any) -> Attributes:
    attributes: Attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": str(record.topic),
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": int(record.offset),
    }
    for name, value in record.headers or ():
        if name == "oriole-type" and isinstance(value, bytes):
            attributes["oriole.message_type"] = value.decode("utf-8", "replace")[:100]
    return attributes


def _key_text(key: bytes | None) -> str | None:
    return None if not key else key.decode("utf-8", "replace")


def run_span(
    name: str,
    run_id: str | None,
    headers: Sequence[tuple[str, bytes]] | None = None,
    *,
    root: bool = False,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | Callable[[], Attributes] | None = None,
    start_time: int | None = None,
) -> AbstractContextManager[Span | None]:
    """A span of ``run_id`` (parent: the producer of ``headers``, else the run's root; with
    ``root`` and no parent, the run's root itself), current while the block runs, and the
    run's log context. Off: only the log context. ``attributes`` may be a callable, called
    only when tracing is on."""
    if _tracer is None:
        return _NO_SCOPE if run_id is None else _LogScope(_untraced_log(run_id))
    return _RunScope(
        name, run_id, headers, root=root, kind=kind, attributes=attributes, start_time=start_time
    )


def consuming(name: str, record: Any) -> AbstractContextManager[Span | None]:
    """The span of handling one record of a run-keyed topic (parent: its producer)."""
    if _tracer is None:
        key = record.key
        return _LogScope(_untraced_log_of_key(key)) if key else _NO_SCOPE
    return _RunScope(name, _key_text(record.key), record.headers, record=record)


def admission(record: Any, run_id: str | None, began: int, outcome: str) -> _RunScope:
    """The span of admitting a start event, opened once its run id is known (``began``:
    `time.time_ns` before admission). The run's root unless the start carried a context."""
    return _RunScope(
        "oriole.maze.admission",
        run_id,
        record.headers,
        root=True,
        record=record,
        attributes={"oriole.admission.outcome": outcome},
        start_time=began,
    )


def gateway_start(run_id: str, began: int) -> _RunScope:
    """The gateway's ``POST /api/experiments`` of ``run_id`` from ``began`` (admission
    included): the run's root span, whose context the start event carries."""
    return _RunScope(
        "oriole.gateway.start", run_id, root=True, kind=SpanKind.PRODUCER, start_time=began
    )


def now() -> int:
    """Nanoseconds since the epoch, the span clock (for spans opened after the fact)."""
    return time.time_ns()


async def _in_scope(scope: _RunScope, make: Callable[[], Awaitable[T]]) -> T:
    with scope:
        return await make()


def run_coroutine(
    name: str,
    run_id: str,
    make: Callable[[], Awaitable[T]],
    *,
    headers: Sequence[tuple[str, bytes]] | None = None,
    attributes: Callable[[], Attributes] | None = None,
) -> Coroutine[Any, Any, T]:
    """``make()`` awaited inside the run's scope: for a task that works for one run (the
    coroutine is created inside, so a task cancelled before it starts leaves none behind)."""
    scope = _RunScope(name, run_id, headers, kind=SpanKind.CONSUMER, attributes=attributes)
    return _in_scope(scope, make)


def decision(
    state: RunState, make: Callable[[], Awaitable[T]], contexts: RunContexts
) -> Coroutine[Any, Any, T]:
    """The agent runner's decision for ``state`` (``make()``) as an ``oriole.agent.decide``
    span whose parent is the event it answers (the run's newest record in ``contexts``)."""

    def describe() -> Attributes:
        attributes: Attributes = {"oriole.basis_seq": state.seq}
        if state.spec is not None:
            attributes["oriole.provider"] = state.spec.agent.provider
            attributes["oriole.model"] = state.spec.agent.model
        return attributes

    return run_coroutine(
        "oriole.agent.decide",
        state.run_id,
        make,
        headers=contexts.headers(state.run_id),
        attributes=describe,
    )


class RunContexts:
    """The newest record headers of each run a consumer follows: the parent of the span of
    work done later for that run (the agent runner's decision). Nothing is kept when off."""

    __slots__ = ("_headers",)

    def __init__(self) -> None:
        self._headers: dict[str, Sequence[tuple[str, bytes]]] = {}

    def note(self, run_id: str | None, headers: Sequence[tuple[str, bytes]] | None) -> None:
        if _tracer is not None and run_id is not None and headers:
            self._headers[run_id] = headers

    def headers(self, run_id: str) -> Sequence[tuple[str, bytes]] | None:
        return self._headers.get(run_id)

    def forget(self, run_id: str) -> None:
        self._headers.pop(run_id, None)

    def clear(self) -> None:
        self._headers.clear()


# --- model calls --------------------------------------------------------------------------


def model_call(call: Awaitable[T], provider: str, model: str) -> Awaitable[T]:
    """``call`` (a model call through an endpoint pool) inside an ``oriole.model.call`` span
    with the endpoint, attempts and tokens it reports; ``call`` itself when off."""
    if _tracer is None:
        return call
    return _traced_call(_tracer, call, provider, model)


async def _traced_call(tracer: trace.Tracer, call: Awaitable[T], provider: str, model: str) -> T:
    attributes: Attributes = {
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "oriole.provider": provider,
        "oriole.model": model,
    }
    span = tracer.start_span("oriole.model.call", kind=SpanKind.CLIENT, attributes=attributes)
    with trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        try:
            result = await call
        except BaseException as exc:
            _describe_call(span, exc)
            _fail(span, exc)
            raise
        _describe_call(span, result)
        reply = getattr(result, "reply", None)
        for field, attribute in (
            ("input_tokens", "gen_ai.usage.input_tokens"),
            ("output_tokens", "gen_ai.usage.output_tokens"),
        ):
            value = getattr(reply, field, None)
            if isinstance(value, int):
                span.set_attribute(attribute, value)
        return result


def _describe_call(span: Span, outcome: object) -> None:
    """Endpoint (redacted) and attempts of a call result or of the error it raised."""
    endpoint = getattr(outcome, "endpoint", None)
    if isinstance(endpoint, str) and endpoint:
        span.set_attribute("oriole.endpoint", redact_url(endpoint))
    attempts = getattr(outcome, "attempts", None)
    if isinstance(attempts, int):
        span.set_attribute("oriole.attempts", attempts)


# --- batches of many runs -----------------------------------------------------------------


def _newest_by_run(
    records: Iterable[Any], topic: str | None = None
) -> dict[str, tuple[Sequence[tuple[str, bytes]] | None, int]]:
    """Run id -> (headers of its newest record, records) among ``records`` (of ``topic``)."""
    runs: dict[str, tuple[Sequence[tuple[str, bytes]] | None, int]] = {}
    for record in records:
        if topic is not None and record.topic != topic:
            continue
        run_id = _key_text(record.key)
        if run_id is None:
            continue
        _, seen = runs.get(run_id, (None, 0))
        runs[run_id] = (record.headers, seen + 1)
    return runs


class _ProjectionBatch:
    """The projector's span of one batch (its own trace, linked to each run's), and on exit
    a short span per run in the run's own trace, linked back to the batch."""

    def __init__(self, tracer: trace.Tracer, batches: Mapping[Any, Sequence[Any]], topic: str):
        self.tracer = tracer
        self.records = [record for records in batches.values() for record in records]
        self.runs = _newest_by_run(self.records, topic)
        self.began = 0
        self.span: Span | None = None
        self.scope: AbstractContextManager[Span] | None = None

    def __enter__(self) -> Span:
        links: list[Link] = []
        seen: set[int] = set()
        traced: dict[str, Sequence[tuple[str, bytes]]] = {}
        for record in self.records:  # the newest record of each key that carries a context
            run_id = _key_text(record.key)
            if run_id is not None and any(name == "traceparent" for name, _ in record.headers):
                traced[run_id] = record.headers
        for run_id, headers in traced.items():
            parent = _remote_parent(headers)
            if parent is None:
                continue
            context = trace.get_current_span(parent).get_span_context()
            if context.trace_id in seen or len(links) >= MAX_LINKS:
                continue
            seen.add(context.trace_id)
            links.append(Link(context, {"oriole.run_id": run_id}))
        self.began = now()
        span = self.tracer.start_span(
            "oriole.projector.batch",
            context=Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(self.records),
                "oriole.runs": len(self.runs),
            },
            start_time=self.began,
        )
        self.span = span
        self.scope = trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        )
        self.scope.__enter__()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span, scope = self.span, self.scope
        if span is None or scope is None:
            return
        _fail(span, exc)
        scope.__exit__(exc_type, exc, tb)
        back = [Link(span.get_span_context())]
        for run_id, (headers, count) in self.runs.items():
            archived = _start(
                self.tracer,
                "oriole.projector.archive",
                run_id,
                headers,
                attributes={"oriole.run_id": run_id, "oriole.events": count},
                links=back,
                start_time=self.began,
            )
            _fail(archived, exc)
            archived.end()


def projection_batch(
    batches: Mapping[Any, Sequence[Any]], run_topic: str
) -> AbstractContextManager[object]:
    """Around the projector's handling of one poll's ``batches`` (see `_ProjectionBatch`)."""
    if _tracer is None:
        return nullcontext()
    return _ProjectionBatch(_tracer, batches, run_topic)


class _Delivery:
    """The gateway's span per run with subscribers among a chunk of records it fans out."""

    def __init__(self, tracer: trace.Tracer, records: Sequence[Any], subscribed: Mapping[str, Any]):
        self.tracer = tracer
        self.records = records
        self.subscribed = subscribed
        self.began = 0

    def __enter__(self) -> None:
        self.began = now()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for run_id, (headers, count) in _newest_by_run(self.records).items():
            subscribers = self.subscribed.get(run_id)
            if not subscribers:
                continue
            span = _start(
                self.tracer,
                "oriole.gateway.deliver",
                run_id,
                headers,
                attributes={
                    "oriole.run_id": run_id,
                    "oriole.events": count,
                    "oriole.subscribers": len(subscribers),
                },
                start_time=self.began,
            )
            _fail(span, exc)
            span.end()


def delivery(records: Sequence[Any], subscribed: Mapping[str, Any]) -> AbstractContextManager[None]:
    """Around the gateway hub's fan-out of ``records`` (``subscribed``: run id -> its
    subscribers)."""
    if _tracer is None:
        return nullcontext()
    return _Delivery(_tracer, records, subscribed)
