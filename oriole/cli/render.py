"""Drawing a maze in the terminal with rich: walls, goal, start, a path, the agent and what it
has seen. `oriole mazes show` draws a whole maze; `oriole watch` draws a window around the
agent (:func:`area_around`) with the tiles seen and those in view at its last step."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from rich.text import Text

from oriole.geometry import Position, Tile
from oriole.maze import Maze

WALL_STYLE = "grey70 on grey30"
#: Walls the agent has seen, and those in view at its last step (only ``seen``/``in_view``).
WALL_SEEN_STYLE = "grey93 on grey30"
WALL_IN_VIEW_STYLE = "bright_cyan on grey30"
GOAL_STYLE = "bold black on gold1"
START_STYLE = "bold black on deep_sky_blue1"
AGENT_STYLE = "bold white on red3"
PATH_STYLE = "green3"
SEEN_STYLE = "on grey19"
IN_VIEW_STYLE = "on grey35"


@dataclass(frozen=True, slots=True)
class Area:
    """The tiles drawn: columns ``x0 .. x1 - 1`` of rows ``y0 .. y1 - 1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @classmethod
    def whole(cls, maze: Maze) -> Area:
        return cls(0, 0, maze.width, maze.height)


def window(size: int, center: int, span: int) -> tuple[int, int]:
    """``[first, end)`` of a ``span``-wide window over ``size`` tiles, centred on ``center``
    as far as the edges allow."""
    if span <= 0:
        return 0, 0
    if span >= size:
        return 0, size
    first = min(max(center - span // 2, 0), size - span)
    return first, first + span


def area_around(maze: Maze, center: Position, columns: int, rows: int) -> Area:
    """At most ``columns`` x ``rows`` tiles of ``maze`` around ``center`` (a window that
    follows an agent on a maze bigger than the screen)."""
    x0, x1 = window(maze.width, center.x, columns)
    y0, y1 = window(maze.height, center.y, rows)
    return Area(x0, y0, x1, y1)


def glyph(
    code: int,
    here: Position,
    *,
    start: Position | None = None,
    agent: Position | None = None,
    path: Collection[Position] = (),
    seen: Collection[Position] = (),
    in_view: Collection[Position] = (),
) -> tuple[str, str]:
    """The character and style of one tile: @ agent, S start, G goal, █ wall, · path."""
    if here == agent:
        return "@", AGENT_STYLE
    if here == start:
        return "S", START_STYLE
    if code == Tile.GOAL:
        return "G", GOAL_STYLE
    if code == Tile.WALL:
        if here in in_view:
            return "█", WALL_IN_VIEW_STYLE
        return "█", WALL_SEEN_STYLE if here in seen else WALL_STYLE
    ground = IN_VIEW_STYLE if here in in_view else SEEN_STYLE if here in seen else ""
    if here in path:
        return "·", PATH_STYLE + (" " + ground if ground else "")
    return " ", ground


def render_maze(
    maze: Maze,
    *,
    start: Position | None = None,
    path: Collection[Position] = (),
    seen: Collection[Position] = (),
    in_view: Collection[Position] = (),
    agent: Position | None = None,
    area: Area | None = None,
    max_columns: int = 200,
) -> tuple[Text, bool]:
    """The maze (or its ``area``) as styled text, one line per row each ending in a newline,
    and whether it had to be cropped to ``max_columns``.

    Two characters per tile keep tiles roughly square; an area wider than the terminal falls
    back to one character per tile, then to cropping.
    """
    shown = area or Area.whole(maze)
    cell = 2 if shown.width * 2 <= max_columns else 1
    columns = min(shown.width, max_columns // cell)
    on_path, seen_tiles, in_view_tiles = set(path), set(seen), set(in_view)
    text = Text()
    for y in range(shown.y0, shown.y1):
        row = maze.rows[y]
        # Neighbouring tiles of one style are appended together: far fewer spans.
        chars: list[str] = []
        chars_style = ""
        for x in range(shown.x0, shown.x0 + columns):
            char, style = glyph(
                row[x],
                Position(x, y),
                start=start,
                agent=agent,
                path=on_path,
                seen=seen_tiles,
                in_view=in_view_tiles,
            )
            if style != chars_style and chars:
                text.append("".join(chars), chars_style)
                chars = []
            chars_style = style
            chars.append(char * cell if char == "█" else char.ljust(cell))
        if chars:
            text.append("".join(chars), chars_style)
        text.append("\n")
    return text, columns < shown.width
