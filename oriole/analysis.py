"""Pure analysis of a maze from a start position: reachability, paths, where the goal is seen.

Movement follows Oriole (spec §2): 4-neighbour steps into non-wall tiles, and the tile the
agent stands on is never checked, so a start on a wall tile is allowed — the agent can step
off it — but no later position is ever a wall. An experiment ends successfully as soon as
the goal is in the agent's vision (spec §6.7), so "steps to see the goal" is the optimum a
run is measured against, not the path length to the goal tile.

Implementation: breadth-first search over a flat, padded copy of the grid (one ring of wall
around it, so neighbours are ``i ± 1`` and ``i ± stride`` without bounds checks), level by
level with plain lists. A 1000 x 1000 maze is analysed in well under a second.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from oriole.errors import ValidationError
from oriole.geometry import Position, Tile
from oriole.maze import MAX_VISION_RANGE, Maze
from oriole.vision import line_of_sight

DEFAULT_START = Position(2, 2)
DEFAULT_VISION_RANGE = 3

_WALL = int(Tile.WALL)
_GOAL = int(Tile.GOAL)
# Translation tables over tile codes: "blocked" (1 = wall), "open" (1 = not a wall) and
# "wall weighted 8" (used to rule walls out when counting open neighbours bytewise).
_BLOCKED = bytes(1 if code == _WALL else 0 for code in range(256))
_OPEN = bytes(0 if code == _WALL else 1 for code in range(256))
_WALL8 = bytes(8 if code == _WALL else 0 for code in range(256))


# --- low-level search, shared with the generators ---------------------------------------------


def _padded_blocked(cells: bytes | bytearray, width: int, height: int) -> bytearray:
    """``(width+2) x (height+2)`` copy of a flat grid: 1 where a wall or outside, 0 elsewhere."""
    stride = width + 2
    out = bytearray(b"\x01") * (stride * (height + 2))
    for y in range(height):
        base = (y + 1) * stride + 1
        out[base : base + width] = cells[y * width : (y + 1) * width].translate(_BLOCKED)
    return out


def _bfs(blocked: bytearray, stride: int, start: int, stop: int = -1) -> list[int]:
    """Steps from ``start`` to every tile (-1 where unreachable); stops after reaching ``stop``.

    ``start`` is entered whatever it is (an agent may start on a wall); every other tile must
    be open. ``blocked`` is not modified.
    """
    seen = bytearray(blocked)
    dist = [-1] * len(seen)
    dist[start] = 0
    seen[start] = 1
    frontier = [start]
    level = 0
    while frontier:
        if stop >= 0 and dist[stop] >= 0:
            break
        level += 1
        following: list[int] = []
        push = following.append
        for i in frontier:
            for j in (i - stride, i + stride, i + 1, i - 1):
                if not seen[j]:
                    seen[j] = 1
                    dist[j] = level
                    push(j)
        frontier = following
    return dist


def grid_distances(cells: bytes | bytearray, width: int, height: int, start: Position) -> list[int]:
    """Steps from ``start`` to every tile of a flat row-major grid, -1 where unreachable.

    Indexing is ``y * width + x``. Used by the generators to place a goal far from a start.
    """
    stride = width + 2
    dist = _bfs(_padded_blocked(cells, width, height), stride, _pad(start, stride))
    out: list[int] = []
    for y in range(height):
        base = (y + 1) * stride + 1
        out.extend(dist[base : base + width])
    return out


def _pad(p: Position | tuple[int, int], stride: int) -> int:
    return (p[1] + 1) * stride + p[0] + 1


def _unpad(i: int, stride: int) -> Position:
    y, x = divmod(i, stride)
    return Position(x - 1, y - 1)


class _Search:
    """A maze prepared for breadth-first search."""

    __slots__ = ("blocked", "maze", "stride")

    def __init__(self, maze: Maze) -> None:
        self.maze = maze
        self.stride = maze.width + 2
        self.blocked = _padded_blocked(b"".join(maze.rows), maze.width, maze.height)

    def distances(self, start: Position, stop: Position | None = None) -> list[int]:
        target = -1 if stop is None else _pad(stop, self.stride)
        return _bfs(self.blocked, self.stride, _pad(start, self.stride), target)


# --- validation -------------------------------------------------------------------------------


def _position(maze: Maze, value: Any, field: str) -> Position:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, (str, bytes))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise ValidationError(field, f"must be an (x, y) pair of integers, got {value!r}")
    x, y = value
    if not maze.in_bounds(x, y):
        raise ValidationError(
            field,
            f"({x},{y}) is outside the maze ({maze.width}x{maze.height}: "
            f"x 0..{maze.width - 1}, y 0..{maze.height - 1})",
        )
    return Position(x, y)


def _vision_range(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            "vision_range", f"must be an integer between 0 and {MAX_VISION_RANGE}, got {value!r}"
        )
    if not 0 <= value <= MAX_VISION_RANGE:
        raise ValidationError(
            "vision_range", f"must be between 0 and {MAX_VISION_RANGE}, got {value}"
        )
    return value


def _fmt(p: Position | tuple[int, int]) -> str:
    return f"({p[0]},{p[1]})"


# --- queries ----------------------------------------------------------------------------------


def reachable(maze: Maze, start: tuple[int, int]) -> set[Position]:
    """Every tile the agent can stand on, starting from ``start`` (which is included)."""
    origin = _position(maze, start, "start")
    search = _Search(maze)
    stride = search.stride
    return {_unpad(i, stride) for i, d in enumerate(search.distances(origin)) if d >= 0}


def shortest_path(
    maze: Maze, start: tuple[int, int], target: tuple[int, int] | None = None
) -> list[Position] | None:
    """A shortest walk from ``start`` to ``target`` (the goal by default), both ends included.

    ``None`` when the target cannot be reached. Among equally short walks the one returned is
    fixed (built backwards from the target preferring north, south, east, west).
    """
    origin = _position(maze, start, "start")
    goal = maze.goal if target is None else _position(maze, target, "target")
    search = _Search(maze)
    stride = search.stride
    dist = search.distances(origin, stop=goal)
    here = _pad(goal, stride)
    if dist[here] < 0:
        return None
    path = [here]
    while dist[here] > 0:
        want = dist[here] - 1
        here = next(
            j for j in (here - stride, here + stride, here + 1, here - 1) if dist[j] == want
        )
        path.append(here)
    return [_unpad(i, stride) for i in reversed(path)]


def goal_viewpoints(
    maze: Maze, vision_range: int = DEFAULT_VISION_RANGE, see_through: bool | None = None
) -> set[Position]:
    """Every tile from which the goal is in vision (the goal tile itself included).

    Line of sight is symmetric here: a tile P sees the goal G iff they share a row or column
    at most ``vision_range`` apart and no wall lies strictly between them — P's own tile does
    not block P's rays, so P may itself be a wall. Casting the four rays back from G (stopping
    after the first wall, which is included) therefore gives exactly the viewpoints. In
    see-through mode P sees G iff G lies in P's square, i.e. P lies in G's square.
    """
    rng = _vision_range(vision_range)
    mode = maze.see_through_walls if see_through is None else see_through
    gx, gy = maze.goal
    if mode:
        return {
            Position(x, y)
            for y in range(max(0, gy - rng), min(maze.height, gy + rng + 1))
            for x in range(max(0, gx - rng), min(maze.width, gx + rng + 1))
        }
    seen = line_of_sight(maze.rows, maze.width, maze.height, gx, gy, rng)
    return {Position(x, y) for x, y, _ in seen}


def _steps_to_see(dist: list[int], stride: int, viewpoints: Iterable[Position]) -> int | None:
    steps = [dist[_pad(p, stride)] for p in viewpoints]
    reached = [d for d in steps if d >= 0]
    return min(reached) if reached else None


def steps_to_see_goal(
    maze: Maze, start: tuple[int, int], vision_range: int = DEFAULT_VISION_RANGE
) -> int | None:
    """Fewest footsteps after which the goal is in view (0 if already seen from the start)."""
    return _steps_to_see_goal(maze, _position(maze, start, "start"), vision_range)


@functools.lru_cache(maxsize=64)
def _steps_to_see_goal(maze: Maze, origin: Position, vision_range: int) -> int | None:
    """One search per (maze, start, vision): a batch admits every run of a place, and a
    worker every start, and most share a place with another (a 3,000-run grid on 50 places
    did 3,000 searches). A few dozen mazes are kept: the biggest (1000×1000) hold 1 MB."""
    viewpoints = goal_viewpoints(maze, vision_range)
    if origin in viewpoints:
        return 0
    search = _Search(maze)
    return _steps_to_see(search.distances(origin), search.stride, viewpoints)


def dead_ends(maze: Maze) -> list[Position]:
    """Open tiles with exactly one open neighbour, row by row.

    Counted a row at a time with big-integer arithmetic over bytes (each byte holds a count of
    at most 4 + 8, so no carry crosses tiles): walls weigh 8 so only open tiles can total 1.
    """
    width = maze.width
    zero = bytes(width)
    open_rows = [row.translate(_OPEN) for row in maze.rows]
    found: list[Position] = []
    for y, row in enumerate(open_rows):
        up = open_rows[y - 1] if y > 0 else zero
        down = open_rows[y + 1] if y + 1 < maze.height else zero
        total = (
            int.from_bytes(up, "big")
            + int.from_bytes(down, "big")
            + int.from_bytes(b"\x00" + row[:-1], "big")
            + int.from_bytes(row[1:] + b"\x00", "big")
            + int.from_bytes(maze.rows[y].translate(_WALL8), "big")
        )
        counts = total.to_bytes(width, "big")
        x = counts.find(1)
        while x >= 0:
            found.append(Position(x, y))
            x = counts.find(1, x + 1)
    return found


def optimal_path_ratio(footsteps: int, steps_to_see: int | None) -> float | None:
    """How many times longer than the optimum a run walked: ``footsteps / steps_to_see``.

    ``None`` when the optimum is unknown (the goal can never be seen) or 0 (the goal is in
    view before the first move): no walk can be compared with it, and a ratio of infinity or
    an arbitrary 1.0 would distort averages across runs.
    """
    if isinstance(footsteps, bool) or not isinstance(footsteps, int) or footsteps < 0:
        raise ValidationError("footsteps", f"must be a non-negative integer, got {footsteps!r}")
    if steps_to_see is None or steps_to_see == 0:
        return None
    if isinstance(steps_to_see, bool) or not isinstance(steps_to_see, int) or steps_to_see < 0:
        raise ValidationError(
            "steps_to_see", f"must be a non-negative integer or None, got {steps_to_see!r}"
        )
    return footsteps / steps_to_see


def nearest_open_start(
    maze: Maze,
    preferred: tuple[int, int] = DEFAULT_START,
    vision_range: int = DEFAULT_VISION_RANGE,
) -> Position:
    """The open tile nearest to ``preferred`` from which the goal can be reached or seen.

    Distance is grid distance ignoring walls (Manhattan), ties broken row by row. The goal
    tile itself is not offered (a run starting there is over before it begins). ``preferred``
    may lie outside the maze, e.g. the default (2,2) on a 2 x 2 maze. Raises
    ``ValidationError`` when no tile qualifies.
    """
    if (
        not isinstance(preferred, Sequence)
        or len(preferred) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in preferred)
    ):
        raise ValidationError("preferred", f"must be an (x, y) pair of integers, got {preferred!r}")
    px, py = preferred
    width, height = maze.width, maze.height
    search = _Search(maze)
    stride = search.stride
    # good[i] (padded index): an open tile from which the goal can be reached or seen
    good = bytearray(map((-1).__ne__, search.distances(maze.goal)))
    for p in goal_viewpoints(maze, vision_range):
        if maze.rows[p.y][p.x] != _WALL:
            good[_pad(p, stride)] = 1
    good[_pad(maze.goal, stride)] = 0
    # Walk outwards ring by ring (Manhattan distance), each ring in row-major order.
    far = max(abs(px) + abs(py), abs(px - width + 1) + abs(py), abs(px) + abs(py - height + 1))
    far = max(far, abs(px - width + 1) + abs(py - height + 1))
    for d in range(far + 1):
        for y in range(max(0, py - d), min(height - 1, py + d) + 1):
            reach = d - abs(y - py)
            for x in (px - reach, px + reach) if reach else (px,):
                if 0 <= x < width and good[(y + 1) * stride + x + 1]:
                    return Position(x, y)
    raise ValidationError(
        "start",
        f"no open tile other than the goal at {_fmt(maze.goal)} can reach or see it",
    )


# --- the summary ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MazeAnalysis:
    """Everything worth knowing about a maze before running agents on it from ``start``."""

    maze_name: str
    content_hash: str
    width: int
    height: int
    walls: int
    open_tiles: int
    density_total: float
    density_interior: float
    goal: Position
    start: Position
    start_tile: int
    start_is_wall: bool
    start_sealed: bool
    vision_range: int
    reachable_count: int
    goal_reachable: bool
    shortest_path_length: int | None
    steps_to_see_goal: int | None
    dead_end_count: int
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: positions become ``{"x": .., "y": ..}`` as in Oriole's tool results."""
        return {
            "maze_name": self.maze_name,
            "content_hash": self.content_hash,
            "width": self.width,
            "height": self.height,
            "walls": self.walls,
            "open_tiles": self.open_tiles,
            "density_total": self.density_total,
            "density_interior": self.density_interior,
            "goal": {"x": self.goal.x, "y": self.goal.y},
            "start": {"x": self.start.x, "y": self.start.y},
            "start_tile": self.start_tile,
            "start_is_wall": self.start_is_wall,
            "start_sealed": self.start_sealed,
            "vision_range": self.vision_range,
            "reachable_count": self.reachable_count,
            "goal_reachable": self.goal_reachable,
            "shortest_path_length": self.shortest_path_length,
            "steps_to_see_goal": self.steps_to_see_goal,
            "dead_end_count": self.dead_end_count,
            "warnings": list(self.warnings),
        }


def _border_walls(maze: Maze) -> int:
    rows = maze.rows
    if maze.height < 3 or maze.width < 3:
        return maze.count(_WALL)  # every tile lies on the border
    top_bottom = rows[0].count(_WALL) + rows[-1].count(_WALL)
    sides = sum((row[0] == _WALL) + (row[-1] == _WALL) for row in rows[1:-1])
    return top_bottom + sides


def analyze(
    maze: Maze,
    start: tuple[int, int] = DEFAULT_START,
    vision_range: int = DEFAULT_VISION_RANGE,
) -> MazeAnalysis:
    """Summarise ``maze`` as played from ``start``, with plain-language warnings."""
    origin = _position(maze, start, "start")
    vrange = _vision_range(vision_range)
    width, height = maze.width, maze.height
    walls = maze.count(_WALL)
    interior_area = max(0, width - 2) * max(0, height - 2)
    interior_walls = walls - _border_walls(maze)

    search = _Search(maze)
    stride = search.stride
    dist = search.distances(origin)
    here = _pad(origin, stride)
    start_sealed = all(
        search.blocked[j] for j in (here - stride, here + stride, here + 1, here - 1)
    )
    goal_steps = dist[_pad(maze.goal, stride)]
    viewpoints = goal_viewpoints(maze, vrange)
    to_see = 0 if origin in viewpoints else _steps_to_see(dist, stride, viewpoints)

    start_tile = maze.rows[origin.y][origin.x]
    warnings: list[str] = []
    where = _fmt(origin)
    goal_at = _fmt(maze.goal)
    if start_tile == _WALL:
        warnings.append(
            f"start {where} is a wall tile; the agent can step off it but it is not a real position"
        )
    if start_sealed:
        warnings.append(f"start {where} is sealed: no open neighbour")
    if goal_steps < 0 and to_see is None:
        warnings.append(f"the goal at {goal_at} cannot be reached or seen from start {where}")
    elif goal_steps < 0:
        warnings.append(
            f"the goal at {goal_at} can be seen from start {where} but cannot be reached"
        )
    if to_see == 0:
        warnings.append(
            f"the goal at {goal_at} is already in view from start {where}; "
            "a run ends before the first move"
        )

    return MazeAnalysis(
        maze_name=maze.name,
        content_hash=maze.content_hash,
        width=width,
        height=height,
        walls=walls,
        open_tiles=width * height - walls,
        density_total=walls / (width * height),
        density_interior=interior_walls / interior_area if interior_area else 0.0,
        goal=maze.goal,
        start=origin,
        start_tile=start_tile,
        start_is_wall=start_tile == _WALL,
        start_sealed=start_sealed,
        vision_range=vrange,
        reachable_count=len(dist) - dist.count(-1),
        goal_reachable=goal_steps >= 0,
        shortest_path_length=goal_steps if goal_steps >= 0 else None,
        steps_to_see_goal=to_see,
        dead_end_count=len(dead_ends(maze)),
        warnings=tuple(warnings),
    )
