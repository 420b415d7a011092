"""Replay verification: real runs, whatever their ending, re-derive identically."""

from __future__ import annotations

import pytest

from oriole.events import StopReason
from oriole.generators import generate
from oriole.intents import AgentFailure, AgentIntent
from oriole.maze import Maze
from oriole.rules import handle_failure, handle_intent
from tests.replay_support import (
    CALL,
    CORRIDOR,
    RUN_ID,
    assert_identical,
    new_run,
    play,
    stop_reason,
)
from tests.support import reference_maze


def load_maze(name: str) -> Maze:
    if name.startswith("generated:"):
        return generate(name.removeprefix("generated:"), 25, 25, 3)
    return reference_maze(name)


@pytest.mark.parametrize("maze_name", ["01_sparse_maze", "03_medium_maze", "generated:rooms"])
@pytest.mark.parametrize(
    ("model", "seed"), [("random", 7), ("wall-follower", None), ("frontier", None)]
)
def test_every_builtin_agent_run_re_derives_identically(
    maze_name: str, model: str, seed: int | None
) -> None:
    maze = load_maze(maze_name)
    run, clock = new_run(maze, model, seed=seed, max_footsteps=400, max_actions=900)
    play(run, clock)
    assert run.state.is_finished
    report = assert_identical(run.events)
    assert report.render() == f"run {RUN_ID}: {len(run.events)} events re-derived, identical"


def test_default_start_moved_with_a_warning_is_not_a_difference() -> None:
    maze = reference_maze("03_medium_maze")
    run, clock = new_run(maze, max_footsteps=5)
    assert run.events[0].payload.warnings  # type: ignore[union-attr]
    play(run, clock)
    assert_identical(run.events)


def test_goal_seen_max_footsteps_and_max_actions_endings() -> None:
    run, _ = new_run(CORRIDOR, start=(8, 1))
    run.act("move_east")
    assert stop_reason(run) is StopReason.GOAL_SEEN
    assert_identical(run.events)

    run, clock = new_run(CORRIDOR, start=(1, 1), max_footsteps=3)
    for _ in range(3):
        clock.advance(1)
        run.act("move_east")
    assert stop_reason(run) is StopReason.MAX_FOOTSTEPS
    assert_identical(run.events)

    run, clock = new_run(CORRIDOR, start=(1, 1), max_actions=4)
    for _ in range(4):
        clock.advance(1)
        run.act("move_north")  # into the wall: failed moves are actions too
    assert stop_reason(run) is StopReason.MAX_ACTIONS
    assert run.state.tally.failed_moves == 4
    assert_identical(run.events)


def test_goal_in_view_from_the_start() -> None:
    run, _ = new_run(CORRIDOR, start=(9, 1))
    assert [e.type for e in run.events] == ["run.started", "run.finished"]
    assert_identical(run.events)


def test_cancel_failure_and_duration_endings() -> None:
    run, clock = new_run(CORRIDOR, start=(1, 1))
    run.act("move_east")
    clock.advance(2)
    run.cancel("operator")
    assert stop_reason(run) is StopReason.CANCELLED
    assert_identical(run.events)

    run, clock = new_run(CORRIDOR, start=(1, 1))
    run.act("move_east", model_call=CALL)
    clock.advance(3)
    failure = AgentFailure(
        run_id=RUN_ID,
        error_class="ProviderError",
        message="HTTP 500 from the model server",
        model_call=CALL.model_copy(update={"call_id": "call-2"}),
    )
    run._append(handle_failure(run.state, failure, now=clock(), new_id=run.new_id))
    assert [e.type for e in run.events[-2:]] == ["model.called", "run.finished"]
    assert stop_reason(run) is StopReason.FAILED
    assert_identical(run.events)

    run, clock = new_run(CORRIDOR, start=(1, 1))
    run.fail("ModelWithoutTools", "no tool support")  # at the very time of the start
    assert_identical(run.events)

    run, clock = new_run(CORRIDOR, start=(1, 1), max_duration_seconds=60)
    run.act("move_east")
    assert run.tick() == []
    clock.advance(61)
    assert [e.type for e in run.tick()] == ["run.finished"]
    assert stop_reason(run) is StopReason.MAX_DURATION
    assert_identical(run.events)


def test_recall_no_tool_call_invalid_call_and_model_calls() -> None:
    run, clock = new_run(CORRIDOR, start=(1, 1), max_footsteps=100)
    run.act("move_east", model_call=CALL, reasoning="east looks open")
    run.act("move_east", reasoning="same call, second tool call")
    clock.advance(1)
    run.act("recall_movement_history", depth=5, turn=2)
    run.act("recall_movement_history", depth=None, turn=2)  # a clear error, still an action
    clock.advance(1)
    run.act("no_tool_call", turn=3, assistant_message="I think I am lost.")
    clock.advance(1)
    run.act(
        "invalid_tool_call",
        turn=4,
        tool_name="teleport",
        arguments={"x": 9, "y": 3},
        problem="no such tool",
        model_call=CALL.model_copy(update={"call_id": "call-4"}),
    )
    assert run.state.tally.recalls == 2
    assert run.state.tally.invalid_calls == 1
    assert run.state.tally.model_calls == 2
    assert_identical(run.events, finished=False)
    run.cancel()
    assert_identical(run.events)


def test_a_decision_completed_by_the_timer_after_a_crash() -> None:
    run, clock = new_run(CORRIDOR, start=(1, 1), max_footsteps=2)
    run.act("move_east")
    clock.advance(1)
    intent = AgentIntent(
        run_id=RUN_ID, basis_seq=run.state.seq, turn=2, action="move_east", model_call=CALL
    )
    derived = handle_intent(run.state, intent, now=clock(), new_id=run.new_id)
    assert [e.type for e in derived] == [
        "model.called",
        "action.requested",
        "action.completed",
        "run.finished",
    ]
    run._append(derived[:2])  # the processor crashed before writing the outcome
    assert_identical(run.events, finished=False)
    clock.advance(30)
    recovered = run.tick()
    assert [e.type for e in recovered] == ["action.completed", "run.finished"]
    assert recovered[0].time != run.events[-3].time
    assert_identical(run.events)


def test_a_lost_outcome_then_a_cancel() -> None:
    run, clock = new_run(CORRIDOR, start=(1, 1))
    intent = AgentIntent(run_id=RUN_ID, basis_seq=run.state.seq, turn=1, action="move_east")
    run._append(handle_intent(run.state, intent, now=clock(), new_id=run.new_id)[:1])
    clock.advance(5)
    run.cancel("stuck")
    assert_identical(run.events)


def test_a_terminal_event_lost_then_rewritten_by_the_timer() -> None:
    run, _ = new_run(CORRIDOR, start=(1, 1), max_footsteps=1)
    run.act("move_east")
    torn = run.events[:-1]
    assert torn[-1].type == "action.completed"
    assert_identical(torn, finished=False)  # a run still going: no missing terminal event
    torn_run, torn_clock = new_run(CORRIDOR, start=(1, 1), max_footsteps=1)
    for event in torn[1:]:
        torn_run._append([event])
    torn_clock.advance(10)
    assert [e.type for e in torn_run.tick()] == ["run.finished"]
    assert_identical(torn_run.events)
