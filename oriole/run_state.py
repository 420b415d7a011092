"""A run's state as a fold over its events — never "the last database row".

`RunState.apply` checks the log as it goes (sequence gap-free, each action starting where
the previous one ended, one start, nothing after the end), so a corrupted or reordered log
is refused with a clear error instead of producing a wrong position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from oriole.errors import RuleError
from oriole.events import (
    ActionCompleted,
    ActionRequested,
    CancelRequested,
    DecisionPayload,
    ModelCalled,
    OutcomePayload,
    RunEvent,
    RunFinished,
    RunFinishedPayload,
    RunStarted,
)
from oriole.experiment import RunSpec
from oriole.geometry import Position
from oriole.intents import ActionType, ModelCall
from oriole.maze import Maze
from oriole.memory import ActionRecord
from oriole.vision import goal_in_view

_ORIGIN = Position(0, 0)


@dataclass(frozen=True, slots=True)
class Tally:
    """Running totals of a run; shared by the fold and the stop rules."""

    actions: int = 0
    footsteps: int = 0
    failed_moves: int = 0
    recalls: int = 0
    no_tool_calls: int = 0
    invalid_calls: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    goal_seen: bool = False
    goal_reached: bool = False

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def with_call(self, call: ModelCall) -> Tally:
        return Tally(
            self.actions,
            self.footsteps,
            self.failed_moves,
            self.recalls,
            self.no_tool_calls,
            self.invalid_calls,
            self.model_calls + 1,
            self.input_tokens + call.input_tokens,
            self.output_tokens + call.output_tokens,
            self.cost_usd + call.cost_usd,
            self.goal_seen,
            self.goal_reached,
        )

    def with_outcome(self, outcome: OutcomePayload) -> Tally:
        # Built field by field (not `dataclasses.replace`): this runs for every action of
        # every run, twice (the rules and the fold), and replace is several times slower.
        action = outcome.action
        is_move = action.is_move
        success = outcome.success
        return Tally(
            self.actions + 1,
            self.footsteps + (1 if is_move and success else 0),
            self.failed_moves + (1 if is_move and not success else 0),
            self.recalls + (1 if action is ActionType.RECALL else 0),
            self.no_tool_calls + (1 if action is ActionType.NO_TOOL_CALL else 0),
            self.invalid_calls + (1 if action is ActionType.INVALID_TOOL_CALL else 0),
            self.model_calls,
            self.input_tokens,
            self.output_tokens,
            self.cost_usd,
            # A found goal is never downgraded.
            self.goal_seen or outcome.goal_seen,
            self.goal_reached or outcome.goal_reached,
        )


@dataclass(slots=True)
class RunState:
    run_id: str
    seq: int = 0
    spec: RunSpec | None = None
    maze: Maze | None = None
    started_at: datetime | None = None
    last_event_at: datetime | None = None
    position: Position = _ORIGIN
    turn: int = 0
    tally: Tally = field(default_factory=Tally)
    visits: dict[Position, int] = field(default_factory=dict)
    seen: dict[Position, int] = field(default_factory=dict)
    actions: list[ActionRecord] = field(default_factory=list)
    pending: DecisionPayload | None = None
    last_result: dict[str, Any] | None = None
    cancel_requested: bool = False
    finished: RunFinishedPayload | None = None
    #: The start-topic record that requested the run (see `RunStartedPayload.origin`).
    origin: str | None = None
    #: A fork's events are numbered from 1, yet continue its parent's life: this is the
    #: lineage seq of the last inherited event minus 1 (0 for a run that is not a fork).
    seq_offset: int = 0

    # --- reading ------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.spec is not None

    @property
    def is_finished(self) -> bool:
        return self.finished is not None

    @property
    def is_active(self) -> bool:
        return self.started and not self.is_finished

    @property
    def lived_seq(self) -> int:
        """The seq of the last event counted over the run's whole lineage.

        The same as ``seq`` except in a fork, where it is the seq the event would have had in
        the parent: a seeded agent draws from it, so a fork with the parent's agent and seed
        makes the parent's choices again.
        """
        return self.seq + self.seq_offset

    def require_spec(self) -> tuple[RunSpec, Maze]:
        if self.spec is None or self.maze is None:
            raise RuleError("run_id", f"run {self.run_id} has not started")
        return self.spec, self.maze

    def elapsed_seconds(self, now: datetime) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (now - self.started_at).total_seconds())

    # --- folding ------------------------------------------------------------------------

    def apply(self, event: RunEvent) -> None:
        """Fold one event in; the event must be exactly the next one of this run."""
        if event.run_id != self.run_id:
            raise RuleError("run_id", f"event of run {event.run_id} applied to run {self.run_id}")
        if event.seq != self.seq + 1:
            raise RuleError(
                "seq", f"expected event {self.seq + 1} of run {self.run_id}, got {event.seq}"
            )
        if self.finished is not None:
            raise RuleError("type", f"run {self.run_id} already finished; got {event.type}")
        if isinstance(event, RunStarted):
            self._start(event)
        elif not self.started:
            raise RuleError(
                "type", f"the first event of a run must be run.started, got {event.type}"
            )
        elif isinstance(event, ModelCalled):
            self.tally = self.tally.with_call(event.payload)
        elif isinstance(event, ActionRequested):
            self._decide(event.payload)
        elif isinstance(event, ActionCompleted):
            self._complete(event.payload)
        elif isinstance(event, CancelRequested):
            self.cancel_requested = True
        elif isinstance(event, RunFinished):
            self.finished = event.payload
        self.seq = event.seq
        self.last_event_at = event.time

    def apply_if_new(self, event: RunEvent) -> bool:
        """Apply unless already folded in (at-least-once delivery); report whether applied."""
        if event.run_id == self.run_id and event.seq <= self.seq:
            return False
        self.apply(event)
        return True

    def _start(self, event: RunStarted) -> None:
        if self.seq != 0:
            raise RuleError("type", f"run {self.run_id} started twice")
        spec = event.payload.spec
        maze = spec.maze.to_maze()
        self.origin = event.payload.origin
        self.spec = spec
        self.maze = maze
        self.started_at = event.time
        self.position = spec.start.position()
        self.visits[self.position] = 1
        view = maze.vision(
            self.position.x, self.position.y, spec.rules.vision_range, spec.see_through()
        )
        for x, y, code in view:
            self.seen[Position(x, y)] = code
        # The goal may already be in view, or underfoot, before the first action.
        self.tally = replace(
            self.tally, goal_seen=goal_in_view(view), goal_reached=self.position == maze.goal
        )
        inherited = event.payload.inherited
        if (inherited is None) != (spec.fork_of is None):
            raise RuleError("inherited", "a fork's run.started carries its inherited state")
        if inherited is not None:
            # A fork lived its parent's first steps: fold them as if they were its own.
            for outcome in inherited.outcomes:
                self._record(outcome)
                self.turn = outcome.turn
            self.tally = replace(
                self.tally,
                model_calls=inherited.model_calls,
                input_tokens=inherited.input_tokens,
                output_tokens=inherited.output_tokens,
                cost_usd=inherited.cost_usd,
            )
            self.seq_offset = inherited.lived_seq - 1

    def _decide(self, decision: DecisionPayload) -> None:
        if self.pending is not None:
            raise RuleError("type", "two action.requested events without an outcome between them")
        if decision.turn < self.turn:
            raise RuleError("turn", f"turn went back from {self.turn} to {decision.turn}")
        self.pending = decision
        self.turn = decision.turn

    def _complete(self, outcome: OutcomePayload) -> None:
        decision = self.pending
        if decision is None or decision.action != outcome.action:
            raise RuleError("type", "action.completed without a matching action.requested")
        self._record(outcome)
        self.pending = None

    def _record(self, outcome: OutcomePayload) -> None:
        """One action's outcome: position, tally, tiles seen, history."""
        start = outcome.from_.position()
        if start != self.position:
            raise RuleError(
                "from",
                f"step {outcome.step} starts at {start} but the agent is at {self.position}",
            )
        if outcome.step != self.tally.actions + 1:
            raise RuleError("step", f"expected step {self.tally.actions + 1}, got {outcome.step}")
        tally = self.tally.with_outcome(outcome)
        if outcome.footsteps != tally.footsteps:
            raise RuleError(
                "footsteps",
                f"step {outcome.step} claims {outcome.footsteps}, log has {tally.footsteps}",
            )
        end = outcome.to.position()
        if end != start:
            self.visits[end] = self.visits.get(end, 0) + 1
        for x, y, code in outcome.tiles_seen:
            self.seen[Position(x, y)] = code
        self.actions.append(
            ActionRecord(
                step=outcome.step,
                turn=outcome.turn,
                action=outcome.action,
                success=outcome.success,
                from_=start,
                to=end,
                tiles=tuple(outcome.tiles_seen),  # (x, y, code) tuples, as validated
                note=outcome.message if not outcome.action.is_move else "",
            )
        )
        self.position = end
        self.tally = tally
        self.last_result = outcome.result


def fold(run_id: str, events: Iterable[RunEvent]) -> RunState:
    """The state of a run after ``events`` (which must start at seq 1)."""
    state = RunState(run_id)
    for event in events:
        state.apply(event)
    return state
