"""Where the maze generators put the goal: Oriole's window rule, its fallback, and the
farthest-goal rule."""

from __future__ import annotations

import pytest

from oriole.analysis import grid_distances
from oriole.errors import ValidationError
from oriole.generators import generate, place_goal
from oriole.geometry import Position, Tile


def test_oriole_goal_rule_scans_the_window_row_by_row() -> None:
    width = height = 60
    grid = bytearray([Tile.WALL]) * (width * height)
    grid[54 * width + 57] = Tile.EMPTY
    grid[55 * width + 53] = Tile.EMPTY
    assert place_goal(grid, width, height, "oriole") == Position(57, 54)
    assert grid[54 * width + 57] == Tile.GOAL


def test_oriole_goal_rule_falls_back_to_the_nearest_empty_tile() -> None:
    width, height = 60, 60
    grid = bytearray([Tile.WALL]) * (width * height)
    for x, y in ((10, 10), (55, 40), (40, 55), (70 - 55, 55)):
        grid[y * width + x] = Tile.EMPTY
    # (55,40) and (40,55) are both 15 from (55,55): row-major order picks (55,40)
    assert place_goal(grid, width, height, "oriole") == Position(55, 40)


def test_oriole_goal_window_for_small_mazes() -> None:
    grid = bytearray(5 * 4)
    assert place_goal(grid, 5, 4, "oriole") == Position(1, 1)
    maze = generate("open-field", 8, 9, 0, wall_fraction=0)
    assert maze.goal == Position(1, 2)  # centre (3,4): window x 1..5, y 2..6


def test_farthest_goal_is_farthest_from_the_start() -> None:
    maze = generate("backtracker", 31, 23, 4, goal="farthest")
    assert maze.generator is not None
    assert maze.generator.params["start"] == [1, 1]
    cells = b"".join(maze.rows).replace(b"\x02", b"\x00")
    dist = grid_distances(cells, 31, 23, Position(1, 1))
    assert dist[maze.goal.y * 31 + maze.goal.x] == max(dist)
    given_start = generate("open-field", 20, 10, 4, wall_fraction=0, goal="farthest", start=(18, 8))
    assert given_start.goal == Position(1, 1)


def test_farthest_goal_default_start_is_first_open_tile_when_1_1_is_a_wall() -> None:
    maze = generate("rooms", 60, 60, 2, goal="farthest")
    assert maze.generator is not None
    start = maze.generator.params["start"]
    assert maze.is_wall(1, 1)
    first_open = maze.open_tiles()[0]
    assert start == [first_open.x, first_open.y] or maze.goal == first_open


def test_place_goal_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        place_goal(bytearray([Tile.WALL]) * 9, 3, 3, "oriole")
    assert (err.value.field, err.value.reason) == (
        "grid",
        "has no empty tile that could become the goal",
    )
    with pytest.raises(ValidationError) as err:
        place_goal(bytearray(9), 3, 3, "nearest")
    assert err.value.field == "goal"
    assert "use one of oriole, farthest" in err.value.reason
    with pytest.raises(ValidationError) as err:
        place_goal(bytearray(8), 3, 3, "oriole")
    assert err.value.field == "grid"
    sealed = bytearray([Tile.WALL]) * 25
    sealed[2 * 5 + 2] = Tile.EMPTY
    with pytest.raises(ValidationError) as err:
        place_goal(sealed, 5, 5, "farthest", start=(1, 1))
    assert (err.value.field, err.value.reason) == (
        "start",
        "no empty tile can be reached from start (1,1)",
    )
