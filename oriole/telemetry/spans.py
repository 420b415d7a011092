"""How every Oriole span starts and ends: under the right parent, failed by class only.

A span whose record carried a context (`oriole.telemetry.tracing.remote_parent`) hangs
under the producer-side span that wrote it. A run's first span (the gateway's start or the
admission of the start event) gets the ids derived from the run id, and a span whose
record carried no context hangs under that root, so a run stays one trace even across
timers and clients that do not trace.

Span attributes never hold message text: errors are recorded by class only, endpoints
through `oriole.redaction.redact_url`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import Token
from types import TracebackType

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
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

from oriole.telemetry.trace_ids import FORCED_IDS, run_span_id, run_trace_id
from oriole.telemetry.tracing import remote_parent

__all__ = [
    "Attributes",
    "CurrentSpan",
    "Scope",
    "fail",
    "now",
    "run_id_of",
    "start_span",
]

Attributes = dict[str, AttributeValue]


def now() -> int:
    """Nanoseconds since the epoch, the span clock (for spans opened after the fact)."""
    return time.time_ns()


def run_id_of(key: bytes | None) -> str | None:
    """The run id a record's key names (records of run-keyed topics), or None."""
    return None if not key else key.decode("utf-8", "replace")


def _run_root(run_id: str) -> Context:
    """A context whose parent is the run's root span (ids derived from the run id)."""
    root = SpanContext(
        trace_id=run_trace_id(run_id),
        span_id=run_span_id(run_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(root), Context())


def start_span(
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
    parent = remote_parent(headers)
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


def fail(span: Span, error: BaseException | None) -> None:
    """Mark a span failed by the error's class only: its text may hold anything."""
    if error is not None and span.is_recording():
        name = type(error).__name__
        span.set_attribute("error.type", name)
        span.set_status(Status(StatusCode.ERROR, name))


class Scope:
    """A with-block scope whose exit needs only the error the block raised: subclasses say
    what leaving means in :meth:`close`, and never repeat ``__exit__``."""

    __slots__ = ()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc)

    def close(self, error: BaseException | None) -> None:
        """Undo what entering did (``error``: what the block raised, if anything)."""
        raise NotImplementedError


class CurrentSpan(Scope):
    """``span`` current while open; on exit failed by the error's class, then ended. The
    error is not recorded otherwise (OpenTelemetry's own recording would keep its text)."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        self._token = attach(trace.set_span_in_context(self.span))
        return self.span

    def close(self, error: BaseException | None) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        fail(self.span, error)
        detach(token)
        self.span.end()
