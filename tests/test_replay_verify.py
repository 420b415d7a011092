"""Replay verification: real runs re-derive identically; corrupted logs say exactly what differs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oriole.agents.base import Observation
from oriole.agents.builtin import create_builtin
from oriole.events import (
    ActionCompleted,
    ActionRequested,
    RunEvent,
    RunFinished,
    StopReason,
    dump_run_event,
    parse_run_event,
    run_event_from_dict,
)
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.generators import generate
from oriole.intents import ActionType, AgentFailure, AgentIntent, ModelCall
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.replay import MISSING, Difference, VerifyReport, verify_run
from oriole.rules import handle_failure, handle_intent
from oriole.schema_base import Point
from tests.support import maze_from_text, reference_maze

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RUN_ID = "run-replay"

CORRIDOR = maze_from_text(
    """
    ###########
    #.........#
    #.#######.#
    #.#.....#G#
    ###########
    """,
    name="corridor",
)

CALL = ModelCall(
    call_id="call-1",
    provider="ollama",
    model="qwen2.5:7b",
    input_tokens=120,
    output_tokens=30,
    cost_usd=0.002,
    duration_ms=850.0,
)


def new_run(
    maze: Maze,
    model: str = "frontier",
    *,
    seed: int | None = None,
    start: tuple[int, int] | None = None,
    **limits: Any,
) -> tuple[LocalRun, ManualClock]:
    clock = ManualClock(T0)
    request = ExperimentStart(
        run_id=RUN_ID,
        requested_at=T0,
        maze=MazeData.from_maze(maze),
        start=None if start is None else Point(x=start[0], y=start[1]),
        agent=AgentSpec(provider="builtin", model=model, seed=seed),
        limits=RunLimits(**limits),
    )
    return LocalRun(request, maze, clock=clock, new_id=counting_ids()), clock


def play(run: LocalRun, clock: ManualClock, *, decisions: int = 10_000) -> None:
    """Let the run's built-in agent play, half a second per decision, until the run ends."""
    spec, _ = run.state.require_spec()
    agent = create_builtin(spec.agent)
    for _ in range(decisions):
        if run.state.is_finished:
            return
        decision = agent.choose(Observation.from_state(run.state), run.state.actions)
        clock.advance(0.5)
        run.send(decision.to_intent(run.state.run_id, run.state.seq, run.state.turn))
        if decision.action is ActionType.NO_TOOL_CALL:
            return


def stored(events: list[RunEvent]) -> list[RunEvent]:
    """The log as read back from storage (JSON round trip)."""
    return [parse_run_event(dump_run_event(event)) for event in events]


def corrupt(
    events: list[RunEvent], seq: int, change: Callable[[dict[str, Any]], None]
) -> list[RunEvent]:
    """A copy of the log with event ``seq`` edited as JSON."""
    result = list(events)
    data = events[seq - 1].model_dump(mode="json", by_alias=True)
    change(data)
    result[seq - 1] = run_event_from_dict(data)
    return result


def assert_identical(events: list[RunEvent], *, finished: bool = True) -> VerifyReport:
    for log in (events, stored(events)):
        report = verify_run(log)
        assert report.ok, report.render()
        assert report.differences == ()
        assert report.events == len(events)
        assert report.finished is finished
        assert "identical" in report.render()
    return report


def stop_reason(run: LocalRun) -> StopReason:
    assert run.state.finished is not None
    return run.state.finished.stop_reason


def load_maze(name: str) -> Maze:
    if name.startswith("generated:"):
        return generate(name.removeprefix("generated:"), 25, 25, 3)
    return reference_maze(name)


@cache
def frontier_log() -> tuple[RunEvent, ...]:
    """A complete frontier run to the goal on a generated maze, to corrupt in many ways."""
    run, clock = new_run(generate("backtracker", 21, 21, 5), max_footsteps=2000)
    play(run, clock)
    assert stop_reason(run) is StopReason.GOAL_SEEN
    assert len(run.events) > 40
    return tuple(run.events)


def completed(events: list[RunEvent], nth: int) -> ActionCompleted:
    outcome = [e for e in events if isinstance(e, ActionCompleted)][nth]
    return outcome


# --- complete runs re-derive identically -----------------------------------------------------


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


# --- corrupted logs ------------------------------------------------------------------------------


def test_a_changed_destination_is_reported_with_path_and_both_values() -> None:
    events = list(frontier_log())
    outcome = completed(events, 10)
    true_to = outcome.payload.to
    wrong = {"x": true_to.x + 1, "y": true_to.y}

    def change(data: dict[str, Any]) -> None:
        data["payload"]["to"] = wrong

    report = verify_run(corrupt(events, outcome.seq, change))
    assert not report.ok
    first = report.differences[0]
    assert (first.seq, first.event_type, first.path) == (
        outcome.seq,
        "action.completed",
        "payload.to",
    )
    assert first.describe() == (
        f"seq {outcome.seq} action.completed payload.to: recorded {wrong!r}, "
        f"derived {{'x': {true_to.x}, 'y': {true_to.y}}}"
    )
    text = report.render()
    assert text.splitlines()[0].startswith(f"run {RUN_ID}: ")
    assert f"seq {outcome.seq} action.completed payload.to" in text
    # The next step starts where the record says the agent is not: verification stops there.
    assert report.differences[-1].path == "log"
    assert "not checked" in report.differences[-1].describe()


def test_a_changed_tile_is_reported_at_its_index() -> None:
    events = list(frontier_log())
    outcome = next(
        e for e in events if isinstance(e, ActionCompleted) and len(e.payload.tiles_seen) > 3
    )
    x, y, code = outcome.payload.tiles_seen[3]
    flipped = [x, y, 1 if code == 0 else 0]

    def change(data: dict[str, Any]) -> None:
        data["payload"]["tiles_seen"][3] = flipped

    report = verify_run(corrupt(events, outcome.seq, change))
    assert report.differences == (
        Difference(outcome.seq, "action.completed", "payload.tiles_seen[3]", flipped, [x, y, code]),
    )
    assert report.events == len(events)
    assert f"payload.tiles_seen[3]: recorded {flipped!r}, derived {[x, y, code]!r}" in (
        report.render()
    )


def test_changed_footsteps_stop_the_fold() -> None:
    events = list(frontier_log())
    outcome = completed(events, 5)

    def change(data: dict[str, Any]) -> None:
        data["payload"]["footsteps"] += 7

    report = verify_run(corrupt(events, outcome.seq, change))
    footsteps = outcome.payload.footsteps
    assert report.differences[0] == Difference(
        outcome.seq, "action.completed", "payload.footsteps", footsteps + 7, footsteps
    )
    stop = report.differences[-1]
    assert (stop.seq, stop.path) == (outcome.seq, "log")
    assert "cannot be applied" in stop.recorded and "footsteps" in stop.recorded
    unchecked = len(events) - outcome.seq
    assert stop.derived == f"verification stopped: {unchecked} events after this one not checked"
    assert report.events == outcome.seq
    assert len(report.differences) == 2


def test_a_changed_stop_reason() -> None:
    events = list(frontier_log())
    last = events[-1]
    assert isinstance(last, RunFinished)

    def change(data: dict[str, Any]) -> None:
        data["payload"]["stop_reason"] = "max_actions"

    report = verify_run(corrupt(events, last.seq, change))
    assert report.differences == (
        Difference(last.seq, "run.finished", "payload.stop_reason", "max_actions", "goal_seen"),
    )
    assert report.differences[0].describe() == (
        f"seq {last.seq} run.finished payload.stop_reason: "
        "recorded 'max_actions', derived 'goal_seen'"
    )


def test_a_dropped_event_is_a_gap() -> None:
    events = list(frontier_log())
    dropped = completed(events, 8).seq
    report = verify_run(events[: dropped - 1] + events[dropped:])
    assert not report.ok
    gap, stop = report.differences[:2]
    assert (gap.seq, gap.path, gap.recorded, gap.derived) == (
        dropped + 1,
        "seq",
        dropped + 1,
        dropped,
    )
    assert stop.path == "log" and "not checked" in stop.derived
    assert len(report.differences) == 2
    assert report.events == dropped - 1
    assert f"seq {dropped + 1} " in report.render() and " seq: recorded" in report.render()


def test_a_changed_decision_no_longer_matches_its_outcome() -> None:
    events = list(frontier_log())
    requested = [e for e in events if isinstance(e, ActionRequested)][12]
    original = requested.payload.action
    other = "move_west" if original != ActionType.MOVE_WEST else "move_east"

    def change(data: dict[str, Any]) -> None:
        data["payload"]["action"] = other

    report = verify_run(corrupt(events, requested.seq, change))
    outcome = requested.seq + 1
    paths = {(d.seq, d.path): d for d in report.differences}
    assert paths[(outcome, "payload.action")].recorded == original.value
    assert paths[(outcome, "payload.action")].derived == other
    assert report.differences[-1].path == "log"
    text = report.render()
    assert f"seq {outcome} action.completed payload.action: recorded '{original.value}'" in text


def test_a_truncated_log_is_a_run_still_going() -> None:
    events = list(frontier_log())
    assert_identical(events[:-1], finished=False)  # the terminal event is not written yet
    report = verify_run(events[:-3])  # cut after a decision: its outcome is still to come
    assert report.ok and not report.finished
    assert report.render() == (
        f"run {RUN_ID}: {len(events) - 3} events re-derived, identical (run not finished)"
    )
    assert verify_run(events[:-1]).to_dict()["finished"] is False


def test_a_run_that_should_have_ended_but_went_on() -> None:
    events = list(frontier_log())
    actions = sum(isinstance(e, ActionCompleted) for e in events)
    end_early = completed(events, actions - 2)  # the second to last action

    def tighten(data: dict[str, Any]) -> None:
        data["payload"]["spec"]["limits"]["max_actions"] = actions - 1

    report = verify_run(corrupt(events, 1, tighten))
    assert len(report.differences) == 1
    missing = report.differences[0]
    assert (missing.seq, missing.event_type, missing.path) == (
        end_early.seq + 1,
        "run.finished",
        "event",
    )
    assert missing.recorded == MISSING
    assert missing.derived["payload"]["stop_reason"] == "max_actions"
    assert missing.describe().startswith(
        f"seq {end_early.seq + 1} run.finished event: recorded <missing>, derived {{'type': "
    )


def test_a_recorded_terminal_event_the_rules_would_not_write() -> None:
    run, clock = new_run(CORRIDOR, start=(1, 1), max_duration_seconds=60)
    run.act("move_east")
    clock.advance(61)
    run.tick()
    deadline = run.events[-1].seq

    def stamp_early(data: dict[str, Any]) -> None:
        # The same terminal event, stamped before the deadline: the timer would not fire.
        data["time"] = "2026-11-24T12:00:30Z"

    report = verify_run(corrupt(run.events, deadline, stamp_early))
    assert [(d.seq, d.path, d.derived) for d in report.differences] == [
        (deadline, "event", MISSING)
    ]
    assert report.differences[0].recorded["payload"]["stop_reason"] == "max_duration"


def test_a_model_call_without_its_decision_or_failure() -> None:
    run, clock = new_run(CORRIDOR, start=(1, 1))
    failure = AgentFailure(run_id=RUN_ID, error_class="E", message="boom", model_call=CALL)
    run._append(handle_failure(run.state, failure, now=clock(), new_id=run.new_id))
    assert_identical(run.events)

    def drop_error(data: dict[str, Any]) -> None:
        data["payload"]["error"] = None

    report = verify_run(corrupt(run.events, 3, drop_error))
    assert [
        (d.seq, d.event_type, d.recorded == MISSING, d.derived) for d in report.differences
    ] == [
        (2, "model.called", False, MISSING),
        (3, "run.finished", False, MISSING),
    ]


def test_broken_envelopes_never_raise() -> None:
    events = list(frontier_log())
    empty = verify_run([])
    assert not empty.ok and empty.events == 0
    assert "seq 1 run.started event: recorded <missing>" in empty.render()

    headless = verify_run(events[1:])
    assert headless.differences[0].path == "type"
    assert headless.differences[0].derived == "run.started"
    assert headless.events == 0

    def other_run(data: dict[str, Any]) -> None:
        data["run_id"] = "run-other"

    report = verify_run(corrupt(events, 20, other_run))
    assert Difference(20, events[19].type, "run_id", "run-other", RUN_ID) in report.differences
    assert report.events == 19

    restarted = verify_run([*events[:5], events[0].model_copy(update={"seq": 6}), *events[6:]])
    assert not restarted.ok
    assert restarted.differences[-1].path == "log"


def test_render_limits_the_list_and_to_dict_is_json() -> None:
    differences = tuple(
        Difference(i, "action.completed", "payload.to", i, i + 1) for i in (4, 6, 8)
    )
    report = VerifyReport(RUN_ID, 10, differences, finished=True)
    text = report.render(limit=2)
    assert text.splitlines() == [
        f"run {RUN_ID}: 3 differences in 10 events checked",
        "  seq 4 action.completed payload.to: recorded 4, derived 5",
        "  seq 6 action.completed payload.to: recorded 6, derived 7",
        "  ... and 1 more",
    ]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["events"] == 10
    assert data["differences"][0] == {
        "seq": 4,
        "event_type": "action.completed",
        "path": "payload.to",
        "recorded": 4,
        "derived": 5,
    }
    long = Difference(3, "action.completed", "payload.result", "x" * 1000, MISSING)
    assert len(long.describe()) < 300 and long.describe().endswith("derived <missing>")


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["drop", "duplicate", "swap", "truncate"]),
    st.integers(min_value=0, max_value=10_000),
)
def test_any_reordering_is_reported_and_never_raises(operation: str, where: int) -> None:
    events = list(frontier_log())
    i = where % len(events)
    if operation == "drop":
        log = events[:i] + events[i + 1 :]
    elif operation == "duplicate":
        log = events[: i + 1] + events[i:]
    elif operation == "swap":
        i = min(i, len(events) - 2)
        log = [*events[:i], events[i + 1], events[i], *events[i + 2 :]]
    else:
        log = events[: i + 1]
    report = verify_run(log)
    json.dumps(report.to_dict())
    report.render()
    expect_ok = operation == "truncate" or (operation == "drop" and i == len(events) - 1)
    assert report.ok is expect_ok, report.render()
