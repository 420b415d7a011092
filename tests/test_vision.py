from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oriole.errors import MazeError
from oriole.geometry import Tile
from oriole.maze import Maze
from oriole.vision import describe_vision, goal_in_view
from tests.support import MAZES_DIR, VISION_CASES, maze_from_text, random_mazes, require_reference


def test_every_recorded_vision_case_matches_exactly() -> None:
    require_reference()
    records = [json.loads(line) for line in VISION_CASES.read_text().splitlines() if line]
    assert len(records) == 144
    mazes: dict[str, Maze] = {}
    for record in records:
        maze = mazes.setdefault(record["maze"], Maze.load(MAZES_DIR / record["maze"]))
        tiles = maze.vision(
            record["x"], record["y"], record["vision_range"], record["see_through_walls"]
        )
        where = f"{record['maze']} ({record['x']},{record['y']}) {record['case']}"
        assert [list(t) for t in tiles] == record["tiles_ordered"], where
        assert {f"{x},{y}": c for x, y, c in tiles} == record["tiles"], where
        assert list(record["tiles"]) == [f"{x},{y}" for x, y, _ in tiles], where
        assert describe_vision(tiles) == record["description"], where
        assert goal_in_view(tiles) == record["found_goal"], where


def test_spec_example_from_the_default_start() -> None:
    require_reference()
    maze = Maze.load(MAZES_DIR / "01_sparse_maze.json")
    assert describe_vision(maze.vision(2, 2)) == (
        "(2,2): empty, (2,1): empty, (2,0): wall, (2,3): empty, (2,4): wall, "
        "(3,2): wall, (1,2): empty, (0,2): wall"
    )


def test_rays_stop_at_walls_and_edges_and_own_tile_comes_first() -> None:
    maze = maze_from_text(
        """
        .......
        ...#...
        .......
        .#.G..#
        .......
        """
    )
    assert maze.vision(3, 3) == [
        (3, 3, 2),
        (3, 2, 0),
        (3, 1, 1),  # north: wall seen, stops
        (3, 4, 0),  # south: grid edge
        (4, 3, 0),
        (5, 3, 0),
        (6, 3, 1),  # east: wall exactly at range 3
        (2, 3, 0),
        (1, 3, 1),  # west
    ]
    assert maze.vision(3, 3, range=1) == [(3, 3, 2), (3, 2, 0), (3, 4, 0), (4, 3, 0), (2, 3, 0)]
    assert maze.vision(3, 3, range=0) == [(3, 3, 2)]
    assert Maze.from_grid([[2]], name="one").vision(0, 0) == [(0, 0, 2)]


def test_see_through_square_order() -> None:
    maze = maze_from_text(
        """
        ###
        #G#
        ###
        """
    )
    tiles = maze.vision(1, 1, range=1, see_through=True)
    assert tiles[0] == (1, 1, 2)
    assert [(x, y) for x, y, _ in tiles[1:]] == [
        (0, 0),
        (1, 0),
        (2, 0),
        (0, 1),
        (2, 1),
        (0, 2),
        (1, 2),
        (2, 2),
    ]
    assert maze.vision(0, 0, range=1, see_through=True) == [
        (0, 0, 1),
        (1, 0, 1),
        (0, 1, 1),
        (1, 1, 2),
    ]
    flagged = Maze.from_grid(maze.grid_data(), name="x", see_through_walls=True)
    assert flagged.vision(1, 1, range=1) == tiles
    assert flagged.vision(1, 1, range=1, see_through=False) == maze.vision(1, 1, range=1)


def test_describe_unknown_code_renders_an_empty_name() -> None:
    assert describe_vision([(1, 2, 0), (3, 4, 1), (5, 6, 2), (7, 8, 9)]) == (
        "(1,2): empty, (3,4): wall, (5,6): GOAL, (7,8): "
    )


def test_bad_arguments_are_clear_errors() -> None:
    maze = maze_from_text("..G")
    with pytest.raises(MazeError, match=r"^y: 1 is outside the maze \(height 1: 0..0\)$"):
        maze.vision(0, 1)
    with pytest.raises(MazeError, match=r"^range: must be between 0 and 1000, got -1$"):
        maze.vision(0, 0, range=-1)
    with pytest.raises(MazeError, match=r"^range: must be an integer, got str$"):
        maze.vision(0, 0, range="3")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(maze=random_mazes(), data=st.data(), vision_range=st.integers(0, 6))
def test_vision_never_sees_behind_a_wall(
    maze: Maze, data: st.DataObject, vision_range: int
) -> None:
    x = data.draw(st.integers(0, maze.width - 1))
    y = data.draw(st.integers(0, maze.height - 1))
    tiles = maze.vision(x, y, vision_range)
    assert tiles[0] == (x, y, maze.rows[y][x])
    assert len(tiles) <= 1 + 4 * vision_range
    assert len({(tx, ty) for tx, ty, _ in tiles}) == len(tiles)
    for tx, ty, code in tiles[1:]:
        assert code == maze.rows[ty][tx]
        assert (tx == x) != (ty == y), "only the four rays, no diagonals"
        distance = abs(tx - x) + abs(ty - y)
        assert 1 <= distance <= vision_range
        step_x = (tx > x) - (tx < x)
        step_y = (ty > y) - (ty < y)
        for i in range(1, distance):
            between = maze.rows[y + i * step_y][x + i * step_x]
            assert between != Tile.WALL, f"({tx},{ty}) is behind a wall"
    # Completeness: every tile with a clear line within range is seen.
    expected = 1
    for dx, dy in ((0, -1), (0, 1), (1, 0), (-1, 0)):
        for i in range(1, vision_range + 1):
            nx, ny = x + i * dx, y + i * dy
            if not maze.in_bounds(nx, ny):
                break
            expected += 1
            if maze.rows[ny][nx] == Tile.WALL:
                break
    assert len(tiles) == expected
