"""Traces across Kafka: turning tracing on, and the trace headers every message carries.

One run is one trace, from its start to the viewer. The OpenTelemetry API is always
imported; the SDK and the OTLP/HTTP exporter only when a receiver is configured
(:func:`configure_tracing`). Off, every span helper returns at once without calling
OpenTelemetry (no tracer, no context switches, no ``opentelemetry.sdk`` import), and the
services only pay for the log context (which run a log line is about).

How the context crosses Kafka: `oriole.kafka.codec.encode` asks :func:`trace_headers` for
the headers of each message. With a span current they are W3C ``traceparent`` (and
``tracestate``), injected by the configured propagator, plus ``oriole-trace-id`` holding the
context's trace id; without one (tracing off, or nothing traced yet) only
``oriole-trace-id``, the trace id derived from the message key
(`oriole.telemetry.trace_ids`). A consumer-side span takes the record's headers
(:func:`remote_parent`): its parent is the producer-side span that wrote them.

The spans themselves: `oriole.telemetry.spans` (how each starts and ends),
`oriole.telemetry.run_spans` (one run's work), `oriole.telemetry.model_call_spans` (a
model call) and `oriole.telemetry.batch_spans` (work on many runs at once).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

from oriole.redaction import redact_url
from oriole.telemetry.trace_ids import format_trace_id, trace_id_hex

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from oriole.environment.settings import Settings

__all__ = [
    "ROLES",
    "TRACE_HEADER",
    "configure_tracing",
    "current_tracer",
    "disable",
    "enable",
    "enabled",
    "remote_parent",
    "service_name",
    "trace_headers",
    "traces_url",
]

log = logging.getLogger("oriole.telemetry")

Headers = list[tuple[str, bytes]]

#: The header every Oriole message carries: the trace id of its context (32 hex digits).
TRACE_HEADER = "oriole-trace-id"
#: The process roles, each its own service name (``oriole-<role>``).
ROLES = ("worker", "projector", "gateway", "up")

_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


def enabled() -> bool:
    return _tracer is not None


def current_tracer() -> trace.Tracer | None:
    """Oriole's tracer while tracing is on, None while it is off."""
    return _tracer


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


def remote_parent(headers: Sequence[tuple[str, bytes]] | None) -> Context | None:
    """The producer-side context a record's headers carry, or None."""
    if not headers:
        return None
    context = propagate.extract(headers, context=Context(), getter=_GETTER)
    return context if trace.get_current_span(context).get_span_context().is_valid else None
