"""Consumer lag from the consumers' own positions: one helper for every service.

Lag of a partition = its end offset (the high watermark: the offset the next record will
get) minus the consumer's position (the next offset it will hand to the service). It is read
from the consumer itself every few seconds rather than from the group's committed offsets,
so it costs one ListOffsets request per consumer per refresh and works for consumers without
a group (the gateway hub). Records fetched and handed to the service but not yet done with
(a projector batch waiting for PostgreSQL) no longer count; new records behind them do.

A partition a consumer loses in a rebalance loses its series here, so each (group, topic,
partition) is reported by the process that owns it now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger("oriole.telemetry")

CONSUMER_LAG = Gauge(
    "oriole_consumer_lag",
    "Records on a partition not yet read by its consumer: high watermark minus position.",
    ["group", "topic", "partition"],
)

#: The consumers of one service as (group label, aiokafka consumer or None), asked each time
#: (a supervised service is replaced by a fresh instance with fresh consumers).
ConsumerSource = Callable[[], Iterable[tuple[str, Any]]]

#: Refresh interval of the lag figures.
LAG_INTERVAL = 5.0
#: Longest one consumer's end offsets or positions may take before it is skipped this time.
LAG_TIMEOUT = 3.0

_Series = tuple[str, str, str]


class LagMonitor:
    """Refreshes ``oriole_consumer_lag`` for the consumers of the watched services."""

    def __init__(self, interval: float = LAG_INTERVAL, timeout: float = LAG_TIMEOUT) -> None:
        self.interval = interval
        self.timeout = timeout
        self._sources: list[tuple[ConsumerSource, Callable[[float], None] | None]] = []
        self._exported: list[set[_Series]] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def watch(self, source: ConsumerSource, total: Callable[[float], None] | None = None) -> None:
        """Watch a service's consumers; ``total`` gets the sum of their lag at each refresh."""
        self._sources.append((source, total))
        self._exported.append(set())

    async def refresh(self) -> None:
        """One pass over every watched consumer (a failing one is skipped, not fatal)."""
        for index, (source, total) in enumerate(self._sources):
            seen: set[_Series] = set()
            lag_sum = 0
            try:
                consumers = list(source())
            except Exception as exc:
                log.debug("consumer lag: no consumers to read (%s)", exc)
                consumers = []
            for group, consumer in consumers:
                if consumer is None:
                    continue
                try:
                    lags = await self._lags(consumer)
                except Exception as exc:  # stopping, rebalancing, broker away: next time
                    log.debug("consumer lag of %s not read: %r", group, exc)
                    seen |= {s for s in self._exported[index] if s[0] == group}
                    continue
                for (topic, partition), lag in lags.items():
                    series = (group, topic, str(partition))
                    CONSUMER_LAG.labels(*series).set(lag)
                    seen.add(series)
                    lag_sum += lag
            for gone in self._exported[index] - seen:
                with contextlib.suppress(KeyError):
                    CONSUMER_LAG.remove(*gone)
            self._exported[index] = seen
            if total is not None:
                total(lag_sum)

    async def _lags(self, consumer: Any) -> dict[tuple[str, int], int]:
        assigned = list(consumer.assignment())
        if not assigned:
            return {}
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(assigned), self.timeout)
        except Exception:
            # The watermarks of the last fetches: older, but no request needed.
            ends = {tp: consumer.highwater(tp) for tp in assigned}
        positions = await asyncio.gather(
            *(asyncio.wait_for(consumer.position(tp), self.timeout) for tp in assigned),
            return_exceptions=True,
        )
        lags: dict[tuple[str, int], int] = {}
        for tp, position in zip(assigned, positions, strict=True):
            end = ends.get(tp)
            if end is None or not isinstance(position, int):
                continue  # no position yet (just assigned) or no watermark yet
            lags[(tp.topic, tp.partition)] = max(0, int(end) - position)
        return lags

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def __aenter__(self) -> LagMonitor:
        self._stop.clear()
        self._task = asyncio.create_task(self._run_logged(), name="consumer lag")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        self._stop.set()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run_logged(self) -> None:
        try:
            await self.run(self._stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the consumer lag monitor failed; lag figures stop here")
