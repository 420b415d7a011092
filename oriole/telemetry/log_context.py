"""Which run the code is working on, for the logs: one context variable and one filter.

The shells enter a run's scope (`oriole.telemetry.run_spans.run_span` and friends) while they
handle one of its records; every log line written meanwhile, by any logger, gets that run's
``run_id`` and ``trace_id`` from :class:`RunContextFilter` on Oriole's handler. A context
variable, not a logger adapter, so that library code (the transport, httpx) called from the
run's task is covered too, and asyncio tasks and threads started there inherit it.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass

from oriole.telemetry.trace_ids import trace_id_hex

__all__ = ["CURRENT_RUN", "RunContextFilter", "RunLog"]


@dataclass(frozen=True, slots=True)
class RunLog:
    run_id: str
    #: The trace id of the context (the span's when tracing is on), 32 hex digits.
    trace_id: str


CURRENT_RUN: ContextVar[RunLog | None] = ContextVar("oriole_current_run", default=None)


class RunContextFilter(logging.Filter):
    """Adds ``run_id`` and ``trace_id`` to records written inside a run's scope.

    A record that names a run itself (``extra={"run_id": ...}``) keeps it; if that is not
    the scope's run it gets the run's derived trace id (what the headers carry without a
    traced context).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        current = CURRENT_RUN.get()
        named = getattr(record, "run_id", None)
        if current is not None and (named is None or named == current.run_id):
            record.run_id = current.run_id
            if getattr(record, "trace_id", None) is None:
                record.trace_id = current.trace_id
        elif named is not None and getattr(record, "trace_id", None) is None:
            record.trace_id = trace_id_hex(str(named))
        return True
