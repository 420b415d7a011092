"""Where a generated maze puts its goal: Oriole's window rule, or the farthest open tile.

Apart from the families (:mod:`oriole.maze_families`) because the goal is placed the same way
whatever carved the grid, and :func:`place_goal` also works on any hand-made flat grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oriole.analysis import grid_distances
from oriole.errors import ValidationError
from oriole.geometry import Position, Tile

_EMPTY = int(Tile.EMPTY)
_WALL = int(Tile.WALL)
_GOAL = int(Tile.GOAL)


def window_centre(width: int, height: int) -> tuple[int, int]:
    """Oriole's (55, 55) at 60 x 60 is (W-5, H-5), clamped into the interior for small mazes."""
    lo_x, hi_x, lo_y, hi_y = _region(width, height)
    return min(max(width - 5, lo_x), hi_x), min(max(height - 5, lo_y), hi_y)


def _region(width: int, height: int) -> tuple[int, int, int, int]:
    """The interior as (x_lo, x_hi, y_lo, y_hi), or the whole grid if there is no interior."""
    if width >= 3 and height >= 3:
        return 1, width - 2, 1, height - 2
    return 0, width - 1, 0, height - 1


def _nearest_empty(
    grid: bytearray, width: int, region: tuple[int, int, int, int], centre: tuple[int, int]
) -> int | None:
    """Index of the empty tile in ``region`` nearest ``centre`` (Manhattan, ties row-major)."""
    lo_x, hi_x, lo_y, hi_y = region
    cx, cy = centre
    best: tuple[int, int, int] | None = None
    for y in range(lo_y, hi_y + 1):
        base = y * width
        pivot = min(max(cx, lo_x), hi_x)
        left = grid.rfind(_EMPTY, base + lo_x, base + pivot + 1)
        right = grid.find(_EMPTY, base + pivot, base + hi_x + 1)
        for i in (left, right):  # left first: on a tie the smaller x wins
            if i >= 0:
                key = (abs(i - base - cx) + abs(y - cy), y, i - base)
                if best is None or key < best:
                    best = key
    return None if best is None else best[1] * width + best[2]


def _check_grid(grid: Any, width: int, height: int) -> None:
    if not isinstance(grid, bytearray):
        raise ValidationError("grid", "must be a flat bytearray of tile codes, row by row")
    if len(grid) != width * height:
        raise ValidationError(
            "grid", f"expected {width * height} tiles ({width}x{height}), got {len(grid)}"
        )
    if _GOAL in grid:
        i = grid.index(_GOAL)
        raise ValidationError("grid", f"already has a goal at ({i % width},{i // width})")


def place_goal(
    grid: bytearray,
    width: int,
    height: int,
    strategy: str,
    start: tuple[int, int] | None = None,
) -> Position:
    """Turn one EMPTY tile of the flat grid into the GOAL, in place, and return where.

    ``oriole``: Oriole's rule generalised to any size — scan the 5 x 5 window centred at
    (W-5, H-5) (the centre clamped into the interior, the window clipped to it), rows outer,
    columns inner, and take the first empty tile; if none, the empty interior tile nearest the
    window centre (Manhattan, ties row-major), else the nearest empty tile anywhere.
    ``farthest``: the empty tile with the most BFS steps from ``start`` (default (1,1) if open,
    else the first open tile), ties row-major; ``start`` may be a wall, as in Oriole.
    """
    _check_grid(grid, width, height)
    if _EMPTY not in grid:
        raise ValidationError("grid", "has no empty tile that could become the goal")
    if strategy == "oriole":
        cx, cy = window_centre(width, height)
        lo_x, hi_x, lo_y, hi_y = _region(width, height)
        x_from, x_to = max(cx - 2, lo_x), min(cx + 2, hi_x)
        for y in range(max(cy - 2, lo_y), min(cy + 2, hi_y) + 1):
            i = grid.find(_EMPTY, y * width + x_from, y * width + x_to + 1)
            if i >= 0:
                grid[i] = _GOAL
                return Position(i % width, y)
        found = _nearest_empty(grid, width, (lo_x, hi_x, lo_y, hi_y), (cx, cy))
        if found is None:
            found = _nearest_empty(grid, width, (0, width - 1, 0, height - 1), (cx, cy))
        assert found is not None  # an empty tile exists, checked above
        grid[found] = _GOAL
        return Position(found % width, found // width)
    if strategy == "farthest":
        origin = default_start(grid, width) if start is None else check_start(start, width, height)
        dist = grid_distances(grid, width, height, origin)
        best, best_steps = -1, -1
        for i, steps in enumerate(dist):
            if steps > best_steps and grid[i] == _EMPTY:
                best, best_steps = i, steps
        if best < 0:
            raise ValidationError(
                "start", f"no empty tile can be reached from start ({origin.x},{origin.y})"
            )
        grid[best] = _GOAL
        return Position(best % width, best // width)
    raise ValidationError("goal", f"unknown strategy {strategy!r}; use one of oriole, farthest")


def default_start(grid: bytearray, width: int) -> Position:
    """(1, 1) unless it is a wall, else the first empty tile row-major (``farthest``'s default)."""
    if len(grid) > width + 1 and width > 1 and grid[width + 1] != _WALL:
        return Position(1, 1)
    i = grid.find(_EMPTY)
    return Position(i % width, i // width)


def check_start(start: Any, width: int, height: int) -> Position:
    """``start`` as a `Position` inside the maze, or ``ValidationError`` on ``start``."""
    if (
        not isinstance(start, Sequence)
        or isinstance(start, (str, bytes))
        or len(start) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in start)
    ):
        raise ValidationError("start", f"must be an (x, y) pair of integers, got {start!r}")
    x, y = start
    if not (0 <= x < width and 0 <= y < height):
        raise ValidationError(
            "start",
            f"({x},{y}) is outside the maze ({width}x{height}: x 0..{width - 1}, "
            f"y 0..{height - 1})",
        )
    return Position(x, y)
