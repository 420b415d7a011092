"""One run's work as a span of the run's trace, and the run's log context around it.

Every helper here opens a scope a shell enters while it works for one run: while open, the
run's span is current (so messages produced inside carry its context, see
`oriole.telemetry.tracing`) and log lines name the run and its trace id
(`oriole.telemetry.log_context`). Off, a scope is only that log context, with the trace id
derived from the run id: the same the ``oriole-trace-id`` header carries.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from typing import Any, TypeVar

from opentelemetry.trace import Span, SpanKind

from oriole.run_state import RunState
from oriole.telemetry.log_context import CURRENT_RUN, RunLog
from oriole.telemetry.spans import Attributes, CurrentSpan, Scope, run_id_of, start_span
from oriole.telemetry.trace_ids import format_trace_id, trace_id_hex
from oriole.telemetry.tracing import current_tracer, enabled

__all__ = [
    "RunContexts",
    "admission",
    "consuming",
    "decision",
    "gateway_start",
    "run_coroutine",
    "run_span",
]

T = TypeVar("T")


@functools.lru_cache(maxsize=8192)
def _untraced_log(run_id: str) -> RunLog:
    return RunLog(run_id, trace_id_hex(run_id))


@functools.lru_cache(maxsize=8192)
def _untraced_log_of_key(key: bytes) -> RunLog:
    return _untraced_log(key.decode("utf-8", "replace"))


class _LogScope(Scope):
    """The run's log context: alone when tracing is off (the cheap path of every helper
    below), beside the run's span when on."""

    __slots__ = ("_log", "_token")

    def __init__(self, run_log: RunLog) -> None:
        self._log = run_log
        self._token: Token[RunLog | None] | None = None

    def __enter__(self) -> None:
        self._token = CURRENT_RUN.set(self._log)

    def close(self, error: BaseException | None) -> None:
        if self._token is not None:
            CURRENT_RUN.reset(self._token)
            self._token = None


_NO_SCOPE: AbstractContextManager[None] = nullcontext()


class _RunScope(Scope):
    """While open: the run's span is current (tracing on) and log lines name the run."""

    __slots__ = (
        "_log",
        "_span",
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
        self._span: CurrentSpan | None = None
        self._log: _LogScope | None = None

    def __enter__(self) -> Span | None:
        tracer = current_tracer()
        run_id = self.run_id
        if tracer is None:
            if run_id is not None:
                self._enter_log(_untraced_log(run_id))
            return None
        attributes = self.attributes() if callable(self.attributes) else dict(self.attributes or {})
        if self.record is not None:
            attributes.update(_record_attributes(self.record))
        if run_id is not None:
            attributes["oriole.run_id"] = run_id
        span = start_span(
            tracer,
            self.name,
            run_id,
            self.headers,
            root=self.root,
            kind=self.kind,
            attributes=attributes,
            start_time=self.start_time,
        )
        self._span = CurrentSpan(span)
        self._span.__enter__()
        if run_id is not None:
            self._enter_log(RunLog(run_id, format_trace_id(span.get_span_context().trace_id)))
        return span

    def _enter_log(self, run_log: RunLog) -> None:
        self._log = _LogScope(run_log)
        self._log.__enter__()

    def close(self, error: BaseException | None) -> None:
        log, span, self._log, self._span = self._log, self._span, None, None
        if log is not None:
            log.close(error)
        if span is not None:
            span.close(error)


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
    if not enabled():
        return _NO_SCOPE if run_id is None else _LogScope(_untraced_log(run_id))
    return _RunScope(
        name, run_id, headers, root=root, kind=kind, attributes=attributes, start_time=start_time
    )


def consuming(name: str, record: Any) -> AbstractContextManager[Span | None]:
    """The span of handling one record of a run-keyed topic (parent: its producer)."""
    if not enabled():
        key = record.key
        return _LogScope(_untraced_log_of_key(key)) if key else _NO_SCOPE
    return _RunScope(name, run_id_of(record.key), record.headers, record=record)


def admission(record: Any, run_id: str | None, began: int, outcome: str) -> _RunScope:
    """The span of admitting a start event, opened once its run id is known (``began``:
    `oriole.telemetry.spans.now` before admission). The run's root unless the start carried
    a context."""
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
        if enabled() and run_id is not None and headers:
            self._headers[run_id] = headers

    def headers(self, run_id: str) -> Sequence[tuple[str, bytes]] | None:
        return self._headers.get(run_id)

    def forget(self, run_id: str) -> None:
        self._headers.pop(run_id, None)

    def clear(self) -> None:
        self._headers.clear()
