"""Seeded maze generators: the same seed gives the same maze on every machine, every maze
has the shape it must, and each family looks like itself."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oriole.analysis import reachable
from oriole.generators import GENERATORS, MAX_SEED, generate, regenerate
from oriole.geometry import Position, Tile
from oriole.maze import GeneratorInfo, Maze

FAMILIES = sorted(GENERATORS)

# content_hash of generate(family, 31, 23, seed=7), computed once. If one of these changes,
# a seed no longer gives the maze it gave before: that breaks every recorded experiment.
PINNED_HASHES = {
    "backtracker": "sha256:d1d5b59dfb6d5774cea27b901dba0c421b4bbefee6fb2556439ed656ac11f8d1",
    "multiple-paths": "sha256:d6d9e39d08529f6eedacd2a9a99f93ca986ac6e4bb0cd1d118ad3220082702ac",
    "open-field": "sha256:0f7ab411341c377216eb50acbe17efa2b7040fa82a5ba8da2e617d1af0df184a",
    "pillars": "sha256:25dde8abcc5c5ef4027809e687c495d4bad0c90b4bff9ad78dbd9572686d18b9",
    "rooms": "sha256:6b99d0e51da03b6bea8215adca890f3d53508c03a259bbfa63a71fdbc777eec2",
    "diagonal": "sha256:4785ee159e99653ffa569a2837e9435690823acfd6cc9fe52ec697afc44af7ef",
    "scatter": "sha256:fe3155ae19af2fad91bc14043e406a7830e88433f1137fba4e013848ae95b0bd",
}

sizes = st.integers(min_value=3, max_value=40)
seeds = st.integers(min_value=0, max_value=MAX_SEED)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _open_components(maze: Maze) -> int:
    """Number of 4-connected components of non-wall tiles (brute force)."""
    seen: set[tuple[int, int]] = set()
    components = 0
    for start in maze.open_tiles():
        if start in seen:
            continue
        components += 1
        seen.add(start)
        queue: deque[tuple[int, int]] = deque([start])
        while queue:
            x, y = queue.popleft()
            for nx, ny in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y)):
                if maze.in_bounds(nx, ny) and (nx, ny) not in seen and not maze.is_wall(nx, ny):
                    seen.add((nx, ny))
                    queue.append((nx, ny))
    return components


# --- determinism and shape --------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_pinned_hash_is_the_same_on_every_machine(family: str) -> None:
    assert generate(family, 31, 23, seed=7).content_hash == PINNED_HASHES[family]


def test_every_family_is_pinned() -> None:
    assert set(PINNED_HASHES) == set(GENERATORS)


@pytest.mark.parametrize("family", FAMILIES)
@FAST
@given(width=sizes, height=sizes, seed=seeds)
def test_same_seed_same_maze_with_border_and_one_goal(
    family: str, width: int, height: int, seed: int
) -> None:
    first = generate(family, width, height, seed)
    second = generate(family, width, height, seed)
    assert first.rows == second.rows
    assert first.content_hash == second.content_hash
    assert (first.width, first.height) == (width, height)
    assert first.rows[0] == first.rows[-1] == b"\x01" * width
    assert all(row[0] == row[-1] == Tile.WALL for row in first.rows)
    assert first.count(Tile.GOAL) == 1
    assert 0 < first.goal.x < width - 1 and 0 < first.goal.y < height - 1
    assert first.name == f"{family}-{width}x{height}-s{seed}"
    assert first.see_through_walls is False


@pytest.mark.parametrize("family", FAMILIES)
@FAST
@given(width=sizes, height=sizes, seed=seeds)
def test_regenerate_from_recorded_info_gives_the_same_grid(
    family: str, width: int, height: int, seed: int
) -> None:
    maze = generate(family, width, height, seed)
    # through JSON, as it would be stored and read back
    info = Maze.from_json(maze.to_json()).generator
    assert info is not None
    again = regenerate(info, width, height)
    assert again.rows == maze.rows
    assert again.content_hash == maze.content_hash


def test_different_seeds_give_different_mazes() -> None:
    for family in FAMILIES:
        hashes = {generate(family, 31, 23, seed).content_hash for seed in range(5)}
        if family == "pillars":
            assert len(hashes) == 1  # no randomness with gap_probability 0
        else:
            assert len(hashes) == 5, family


def test_recorded_generator_info_holds_every_effective_param() -> None:
    maze = generate("backtracker", 60, 60, 11)
    assert maze.generator == GeneratorInfo(
        name="backtracker",
        params={"density": 0.3, "goal": "oriole", "start": None},
        seed=11,
    )
    rooms = generate("rooms", 60, 60, 11, rooms=3, goal="farthest", name="my rooms")
    assert rooms.name == "my rooms"
    assert rooms.generator is not None
    assert rooms.generator.params["rooms"] == 3
    assert rooms.generator.params["max_room"] == 15  # a quarter of 60, as Oriole's rooms
    assert rooms.generator.params["min_room"] == 7
    assert rooms.generator.params["goal"] == "farthest"
    assert isinstance(rooms.generator.params["start"], list)
    assert generate("pillars", 9, 9, 0).generator.params == {  # type: ignore[union-attr]
        "spacing": 2,
        "margin": 3,
        "gap_probability": 0.0,
        "goal": "oriole",
        "start": None,
    }


def test_int_params_given_for_floats_are_recorded_as_floats() -> None:
    maze = generate("open-field", 20, 20, 1, wall_fraction=0)
    assert maze.generator is not None
    assert maze.generator.params["wall_fraction"] == 0.0
    assert isinstance(maze.generator.params["wall_fraction"], float)
    assert maze.count(Tile.WALL) == 2 * 20 + 2 * 18


@pytest.mark.parametrize("family", FAMILIES)
def test_largest_size_is_fast_enough_and_valid(family: str) -> None:
    maze = generate(family, 1000, 1000, 5)
    assert maze.rows[0] == b"\x01" * 1000
    assert maze.count(Tile.GOAL) == 1


def test_width_and_height_are_independent() -> None:
    for family in FAMILIES:
        maze = generate(family, 1000, 3, 2)
        assert (maze.width, maze.height) == (1000, 3)
        tall = generate(family, 3, 200, 2)
        assert (tall.width, tall.height) == (3, 200)


# --- family shapes ----------------------------------------------------------------------------


@FAST
@given(width=sizes, height=sizes, seed=seeds)
def test_backtracker_without_clearings_is_a_perfect_maze(
    width: int, height: int, seed: int
) -> None:
    maze = generate("backtracker", width, height, seed, density=0.5)
    open_tiles = maze.open_tiles()
    edges = sum(
        1
        for x, y in open_tiles
        for nx, ny in ((x + 1, y), (x, y + 1))
        if maze.in_bounds(nx, ny) and not maze.is_wall(nx, ny)
    )
    assert _open_components(maze) == 1
    assert edges == len(open_tiles) - 1  # a tree: exactly one path between any two tiles
    cells = ((width - 1) // 2) * ((height - 1) // 2)
    assert len(open_tiles) == 2 * cells - 1  # every odd cell carved, plus one passage each


def test_backtracker_clearings_follow_the_density_label() -> None:
    perfect = generate("backtracker", 60, 60, 3, density=0.5)
    loose = generate("backtracker", 60, 60, 3, density=0.1)
    same_carve = generate("backtracker", 60, 60, 3, density=0.6)
    assert perfect.rows == same_carve.rows  # d >= 0.5 removes nothing (mazes 5 and 6)
    assert loose.count(Tile.WALL) < perfect.count(Tile.WALL)
    # floor(3600 * 0.4) = 1440 picks with replacement, each clears at most one wall
    assert perfect.count(Tile.WALL) - loose.count(Tile.WALL) <= 1440
    # multiple-paths is the same algorithm at density 0.15 (Oriole's maze 10)
    assert (
        generate("multiple-paths", 60, 60, 3).rows
        == generate("backtracker", 60, 60, 3, density=0.15).rows
    )


def test_oriole_sized_mazes_look_like_oriole_ones() -> None:
    """Interior densities close to the spec table's (§1.3) for the same labels."""
    expected = {0.1: 0.332, 0.2: 0.359, 0.3: 0.398, 0.4: 0.453, 0.5: 0.501}
    for density, interior in expected.items():
        maze = generate("backtracker", 60, 60, 1, density=density)
        walls = maze.count(Tile.WALL) - 236
        assert abs(walls / 58**2 - interior) < 0.03, density
    field = generate("open-field", 60, 60, 1)
    assert (field.count(Tile.WALL) - 236) <= 180
    assert field.goal == Position(53, 53)


def test_open_field_walls_and_scatter_blocks() -> None:
    field = generate("open-field", 40, 30, 9, wall_fraction=0.1)
    assert 0 < field.count(Tile.WALL) - (2 * 40 + 2 * 28) <= 120
    assert generate("scatter", 40, 30, 9, block_fraction=0).count(Tile.WALL) == 2 * 40 + 2 * 28
    dense = generate("scatter", 60, 60, 9)
    assert 0.7 < (dense.count(Tile.WALL) - 236) / 58**2 < 0.9  # Oriole's maze 12: 0.796


def test_pillars_lattice_and_margin() -> None:
    maze = generate("pillars", 60, 60, 0)
    pillars = {(x, y) for y in range(1, 59) for x in range(1, 59) if maze.is_wall(x, y)}
    expected = {(x, y) for x in range(4, 56, 2) for y in range(4, 56, 2)}
    assert pillars == expected
    assert maze.goal == Position(53, 53)  # as Oriole's maze 8
    assert _open_components(maze) == 1
    sparse = generate("pillars", 30, 20, 0, spacing=5, margin=0)
    assert {(x, y) for y in range(1, 19) for x in range(1, 29) if sparse.is_wall(x, y)} == {
        (x, y) for x in (5, 10, 15, 20, 25) for y in (5, 10, 15)
    }
    gappy = generate("pillars", 60, 60, 0, gap_probability=0.5)
    assert 0 < gappy.count(Tile.WALL) - 236 < len(expected)


@FAST
@given(width=sizes, height=sizes, seed=seeds, rooms=st.integers(1, 8))
def test_rooms_are_all_mutually_reachable(width: int, height: int, seed: int, rooms: int) -> None:
    maze = generate("rooms", width, height, seed, rooms=rooms)
    assert _open_components(maze) == 1
    assert reachable(maze, maze.goal) == set(maze.open_tiles())


def test_rooms_scale_with_size() -> None:
    small = generate("rooms", 20, 20, 1)
    big = generate("rooms", 400, 300, 1)
    assert small.generator is not None and big.generator is not None
    assert small.generator.params["max_room"] == 5
    assert big.generator.params["max_room"] == 75
    assert big.generator.params["min_room"] == 37
    assert _open_components(big) == 1
    tiny = generate("rooms", 3, 3, 1)
    assert tiny.goal == Position(1, 1)


def test_diagonal_lines_and_holes() -> None:
    solid = generate("diagonal", 60, 60, 0, gap_probability=0.0)
    # east half: down-right lines (x - y) % 5 == 0; west half: down-left (x + y) % 5 == 4
    for y in range(1, 59):
        for x in range(1, 59):
            on_line = (x - y) % 5 == 0 if x >= 30 else (x + y) % 5 == 4
            assert solid.is_wall(x, y) == on_line or (x, y) == solid.goal, (x, y)
    holed = generate("diagonal", 60, 60, 0)
    line_tiles = solid.count(Tile.WALL) - 236
    holes = line_tiles - (holed.count(Tile.WALL) - 236)
    assert 0.08 * line_tiles < holes < 0.25 * line_tiles
    # with holes the maze is navigable: nearly all open tiles reach the goal
    assert len(reachable(holed, holed.goal)) > 0.8 * (3600 - holed.count(Tile.WALL))


def test_a_fully_walled_result_still_gets_a_goal() -> None:
    # 3 x 3 scatter always walls the single interior tile: it is cleared for the goal
    maze = generate("scatter", 3, 3, 0)
    assert maze.goal == Position(1, 1)
