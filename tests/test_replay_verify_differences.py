"""Replay verification: corrupted logs say exactly what differs, and never raise."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oriole.events import (
    ActionCompleted,
    ActionRequested,
    RunEvent,
    RunFinished,
    StopReason,
    run_event_from_dict,
)
from oriole.generators import generate
from oriole.intents import ActionType, AgentFailure
from oriole.replay import MISSING, Difference, VerifyReport, verify_run
from oriole.rules import handle_failure
from tests.replay_support import (
    CALL,
    CORRIDOR,
    RUN_ID,
    assert_identical,
    new_run,
    play,
    stop_reason,
)


def corrupt(
    events: list[RunEvent], seq: int, change: Callable[[dict[str, Any]], None]
) -> list[RunEvent]:
    """A copy of the log with event ``seq`` edited as JSON."""
    result = list(events)
    data = events[seq - 1].model_dump(mode="json", by_alias=True)
    change(data)
    result[seq - 1] = run_event_from_dict(data)
    return result


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
        limits = data["payload"]["spec"]["limits"]
        limits["max_actions"] = actions - 1
        limits["max_footsteps"] = None  # (2000, above max_actions, could never be reached)

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
