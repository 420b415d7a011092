"""Replay verification: re-derive a run from its recorded decisions and compare the outcomes.

This is the determinism check behind ``oriole replay RUN_ID --verify``. The recorded
decisions (`run.started`, `model.called`, `action.requested`, `run.cancel_requested`, the
failure's error) are the inputs; everything the rules computed from them (outcomes, vision,
footsteps, the terminal event) is re-derived through the current core and compared leaf by
leaf. Pure: no I/O, no clock; a corrupt log never raises, every problem is a `Difference`.

The log is walked in groups, one group per call of a decision function (all events of one
call share one time):

- ``run.started [run.finished]``: `start_run` (the goal may be in view from the start);
- ``[model.called] action.requested [action.completed [run.finished]]``: `handle_intent`;
  an `action.requested` whose outcome was written later (a different time) or never (the
  processor crashed, then the run was cancelled or failed) is checked as a decision only;
- ``action.completed [run.finished]`` after such a decision: `handle_tick`'s recovery;
- ``[model.called] run.finished`` with an error: `handle_failure`;
- ``run.cancel_requested [run.finished]``: `handle_cancel`;
- any other lone ``run.finished``: `handle_tick` (duration, or a terminal event re-emitted).

After each group the state continues from the *recorded* events, because later decisions
were made on what was recorded. A log that ends early is a run still going: events the
derivation would add after the last recorded one are not differences.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from oriole.event_diff import comparable, identical, leaf_differences, summary
from oriole.events import (
    ActionCompleted,
    ActionRequested,
    CancelRequested,
    ModelCalled,
    RunEvent,
    RunFinished,
    RunStarted,
)
from oriole.experiment import ExperimentStart, ForkPoint
from oriole.fork import inheritance_differences
from oriole.intents import AgentFailure, AgentIntent, CancelRequest
from oriole.replay_report import MISSING, Difference, VerifyReport, counted
from oriole.rules import (
    IdFactory,
    handle_cancel,
    handle_failure,
    handle_intent,
    handle_tick,
    start_run,
)
from oriole.run_state import RunState

__all__ = ["MISSING", "Difference", "VerifyReport", "fork_parent", "verify_run"]


def verify_run(
    events: Sequence[RunEvent], parent: Sequence[RunEvent] | None = None
) -> VerifyReport:
    """Re-derive ``events`` (one run's log, from seq 1) and report every difference.

    A fork's inherited state is re-derived from ``parent``, its parent's archived log (the
    caller reads it: `fork_parent` names it); without it that part is a difference.
    """
    if not events:
        missing = Difference(1, "run.started", "event", MISSING, "run.started")
        return VerifyReport(MISSING, 0, (missing,))
    run_id = events[0].run_id
    structure, end = _check_structure(events)
    verifier = _Verifier(run_id, events[:end])
    verifier.run()
    differences = _inheritance(events[0], parent) + verifier.differences
    if end < len(events):
        stopped = events[end]
        note = _stopped(stopped, "the log is broken here", len(events) - end, inclusive=True)
        differences += [*structure[:1], note, *structure[1:]]
    else:
        differences += structure
    finished = any(isinstance(event, RunFinished) for event in events)
    return VerifyReport(run_id, verifier.checked, tuple(differences), finished)


def fork_parent(events: Sequence[RunEvent]) -> ForkPoint | None:
    """The fork point of a run whose log this is (None for a run that is not a fork)."""
    first = events[0] if events else None
    return first.payload.spec.fork_of if isinstance(first, RunStarted) else None


def _inheritance(first: RunEvent, parent: Sequence[RunEvent] | None) -> list[Difference]:
    """A fork's recorded inheritance against its parent's archive (nothing for other runs)."""
    if not isinstance(first, RunStarted) or first.payload.spec.fork_of is None:
        return []
    point, recorded = first.payload.spec.fork_of, first.payload.inherited
    if recorded is None:
        return [Difference(first.seq, first.type, "payload.inherited", MISSING, "inherited")]
    if parent is None:
        return [
            Difference(
                first.seq,
                first.type,
                "payload.inherited",
                "inherited state",
                f"not checked: the archive of the parent run {point.run_id} was not read",
            )
        ]
    return [
        Difference(first.seq, first.type, f"payload.{path}", left, right)
        for path, left, right in inheritance_differences(point, recorded, parent)
    ]


# --- structure --------------------------------------------------------------------------------


def _check_structure(events: Sequence[RunEvent]) -> tuple[list[Difference], int]:
    """Problems of the envelope sequence, and how many leading events can be re-derived."""
    differences: list[Difference] = []
    end = len(events)
    first = events[0]
    if not isinstance(first, RunStarted):
        differences.append(Difference(first.seq, first.type, "type", first.type, "run.started"))
        end = 0
    previous = 0
    for index, event in enumerate(events):
        if event.run_id != first.run_id:
            differences.append(
                Difference(event.seq, event.type, "run_id", event.run_id, first.run_id)
            )
            end = min(end, index)
        if event.seq != previous + 1:
            differences.append(Difference(event.seq, event.type, "seq", event.seq, previous + 1))
            end = min(end, index)
        previous = event.seq
    return differences, end


def _stopped(event: RunEvent, why: str, unchecked: int, *, inclusive: bool) -> Difference:
    """The note that ends verification early, saying how much of the log went unchecked."""
    which = "from this one on" if inclusive else "after this one"
    return Difference(
        event.seq,
        event.type,
        "log",
        why,
        f"verification stopped: {counted(unchecked, 'event')} {which} not checked",
    )


# --- the walk ---------------------------------------------------------------------------------


class _Verifier:
    """Walks a structurally sound log group by group, comparing and folding as it goes."""

    def __init__(self, run_id: str, events: Sequence[RunEvent]) -> None:
        self.events = events
        self.state = RunState(run_id)
        self.differences: list[Difference] = []
        self.checked = 0
        self.last_seq = events[-1].seq if events else 0

    def run(self) -> None:
        index = 0
        while index < len(self.events):
            end = self._group(index)
            group = self.events[index:end]
            if not self._fold(group, end):
                return
            self.checked = end
            index = end

    # --- one group ----------------------------------------------------------------------

    def _group(self, index: int) -> int:
        """Compare the group starting at ``index``; return the index just after it."""
        event = self.events[index]
        if isinstance(event, RunStarted):
            return self._started(index) if index == 0 else index + 1  # folding refuses it
        if isinstance(event, ModelCalled):
            following = self._at(index + 1)
            if isinstance(following, ActionRequested):
                return self._decision(index, index + 1)
            if isinstance(following, RunFinished) and following.payload.error is not None:
                return self._failure(index, index + 1)
            if following is not None:  # at the end of the log: the rest is still to come
                self._compare([], [event])
            return index + 1
        if isinstance(event, ActionRequested):
            return self._decision(index, index)
        if isinstance(event, ActionCompleted):
            end = self._with_terminal(index + 1, event.time)
            self._derive(index, end, lambda now, ids: handle_tick(self.state, now=now, new_id=ids))
            return end
        if isinstance(event, CancelRequested):
            following = self._at(index + 1)
            end = index + 2 if isinstance(following, RunFinished) else index + 1
            request = CancelRequest.model_construct(
                run_id=self.state.run_id,
                reason=event.payload.reason,
                requested_by=event.payload.requested_by,
            )
            self._derive(
                index,
                end,
                lambda now, ids: handle_cancel(self.state, request, now=now, new_id=ids),
            )
            return end
        if event.payload.error is not None:
            return self._failure(None, index)
        self._derive(
            index, index + 1, lambda now, ids: handle_tick(self.state, now=now, new_id=ids)
        )
        return index + 1

    def _started(self, index: int) -> int:
        """`start_run` again, from the recorded spec with its resolved start."""
        started = self.events[index]
        assert isinstance(started, RunStarted)
        end = self._with_terminal(index + 1, started.time)
        spec = started.payload.spec
        try:
            request = ExperimentStart(
                run_id=started.run_id,
                requested_at=spec.requested_at,
                maze=spec.maze,
                start=spec.start,
                limits=spec.limits,
                rules=spec.rules,
                agent=spec.agent,
                prompt=spec.prompt,
                comment=spec.comment,
                labels=spec.labels,
                rerun_of=spec.rerun_of,
                fork_of=spec.fork_of,
            )
            maze = spec.maze.to_maze()
        except Exception as error:
            self._failed_derivation(started, error)
            return end
        # Where the request came from, and a fork's inheritance (checked against the parent's
        # archive by `verify_run`), are recorded inputs, not derived.
        origin, inherited = started.payload.origin, started.payload.inherited
        self._derive(
            index,
            end,
            lambda now, ids: start_run(
                request, maze, now=now, new_id=ids, origin=origin, inherited=inherited
            ),
        )
        return end

    def _decision(self, first: int, requested_at: int) -> int:
        """``[model.called] action.requested`` and, if written by the same call, its outcome."""
        requested = self.events[requested_at]
        assert isinstance(requested, ActionRequested)
        called = self.events[first] if first < requested_at else None
        following = self._at(requested_at + 1)
        together = isinstance(following, ActionCompleted) and following.time == requested.time
        end = (
            self._with_terminal(requested_at + 2, requested.time) if together else requested_at + 1
        )
        decision = requested.payload
        intent = AgentIntent.model_construct(
            intent_id=decision.intent_id,
            run_id=self.state.run_id,
            basis_seq=self.state.seq,
            turn=decision.turn,
            action=decision.action,
            reasoning=decision.reasoning,
            depth=decision.depth,
            tool_name=decision.tool_name,
            arguments=decision.arguments,
            problem=decision.problem,
            assistant_message=decision.assistant_message,
            model_call=called.payload if isinstance(called, ModelCalled) else None,
            sent_at=decision.sent_at,
        )
        # Without its outcome in this group, the outcome is checked where it was written
        # (`handle_tick`'s recovery) or was never written (a crash, then cancel or failure).
        self._derive(
            first,
            end,
            lambda now, ids: handle_intent(self.state, intent, now=now, new_id=ids),
            upto=None if together else requested.seq,
        )
        return end

    def _failure(self, called_at: int | None, finished_at: int) -> int:
        finished = self.events[finished_at]
        assert isinstance(finished, RunFinished) and finished.payload.error is not None
        called = None if called_at is None else self.events[called_at]
        error = finished.payload.error
        failure = AgentFailure.model_construct(
            run_id=self.state.run_id,
            error_class=error.error_class,
            message=error.message,
            model_call=called.payload if isinstance(called, ModelCalled) else None,
        )
        start = finished_at if called_at is None else called_at
        self._derive(
            start,
            finished_at + 1,
            lambda now, ids: handle_failure(self.state, failure, now=now, new_id=ids),
        )
        return finished_at + 1

    # --- helpers ------------------------------------------------------------------------

    def _at(self, index: int) -> RunEvent | None:
        return self.events[index] if index < len(self.events) else None

    def _with_terminal(self, index: int, time: datetime) -> int:
        """Include a `run.finished` written by the same call (same time, not a failure)."""
        event = self._at(index)
        if isinstance(event, RunFinished) and event.time == time and event.payload.error is None:
            return index + 1
        return index

    def _derive(
        self,
        start: int,
        end: int,
        derive: Callable[[datetime, IdFactory], list[RunEvent]],
        *,
        upto: int | None = None,
    ) -> None:
        """Run one decision function for the group ``events[start:end]`` and compare."""
        group = list(self.events[start:end])
        ids = _recorded_ids(group)
        try:
            derived = derive(group[-1].time, ids)
        except Exception as error:
            self._failed_derivation(group[0], error)
            return
        if upto is not None:
            derived = [event for event in derived if event.seq <= upto]
        self._compare(derived, group)

    def _compare(self, derived: Sequence[RunEvent], recorded: Sequence[RunEvent]) -> None:
        by_seq = {event.seq: event for event in recorded}
        made = {event.seq: event for event in derived}
        following = self._at_seq(max(by_seq) + 1) if by_seq else None
        for seq in sorted(by_seq.keys() | made.keys()):
            old, new = by_seq.get(seq), made.get(seq)
            if old is not None and new is not None:
                self._compare_event(old, new)
            elif old is not None:
                self.differences.append(Difference(seq, old.type, "event", summary(old), MISSING))
            elif new is not None and self._expected_here(new, following):
                self.differences.append(Difference(seq, new.type, "event", MISSING, summary(new)))

    def _expected_here(self, derived: RunEvent, following: RunEvent | None) -> bool:
        """Whether a derived event absent from its group should be in the log already."""
        if derived.seq > self.last_seq:
            return False  # the log ends first: a run still going (or cut short), not a mismatch
        # A terminal event written later on its own is `handle_tick` re-checking the stop
        # rules after a crash (the first one was lost); that group checks it.
        rechecked = isinstance(following, RunFinished) and following.payload.error is None
        return not (isinstance(derived, RunFinished) and rechecked)

    def _at_seq(self, seq: int) -> RunEvent | None:
        index = seq - 1  # the walked log is gap-free from seq 1
        return self.events[index] if 0 <= index < len(self.events) else None

    def _compare_event(self, recorded: RunEvent, derived: RunEvent) -> None:
        if recorded.type != derived.type:
            self.differences.append(
                Difference(recorded.seq, recorded.type, "type", recorded.type, derived.type)
            )
            return
        if not isinstance(recorded, RunStarted) and identical(recorded, derived):
            return
        old, new = comparable(recorded), comparable(derived)
        if isinstance(recorded, RunStarted):
            # A default start moved with a warning comes back as an explicit start.
            for data in (old, new):
                data["payload"].pop("warnings", None)
        for path, left, right in leaf_differences("", old, new):
            self.differences.append(Difference(recorded.seq, recorded.type, path, left, right))

    def _failed_derivation(self, event: RunEvent, error: Exception) -> None:
        self.differences.append(
            Difference(
                event.seq, event.type, "derivation", event.type, f"error: {_error_text(error)}"
            )
        )

    def _fold(self, group: Sequence[RunEvent], end: int) -> bool:
        """Continue from the recorded events; report and stop at one that cannot be folded."""
        for event in group:
            try:
                self.state.apply(event)
            except Exception as error:
                why = f"cannot be applied: {_error_text(error)}"
                self.differences.append(
                    _stopped(event, why, len(self.events) - end, inclusive=False)
                )
                self.checked = end
                return False
        return True


# --- values -----------------------------------------------------------------------------------


def _recorded_ids(group: Sequence[RunEvent]) -> IdFactory:
    """The group's own event ids, so derived events carry the same ids; zeros beyond."""
    recorded: Iterator[uuid.UUID] = iter([event.event_id for event in group])

    def new_id() -> uuid.UUID:
        return next(recorded, uuid.UUID(int=0))

    return new_id


def _error_text(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
