from __future__ import annotations

import json
from pathlib import Path

import pytest

from oriole.errors import MazeError
from oriole.maze import Maze
from tests.support import (
    MAZES_DIR,
    maze_from_text,
    reference_maze,
    reference_maze_files,
    require_reference,
)

SMALL = """
#####
#...#
#.#G#
#####
"""


def _doc(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": "tiny",
        "width": 3,
        "height": 2,
        "grid_data": [[0, 1, 0], [0, 0, 2]],
        "see_through_walls": False,
    }
    doc.update(overrides)
    return doc


def test_all_reference_mazes_load_and_save_to_identical_bytes() -> None:
    require_reference()
    files = reference_maze_files()
    assert len(files) == 12
    for path in files:
        maze = Maze.load(path)
        assert maze.name == path.stem
        assert (maze.width, maze.height) == (60, 60)
        assert maze.to_json() == path.read_text(encoding="utf-8")
        assert json.loads(maze.to_json()) == json.loads(path.read_text(encoding="utf-8"))


def test_goals_of_reference_mazes_match_the_spec() -> None:
    goals = {
        "01_sparse_maze": (53, 53),
        "11_diagonal_bias": (54, 53),
        "12_random_scatter": (55, 53),
    }
    for name, goal in goals.items():
        assert reference_maze(name).goal == goal


def test_save_then_load_is_equal(tmp_path: Path) -> None:
    maze = maze_from_text(SMALL)
    target = tmp_path / "small.json"
    maze.save(target)
    again = Maze.load(target)
    assert again == maze
    assert again.content_hash == maze.content_hash
    assert not target.read_text().endswith("\n")


def test_content_hash_is_stable_and_about_content_only() -> None:
    maze = maze_from_text(SMALL)
    renamed = Maze.from_grid(maze.grid_data(), name="other name")
    assert renamed.content_hash == maze.content_hash
    changed = maze.grid_data()
    changed[1][1] = 1
    assert Maze.from_grid(changed, name="tiny").content_hash != maze.content_hash
    see_through = Maze.from_grid(maze.grid_data(), name="tiny", see_through_walls=True)
    assert see_through.content_hash != maze.content_hash
    # Pinned: the hash is a persistent identifier, it must not drift between versions.
    assert maze.content_hash == (
        "sha256:"
        + __import__("hashlib")
        .sha256(
            b"oriole-maze-v1|5|4|0|" + bytes([1] * 5 + [1, 0, 0, 0, 1] + [1, 0, 1, 2, 1] + [1] * 5)
        )
        .hexdigest()
    )


def test_reference_maze_hash_is_pinned() -> None:
    maze = reference_maze("01_sparse_maze")
    assert maze.content_hash.startswith("sha256:")
    assert maze.content_hash == Maze.load(MAZES_DIR / "01_sparse_maze.json").content_hash


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        (
            {"grid_data": [[0, 1, 0], [0, 2]]},
            "grid_data[1]",
            "expected 3 tiles (the width), got 2: rows are ragged",
        ),
        (
            {"grid_data": [[0, 1, 7], [0, 0, 2]]},
            "grid_data[0][2]",
            "unknown tile code 7 (expected 0 empty, 1 wall or 2 goal)",
        ),
        ({"grid_data": [[0, 1, -1], [0, 0, 2]]}, "grid_data[0][2]", "unknown tile code -1"),
        (
            {"grid_data": [[0, 1, 0], [0, 0, 0]]},
            "grid_data",
            "no goal tile (code 2); a maze needs exactly one",
        ),
        (
            {"grid_data": [[2, 1, 0], [0, 0, 2]]},
            "grid_data",
            "2 goal tiles at (0,0), (2,1); a maze needs exactly one",
        ),
        (
            {"grid_data": [[0, "1", 0], [0, 0, 2]]},
            "grid_data[0][1]",
            "must be an integer tile code, got a string",
        ),
        (
            {"grid_data": [[0, True, 0], [0, 0, 2]]},
            "grid_data[0][1]",
            "must be an integer tile code, got a boolean",
        ),
        (
            {"grid_data": [[0, 1.0, 0], [0, 0, 2]]},
            "grid_data[0][1]",
            "must be an integer tile code, got a number",
        ),
        ({"grid_data": "0102"}, "grid_data", "must be an array of rows, got a string"),
        ({"grid_data": [[0, 1, 0]]}, "grid_data", "expected 2 rows (the height), got 1"),
        ({"width": 0}, "width", "must be between 1 and 1000, got 0"),
        ({"height": 1001}, "height", "must be between 1 and 1000, got 1001"),
        ({"width": "3"}, "width", "must be an integer, got a string"),
        ({"width": 3.0}, "width", "must be an integer, got a number"),
        ({"name": ""}, "name", "must not be empty"),
        ({"name": 12}, "name", "must be a string, got an integer"),
        ({"see_through_walls": "no"}, "see_through_walls", "must be true or false, got a string"),
        ({"grid": []}, "grid", "unknown field"),
    ],
)
def test_validation_errors_name_field_and_reason(
    overrides: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(MazeError) as info:
        Maze.from_dict(_doc(**overrides))
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_missing_field_and_bad_json() -> None:
    doc = _doc()
    del doc["grid_data"]
    with pytest.raises(MazeError, match=r"^grid_data: missing \(required\)$"):
        Maze.from_dict(doc)
    with pytest.raises(MazeError, match=r"^maze: expected a JSON object, got an array$"):
        Maze.from_dict([1, 2])
    with pytest.raises(MazeError, match=r"^maze: not valid JSON: .* at line 1 column"):
        Maze.from_json("{not json")


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_doc(width=4)))
    with pytest.raises(MazeError) as info:
        Maze.load(bad)
    assert info.value.field == "bad.json: grid_data[0]"
    with pytest.raises(MazeError, match="cannot read the file"):
        Maze.load(tmp_path / "missing.json")


def test_sizes_at_the_limits() -> None:
    one = Maze.from_grid([[2]], name="one")
    assert (one.width, one.height, one.goal) == (1, 1, (0, 0))
    big_grid = [[0] * 1000 for _ in range(1000)]
    big_grid[999][999] = 2
    big = Maze.from_grid(big_grid, name="big")
    assert big.goal == (999, 999)
    assert big.count(0) == 999_999


def test_queries() -> None:
    maze = maze_from_text(SMALL)
    assert maze.tile(3, 2) == 2
    assert maze.is_wall(0, 0)
    assert not maze.in_bounds(5, 0)
    with pytest.raises(MazeError, match=r"^x: 5 is outside the maze \(width 5: 0..4\)$"):
        maze.tile(5, 0)
    assert (1, 1) in maze.open_tiles()
    assert maze.count(1) == 15
