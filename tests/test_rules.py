"""Movement, recall, stop rules and start resolution, through the pure decision functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oriole.errors import RuleError
from oriole.events import ActionCompleted, ModelCalled, RunFinished, RunStarted, StopReason
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, RunLimits
from oriole.intents import AgentIntent, ModelCall
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.maze import Maze
from oriole.memory import exploration_history
from oriole.rules import StaleCommand, handle_intent, resolve_start
from oriole.schema_base import Point
from tests.support import maze_from_text, reference_maze

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BUILTIN = AgentSpec(provider="builtin", model="frontier")

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


def new_run(
    maze: Maze, start: tuple[int, int] | None = (1, 1), **limits: object
) -> tuple[LocalRun, ManualClock]:
    clock = ManualClock(T0)
    request = ExperimentStart(
        run_id="run-test",
        maze=MazeData.from_maze(maze),
        start=None if start is None else Point(x=start[0], y=start[1]),
        agent=BUILTIN,
        limits=RunLimits(**limits),  # type: ignore[arg-type]
    )
    return LocalRun(request, maze, clock=clock, new_id=counting_ids()), clock


def outcome(events: list) -> ActionCompleted:  # type: ignore[type-arg]
    return next(e for e in events if isinstance(e, ActionCompleted))


def finished(run: LocalRun) -> RunFinished:
    last = run.events[-1]
    assert isinstance(last, RunFinished)
    return last


def test_oriole_appendix_b_moves_on_maze_1() -> None:
    maze = reference_maze("01_sparse_maze")
    run, _ = new_run(maze, start=(2, 2))
    first = outcome(run.act("move_north", reasoning="up"))
    assert first.payload.success
    assert first.payload.result == {
        "success": True,
        "position": {"x": 2, "y": 1},
        "visible": "(2,1): empty, (2,0): wall, (2,2): empty, (2,3): empty, (2,4): wall, "
        "(3,1): empty, (4,1): empty, (5,1): empty, (1,1): wall",
        "foundGoal": False,
        "message": "Moved north to (2, 1)",
    }
    second = outcome(run.act("move_north"))
    assert not second.payload.success
    assert second.payload.message == "Cannot move north - wall in the way. Still at (2, 1)"
    assert second.payload.result["position"] == {"x": 2, "y": 1}
    assert second.payload.result["visible"] == first.payload.result["visible"]
    assert (second.payload.from_, second.payload.to) == (Point(x=2, y=1), Point(x=2, y=1))
    assert run.state.tally.footsteps == 1
    assert run.state.tally.failed_moves == 1


def test_boundary_wording_when_the_grid_ends() -> None:
    maze = maze_from_text("....G")
    run, _ = new_run(maze, start=(0, 0))
    result = outcome(run.act("move_west")).payload
    assert result.message == "Cannot move west - boundary in the way. Still at (0, 0)"


def test_an_agent_on_a_wall_can_step_off_it() -> None:
    maze = maze_from_text(
        """
        #####
        #.#.#
        #...#
        #..G#
        #####
        """
    )
    # Explicit wall starts are refused ...
    with pytest.raises(RuleError) as info:
        resolve_start(maze, Point(x=2, y=1), 3)
    assert info.value.field == "start"
    assert "(2,1) is a wall tile in maze hand-made; choose an open tile, e.g." in info.value.reason


def test_default_start_on_a_wall_is_moved_with_a_warning() -> None:
    maze = reference_maze("03_medium_maze")
    start, warnings = resolve_start(maze, None, 3)
    assert maze.rows[start.y][start.x] != 1
    assert warnings == [
        f"default start (2,2) is a wall tile in maze 03_medium_maze; moved to ({start.x},{start.y})"
    ]
    sealed = reference_maze("09_rooms_corridors")
    start, warnings = resolve_start(sealed, None, 3)
    assert "moved to" in warnings[0]
    ok, none = resolve_start(reference_maze("01_sparse_maze"), None, 3)
    assert (ok, none) == (Point(x=2, y=2), [])


def test_explicit_start_that_cannot_see_the_goal_warns() -> None:
    maze = reference_maze("11_diagonal_bias")
    open_tile = next(p for p in maze.open_tiles() if p.x < 5 and p.y < 5)
    _, warnings = resolve_start(maze, Point(x=open_tile.x, y=open_tile.y), 3)
    assert warnings and "can be neither reached nor seen" in warnings[0]
    with pytest.raises(RuleError, match=r"^start: \(60,0\) is outside maze 11_diagonal_bias"):
        resolve_start(maze, Point(x=60, y=0), 3)


def test_recall_names_tiles_and_caps_depth() -> None:
    run, _ = new_run(CORRIDOR, max_footsteps=100)
    for _ in range(3):
        run.act("move_east")
    run.act("move_north")  # fails: wall
    recalled = outcome(run.act("recall_movement_history", depth=500)).payload
    assert recalled.success
    assert recalled.from_ == recalled.to == Point(x=4, y=1)
    result = recalled.result
    assert result["actionsRecalled"] == 4
    assert result["pathSummary"] == "4 actions: 1,1 → 4,1"
    assert result["explorationHistory"][0] == (
        "✓ move_east → (2, 1): Saw empty at 2,1, wall at 2,0, wall at 2,2, "
        "empty at 3,1, empty at 4,1, empty at 5,1, empty at 1,1, wall at 0,1"
    )
    assert result["explorationHistory"][3].startswith("✗ move_north → (4, 1): Saw empty at 4,1")
    assert "1 at" not in " ".join(result["explorationHistory"])
    assert result["currentPosition"] == {"x": 4, "y": 1}
    assert set(result["tilesDiscovered"]) == {"empty", "wall", "goal"}
    assert "2,0" in result["tilesDiscovered"]["wall"]
    assert result["message"].startswith(
        "Recalled last 4 actions. 4 actions: 1,1 → 4,1. Discovered "
    )
    assert "NOTE: you asked for 500 actions but the maximum depth is 50" in result["message"]
    # Depth within the cap: no note.
    small = outcome(run.act("recall_movement_history", depth=2)).payload.result
    assert small["actionsRecalled"] == 2
    assert "NOTE" not in small["message"]


@pytest.mark.parametrize(
    ("depth", "text"),
    [
        (None, "'depth' is required: an integer >= 1"),
        (0, "'depth' must be an integer >= 1, got 0"),
    ],
)
def test_recall_without_a_valid_depth_is_a_clear_error(depth: int | None, text: str) -> None:
    run, _ = new_run(CORRIDOR)
    result = outcome(run.act("recall_movement_history", depth=depth)).payload
    assert not result.success
    assert text in result.result["error"]
    assert run.state.tally.recalls == 1


def test_history_lines_carry_real_vision_and_positions() -> None:
    run, _ = new_run(CORRIDOR)
    run.act("move_east")
    run.act("recall_movement_history", depth=5)
    run.act("no_tool_call", assistant_message="thinking...")
    lines = exploration_history(run.state.actions, 10)
    assert lines[0].startswith("✓ move_east → (2, 1): Saw empty at 2,1")
    assert lines[1].startswith("✓ recall_movement_history → (2, 1): Recalled last 1 actions.")
    assert lines[2].startswith("✗ no_tool_call → (2, 1): No tool call")
    assert exploration_history(run.state.actions, 1) == lines[-1:]
    assert exploration_history(run.state.actions, 0) == []


def test_no_tool_call_and_invalid_tool_are_recorded_as_actions() -> None:
    run, _ = new_run(CORRIDOR)
    nothing = outcome(run.act("no_tool_call", assistant_message="I think")).payload
    assert (nothing.success, nothing.tiles_seen, nothing.to) == (False, [], Point(x=1, y=1))
    bad = outcome(run.act("invalid_tool_call", tool_name="fly", problem="no such tool")).payload
    assert bad.message == "Unknown action: fly (no such tool)"
    assert run.state.tally.actions == 2
    assert run.state.tally.no_tool_calls == 1
    assert run.state.tally.invalid_calls == 1


def test_goal_seen_ends_the_run_and_is_never_downgraded() -> None:
    run, _ = new_run(CORRIDOR, start=(8, 1))
    events = run.act("move_east")
    result = outcome(events).payload
    assert result.goal_seen and result.result["foundGoal"]
    end = finished(run).payload
    assert end.stop_reason is StopReason.GOAL_SEEN
    assert end.success and end.goal_seen and not end.goal_reached
    with pytest.raises(StaleCommand):
        run.act("move_north")


def test_goal_rule_reached_needs_a_step_on_the_goal() -> None:
    run, _ = new_run(CORRIDOR, start=(8, 1), goal_rule="reached")
    run.act("move_east")
    assert run.state.is_active and run.state.tally.goal_seen
    run.act("move_west")  # goal out of view again; seen stays true
    assert run.state.tally.goal_seen
    run.act("move_east")
    run.act("move_south")
    run.act("move_south")
    end = finished(run).payload
    assert end.stop_reason is StopReason.GOAL_REACHED
    assert end.goal_reached and end.goal_seen and end.success


def test_goal_visible_from_the_start_ends_the_run_at_once() -> None:
    run, _ = new_run(CORRIDOR, start=(9, 2))
    assert [e.type for e in run.events] == ["run.started", "run.finished"]
    assert finished(run).payload.stop_reason is StopReason.GOAL_SEEN
    assert finished(run).payload.actions == 0


def test_max_footsteps_counts_successful_moves_only() -> None:
    run, _ = new_run(CORRIDOR, max_footsteps=2)
    run.act("move_north")  # wall: not a footstep
    run.act("move_east")
    assert run.state.is_active
    run.act("move_east")
    end = finished(run).payload
    assert (end.stop_reason, end.footsteps, end.actions) == (StopReason.MAX_FOOTSTEPS, 2, 3)
    assert end.detail == "2 footsteps made"


def test_max_actions() -> None:
    run, _ = new_run(CORRIDOR, max_actions=2)
    run.act("move_north")
    run.act("recall_movement_history", depth=1)
    assert finished(run).payload.stop_reason is StopReason.MAX_ACTIONS


def test_token_and_cost_budgets_count_every_call_once() -> None:
    run, _ = new_run(CORRIDOR, max_tokens=1000)
    call = ModelCall(
        call_id="c1", provider="ollama", model="m", input_tokens=400, output_tokens=100
    )
    run.act("move_east", model_call=call)
    run.act("move_east")  # second tool call of the same model message: no usage again
    assert run.state.tally.tokens == 500
    assert run.state.is_active
    call2 = ModelCall(
        call_id="c2", provider="ollama", model="m", input_tokens=450, output_tokens=50
    )
    events = run.act("move_east", model_call=call2)
    assert [type(e) for e in events][:1] == [ModelCalled]
    end = finished(run).payload
    assert end.stop_reason is StopReason.BUDGET
    assert (end.input_tokens, end.output_tokens, end.model_calls) == (850, 150, 2)
    assert "max_tokens 1000" in end.detail

    cost_run, _ = new_run(CORRIDOR, max_cost_usd=0.01)
    cost_run.act(
        "move_east",
        model_call=ModelCall(call_id="c", provider="openai", model="m", cost_usd=0.011),
    )
    assert finished(cost_run).payload.stop_reason is StopReason.BUDGET
    assert finished(cost_run).payload.cost_usd == pytest.approx(0.011)


def test_loop_detection_is_off_by_default_and_counts_visits() -> None:
    run, _ = new_run(CORRIDOR)
    for _ in range(10):
        run.act("move_east")
        run.act("move_west")
    assert run.state.is_active
    looping, _ = new_run(CORRIDOR, loop_revisit_limit=3)
    looping.act("move_east")
    looping.act("move_west")  # (1,1) visited twice
    looping.act("move_east")  # (2,1) twice
    assert looping.state.is_active
    looping.act("move_west")  # (1,1) three times
    end = finished(looping).payload
    assert end.stop_reason is StopReason.LOOP_DETECTED
    assert end.detail == "the agent stood on the same tile 3 times"


def test_duration_limit_by_action_and_by_timer() -> None:
    run, clock = new_run(CORRIDOR, max_duration_seconds=60)
    run.act("move_east")
    assert run.tick() == []
    clock.advance(61)
    events = run.tick()
    assert [e.type for e in events] == ["run.finished"]
    end = finished(run).payload
    assert end.stop_reason is StopReason.MAX_DURATION
    assert end.duration_seconds == pytest.approx(61)
    assert run.tick() == []

    late, clock2 = new_run(CORRIDOR, max_duration_seconds=60)
    clock2.advance(120)
    late.act("move_east")
    assert finished(late).payload.stop_reason is StopReason.MAX_DURATION


def test_cancel_and_failure_are_terminal_with_reasons() -> None:
    run, _ = new_run(CORRIDOR)
    events = run.cancel("operator")
    assert [e.type for e in events] == ["run.cancel_requested", "run.finished"]
    assert finished(run).payload.detail == "cancelled on request: operator"
    assert finished(run).payload.stop_reason is StopReason.CANCELLED

    failing, _ = new_run(CORRIDOR)
    failing.act("move_east")
    failing.fail("ModelWithoutTools", "model qwen2.5:14b does not support tools")
    end = finished(failing).payload
    assert end.stop_reason is StopReason.FAILED and not end.success
    assert end.error is not None and end.error.error_class == "ModelWithoutTools"
    assert end.detail == "ModelWithoutTools: model qwen2.5:14b does not support tools"
    assert end.footsteps == 1


def test_goal_beats_a_limit_hit_by_the_same_step() -> None:
    run, _ = new_run(CORRIDOR, start=(8, 1), max_footsteps=1)
    run.act("move_east")
    assert finished(run).payload.stop_reason is StopReason.GOAL_SEEN


def test_stale_and_duplicate_intents_are_refused() -> None:
    run, _ = new_run(CORRIDOR)
    intent = AgentIntent(run_id="run-test", basis_seq=run.state.seq, turn=1, action="move_east")
    run.send(intent)
    with pytest.raises(StaleCommand) as info:
        handle_intent(run.state, intent, now=T0)
    assert info.value.field == "basis_seq"
    with pytest.raises(RuleError, match="^run_id: command for run other sent to run run-test$"):
        handle_intent(
            run.state,
            AgentIntent(run_id="other", basis_seq=run.state.seq, turn=1, action="move_east"),
            now=T0,
        )
    with pytest.raises(RuleError, match="^turn: turn 1 is before the current turn 2$"):
        run.act("move_east", turn=2)
        run.act("move_east", turn=1)


def test_started_event_carries_the_full_spec() -> None:
    run, _ = new_run(CORRIDOR)
    started = run.events[0]
    assert isinstance(started, RunStarted)
    spec = started.payload.spec
    assert spec.maze.grid_data == CORRIDOR.grid_data()
    assert spec.maze.content_hash == CORRIDOR.content_hash
    assert spec.start == Point(x=1, y=1)
    assert spec.agent == BUILTIN


def test_recovery_completes_a_decision_whose_outcome_was_lost() -> None:
    run, _ = new_run(CORRIDOR, max_footsteps=2)
    run.act("move_east")
    run.act("move_east")  # second footstep: completed + finished
    full = run.events
    torn = [e for e in full if e.seq <= full[-3].seq]  # ends with the last action.requested
    assert torn[-1].type == "action.requested"
    from oriole.rules import handle_tick
    from oriole.run_state import fold

    state = fold("run-test", torn)
    recovered = handle_tick(state, now=T0)
    assert [e.type for e in recovered] == ["action.completed", "run.finished"]
    assert recovered[0].payload == full[-2].payload
    assert recovered[1].payload.stop_reason is StopReason.MAX_FOOTSTEPS


def test_recovery_rechecks_stop_rules_when_the_terminal_event_was_lost() -> None:
    run, _ = new_run(CORRIDOR, max_footsteps=1)
    run.act("move_east")
    from oriole.rules import handle_tick
    from oriole.run_state import fold

    state = fold("run-test", run.events[:-1])
    events = handle_tick(state, now=T0)
    assert [e.type for e in events] == ["run.finished"]
    assert events[0].payload.stop_reason is StopReason.MAX_FOOTSTEPS
