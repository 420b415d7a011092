"""The OpenTelemetry SDK side of tracing, imported only when tracing is turned on.

Kept apart from `oriole.telemetry.tracing` so that a process without a trace receiver never
imports the SDK or the exporter (tests check ``opentelemetry.sdk`` stays out of
``sys.modules``).
"""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from oriole.telemetry.trace_ids import FORCED_IDS

__all__ = ["RunIdGenerator", "otlp_processor", "provider_with"]


class RunIdGenerator(RandomIdGenerator):
    """Random ids, except for a run's root span: that gets the ids derived from its run id
    (`oriole.telemetry.trace_ids`), so every process agrees on the run's trace."""

    def generate_trace_id(self) -> int:
        forced = FORCED_IDS.get()
        return forced[0] if forced is not None else super().generate_trace_id()

    def generate_span_id(self) -> int:
        forced = FORCED_IDS.get()
        return forced[1] if forced is not None else super().generate_span_id()


def provider_with(processor: SpanProcessor, service_name: str) -> TracerProvider:
    """A tracer provider for ``service_name`` sending every finished span to ``processor``."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}), id_generator=RunIdGenerator()
    )
    provider.add_span_processor(processor)
    return provider


def otlp_processor(traces_url: str) -> SpanProcessor:
    """Batched export over OTLP/HTTP (protobuf) to ``traces_url`` (…/v1/traces).

    The exporter reads ``OTEL_EXPORTER_OTLP_HEADERS``, timeouts and certificates from the
    standard variables itself.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url))
