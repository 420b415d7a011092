"""The frontier agent, played through whole runs with the real rules and fold, and on
hand-built observations: it finds the goal whenever it can be seen."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oriole.agents.builtin import FrontierAgent, WallFollowerAgent
from oriole.agents.known_map import KnownMap
from oriole.analysis import reachable, steps_to_see_goal
from oriole.events import StopReason
from oriole.generators import generate
from oriole.geometry import Position
from oriole.intents import ActionType
from oriole.maze import Maze
from oriole.rng import SeededRandom
from tests.builtin_agents_support import WALL, known_of, new_run, observe, play
from tests.support import maze_from_text, random_mazes, reference_maze

#: Footsteps the frontier agent needs on Oriole's maze 1 from (2,2), vision 3 (optimum: 99).
#: Pinned because the agent is deterministic: a change here changes the published baseline.
FRONTIER_FOOTSTEPS_MAZE_1 = 170


@pytest.mark.asyncio
async def test_frontier_sees_the_goal_of_reference_maze_1() -> None:
    maze = reference_maze("01_sparse_maze")
    run = new_run(maze, "frontier", start=(2, 2), max_footsteps=2000)
    await play(FrontierAgent(), run)
    finished = run.state.finished
    assert finished is not None
    assert finished.stop_reason is StopReason.GOAL_SEEN
    assert run.state.tally.failed_moves == 0
    assert steps_to_see_goal(maze, (2, 2)) == 99
    assert run.state.tally.footsteps == FRONTIER_FOOTSTEPS_MAZE_1


FAMILY_CASES = [
    ("backtracker", 25, 25, {}),
    ("backtracker", 31, 19, {"density": 0.5}),
    ("open-field", 30, 30, {"wall_fraction": 0.3}),
    ("rooms", 40, 30, {}),
    ("pillars", 27, 27, {"gap_probability": 0.3}),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("family", "width", "height", "params"), FAMILY_CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("vision_range", [1, 3])
async def test_frontier_finds_the_goal_whenever_it_can_be_seen(
    family: str, width: int, height: int, params: dict[str, Any], seed: int, vision_range: int
) -> None:
    maze = generate(family, width, height, seed, **params)
    # The default start (always one the goal can be seen from) and random open tiles, some of
    # which may be cut off from the goal.
    rng = SeededRandom(seed)
    tiles = maze.open_tiles()
    starts: list[tuple[int, int] | None] = [None]
    starts += [(p.x, p.y) for p in (rng.choice(tiles) for _ in range(3))]
    generous = 4 * width * height
    for start in starts:
        run = new_run(
            maze, "frontier", start=start, vision_range=vision_range, max_footsteps=generous
        )
        origin = run.state.position
        optimum = steps_to_see_goal(maze, origin, vision_range)
        decisions = await play(FrontierAgent(), run)
        assert run.state.tally.failed_moves == 0
        if optimum is None:
            assert not run.state.tally.goal_seen
            last = decisions[-1]
            assert last.action is ActionType.NO_TOOL_CALL
            assert last.assistant_message is not None
            assert "No unexplored tile is reachable" in last.assistant_message
            # It gave up only after seeing every tile it could stand on.
            assert reachable(maze, origin) <= set(run.state.seen)
        else:
            finished = run.state.finished
            assert finished is not None, f"{maze.name} from {origin}: no end"
            assert finished.stop_reason is StopReason.GOAL_SEEN, (maze.name, origin, finished)
            assert optimum <= run.state.tally.footsteps


@pytest.mark.asyncio
async def test_frontier_walks_to_a_known_goal_under_the_reached_rule() -> None:
    maze = generate("rooms", 30, 30, 5)
    run = new_run(maze, "frontier", goal_rule="reached", max_footsteps=5000)
    decisions = await play(FrontierAgent(), run)
    finished = run.state.finished
    assert finished is not None and finished.stop_reason is StopReason.GOAL_REACHED
    assert any("the goal at" in (d.reasoning or "") for d in decisions)


@pytest.mark.asyncio
async def test_blind_agents_learn_walls_from_refused_moves() -> None:
    # Vision range 0: only the tile underfoot is seen, so walls are found by bumping into
    # them; `play` checks that no refused move is ever tried again.
    maze = generate("backtracker", 15, 15, 4, density=0.5)
    run = new_run(maze, "frontier", start=(1, 1), vision_range=0, goal_rule="reached")
    await play(FrontierAgent(), run)
    assert run.state.finished is not None
    assert run.state.finished.stop_reason is StopReason.GOAL_REACHED
    assert run.state.tally.failed_moves > 0
    run = new_run(maze, "wall-follower", start=(1, 1), vision_range=0, goal_rule="reached")
    await play(WallFollowerAgent(), run)
    assert run.state.finished is not None
    assert run.state.finished.stop_reason is StopReason.GOAL_REACHED


def test_frontier_steps_off_a_wall_start_and_breaks_ties_north_first() -> None:
    # Standing on a wall, every neighbour open: N, S, E, W order picks north.
    known = {Position(1, 1): WALL}
    for x, y in ((1, 0), (1, 2), (2, 1), (0, 1)):
        known[Position(x, y)] = 0
    decision = FrontierAgent().choose(observe(known, Position(1, 1), 3, 3), [])
    assert decision.action is ActionType.MOVE_NORTH
    assert decision.reasoning == "nearest unexplored tile (1, 0) is 1 step away; going north"
    # On a frontier tile itself: step into the first unknown neighbour.
    decision = FrontierAgent().choose(observe({Position(1, 1): 0}, Position(1, 1), 3, 3), [])
    assert decision.action is ActionType.MOVE_NORTH
    assert decision.reasoning == "(1, 0) next to (1, 1) is unexplored; going north to look"


def test_frontier_without_a_reachable_frontier_says_so() -> None:
    maze = maze_from_text(
        """
        #####
        #..##
        ###G#
        #####
        """
    )
    known = known_of(maze)
    del known[Position(3, 2)]  # the goal is unknown, and walled off anyway
    decision = FrontierAgent().choose(observe(known, Position(1, 1), 5, 4), [])
    assert decision.action is ActionType.NO_TOOL_CALL
    assert decision.assistant_message == (
        "No unexplored tile is reachable from (1, 1) over known tiles: everything reachable "
        "has been seen, so there is no useful move."
    )
    # A goal in view behind a wall: said so, then the same conclusion.
    decision = FrontierAgent().choose(observe(known_of(maze), Position(1, 1), 5, 4), [])
    assert decision.action is ActionType.NO_TOOL_CALL
    assert decision.reasoning == (
        "the goal at (3, 2) is known but no known path leads there; "
        "nothing left to explore from (1, 1)"
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maze=random_mazes(), data=st.data())
def test_both_searches_give_the_same_answer(maze: Maze, data: st.DataObject) -> None:
    """The lazy and the flat search must agree exactly, or decisions would depend on size."""
    every = known_of(maze)
    keep = data.draw(st.lists(st.booleans(), min_size=len(every), max_size=len(every)))
    known = {p: code for (p, code), kept in zip(every.items(), keep, strict=True) if kept}
    root = Position(
        data.draw(st.integers(0, maze.width - 1)), data.draw(st.integers(0, maze.height - 1))
    )
    # Refused moves: unknown tiles (and the edge beyond the grid) taken as walls.
    unknown = [p for p in every if p not in known]
    refused = data.draw(st.sets(st.sampled_from(unknown))) if unknown else set()
    refused |= {Position(-1, 0), Position(maze.width, 0)}
    search = KnownMap(observe(known, root, maze.width, maze.height), refused)
    targets: list[Position | None] = [None]
    if maze.goal in known and maze.goal != root:
        targets.append(maze.goal)
    for target in targets:
        lazy = search.search(root, target, budget=10**9)
        flat = search.search(root, target, budget=0)
        assert lazy == flat


def test_frontier_crosses_a_1000_by_1000_map() -> None:
    # Worst case: everything known and open but the far corner, so the search crosses the map.
    # (Its speed is measured by `python -m bench agents`, not here.)
    known = dict.fromkeys((Position(x, y) for y in range(1000) for x in range(1000)), 0)
    del known[Position(999, 999)]
    observation = observe(known, Position(0, 0), 1000, 1000)
    decision = FrontierAgent().choose(observation, [])
    assert decision.action is ActionType.MOVE_SOUTH
    assert (
        decision.reasoning == "nearest unexplored tile (998, 999) is 1997 steps away; going south"
    )
