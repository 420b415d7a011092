"""Where a start request came from, and what that makes stable across redeliveries.

Kafka delivers at least once: after a crash or a rebalance the same start-topic record is
read again. Its *origin* (topic, partition, offset and broker timestamp) is the same both
times, so a processor can tell a redelivery (drop it) from a new request that reuses a run
id (refuse it), and a start that names no run id gets one derived from its origin, the same
on every read. Pure.
"""

from __future__ import annotations

import hashlib


def origin_digest(origin: str | None) -> str | None:
    """A short, stable stand-in for a start's origin (kept per finished run, so small)."""
    if origin is None:
        return None
    return hashlib.sha256(origin.encode()).hexdigest()[:16]


def start_origin(topic: str, partition: int, offset: int, timestamp_ms: int | None) -> str:
    """Where a start request came from: the same record read twice has the same origin.

    The broker's timestamp tells two records at the same offset apart after the embedded
    broker (memory only) restarted and numbered its offsets from zero again.
    """
    return f"{topic}:{partition}:{offset}@{timestamp_ms if timestamp_ms is not None else '-'}"


def derived_run_id(origin: str) -> str:
    """The run id of a start that names none: the same for every read of the same record."""
    return f"run-{hashlib.sha256(origin.encode()).hexdigest()[:16]}"
