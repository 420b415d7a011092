"""Maze analysis: checked against the spec table (§1.3) and against brute force."""

from __future__ import annotations

import json
from collections import deque
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oriole.analysis import (
    MazeAnalysis,
    analyze,
    dead_ends,
    goal_viewpoints,
    nearest_open_start,
    optimal_path_ratio,
    reachable,
    shortest_path,
    steps_to_see_goal,
)
from oriole.errors import ValidationError
from oriole.generators import GENERATORS, generate
from oriole.geometry import Position, Tile
from oriole.maze import Maze
from oriole.vision import goal_in_view

MAZE_DIR = Path(__file__).resolve().parents[2] / "shared/reference/oriole-mazes"

# Spec §1.3, from the default start (2,2), vision range 3:
# file, reachable, shortest path, steps to see goal, tile at (2,2) is a wall, goal
SPEC_TABLE = [
    ("01_sparse_maze", 2246, 102, 99, False, (53, 53)),
    ("02_light_maze", 2156, 102, 100, False, (53, 53)),
    ("03_medium_maze", 2025, 112, 109, True, (53, 53)),
    ("04_dense_maze", 1841, 124, 121, True, (53, 53)),
    ("05_very_dense_maze", 1681, 480, 478, True, (53, 53)),
    ("06_extreme_maze", 1681, 1032, 1030, True, (53, 53)),
    ("07_open_field", 3193, 102, 99, False, (53, 53)),
    ("08_spiral", 2581, 102, 99, False, (53, 53)),
    ("09_rooms_corridors", 1, None, None, True, (53, 53)),
    ("10_multiple_paths", 2187, 104, 102, True, (53, 53)),
    ("11_diagonal_bias", 21, None, None, True, (54, 53)),
    ("12_random_scatter", 8, None, None, True, (55, 53)),
]
# walls and total / interior density, also from the table
SPEC_WALLS = {
    "01_sparse_maze": (1352, 0.376, 0.332),
    "05_very_dense_maze": (1920, 0.533, 0.501),
    "09_rooms_corridors": (2606, 0.724, 0.705),
    "12_random_scatter": (2913, 0.809, 0.796),
}

WALL_WARNING = "start (2,2) is a wall tile; the agent can step off it but it is not a real position"


def _reference(name: str) -> Maze:
    path = MAZE_DIR / f"{name}.json"
    if not path.exists():
        pytest.skip(f"reference maze {path} not found (the shared reference folder is absent)")
    return Maze.load(path)


def _maze(*rows: str) -> Maze:
    """A small maze from text: '#' wall, '.' empty, 'G' goal."""
    codes = {"#": 1, ".": 0, "G": 2}
    return Maze.from_grid([[codes[c] for c in row] for row in rows], name="t")


def _brute_distances(maze: Maze, start: tuple[int, int]) -> dict[tuple[int, int], int]:
    dist = {start: 0}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        for nx, ny in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y)):
            if maze.in_bounds(nx, ny) and (nx, ny) not in dist and not maze.is_wall(nx, ny):
                dist[(nx, ny)] = dist[(x, y)] + 1
                queue.append((nx, ny))
    return dist


def _brute_viewpoints(maze: Maze, vision_range: int, see_through: bool) -> set[Position]:
    return {
        Position(x, y)
        for y in range(maze.height)
        for x in range(maze.width)
        if goal_in_view(maze.vision(x, y, vision_range, see_through))
    }


# --- the 12 reference mazes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reach", "path", "see", "start_wall", "goal"),
    SPEC_TABLE,
    ids=[row[0] for row in SPEC_TABLE],
)
def test_reference_mazes_match_the_spec_table(
    name: str,
    reach: int,
    path: int | None,
    see: int | None,
    start_wall: bool,
    goal: tuple[int, int],
) -> None:
    maze = _reference(name)
    result = analyze(maze)
    assert result.maze_name == name
    assert result.start == Position(2, 2)
    assert result.goal == goal
    assert result.reachable_count == reach
    assert result.shortest_path_length == path
    assert result.goal_reachable is (path is not None)
    assert result.steps_to_see_goal == see
    assert result.start_is_wall is start_wall
    assert result.start_tile == (Tile.WALL if start_wall else Tile.EMPTY)
    assert result.start_sealed is (name == "09_rooms_corridors")
    assert result.walls + result.open_tiles == 3600
    # the same numbers through the single-purpose functions
    assert len(reachable(maze, (2, 2))) == reach
    assert steps_to_see_goal(maze, (2, 2)) == see
    walk = shortest_path(maze, (2, 2))
    assert (None if walk is None else len(walk) - 1) == path


@pytest.mark.parametrize("name", sorted(SPEC_WALLS))
def test_reference_wall_counts_and_densities(name: str) -> None:
    walls, total, interior = SPEC_WALLS[name]
    result = analyze(_reference(name))
    assert result.walls == walls
    assert round(result.density_total, 3) == total
    assert round(result.density_interior, 3) == interior


@pytest.mark.parametrize(
    ("name", "warnings"),
    [
        ("01_sparse_maze", ()),
        ("03_medium_maze", (WALL_WARNING,)),
        (
            "09_rooms_corridors",
            (
                WALL_WARNING,
                "start (2,2) is sealed: no open neighbour",
                "the goal at (53,53) cannot be reached or seen from start (2,2)",
            ),
        ),
        (
            "11_diagonal_bias",
            (WALL_WARNING, "the goal at (54,53) cannot be reached or seen from start (2,2)"),
        ),
        (
            "12_random_scatter",
            (WALL_WARNING, "the goal at (55,53) cannot be reached or seen from start (2,2)"),
        ),
    ],
)
def test_reference_warnings(name: str, warnings: tuple[str, ...]) -> None:
    assert analyze(_reference(name)).warnings == warnings


def test_nearest_open_start_rescues_maze_09() -> None:
    maze = _reference("09_rooms_corridors")
    moved = nearest_open_start(maze)
    assert not maze.is_wall(*moved)
    assert steps_to_see_goal(maze, moved) is not None
    assert analyze(maze, moved).warnings == ()
    assert moved == Position(5, 5)  # the corner of the north-west room, 6 tiles away


def test_nearest_open_start_keeps_a_usable_start_and_steps_off_walls() -> None:
    assert nearest_open_start(_reference("01_sparse_maze")) == Position(2, 2)
    # maze 3: (2,2) is a wall; (2,1) is the first open tile one step away in row order
    assert nearest_open_start(_reference("03_medium_maze")) == Position(2, 1)
    for name in ("11_diagonal_bias", "12_random_scatter"):
        maze = _reference(name)
        moved = nearest_open_start(maze)
        assert analyze(maze, moved).goal_reachable


def test_reference_viewpoints_match_brute_force() -> None:
    maze = _reference("01_sparse_maze")
    for see_through in (False, True):
        assert goal_viewpoints(maze, 3, see_through) == _brute_viewpoints(maze, 3, see_through)


# --- brute-force cross-checks on generated mazes ----------------------------------------------

FAMILY_SAMPLES = [(family, seed) for family in sorted(GENERATORS) for seed in (1, 2)]


@pytest.mark.parametrize(("family", "seed"), FAMILY_SAMPLES)
def test_goal_viewpoints_match_brute_force_vision(family: str, seed: int) -> None:
    maze = generate(family, 23, 17, seed)
    for vision_range in (0, 1, 3, 6):
        for see_through in (False, True):
            assert goal_viewpoints(maze, vision_range, see_through) == _brute_viewpoints(
                maze, vision_range, see_through
            ), (vision_range, see_through)


def test_goal_viewpoints_include_a_wall_the_agent_stands_on() -> None:
    maze = _maze(
        "#######",
        "#.#..G#",
        "#######",
    )
    # from the wall at (2,1) the east ray sees (3,1), (4,1), (5,1)=goal
    assert goal_viewpoints(maze, 3) == {
        Position(5, 1),
        Position(5, 0),
        Position(5, 2),
        Position(6, 1),
        Position(4, 1),
        Position(3, 1),
        Position(2, 1),
    }
    assert goal_in_view(maze.vision(2, 1))
    assert not goal_in_view(maze.vision(1, 1))
    assert steps_to_see_goal(maze, (1, 1)) is None  # the wall at (2,1) blocks the only way


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(sorted(GENERATORS)),
    width=st.integers(3, 25),
    height=st.integers(3, 25),
    seed=st.integers(0, 10_000),
    data=st.data(),
)
def test_search_results_match_brute_force(
    family: str, width: int, height: int, seed: int, data: st.DataObject
) -> None:
    maze = generate(family, width, height, seed)
    start = (data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1)))
    dist = _brute_distances(maze, start)
    assert reachable(maze, start) == set(dist)

    goal = maze.goal
    walk = shortest_path(maze, start)
    if goal in dist:
        assert walk is not None
        assert len(walk) - 1 == dist[goal]
        assert walk[0] == start and walk[-1] == goal
        for (ax, ay), (bx, by) in pairwise(walk):
            assert abs(ax - bx) + abs(ay - by) == 1
            assert not maze.is_wall(bx, by)
    else:
        assert walk is None

    views = _brute_viewpoints(maze, 3, False)
    seen_after = [d for p, d in dist.items() if p in views]
    expected = min(seen_after) if seen_after else None
    assert steps_to_see_goal(maze, start) == expected

    result = analyze(maze, start)
    assert result.reachable_count == len(dist)
    assert result.shortest_path_length == dist.get(goal)
    assert result.steps_to_see_goal == expected
    assert result.start_sealed is (len(dist) == 1)

    brute_dead_ends = [
        Position(x, y)
        for y in range(height)
        for x in range(width)
        if not maze.is_wall(x, y)
        and sum(
            1
            for nx, ny in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y))
            if maze.in_bounds(nx, ny) and not maze.is_wall(nx, ny)
        )
        == 1
    ]
    assert dead_ends(maze) == brute_dead_ends
    assert result.dead_end_count == len(brute_dead_ends)


# --- small hand-made mazes --------------------------------------------------------------------


def test_shortest_path_to_any_target_and_unreachable_targets() -> None:
    maze = _maze(
        "#######",
        "#...#G#",
        "#.#.#.#",
        "#...#.#",
        "#######",
    )
    # two walks of 4 steps exist; the one built back from the target preferring north wins
    assert shortest_path(maze, (1, 1), (3, 3)) == [
        Position(1, 1),
        Position(2, 1),
        Position(3, 1),
        Position(3, 2),
        Position(3, 3),
    ]
    assert shortest_path(maze, (1, 1)) is None
    assert shortest_path(maze, (1, 1), (4, 1)) is None  # a wall is never reached
    assert shortest_path(maze, (5, 3), (5, 3)) == [Position(5, 3)]
    # from the wall between the two halves the agent can step either way
    assert len(reachable(maze, (4, 2))) == 1 + 8 + 3
    assert shortest_path(maze, (4, 2)) == [Position(4, 2), Position(5, 2), Position(5, 1)]


def test_analyze_reports_goal_in_view_at_the_start() -> None:
    maze = _maze(
        "#####",
        "#..G#",
        "#####",
    )
    result = analyze(maze, (1, 1))
    assert result.steps_to_see_goal == 0
    assert result.shortest_path_length == 2
    assert result.warnings == (
        "the goal at (3,1) is already in view from start (1,1); a run ends before the first move",
    )
    assert result.dead_end_count == 2
    assert result.density_interior == 0.0
    assert result.density_total == 12 / 15


def test_analyze_see_through_goal_seen_but_not_reached() -> None:
    maze = Maze.from_grid(
        [[1, 1, 1, 1, 1], [1, 0, 1, 2, 1], [1, 1, 1, 1, 1]], name="glass", see_through_walls=True
    )
    result = analyze(maze, (1, 1))
    assert result.steps_to_see_goal == 0
    assert not result.goal_reachable
    assert result.start_sealed
    assert "the goal at (3,1) can be seen from start (1,1) but cannot be reached" in (
        result.warnings
    )


def test_analysis_to_dict_is_json_ready() -> None:
    result = analyze(generate("backtracker", 31, 23, 7))
    assert isinstance(result, MazeAnalysis)
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["maze_name"] == "backtracker-31x23-s7"
    assert doc["start"] == {"x": 2, "y": 2}
    assert doc["goal"] == {"x": result.goal.x, "y": result.goal.y}
    assert doc["warnings"] == list(result.warnings)
    assert doc["content_hash"].startswith("sha256:")
    assert set(doc) == set(MazeAnalysis.__dataclass_fields__)
    with pytest.raises(AttributeError):
        result.walls = 0  # type: ignore[misc]


def test_out_of_bounds_start_and_bad_range_are_validation_errors() -> None:
    maze = generate("open-field", 10, 8, 1)
    with pytest.raises(ValidationError) as err:
        analyze(maze, (10, 2))
    assert (err.value.field, err.value.reason) == (
        "start",
        "(10,2) is outside the maze (10x8: x 0..9, y 0..7)",
    )
    for call in (
        lambda: reachable(maze, (-1, 0)),
        lambda: shortest_path(maze, (0, 8)),
        lambda: steps_to_see_goal(maze, (3,)),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == "start"
    with pytest.raises(ValidationError) as err:
        shortest_path(maze, (1, 1), (1, 99))
    assert err.value.field == "target"
    with pytest.raises(ValidationError) as err:
        analyze(maze, (1, 1), vision_range=-1)
    assert (err.value.field, err.value.reason) == (
        "vision_range",
        "must be between 0 and 1000, got -1",
    )


def test_nearest_open_start_accepts_a_preferred_start_outside_the_maze() -> None:
    maze = generate("open-field", 3, 3, 0)  # the only open tile is the goal
    with pytest.raises(ValidationError) as err:
        nearest_open_start(maze, (2, 2))
    assert err.value.field == "start"
    wide = generate("open-field", 40, 3, 0, wall_fraction=0)
    assert nearest_open_start(wide, (2, 2)) == Position(2, 1)
    assert nearest_open_start(wide, (-9, 50)) == Position(1, 1)


def test_optimal_path_ratio() -> None:
    assert optimal_path_ratio(150, 100) == 1.5
    assert optimal_path_ratio(99, 99) == 1.0
    assert optimal_path_ratio(10, None) is None
    assert optimal_path_ratio(0, 0) is None
    with pytest.raises(ValidationError) as err:
        optimal_path_ratio(-1, 5)
    assert err.value.field == "footsteps"


def test_analyze_the_largest_maze() -> None:
    maze = generate("multiple-paths", 1000, 1000, 3)
    result = analyze(maze, nearest_open_start(maze))
    assert result.goal_reachable
    assert result.steps_to_see_goal is not None
    assert result.steps_to_see_goal <= result.shortest_path_length  # type: ignore[operator]
    assert result.reachable_count <= result.open_tiles
