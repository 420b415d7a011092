"""Drawing a maze in the terminal with rich: walls, goal, start, a path and seen tiles."""

from __future__ import annotations

from collections.abc import Collection

from rich.text import Text

from oriole.geometry import Position, Tile
from oriole.maze import Maze

WALL_STYLE = "grey70 on grey30"
GOAL_STYLE = "bold black on gold1"
START_STYLE = "bold black on deep_sky_blue1"
PATH_STYLE = "green3"
SEEN_STYLE = "on grey19"


def render_maze(
    maze: Maze,
    *,
    start: Position | None = None,
    path: Collection[Position] = (),
    seen: Collection[Position] = (),
    max_columns: int = 200,
) -> tuple[Text, bool]:
    """The maze as styled text, and whether it had to be cropped to ``max_columns``.

    Two characters per tile keep tiles roughly square; mazes wider than the terminal fall
    back to one character per tile, then to cropping.
    """
    cell = 2 if maze.width * 2 <= max_columns else 1
    columns = min(maze.width, max_columns // cell)
    on_path = set(path)
    seen_tiles = set(seen)
    text = Text()
    for y, row in enumerate(maze.rows):
        for x in range(columns):
            here = Position(x, y)
            code = row[x]
            if here == start:
                text.append("S".ljust(cell), START_STYLE)
            elif code == Tile.GOAL:
                text.append("G".ljust(cell), GOAL_STYLE)
            elif code == Tile.WALL:
                text.append("█" * cell, WALL_STYLE)
            elif here in on_path:
                text.append(
                    "·".center(cell), PATH_STYLE + (" " + SEEN_STYLE if here in seen_tiles else "")
                )
            else:
                text.append(" " * cell, SEEN_STYLE if here in seen_tiles else "")
        text.append("\n")
    return text, columns < maze.width
