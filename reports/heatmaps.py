"""Visit heat maps as small PNG images, built pixel by pixel with numpy (no matplotlib
figure per map: a report with dozens of maps stays fast).

Walls are dark, open tiles never stood on are light grey, visited tiles take a colour on a
log scale shared by every arm of one maze (so the arms compare), and the goal is ringed in
green. A big maze is shrunk by summing blocks of tiles, so no image exceeds `MAX_PIXELS`
on a side whatever the maze's size.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.image import imsave

#: The longest side of a heat map image, in pixels.
MAX_PIXELS = 320
WALL = (38, 50, 56)
OPEN = (236, 239, 241)
GOAL = (0, 170, 80)
COLOURMAP = "YlOrRd"
#: Where on the colour map one visit lands (low end is too pale against open tiles).
COLOUR_FLOOR = 0.22


@dataclass(frozen=True, slots=True)
class Grid:
    """A maze at display resolution: ``block`` tiles per cell side, walls where most of a
    cell is wall, visits summed over the cell."""

    walls: np.ndarray[Any, np.dtype[np.bool_]]
    block: int
    goal: tuple[int, int] | None
    #: The maze's own (height, width), in tiles.
    shape: tuple[int, int]


def maze_grid(entry: Mapping[str, Any]) -> Grid:
    """The walls of a ``visits`` entry, shrunk to at most `MAX_PIXELS` cells a side."""
    rows: Sequence[str] = entry.get("rows") or []
    height = len(rows)
    width = max((len(row) for row in rows), default=0)
    walls = np.zeros((max(height, 1), max(width, 1)), dtype=bool)
    for y, row in enumerate(rows):
        walls[y, : len(row)] = np.frombuffer(row.encode("ascii", "replace"), dtype=np.uint8) == 35
    shape = (walls.shape[0], walls.shape[1])
    block = max(1, math.ceil(max(shape) / MAX_PIXELS))
    goal_xy = entry.get("goal")
    goal = (int(goal_xy[0]) // block, int(goal_xy[1]) // block) if goal_xy else None
    if block > 1:
        walls = _blocks(walls.astype(np.float64), block) > (block * block) / 2
    return Grid(walls, block, goal, shape)


def _blocks(values: np.ndarray[Any, Any], block: int) -> np.ndarray[Any, Any]:
    """Sum of each ``block`` × ``block`` square (the edges padded with zeros)."""
    height = math.ceil(values.shape[0] / block) * block
    width = math.ceil(values.shape[1] / block) * block
    padded = np.zeros((height, width), dtype=np.float64)
    padded[: values.shape[0], : values.shape[1]] = values
    squares = padded.reshape(height // block, block, width // block, block)
    summed: np.ndarray[Any, Any] = squares.sum(axis=(1, 3))
    return summed


def visit_counts(grid: Grid, visits: Sequence[Sequence[int]]) -> Any:
    """``[[x, y, count], ...]`` as a count per display cell (tiles off the maze ignored)."""
    shape = grid.shape
    counts = np.zeros(shape, dtype=np.float64)
    for x, y, count in visits:
        if 0 <= y < shape[0] and 0 <= x < shape[1]:
            counts[y, x] += count
    return _blocks(counts, grid.block) if grid.block > 1 else counts


def heatmap_png(grid: Grid, counts: Any, highest: float) -> bytes:
    """The PNG: one cell drawn as ``scale`` × ``scale`` pixels, goal ringed in green."""
    cells_y, cells_x = grid.walls.shape
    image = np.empty((cells_y, cells_x, 3), dtype=np.uint8)
    image[...] = OPEN
    image[grid.walls] = WALL
    visited = (counts > 0) & ~grid.walls
    if visited.any():
        scale = math.log1p(highest) if highest > 0 else 1.0
        share = np.log1p(counts[visited]) / scale
        colours = mpl.colormaps[COLOURMAP](COLOUR_FLOOR + (1 - COLOUR_FLOOR) * share)
        image[visited] = (np.asarray(colours)[:, :3] * 255).round().astype(np.uint8)
    scale = max(1, MAX_PIXELS // max(cells_x, cells_y))
    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    if grid.goal is not None and 0 <= grid.goal[0] < cells_x and 0 <= grid.goal[1] < cells_y:
        _ring(image, grid.goal, scale)
    buffer = io.BytesIO()
    imsave(buffer, image, format="png", pil_kwargs={"compress_level": 6})
    return buffer.getvalue()


def _ring(image: np.ndarray[Any, Any], goal: tuple[int, int], scale: int) -> None:
    """A green square frame around the goal cell, at least a few pixels wide so it shows on
    a shrunk maze too."""
    pad = max(2, scale // 3)
    thick = max(2, scale // 4)
    top, left = goal[1] * scale - pad, goal[0] * scale - pad
    bottom, right = (goal[1] + 1) * scale + pad, (goal[0] + 1) * scale + pad
    height, width = image.shape[:2]
    t, b = max(top, 0), min(bottom, height)
    lft, r = max(left, 0), min(right, width)
    image[t : min(t + thick, b), lft:r] = GOAL
    image[max(b - thick, t) : b, lft:r] = GOAL
    image[t:b, lft : min(lft + thick, r)] = GOAL
    image[t:b, max(r - thick, lft) : r] = GOAL


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def legend_gradient(steps: int = 8) -> str:
    """The colour scale as a CSS ``linear-gradient`` (for the page's legend)."""
    colourmap = mpl.colormaps[COLOURMAP]
    stops = []
    for i in range(steps + 1):
        share = i / steps
        red, green, blue, _ = colourmap(COLOUR_FLOOR + (1 - COLOUR_FLOOR) * share)
        stops.append(f"rgb({red * 255:.0f},{green * 255:.0f},{blue * 255:.0f}) {share:.0%}")
    return "linear-gradient(to right, " + ", ".join(stops) + ")"


def rgb(colour: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*colour)
