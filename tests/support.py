"""Shared test helpers: where the reference data lives, and small mazes built by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import strategies as st

from oriole.maze import Maze

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"
MAZES_DIR = REFERENCE / "oriole-mazes"
VISION_CASES = REFERENCE / "oriole-vision-edge-cases.jsonl"


def require_reference() -> Path:
    """The reference folder, or skip: the maze files are not ours to commit."""
    if not MAZES_DIR.is_dir():
        pytest.skip(f"Oriole reference mazes not found at {MAZES_DIR} (../shared beside the repo)")
    return REFERENCE


def reference_maze(name: str) -> Maze:
    require_reference()
    return Maze.load(MAZES_DIR / f"{name}.json")


def reference_maze_files() -> list[Path]:
    return sorted(MAZES_DIR.glob("*.json")) if MAZES_DIR.is_dir() else []


def maze_from_text(text: str, name: str = "hand-made") -> Maze:
    """``#`` wall, ``.`` empty, ``G`` goal; one row per line."""
    codes = {"#": 1, ".": 0, "G": 2}
    rows = [[codes[c] for c in line.strip()] for line in text.strip().splitlines()]
    return Maze.from_grid(rows, name=name)


@st.composite
def random_mazes(draw: st.DrawFn, max_side: int = 14) -> Maze:
    """Arbitrary small grids with exactly one goal; walls anywhere, borders optional."""
    width = draw(st.integers(1, max_side))
    height = draw(st.integers(1, max_side))
    density = draw(st.floats(0.0, 0.8))
    cells = draw(st.lists(st.floats(0.0, 1.0), min_size=width * height, max_size=width * height))
    grid = [
        [1 if cells[y * width + x] < density else 0 for x in range(width)] for y in range(height)
    ]
    gx = draw(st.integers(0, width - 1))
    gy = draw(st.integers(0, height - 1))
    grid[gy][gx] = 2
    return Maze.from_grid(grid, name="random")
