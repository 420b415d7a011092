"""A batch's state: the fold of its event log (``oriole.batch_events``).

The scheduler keeps nothing else: after a crash it folds the batch's events again and
carries on. An event already folded (same or lower seq) is skipped, so a redelivered event
changes nothing; a gap is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from oriole.batch_events import (
    BatchCounts,
    BatchEvent,
    BatchFinished,
    BatchFinishedPayload,
    BatchProgress,
    BatchRejected,
    BatchStarted,
    BatchStartedPayload,
    PlannedRunRef,
    RunEnded,
    RunEndedPayload,
    RunLaunched,
)
from oriole.errors import OrioleError
from oriole.events import FieldProblem


class BatchLogGap(OrioleError):
    """An event's seq skips a number: the log is not this batch's log, or one was lost."""


@dataclass
class BatchState:
    batch_id: str
    seq: int = 0
    started: BatchStartedPayload | None = None
    rejected: bool = False
    finished: BatchFinishedPayload | None = None
    #: Planned run id -> its place in the plan.
    planned: dict[str, PlannedRunRef] = field(default_factory=dict)
    #: Planned run id -> attempts launched so far.
    attempts: dict[str, int] = field(default_factory=dict)
    #: Launched run id (an attempt) -> its planned run id, until the attempt ends.
    in_flight: dict[str, str] = field(default_factory=dict)
    #: Every ended attempt, by its run id.
    ended: dict[str, RunEndedPayload] = field(default_factory=dict)
    #: Planned run id -> its last attempt, once no other attempt follows.
    done: dict[str, RunEndedPayload] = field(default_factory=dict)
    #: Planned run ids whose last attempt failed and will be tried again.
    retry_due: list[str] = field(default_factory=list)
    spent_usd: float = 0.0
    spent_tokens: int = 0
    started_at: datetime | None = None
    problems: list[FieldProblem] = field(default_factory=list)

    # -- the fold ------------------------------------------------------------------------

    def apply(self, event: BatchEvent) -> bool:
        """Fold ``event``; False (and no change) if it was folded before."""
        if event.batch_id != self.batch_id:
            raise BatchLogGap(f"event of batch {event.batch_id!r} in batch {self.batch_id!r}")
        if event.seq <= self.seq:
            return False
        if event.seq != self.seq + 1:
            raise BatchLogGap(f"batch {self.batch_id}: event {event.seq} after {self.seq}")
        self.seq = event.seq
        if isinstance(event, BatchStarted):
            self.started = event.payload
            self.started_at = event.time
            self.planned = {ref.run_id: ref for ref in event.payload.runs}
        elif isinstance(event, BatchRejected):
            self.rejected = True
            self.problems = list(event.payload.problems)
        elif isinstance(event, RunLaunched):
            launched = event.payload
            self.attempts[launched.planned_run_id] = launched.attempt
            self.in_flight[launched.run_id] = launched.planned_run_id
            if launched.planned_run_id in self.retry_due:
                self.retry_due.remove(launched.planned_run_id)
        elif isinstance(event, RunEnded):
            self._ended(event.payload)
        elif isinstance(event, BatchFinished):
            self.finished = event.payload
        elif isinstance(event, BatchProgress):
            pass  # a summary for readers; the state already holds it
        return True

    def _ended(self, ended: RunEndedPayload) -> None:
        self.in_flight.pop(ended.run_id, None)
        self.ended[ended.run_id] = ended
        self.spent_usd += ended.cost_usd
        self.spent_tokens += ended.tokens
        if ended.retry:
            self.retry_due.append(ended.planned_run_id)
        else:
            self.done[ended.planned_run_id] = ended

    # -- questions the scheduler asks ----------------------------------------------------

    @property
    def active(self) -> bool:
        """Started, not rejected, not finished: the scheduler still has work here."""
        return self.started is not None and not self.rejected and self.finished is None

    def waiting(self) -> list[tuple[str, int]]:
        """(planned run id, attempt) not yet launched, in launch order: retries first."""
        pending = [(run_id, self.attempts[run_id] + 1) for run_id in self.retry_due]
        pending.extend((run_id, 1) for run_id in self.planned if run_id not in self.attempts)
        return pending

    def launched_not_ended(self) -> dict[str, str]:
        """Attempts launched whose end is not known yet (run id -> planned run id)."""
        return dict(self.in_flight)

    def counts(self) -> BatchCounts:
        return BatchCounts(
            planned=len(self.planned),
            launched=sum(self.attempts.values()),
            finished=len(self.done),
            succeeded=sum(1 for end in self.done.values() if end.success),
            failed=sum(1 for end in self.done.values() if end.failed),
            in_flight=len(self.in_flight),
            spent_usd=round(self.spent_usd, 10),
            spent_tokens=self.spent_tokens,
        )


def fold_batch(batch_id: str, events: list[BatchEvent]) -> BatchState:
    state = BatchState(batch_id)
    for event in events:
        state.apply(event)
    return state
