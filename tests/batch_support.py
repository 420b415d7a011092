"""Batch event logs made by hand with the models of `oriole.batch_events` (no scheduler).

:class:`LogBuilder` numbers the events 1, 2, 3 ... and keeps the counts a scheduler would
report, so a test states what happens (launch, end, finish) and reads the expected row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from oriole.batch_events import (
    BatchCounts,
    BatchEvent,
    BatchFinished,
    BatchFinishedPayload,
    BatchProgress,
    BatchRejected,
    BatchRejectedPayload,
    BatchStarted,
    BatchStartedPayload,
    BatchStopReason,
    PlannedRunRef,
    RunEnded,
    RunEndedPayload,
    RunLaunched,
    RunLaunchedPayload,
    attempt_run_id,
    batch_run_id,
)
from oriole.batch_state import fold_batch
from oriole.events import FieldProblem

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

CELLS: dict[str, dict[str, Any]] = {
    "c1": {"agent": "builtin/frontier"},
    "c2": {"agent": "builtin/random"},
}


@dataclass
class LogBuilder:
    """One batch's log, event by event (one simulated second apart)."""

    batch_id: str
    start: datetime = T0
    events: list[BatchEvent] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, str] = field(default_factory=dict)
    done: dict[str, RunEndedPayload] = field(default_factory=dict)
    spent_usd: float = 0.0
    spent_tokens: int = 0

    def _base(self) -> dict[str, Any]:
        seq = len(self.events) + 1
        return {"batch_id": self.batch_id, "seq": seq, "time": self.start + timedelta(seconds=seq)}

    def started(self, repetitions: int = 2, name: str = "grid") -> LogBuilder:
        runs = [
            PlannedRunRef(run_id=batch_run_id(self.batch_id, cell, rep), cell=cell, repetition=rep)
            for cell in CELLS
            for rep in range(1, repetitions + 1)
        ]
        self.planned = [ref.run_id for ref in runs]
        payload = BatchStartedPayload(
            name=name,
            labels={"team": "maze"},
            spec={"name": name, "batch_id": self.batch_id},
            runs=runs,
            cells=CELLS,
            warnings=["a warning"],
            requested_by="alice",
        )
        self.events.append(BatchStarted(**self._base(), payload=payload))
        return self

    def rejected(self) -> LogBuilder:
        payload = BatchRejectedPayload(
            problems=[FieldProblem(field="agents", reason="no such agent")], requested_by="bob"
        )
        self.events.append(BatchRejected(**self._base(), payload=payload))
        return self

    def launch(self, cell: str, rep: int, attempt: int = 1) -> str:
        planned = batch_run_id(self.batch_id, cell, rep)
        run_id = attempt_run_id(planned, attempt)
        self.attempts[planned] = attempt
        self.in_flight[run_id] = planned
        payload = RunLaunchedPayload(run_id=run_id, planned_run_id=planned, attempt=attempt)
        self.events.append(RunLaunched(**self._base(), payload=payload))
        return run_id

    def end(
        self,
        run_id: str,
        *,
        success: bool = True,
        failed: bool = False,
        retry: bool = False,
        cost: float = 0.0,
        tokens: int = 0,
    ) -> LogBuilder:
        planned = self.in_flight.pop(run_id)
        payload = RunEndedPayload(
            run_id=run_id,
            planned_run_id=planned,
            attempt=self.attempts[planned],
            success=success,
            failed=failed,
            stop_reason="failed" if failed else ("goal_seen" if success else "max_footsteps"),
            cost_usd=cost,
            tokens=tokens,
            retry=retry,
        )
        self.spent_usd += cost
        self.spent_tokens += tokens
        if not retry:
            self.done[planned] = payload
        self.events.append(RunEnded(**self._base(), payload=payload))
        self.events.append(BatchProgress(**self._base(), payload=self.counts()))
        return self

    def finish(self, reason: BatchStopReason = BatchStopReason.COMPLETED) -> LogBuilder:
        payload = BatchFinishedPayload(stop_reason=reason, detail="all done", counts=self.counts())
        self.events.append(BatchFinished(**self._base(), payload=payload))
        return self

    def counts(self) -> BatchCounts:
        """As the scheduler counts: the core's fold of the log built so far."""
        return fold_batch(self.batch_id, list(self.events)).counts()


def finished_batch(batch_id: str) -> LogBuilder:
    """Four planned runs, five attempts (one retried), every planned run done, finished."""
    log = LogBuilder(batch_id).started()
    a = log.launch("c1", 1)
    b = log.launch("c2", 1)
    log.end(a, cost=0.01, tokens=100)
    c = log.launch("c1", 2)
    log.end(b, success=False, failed=True, retry=True, cost=0.002, tokens=20)
    b2 = log.launch("c2", 1, attempt=2)
    log.end(c, success=False, cost=0.0, tokens=0)
    log.end(b2, cost=0.004, tokens=40)
    d = log.launch("c2", 2)
    log.end(d, cost=0.001, tokens=10)
    return log.finish()


def running_batch(batch_id: str) -> LogBuilder:
    """Started, one run ended, a retry and a first attempt in flight."""
    log = LogBuilder(batch_id).started()
    a = log.launch("c1", 1)
    b = log.launch("c2", 1)
    log.end(a, cost=0.01, tokens=100)
    log.launch("c1", 2)
    log.end(b, success=False, failed=True, retry=True)
    log.launch("c2", 1, attempt=2)
    return log
