"""A run's trace identity, derived from its run id.

Every process computes the same 128-bit trace id (and root span id) for a run without
talking to any other: with tracing off the ``oriole-trace-id`` header and the logs still name
one trace per run, and with tracing on the run's root span gets exactly these ids, so a span
whose Kafka record carried no context (a timer event, a record from a client without
tracing) still lands in its run's trace. Pure hashing: no OpenTelemetry here.
"""

from __future__ import annotations

import functools
import hashlib
from contextvars import ContextVar

__all__ = ["FORCED_IDS", "format_trace_id", "run_span_id", "run_trace_id", "trace_id_hex"]

#: (trace id, span id) the next root span must get: set by `oriole.telemetry.spans` just
#: while it starts a run's root span, read by the SDK's id generator (`tracing_sdk`).
FORCED_IDS: ContextVar[tuple[int, int] | None] = ContextVar("oriole_forced_ids", default=None)


@functools.lru_cache(maxsize=8192)
def _digest(basis: str) -> bytes:
    return hashlib.blake2b(
        basis.encode("utf-8", "replace"), digest_size=24, person=b"oriole-trace"
    ).digest()


def run_trace_id(basis: str) -> int:
    """The trace id of the run (or batch, or any key) ``basis``: never 0 (invalid in W3C)."""
    return int.from_bytes(_digest(basis)[:16], "big") or 1


def run_span_id(basis: str) -> int:
    """The span id of the run's root span (its admission, or the gateway's start)."""
    return int.from_bytes(_digest(basis)[16:], "big") or 1


def format_trace_id(trace_id: int) -> str:
    """32 lower-case hex digits, as W3C ``traceparent`` and OTLP write it."""
    return f"{trace_id:032x}"


def trace_id_hex(basis: str) -> str:
    return format_trace_id(run_trace_id(basis))
