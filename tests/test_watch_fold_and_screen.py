"""`oriole watch`: the feed folded with the core's RunState, and what the screen shows."""

from __future__ import annotations

import io
import json
import time

import pytest
from rich.console import Console

from oriole import generators
from oriole.cli.render import (
    AGENT_STYLE,
    IN_VIEW_STYLE,
    PATH_STYLE,
    SEEN_STYLE,
    WALL_IN_VIEW_STYLE,
    WALL_SEEN_STYLE,
    WALL_STYLE,
    window,
)
from oriole.cli.watch_feed import WatchedRun, WatchError, read_frame
from oriole.cli.watch_screen import (
    in_view,
    render_info,
    render_run_maze,
    render_screen,
    summary_text,
)
from oriole.errors import OrioleError
from oriole.events import ActionCompleted, RunFinished
from oriole.geometry import Position
from oriole.intents import ActionType, ModelCall
from oriole.run_state import RunState
from oriole.schema_base import Point
from tests.watch_support import (
    as_dicts,
    as_frames,
    corridor_run,
    plain_lines,
    printed,
    style_at,
    watched,
)

# --- the fold -----------------------------------------------------------------------------


def test_fold_follows_position_vision_path_and_totals() -> None:
    run = corridor_run()
    call = ModelCall(call_id="c1", provider="ollama", model="qwen2.5:7b", input_tokens=800,
                     output_tokens=60, cost_usd=0.001)  # fmt: skip
    run.act("move_east", reasoning="[bold]east[/bold] <b>!</b>", model_call=call)
    run.act("move_north", reasoning="bump")
    assert as_frames(run.events) == run.events  # the gateway's frames decode to the events
    view = watched(run.events)
    state = view.state
    assert state.maze is not None and state.spec is not None
    assert (state.maze.width, state.maze.height, state.maze.name) == (7, 5, "corridor")
    assert state.spec.start.position() == (1, 1)
    assert state.position == (2, 1)
    assert set(state.visits) == {(1, 1), (2, 1)}
    tally = state.tally
    assert (tally.footsteps, tally.actions, tally.model_calls) == (1, 2, 1)
    assert (tally.input_tokens, tally.output_tokens) == (800, 60)
    assert tally.cost_usd == pytest.approx(0.001)
    assert [(r.record.action, r.record.success, r.reasoning) for r in view.recent()] == [
        (ActionType.MOVE_EAST, True, "[bold]east[/bold] <b>!</b>"),
        (ActionType.MOVE_NORTH, False, "bump"),
    ]
    last = run.events[-1]
    assert isinstance(last, ActionCompleted)
    assert in_view(view) == {(x, y) for x, y, _ in last.payload.tiles_seen}
    assert state.seen[Position(0, 1)] == 1  # a wall, seen
    assert state.seq == len(run.events)
    assert state.finished is None
    info = printed(render_info(view, 3, 96))
    assert "ollama:qwen2.5:7b" in info
    assert "1 footsteps, 2 actions, 1 turns" in info
    assert "800 in / 60 out, 1 model calls, $0.0010" in info
    assert f"(event {len(run.events)})" in info


def test_duplicates_are_ignored_and_gaps_reported() -> None:
    run = corridor_run()
    run.act("move_east")
    run.act("move_east")
    events = as_frames(run.events)
    view = WatchedRun(RunState("run-watch"))
    for event in events[:3]:
        view.apply(event)
    assert view.apply(events[1]) == "dup"
    assert view.apply(events[4]) == "gap"  # seq 5 while 4 is missing
    assert view.state.seq == 3
    assert view.apply(events[3]) == "applied"
    assert view.apply(events[4]) == "applied"
    assert view.state.position == (3, 1)  # both moves east, each applied once


def test_a_feed_that_is_not_the_runs_log_is_a_watch_error() -> None:
    """Frames that cannot be read and logs the fold refuses end watching with exit 2."""
    run = corridor_run()
    run.act("move_east")
    events = as_dicts(run.events)
    with pytest.raises(WatchError, match="frame that cannot be read"):
        read_frame("not json")
    teleported = {**events[1], "type": "run.teleported"}
    with pytest.raises(WatchError, match="event 2 that is not a run event"):
        read_frame(json.dumps({"kind": "event", "event": teleported}))
    assert read_frame(json.dumps({"kind": "lagging", "detail": "behind"})).detail == "behind"
    view = WatchedRun(RunState("run-watch"))
    with pytest.raises(WatchError, match="cannot be folded at event 1"):
        view.apply(as_frames(corridor_run("run-other").events)[0])
    with pytest.raises(WatchError, match="must be run.started"):
        view.apply(as_frames(run.events)[1].model_copy(update={"seq": 1}))
    assert issubclass(WatchError, OrioleError)


def test_finished_run_summary() -> None:
    run = corridor_run()
    for action in ("move_east", "move_east", "move_east", "move_east"):
        run.act(action, reasoning="go")
    view = watched(run.events)
    end = run.events[-1]
    assert isinstance(end, RunFinished)
    assert view.state.finished is not None
    assert view.state.finished.stop_reason == end.payload.stop_reason == "goal_seen"
    text = summary_text(view).plain
    assert text.startswith("run run-watch: ✓ goal_seen — ")
    assert "4 footsteps, 4 actions" in text
    assert "ended at (5, 1)" in text


def test_from_seq_still_folds_from_the_start_and_lists_only_later_actions() -> None:
    """The fold needs the run from its start: with --from-seq the whole maze is drawn and
    the totals are the run's; only the actions listed start after that event."""
    run = corridor_run()
    run.act("move_east", reasoning="first")
    run.act("move_east", reasoning="second")
    view = watched(run.events, from_seq=3)  # event 3 completes step 1
    assert plain_lines(render_run_maze(view, 20, 10)) == [
        "██████████████",
        "██S · @     ██",
        "██  ██████  ██",
        "██      ██G ██",
        "██████████████",
    ]
    assert [(r.record.step, r.reasoning) for r in view.recent()] == [(2, "second")]
    assert view.state.tally.actions == 2
    assert "2 footsteps, 2 actions" in printed(render_info(view, 3, 96))


# --- rendering ----------------------------------------------------------------------------


def test_render_corridor_exactly() -> None:
    run = corridor_run()
    run.act("move_east")
    view = watched(run.events)
    # S start, @ agent, G goal (known from the maze, not yet seen); what is seen and in
    # view shows in the tiles' colours.
    maze = render_run_maze(view, 20, 10)
    assert plain_lines(maze) == [
        "██████████████",
        "██S @       ██",
        "██  ██████  ██",
        "██      ██G ██",
        "██████████████",
    ]
    assert style_at(maze, 2, 1) == AGENT_STYLE
    assert style_at(maze, 2, 0) == WALL_IN_VIEW_STYLE
    assert style_at(maze, 6, 1) == WALL_STYLE  # beyond the vision range: never seen
    assert style_at(maze, 3, 1) == IN_VIEW_STYLE
    assert style_at(maze, 1, 2) == SEEN_STYLE  # seen from the start, not in view now
    assert style_at(maze, 1, 4) == WALL_SEEN_STYLE
    assert style_at(maze, 2, 3) == ""  # never seen
    for action in ("move_west", "move_south", "move_south"):
        run.act(action)
    for event in as_frames(run.events)[view.state.seq :]:
        view.apply(event)
    assert view.state.position == (1, 3)
    maze = render_run_maze(view, 20, 10)
    assert plain_lines(maze)[1:4] == ["██S ·       ██", "██· ██████  ██", "██@     ██G ██"]
    assert style_at(maze, 1, 2) == f"{PATH_STYLE} {IN_VIEW_STYLE}"
    assert style_at(maze, 2, 1) == f"{PATH_STYLE} {SEEN_STYLE}"  # visited, no longer in view
    assert style_at(maze, 4, 1) == SEEN_STYLE


def test_window_follows_the_agent_and_stops_at_the_edges() -> None:
    assert window(500, 2, 40) == (0, 40)
    assert window(500, 250, 40) == (230, 270)
    assert window(500, 499, 40) == (460, 500)
    assert window(10, 5, 40) == (0, 10)
    assert window(10, 5, 0) == (0, 0)


def test_big_maze_shows_a_window_around_the_agent() -> None:
    maze = generators.generate("backtracker", 501, 501, seed=4, name="big")
    assert maze.tile(401, 301) == 0
    view = watched(corridor_run("run-big", maze, Point(x=401, y=301)).events, "run-big")
    started = time.perf_counter()
    lines = plain_lines(render_run_maze(view, 30, 20))
    elapsed = time.perf_counter() - started
    assert len(lines) == 20
    assert all(len(line) == 60 for line in lines)
    # The agent is in the middle of the window: x 386..415, y 291..310.
    assert lines[10][30:32] == "@ "
    assert elapsed < 1.0  # a 30x20 window of a 500x500 maze, not the whole maze
    assert "big  x 382–419, y 291–310" in printed(render_screen(view, 80, 40), 80)


def test_screen_fits_the_terminal() -> None:
    run = corridor_run()
    for _ in range(3):
        run.act("move_east", reasoning="a long reasoning " * 30)
    view = watched(run.events)
    for width, height in ((150, 45), (120, 30), (80, 24), (60, 20)):
        out = Console(file=io.StringIO(), width=width, height=height, color_system=None)
        out.print(render_screen(view, width, height))
        lines = out.file.getvalue().rstrip("\n").split("\n")  # type: ignore[attr-defined]
        assert len(lines) <= height, (width, height, len(lines))
        assert max(len(line) for line in lines) <= width


def test_screen_before_the_run_started() -> None:
    view = WatchedRun(RunState("run-watch"))
    text = printed(render_screen(view, 120, 30), 120)
    assert "waiting for the run to start…" in text
    assert "? 0×0" in text and "(event 0)" in text


def test_reasoning_with_markup_is_printed_as_written() -> None:
    run = corridor_run()
    run.act("move_east", reasoning="[bold red]not markup[/] <script>")
    view = watched(run.events)
    assert "[bold red]not markup[/] <script>" in printed(render_info(view, 3, 96))
