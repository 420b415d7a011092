"""The wall-follower agent, played through whole runs with the real rules and fold: it
solves a perfect maze, its right hand on the wall."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oriole.agents.builtin import WallFollowerAgent
from oriole.analysis import reachable
from oriole.events import StopReason
from oriole.generators import generate
from oriole.geometry import Position
from oriole.intents import ActionType
from oriole.maze import Maze
from oriole.memory import ActionRecord
from tests.builtin_agents_support import WALL, known_of, new_run, observe, play
from tests.support import maze_from_text


def open_pairs(maze: Maze) -> int:
    """Adjacent pairs of open tiles: open tiles - 1 exactly when the open tiles form a tree."""
    rows = maze.rows
    count = 0
    for y in range(maze.height):
        for x in range(maze.width):
            if rows[y][x] != WALL:
                count += x + 1 < maze.width and rows[y][x + 1] != WALL
                count += y + 1 < maze.height and rows[y + 1][x] != WALL
    return count


@pytest.mark.asyncio
@pytest.mark.parametrize(("width", "height", "seed"), [(21, 21, 1), (31, 21, 2), (41, 41, 3)])
async def test_wall_follower_solves_a_perfect_maze(width: int, height: int, seed: int) -> None:
    maze = generate("backtracker", width, height, seed, density=0.5)
    tiles = maze.open_tiles()
    assert open_pairs(maze) == len(tiles) - 1, "density 0.5 must leave a perfect maze"
    cells = len(reachable(maze, (1, 1)))
    run = new_run(maze, "wall-follower", start=(1, 1), max_footsteps=4 * cells)
    await play(WallFollowerAgent(), run)
    finished = run.state.finished
    assert finished is not None and finished.stop_reason is StopReason.GOAL_SEEN
    assert run.state.tally.failed_moves == 0
    # Walking round a tree crosses each corridor at most twice.
    assert run.state.tally.footsteps <= 2 * cells


def test_wall_follower_keeps_its_right_hand_on_the_wall() -> None:
    ring = maze_from_text(
        """
        #####
        #...#
        #.#.#
        #..G#
        #####
        """
    )
    known = known_of(ring)
    # No move yet: heading north, so east (its right) comes first.
    first = WallFollowerAgent().choose(observe(known, Position(1, 1), 5, 5), [])
    assert first.action is ActionType.MOVE_EAST
    assert first.reasoning == (
        "right-hand rule, heading north (no move yet, so north by default); "
        "turning right: going east"
    )
    # Heading east at the corner (3, 1): right is south, and open.
    moved = ActionRecord(
        step=1,
        turn=1,
        action=ActionType.MOVE_EAST,
        success=True,
        from_=Position(2, 1),
        to=Position(3, 1),
        tiles=(),
    )
    refused = replace(moved, step=2, action=ActionType.MOVE_NORTH, success=False, from_=moved.to)
    corner = WallFollowerAgent().choose(observe(known, Position(3, 1), 5, 5), [moved, refused])
    assert corner.action is ActionType.MOVE_SOUTH
    assert corner.reasoning == (
        "right-hand rule, heading east (last move); turning right: going south"
    )
    # Heading east at (2, 1) with (3, 1) refused before (as if unseen): right and straight
    # are ruled out, left (north) is a wall, so back west.
    partial = {p: c for p, c in known.items() if p != Position(3, 1)}
    back_at = replace(moved, from_=Position(1, 1), to=Position(2, 1))
    bump = replace(refused, from_=Position(2, 1))
    bump = replace(bump, action=ActionType.MOVE_EAST)
    decision = WallFollowerAgent().choose(observe(partial, Position(2, 1), 5, 5), [back_at, bump])
    assert decision.action is ActionType.MOVE_WEST
    assert decision.reasoning == (
        "right-hand rule, heading east (last move) (south is a wall, east is a wall, "
        "north is a wall); turning back: going west"
    )
