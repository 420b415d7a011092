"""What an agent sees from a tile — Oriole's `calculateVision` and `describeVision`, bit for bit.

Line of sight: the agent's own tile first, then four rays in the order north, south, east,
west, each up to ``vision_range`` tiles; a ray stops at the grid edge and at the first wall,
which is itself seen. See-through mode: own tile first, then every in-grid tile of the
(2R+1) x (2R+1) square, rows top to bottom, columns left to right.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from oriole.geometry import Tile, tile_name

#: One seen tile: ``(x, y, code)``.
SeenTile = tuple[int, int, int]

_WALL = int(Tile.WALL)
_GOAL = int(Tile.GOAL)


def line_of_sight(
    rows: Sequence[bytes], width: int, height: int, x: int, y: int, vision_range: int
) -> list[SeenTile]:
    """Own tile, then the N, S, E and W rays; the caller guarantees (x, y) is on the grid."""
    row = rows[y]
    seen: list[SeenTile] = [(x, y, row[x])]
    append = seen.append
    # North (y - 1) and south (y + 1) walk a column.
    for i in range(1, vision_range + 1):
        ny = y - i
        if ny < 0:
            break
        code = rows[ny][x]
        append((x, ny, code))
        if code == _WALL:
            break
    for i in range(1, vision_range + 1):
        ny = y + i
        if ny >= height:
            break
        code = rows[ny][x]
        append((x, ny, code))
        if code == _WALL:
            break
    # East (x + 1) and west (x - 1) walk the agent's row.
    for i in range(1, vision_range + 1):
        nx = x + i
        if nx >= width:
            break
        code = row[nx]
        append((nx, y, code))
        if code == _WALL:
            break
    for i in range(1, vision_range + 1):
        nx = x - i
        if nx < 0:
            break
        code = row[nx]
        append((nx, y, code))
        if code == _WALL:
            break
    return seen


def see_through_square(
    rows: Sequence[bytes], width: int, height: int, x: int, y: int, vision_range: int
) -> list[SeenTile]:
    """Own tile, then the whole in-grid square around it, walls not blocking."""
    seen: list[SeenTile] = [(x, y, rows[y][x])]
    for ny in range(max(0, y - vision_range), min(height, y + vision_range + 1)):
        row = rows[ny]
        for nx in range(max(0, x - vision_range), min(width, x + vision_range + 1)):
            if nx != x or ny != y:
                seen.append((nx, ny, row[nx]))
    return seen


def describe_vision(tiles: Iterable[SeenTile]) -> str:
    """The text an agent reads: ``(x,y): empty|wall|GOAL`` joined by ``", "``."""
    return ", ".join(f"({x},{y}): {tile_name(code)}" for x, y, code in tiles)


def goal_in_view(tiles: Iterable[SeenTile]) -> bool:
    return any(code == _GOAL for _, _, code in tiles)
