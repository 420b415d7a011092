"""The decision functions: a command plus the current run state in, new events out.

These are pure (no I/O, no clock, no randomness: the caller passes ``now`` and an id
factory) and never mutate the state; the caller appends the returned events to the log and
folds them in. The same functions run inside the maze processor, replay verification and
the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from oriole import analysis
from oriole.errors import RuleError
from oriole.events import (
    ActionCompleted,
    ActionRequested,
    CancelPayload,
    CancelRequested,
    DecisionPayload,
    ErrorInfo,
    Inheritance,
    ModelCalled,
    OutcomePayload,
    RunEvent,
    RunFinished,
    RunFinishedPayload,
    RunStarted,
    RunStartedPayload,
    StopReason,
)
from oriole.experiment import ExperimentStart, MazeData, RunSpec
from oriole.geometry import Position, Tile
from oriole.intents import ActionType, AgentFailure, AgentIntent, CancelRequest
from oriole.maze import Maze
from oriole.memory import ToolResult, recall
from oriole.movement import move
from oriole.run_state import RunState, Tally
from oriole.schema_base import Point
from oriole.stop_rules import Progress, Stop, check
from oriole.vision import goal_in_view

#: Oriole's default start tile.
DEFAULT_START = Position(2, 2)

IdFactory = Callable[[], uuid.UUID]
E = TypeVar("E", bound=RunEvent)


class StaleCommand(RuleError):
    """A command that arrives after the state moved on (a redelivery): safe to drop."""


class _Log:
    """Numbers new events after the state's last sequence number."""

    def __init__(self, run_id: str, seq: int, now: datetime, new_id: IdFactory) -> None:
        self.run_id = run_id
        self.seq = seq
        self.now = now
        self.new_id = new_id
        self.events: list[RunEvent] = []

    def emit(self, kind: type[E], payload: Any) -> E:
        self.seq += 1
        event = kind(
            event_id=self.new_id(), run_id=self.run_id, seq=self.seq, time=self.now, payload=payload
        )
        self.events.append(event)
        return event


# --- starting a run -----------------------------------------------------------------------------


def resolve_start(
    maze: Maze, requested: Point | None, vision_range: int
) -> tuple[Point, list[str]]:
    """The start tile and any warnings; an explicit start on a wall or off the grid is an error.

    Without a requested start, Oriole's (2,2) is used if it is an open tile from which the goal
    can be seen; otherwise the nearest such tile, with a warning (Oriole's default put the
    agent inside a wall on 8 of its 12 mazes).
    """
    warnings: list[str] = []
    if requested is not None:
        x, y = requested.x, requested.y
        if not maze.in_bounds(x, y):
            raise RuleError(
                "start",
                f"({x},{y}) is outside maze {maze.name} ({maze.width}x{maze.height}: "
                f"x 0..{maze.width - 1}, y 0..{maze.height - 1})",
            )
        if maze.rows[y][x] == Tile.WALL:
            hint = analysis.nearest_open_start(maze, Position(x, y), vision_range)
            raise RuleError(
                "start",
                f"({x},{y}) is a wall tile in maze {maze.name}; choose an open tile, "
                f"e.g. ({hint.x},{hint.y}), or leave the start out",
            )
        if analysis.steps_to_see_goal(maze, Position(x, y), vision_range) is None:
            warnings.append(
                f"the goal at ({maze.goal.x},{maze.goal.y}) can be neither reached nor seen "
                f"from the start ({x},{y}); the run can only end by a limit"
            )
        return requested, warnings
    preferred = DEFAULT_START
    if not maze.in_bounds(*preferred):
        preferred = Position(min(preferred.x, maze.width - 1), min(preferred.y, maze.height - 1))
    usable = (
        maze.rows[preferred.y][preferred.x] != Tile.WALL
        and analysis.steps_to_see_goal(maze, preferred, vision_range) is not None
    )
    if usable:
        return Point.of(preferred), warnings
    chosen = analysis.nearest_open_start(maze, preferred, vision_range)
    why = (
        "is a wall tile"
        if maze.rows[preferred.y][preferred.x] == Tile.WALL
        else "cannot reach or see the goal"
    )
    warnings.append(
        f"default start ({preferred.x},{preferred.y}) {why} in maze {maze.name}; "
        f"moved to ({chosen.x},{chosen.y})"
    )
    return Point.of(chosen), warnings


def start_run(
    request: ExperimentStart,
    maze: Maze,
    *,
    now: datetime,
    new_id: IdFactory = uuid.uuid4,
    origin: str | None = None,
    inherited: Inheritance | None = None,
) -> list[RunEvent]:
    """The opening events of a run; ``maze`` is the request's maze, resolved by the caller.

    ``origin`` names the start-topic record the request came from (see `RunStartedPayload`);
    ``inherited`` is a fork's state at its fork point (`oriole.fork.fork_basis`).
    """
    start, warnings = resolve_start(maze, request.start, request.rules.vision_range)
    spec = RunSpec(
        maze=MazeData.from_maze(maze),
        start=start,
        requested_at=request.requested_at,
        limits=request.limits,
        rules=request.rules,
        agent=request.agent,
        prompt=request.prompt,
        comment=request.comment,
        labels=request.labels,
        rerun_of=request.rerun_of,
        fork_of=request.fork_of,
    )
    log = _Log(request.run_id, 0, now, new_id)
    payload = RunStartedPayload(spec=spec, warnings=warnings, origin=origin, inherited=inherited)
    log.emit(RunStarted, payload)
    state = RunState(request.run_id)
    state.apply(log.events[0])
    # Only the goal rule can fire before the first action (every limit is at least 1), or,
    # in a fork, a limit its inherited steps reached (admission refuses such a fork).
    stop = check(progress_of(state, state.tally, state.position, now), spec.limits)
    if stop is not None:
        _finish(log, state, state.tally, state.position, stop, now)
    return log.events


# --- agent intents ------------------------------------------------------------------------------


def handle_intent(
    state: RunState, intent: AgentIntent, *, now: datetime, new_id: IdFactory = uuid.uuid4
) -> list[RunEvent]:
    """Decision, outcome, and the terminal event if a stop rule fires."""
    spec, maze = state.require_spec()
    _check_command(state, intent.run_id)
    if intent.basis_seq != state.seq:
        raise StaleCommand(
            "basis_seq",
            f"intent replies to event {intent.basis_seq} but run {state.run_id} is at {state.seq}",
        )
    if intent.turn < state.turn:
        raise RuleError("turn", f"turn {intent.turn} is before the current turn {state.turn}")
    log = _Log(state.run_id, state.seq, now, new_id)
    tally = state.tally
    call_id = None
    if intent.model_call is not None:
        log.emit(ModelCalled, intent.model_call)
        tally = tally.with_call(intent.model_call)
        call_id = intent.model_call.call_id
    decision = DecisionPayload(
        intent_id=intent.intent_id,
        turn=intent.turn,
        action=intent.action,
        reasoning=intent.reasoning,
        depth=intent.depth,
        tool_name=intent.tool_name,
        arguments=intent.arguments,
        problem=intent.problem,
        assistant_message=intent.assistant_message,
        call_id=call_id,
        sent_at=intent.sent_at,
    )
    log.emit(ActionRequested, decision)
    _complete(log, state, spec, maze, decision, tally, now)
    return log.events


def _complete(
    log: _Log,
    state: RunState,
    spec: RunSpec,
    maze: Maze,
    decision: DecisionPayload,
    tally: Tally,
    now: datetime,
) -> None:
    """The outcome of a recorded decision, and the terminal event if a stop rule fires."""
    result = perform(state, spec, maze, decision)
    moved = decision.action.is_move and result.success
    outcome = OutcomePayload(
        step=state.tally.actions + 1,
        turn=decision.turn,
        action=decision.action,
        success=result.success,
        from_=Point.of(state.position),
        to=Point.of(result.to),
        tiles_seen=list(result.tiles),
        goal_seen=goal_in_view(result.tiles),
        goal_reached=result.to == maze.goal,
        footsteps=state.tally.footsteps + (1 if moved else 0),
        message=result.message,
        result=result.result,
    )
    log.emit(ActionCompleted, outcome)
    tally = tally.with_outcome(outcome)
    stop = check(progress_of(state, tally, result.to, now), spec.limits)
    if stop is not None:
        _finish(log, state, tally, result.to, stop, now, turn=decision.turn)


def perform(state: RunState, spec: RunSpec, maze: Maze, intent: DecisionPayload) -> ToolResult:
    """What the action does to the agent and what the agent is told."""
    position = state.position
    direction = intent.action.direction
    if direction is not None:
        return move(maze, position, direction, spec.rules.vision_range, spec.see_through())
    if intent.action is ActionType.RECALL:
        return recall(state.actions, position, intent.depth, spec.rules.recall_max_depth)
    if intent.action is ActionType.NO_TOOL_CALL:
        message = "No tool call: the model answered without choosing an action."
        return ToolResult(False, position, (), message, {"success": False, "message": message})
    name = intent.tool_name or "<unnamed>"
    message = f"Unknown action: {name}" + (f" ({intent.problem})" if intent.problem else "")
    return ToolResult(False, position, (), message, {"success": False, "error": message})


# --- failures, cancellation and the clock ---------------------------------------------------


def handle_failure(
    state: RunState, failure: AgentFailure, *, now: datetime, new_id: IdFactory = uuid.uuid4
) -> list[RunEvent]:
    """The agent gave up with an error: a failed terminal event, its usage still counted."""
    state.require_spec()
    _check_command(state, failure.run_id)
    log = _Log(state.run_id, state.seq, now, new_id)
    tally = state.tally
    if failure.model_call is not None:
        log.emit(ModelCalled, failure.model_call)
        tally = tally.with_call(failure.model_call)
    stop = Stop(StopReason.FAILED, f"{failure.error_class}: {failure.message}")
    error = ErrorInfo(error_class=failure.error_class, message=failure.message)
    _finish(log, state, tally, state.position, stop, now, error=error)
    return log.events


def handle_cancel(
    state: RunState, request: CancelRequest, *, now: datetime, new_id: IdFactory = uuid.uuid4
) -> list[RunEvent]:
    state.require_spec()
    _check_command(state, request.run_id)
    log = _Log(state.run_id, state.seq, now, new_id)
    log.emit(
        CancelRequested, CancelPayload(reason=request.reason, requested_by=request.requested_by)
    )
    detail = "cancelled on request" + (f": {request.reason}" if request.reason else "")
    _finish(log, state, state.tally, state.position, Stop(StopReason.CANCELLED, detail), now)
    return log.events


def handle_tick(
    state: RunState, *, now: datetime, new_id: IdFactory = uuid.uuid4
) -> list[RunEvent]:
    """The lifecycle timer: end a run over its duration even if the agent has gone silent.

    Also the recovery step after a crash: a decision whose outcome was never written is
    completed (the outcome is a pure function of the state and the decision), and every
    stop rule is checked again in case the terminal event was lost.
    """
    if not state.is_active:
        return []
    spec, maze = state.require_spec()
    log = _Log(state.run_id, state.seq, now, new_id)
    if state.pending is not None:
        _complete(log, state, spec, maze, state.pending, state.tally, now)
        return log.events
    stop = check(progress_of(state, state.tally, state.position, now), spec.limits)
    if stop is not None:
        _finish(log, state, state.tally, state.position, stop, now)
    return log.events


# --- helpers ------------------------------------------------------------------------------------


def _check_command(state: RunState, run_id: str) -> None:
    if run_id != state.run_id:
        raise RuleError("run_id", f"command for run {run_id} sent to run {state.run_id}")
    if state.finished is not None:
        raise StaleCommand(
            "run_id", f"run {state.run_id} already finished ({state.finished.stop_reason.value})"
        )


def progress_of(state: RunState, tally: Tally, position: Position, now: datetime) -> Progress:
    """What the stop rules see with ``tally`` and the agent at ``position`` at ``now``."""
    visits = state.visits.get(position, 0)
    if position != state.position:
        visits += 1
    return Progress(
        footsteps=tally.footsteps,
        actions=tally.actions,
        tokens=tally.tokens,
        cost_usd=tally.cost_usd,
        goal_seen=tally.goal_seen,
        goal_reached=tally.goal_reached,
        visits_here=visits,
        elapsed_seconds=state.elapsed_seconds(now),
        cancel_requested=state.cancel_requested,
    )


def _finish(
    log: _Log,
    state: RunState,
    tally: Tally,
    position: Position,
    stop: Stop,
    now: datetime,
    *,
    turn: int | None = None,
    error: ErrorInfo | None = None,
) -> None:
    spec, _ = state.require_spec()
    success = tally.goal_reached if spec.limits.goal_rule == "reached" else tally.goal_seen
    log.emit(
        RunFinished,
        RunFinishedPayload(
            stop_reason=stop.reason,
            detail=stop.detail,
            success=success,
            goal_seen=tally.goal_seen,
            goal_reached=tally.goal_reached,
            position=Point.of(position),
            footsteps=tally.footsteps,
            actions=tally.actions,
            turns=max(state.turn, turn or 0),
            model_calls=tally.model_calls,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            cost_usd=tally.cost_usd,
            duration_seconds=state.elapsed_seconds(now),
            error=error,
        ),
    )
