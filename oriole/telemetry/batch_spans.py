"""Spans of work on many runs at once: the projector's batch, the gateway's fan-out.

A batch is not one run's, so its span cannot sit in one run's trace. The projector's batch
span is its own trace, linked to each run's; the run's own trace gets a short span per run
(the archive, the delivery to its subscribers) whose parent is the run's newest record in
the batch, so every run's trace still shows where its events went.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from oriole.telemetry.spans import (
    Attributes,
    CurrentSpan,
    Scope,
    fail,
    now,
    run_id_of,
    start_span,
)
from oriole.telemetry.tracing import current_tracer, remote_parent

__all__ = ["delivery", "projection_batch"]

#: Links one projection-batch span keeps (the SDK's default limit).
MAX_LINKS = 128


def _newest_by_run(
    records: Iterable[Any], topic: str | None = None
) -> dict[str, tuple[Sequence[tuple[str, bytes]] | None, int]]:
    """Run id -> (headers of its newest record, records) among ``records`` (of ``topic``)."""
    runs: dict[str, tuple[Sequence[tuple[str, bytes]] | None, int]] = {}
    for record in records:
        if topic is not None and record.topic != topic:
            continue
        run_id = run_id_of(record.key)
        if run_id is None:
            continue
        _, seen = runs.get(run_id, (None, 0))
        runs[run_id] = (record.headers, seen + 1)
    return runs


def _finished_run_span(
    tracer: trace.Tracer,
    name: str,
    run_id: str,
    headers: Sequence[tuple[str, bytes]] | None,
    attributes: Attributes,
    *,
    began: int,
    error: BaseException | None,
    links: Sequence[Link] | None = None,
) -> None:
    """A span of ``run_id`` from ``began`` to now, in the run's trace, already ended."""
    span = start_span(
        tracer,
        name,
        run_id,
        headers,
        attributes={"oriole.run_id": run_id, **attributes},
        links=links,
        start_time=began,
    )
    fail(span, error)
    span.end()


class _ProjectionBatch(Scope):
    """The projector's span of one batch (its own trace, linked to each run's), and on exit
    a short span per run in the run's own trace, linked back to the batch."""

    def __init__(self, tracer: trace.Tracer, batches: Mapping[Any, Sequence[Any]], topic: str):
        self.tracer = tracer
        self.records = [record for records in batches.values() for record in records]
        self.runs = _newest_by_run(self.records, topic)
        self.began = 0
        self.current: CurrentSpan | None = None

    def __enter__(self) -> Span:
        links = self._links()
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
        self.current = CurrentSpan(span)
        return self.current.__enter__()

    def _links(self) -> list[Link]:
        """A link to each traced run's context (the newest record of each key carrying one),
        one per trace, at most `MAX_LINKS`."""
        links: list[Link] = []
        seen: set[int] = set()
        traced: dict[str, Sequence[tuple[str, bytes]]] = {}
        for record in self.records:
            run_id = run_id_of(record.key)
            if run_id is not None and any(name == "traceparent" for name, _ in record.headers):
                traced[run_id] = record.headers
        for run_id, headers in traced.items():
            parent = remote_parent(headers)
            if parent is None:
                continue
            context = trace.get_current_span(parent).get_span_context()
            if context.trace_id in seen or len(links) >= MAX_LINKS:
                continue
            seen.add(context.trace_id)
            links.append(Link(context, {"oriole.run_id": run_id}))
        return links

    def close(self, error: BaseException | None) -> None:
        current, self.current = self.current, None
        if current is None:
            return
        current.close(error)
        back = [Link(current.span.get_span_context())]
        for run_id, (headers, count) in self.runs.items():
            _finished_run_span(
                self.tracer,
                "oriole.projector.archive",
                run_id,
                headers,
                {"oriole.events": count},
                began=self.began,
                error=error,
                links=back,
            )


def projection_batch(
    batches: Mapping[Any, Sequence[Any]], run_topic: str
) -> AbstractContextManager[object]:
    """Around the projector's handling of one poll's ``batches`` (see `_ProjectionBatch`)."""
    tracer = current_tracer()
    if tracer is None:
        return nullcontext()
    return _ProjectionBatch(tracer, batches, run_topic)


class _Delivery(Scope):
    """The gateway's span per run with subscribers among a chunk of records it fans out."""

    def __init__(self, tracer: trace.Tracer, records: Sequence[Any], subscribed: Mapping[str, Any]):
        self.tracer = tracer
        self.records = records
        self.subscribed = subscribed
        self.began = 0

    def __enter__(self) -> None:
        self.began = now()

    def close(self, error: BaseException | None) -> None:
        for run_id, (headers, count) in _newest_by_run(self.records).items():
            subscribers = self.subscribed.get(run_id)
            if subscribers:
                _finished_run_span(
                    self.tracer,
                    "oriole.gateway.deliver",
                    run_id,
                    headers,
                    {"oriole.events": count, "oriole.subscribers": len(subscribers)},
                    began=self.began,
                    error=error,
                )


def delivery(records: Sequence[Any], subscribed: Mapping[str, Any]) -> AbstractContextManager[None]:
    """Around the gateway hub's fan-out of ``records`` (``subscribed``: run id -> its
    subscribers)."""
    tracer = current_tracer()
    if tracer is None:
        return nullcontext()
    return _Delivery(tracer, records, subscribed)
