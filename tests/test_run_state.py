"""The fold: properties over random runs, and refusal of corrupted logs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oriole.errors import RuleError
from oriole.events import ActionCompleted, RunEvent, RunFinished, dump_run_event, parse_run_event
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.geometry import Tile
from oriole.intents import ActionType, ModelCall
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.rules import StaleCommand
from oriole.run_state import RunState, fold
from oriole.schema_base import Point
from tests.support import maze_from_text, random_mazes

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

actions = st.one_of(
    st.sampled_from(
        [ActionType.MOVE_NORTH, ActionType.MOVE_SOUTH, ActionType.MOVE_EAST, ActionType.MOVE_WEST]
    ).map(lambda a: {"action": a}),
    st.builds(
        lambda d: {"action": ActionType.RECALL, "depth": d},
        st.one_of(st.none(), st.integers(-2, 80)),
    ),
    st.just({"action": ActionType.NO_TOOL_CALL, "assistant_message": "hmm"}),
    st.just({"action": ActionType.INVALID_TOOL_CALL, "tool_name": "teleport"}),
)


@st.composite
def runs(draw: st.DrawFn) -> LocalRun:
    maze: Maze = draw(random_mazes(max_side=12))
    open_tiles = [p for p in maze.open_tiles() if maze.rows[p.y][p.x] != Tile.WALL]
    start = draw(st.sampled_from(open_tiles))
    max_actions = draw(st.one_of(st.none(), st.integers(1, 60)))
    limits = RunLimits(
        # Not above max_actions: such a footstep limit could never be reached (an error).
        max_footsteps=draw(st.one_of(st.none(), st.integers(1, min(40, max_actions or 40)))),
        max_actions=max_actions,
        max_tokens=draw(st.one_of(st.none(), st.integers(1, 5000))),
        loop_revisit_limit=draw(st.one_of(st.none(), st.integers(2, 6))),
        goal_rule=draw(st.sampled_from(["seen", "reached"])),
    )
    request = ExperimentStart(
        run_id="run-prop",
        maze=MazeData.from_maze(maze),
        start=Point(x=start.x, y=start.y),
        agent=AgentSpec(provider="builtin", model="random"),
        limits=limits,
    )
    clock = ManualClock(T0)
    run = LocalRun(request, maze, clock=clock, new_id=counting_ids())
    plan = draw(st.lists(actions, max_size=60))
    turn = 1
    for number, fields in enumerate(plan):
        if not run.state.is_active:
            break
        if draw(st.booleans()):
            turn += 1
        usage = None
        if draw(st.integers(0, 3)) == 0:
            usage = ModelCall(
                call_id=f"call-{number}",
                provider="ollama",
                model="m",
                input_tokens=draw(st.integers(0, 400)),
                output_tokens=draw(st.integers(0, 100)),
            )
        clock.advance(draw(st.floats(0, 5)))
        run.act(turn=turn, model_call=usage, **fields)
    return run


@settings(max_examples=150, deadline=None)
@given(run=runs())
def test_folding_random_runs(run: LocalRun) -> None:
    events = run.events
    # Gap-free, 1-based sequence numbers.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Position continuity: each action starts where the previous one ended.
    position = events[0].payload.spec.start  # type: ignore[union-attr]
    outcomes = [e.payload for e in events if isinstance(e, ActionCompleted)]
    for step, outcome in enumerate(outcomes, start=1):
        assert outcome.step == step
        assert outcome.from_ == position
        if not (outcome.action.is_move and outcome.success):
            assert outcome.to == outcome.from_
        else:
            assert abs(outcome.to.x - position.x) + abs(outcome.to.y - position.y) == 1
        position = outcome.to
    # At most one terminal event, always last.
    terminal = [e for e in events if isinstance(e, RunFinished)]
    assert len(terminal) <= 1
    if terminal:
        assert events[-1] is terminal[0]
        end = terminal[0].payload
        assert end.footsteps == sum(1 for o in outcomes if o.action.is_move and o.success)
        assert end.actions == len(outcomes)
        seen_at_start = fold("run-prop", events[:1]).tally.goal_seen
        assert end.goal_seen == (seen_at_start or any(o.goal_seen for o in outcomes))
    # The same events folded twice give the same state, equal to the live one.
    once = fold("run-prop", events)
    twice = fold("run-prop", events)
    assert once == twice == run.state
    # The JSON round trip is lossless, and the decoded log folds to the same state.
    decoded = [parse_run_event(dump_run_event(e)) for e in events]
    assert decoded == events
    assert fold("run-prop", decoded) == run.state
    # A found goal is never downgraded.
    seen = False
    for outcome in outcomes:
        seen = seen or outcome.goal_seen
    assert run.state.tally.goal_seen >= seen


CORRIDOR = maze_from_text(
    """
    #########
    #.......#
    #######G#
    #########
    """
)


def _run() -> LocalRun:
    request = ExperimentStart(
        run_id="run-x",
        maze=MazeData.from_maze(CORRIDOR),
        start=Point(x=1, y=1),
        agent=AgentSpec(provider="builtin", model="random"),
        limits=RunLimits(),
    )
    run = LocalRun(request, CORRIDOR, clock=ManualClock(T0), new_id=counting_ids())
    run.act("move_east")
    run.act("move_east")
    return run


def _corrupt(event: RunEvent, **payload_changes: object) -> RunEvent:
    data = event.model_dump(by_alias=True)
    data["payload"].update(payload_changes)
    return parse_run_event(type(event).model_validate(data).model_dump_json(by_alias=True))


def test_fold_refuses_a_gap() -> None:
    events = _run().events
    with pytest.raises(RuleError, match="^seq: expected event 3 of run run-x, got 4$"):
        fold("run-x", events[:2] + events[3:])


def test_fold_refuses_a_teleport() -> None:
    events = list(_run().events)
    events[-1] = _corrupt(events[-1], **{"from": {"x": 5, "y": 1}})
    with pytest.raises(
        RuleError, match=r"^from: step 2 starts at \(5, 1\) but the agent is at \(2, 1\)$"
    ):
        fold("run-x", events)


def test_fold_refuses_wrong_first_event_and_foreign_events() -> None:
    events = _run().events
    state = RunState("run-x")
    with pytest.raises(RuleError, match="^seq: expected event 1"):
        state.apply(events[1])
    with pytest.raises(RuleError, match="^run_id: event of run run-x applied to run other$"):
        RunState("other").apply(events[0])


def test_apply_if_new_skips_redelivered_events() -> None:
    run = _run()
    state = fold("run-x", run.events[:3])
    assert not state.apply_if_new(run.events[1])
    assert state.apply_if_new(run.events[3])
    assert state.seq == 4


def test_nothing_after_the_end() -> None:
    run = _run()
    run.cancel()
    with pytest.raises(StaleCommand):
        run.act("move_east")
    extra = run.events[-1].model_copy(update={"seq": run.events[-1].seq + 1})
    with pytest.raises(RuleError, match="already finished"):
        fold("run-x", [*run.events, extra])
