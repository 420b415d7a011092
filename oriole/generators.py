"""Seeded, deterministic maze generators for the families Oriole used (spec §1.4).

Oriole's ``generator.js`` used unseeded ``Math.random()``, so its mazes could never be made
again. Here every maze comes from ``(family, width, height, seed, params)`` through our own
PRNG (:mod:`oriole.rng`), and that tuple is recorded on the maze as ``GeneratorInfo`` so the
exact grid can be rebuilt on any machine. Sizes run from 3 x 3 to 1000 x 1000, width and
height independently; every family starts from an all-empty grid with a wall border, as
Oriole's did, and never touches the border.

How the families scale: the backtracker, open field and scatter are defined per tile or per
cell, so they look the same at any size; pillars and diagonal lines keep their spacing and
fill the whole interior; rooms keep their count (default 4) and grow with the maze — the
largest side defaults to a quarter of the shorter maze side (15 at 60 x 60, like Oriole's).

Grids are built as one flat ``bytearray`` (index ``y * width + x``) for speed and handed to
:class:`~oriole.maze.Maze` as ``bytes`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Literal

from oriole.analysis import grid_distances
from oriole.errors import ValidationError
from oriole.geometry import Position, Tile
from oriole.maze import GeneratorInfo, Maze
from oriole.rng import SeededRandom

MIN_SIZE = 3
MAX_SIZE = 1000
#: Seeds are recorded in JSON and in Postgres ``bigint`` columns, hence 63 bits.
MAX_SEED = 2**63 - 1
GOAL_STRATEGIES = ("oriole", "farthest")
#: Keys that ``generate`` adds to ``GeneratorInfo.params`` besides the family's own.
RESERVED_PARAMS = ("goal", "start")

_EMPTY = int(Tile.EMPTY)
_WALL = int(Tile.WALL)
_GOAL = int(Tile.GOAL)

Params = Mapping[str, Any]
Builder = Callable[[bytearray, int, int, SeededRandom, Params], None]


# --- registry types ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of a family: its type, default and allowed closed range."""

    name: str
    kind: Literal["int", "float"]
    default: int | float | None  # None: derived from the maze size, see the description
    minimum: int | float
    maximum: int | float
    description: str

    def range_text(self) -> str:
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} between {self.minimum} and {self.maximum}"

    def check(self, value: Any) -> int | float:
        """The value, normalised (floats as ``float``), or ``ValidationError`` on the name."""
        if isinstance(value, bool) or not isinstance(
            value, int if self.kind == "int" else (int, float)
        ):
            raise ValidationError(
                self.name, f"must be {self.range_text()}, got {type(value).__name__} {value!r}"
            )
        if not self.minimum <= value <= self.maximum:  # also rejects NaN
            raise ValidationError(self.name, f"must be {self.range_text()}, got {value!r}")
        return value if self.kind == "int" else float(value)


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    """A maze family: what it makes, its parameters and the function that carves it."""

    name: str
    description: str
    params: tuple[ParamSpec, ...]
    build: Builder
    #: Fills size-dependent defaults and checks size-dependent ranges (after the static checks).
    resolve: Callable[[int, int, dict[str, Any], set[str]], None] | None = None

    def defaults(self) -> dict[str, int | float | None]:
        return {p.name: p.default for p in self.params}

    def effective_params(self, width: int, height: int, given: Params) -> dict[str, Any]:
        """Every parameter with defaults filled in, validated; errors name the parameter."""
        known = {p.name: p for p in self.params}
        for key in given:
            if key not in known:
                takes = ", ".join(known) if known else "no parameters"
                raise ValidationError(
                    str(key), f"unknown parameter for generator '{self.name}'; it takes {takes}"
                )
        effective: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                effective[p.name] = p.check(given[p.name])
            else:
                effective[p.name] = p.default
        if self.resolve is not None:
            self.resolve(width, height, effective, set(given))
        return effective


# --- helpers ----------------------------------------------------------------------------------


def _bordered(width: int, height: int) -> bytearray:
    """All-empty grid with a wall border."""
    grid = bytearray(width * height)
    grid[:width] = b"\x01" * width
    grid[(height - 1) * width :] = b"\x01" * width
    grid[::width] = b"\x01" * height
    grid[width - 1 :: width] = b"\x01" * height
    return grid


def _fill_interior(grid: bytearray, width: int, height: int, code: int) -> None:
    run = bytes([code]) * (width - 2)
    for y in range(1, height - 1):
        grid[y * width + 1 : (y + 1) * width - 1] = run


def _random_interior(rng: SeededRandom, width: int, height: int) -> tuple[int, int]:
    """A uniform interior tile; x is drawn before y (as Oriole did)."""
    x = 1 + rng.below(width - 2)
    y = 1 + rng.below(height - 2)
    return x, y


# --- families ---------------------------------------------------------------------------------

# All 24 orders of the four neighbour steps (N, S, E, W): one draw picks a uniform shuffle,
# which is three times cheaper than a Fisher–Yates shuffle of four items.
_ORDERS: tuple[tuple[int, ...], ...] = tuple(
    (a, b, c, d)
    for a in range(4)
    for b in range(4)
    for c in range(4)
    for d in range(4)
    if len({a, b, c, d}) == 4
)


def _build_backtracker(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Oriole's one-path maze: recursive backtracker on odd cells, then random clearings.

    The carve is iterative (an explicit stack holding each cell's remaining shuffled
    neighbours), which visits cells in exactly the order the recursive version would, without
    Python's recursion limit. Cells are (odd x, odd y) starting at (1, 1), stride 2; a target
    must lie strictly inside the border and still be a wall (unvisited).
    """
    _fill_interior(grid, width, height, _WALL)
    # step (flat offset), and the coordinate limits a target must respect
    steps = (-2 * width, 2 * width, 2, -2)
    start = width + 1
    grid[start] = _EMPTY
    orders = _ORDERS
    max_x, max_y = width - 2, height - 2
    # each frame: [cell index, x, y, remaining directions]
    stack: list[tuple[int, int, int, list[int]]] = [(start, 1, 1, list(orders[rng.below(24)]))]
    while stack:
        cell, x, y, todo = stack[-1]
        if not todo:
            stack.pop()
            continue
        d = todo.pop(0)
        if d == 0:
            nx, ny = x, y - 2
        elif d == 1:
            nx, ny = x, y + 2
        elif d == 2:
            nx, ny = x + 2, y
        else:
            nx, ny = x - 2, y
        if nx < 1 or ny < 1 or nx > max_x or ny > max_y:
            continue
        target = cell + steps[d]
        if grid[target] != _WALL:
            continue
        grid[(cell + target) >> 1] = _EMPTY
        grid[target] = _EMPTY
        stack.append((target, nx, ny, list(orders[rng.below(24)])))

    density: float = params["density"]
    removals = math.floor(width * height * (0.5 - density)) if density < 0.5 else 0
    for _ in range(removals):
        x, y = _random_interior(rng, width, height)
        grid[y * width + x] = _EMPTY


def _build_open_field(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Oriole's maze 7: floor(W*H*fraction) random interior tiles (with replacement) walled."""
    for _ in range(math.floor(width * height * params["wall_fraction"])):
        x, y = _random_interior(rng, width, height)
        grid[y * width + x] = _WALL


def _build_pillars(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Single-tile pillars on a lattice (what Oriole's "08_spiral" really is).

    Pillars stand at interior tiles whose x and y are both multiples of ``spacing`` and that
    keep at least ``margin`` open tiles between them and the border on every side, i.e.
    ``margin + 1 <= x <= width - 2 - margin`` (same for y). Oriole's file has its lattice run
    up to x = y = 58 on the south and east sides (an artefact of its spiral walk) and one
    missing pillar; this version is symmetric. Each pillar is then dropped with
    ``gap_probability`` (one draw per lattice point, row by row, even when the probability
    is 0, so the stream never shifts).
    """
    spacing: int = params["spacing"]
    low = params["margin"] + 1
    gap: float = params["gap_probability"]
    first = -(-low // spacing) * spacing  # smallest multiple of spacing >= low
    xs = range(first, width - low, spacing)  # x <= width - 2 - margin
    for y in range(first, height - low, spacing):
        base = y * width
        for x in xs:
            if not rng.chance(gap):
                grid[base + x] = _WALL


def _resolve_rooms(width: int, height: int, params: dict[str, Any], given: set[str]) -> None:
    """Room sizes default to a quarter of the shorter side (15 at 60 x 60, as Oriole's)."""
    inner = min(width, height) - 2
    where = f"for a {width}x{height} maze (the shorter interior side)"
    for key in ("min_room", "max_room"):
        if key in given and params[key] > inner:
            raise ValidationError(
                key, f"must be an integer between 1 and {inner} {where}, got {params[key]}"
            )
    auto_max = min(inner, max(3, min(width, height) // 4))
    if "max_room" not in given:
        params["max_room"] = max(auto_max, params["min_room"] or 1)
    if "min_room" not in given:
        params["min_room"] = max(1, params["max_room"] // 2)
    if params["min_room"] > params["max_room"]:
        raise ValidationError(
            "min_room",
            f"must be an integer between 1 and max_room ({params['max_room']}), "
            f"got {params['min_room']}",
        )


def _build_rooms(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Rooms and corridors: rooms at seeded places, every room reachable from every other.

    Interior filled with walls; up to ``rooms`` rectangles with sides in
    ``[min_room, max_room]`` are placed at random, rejecting any that overlaps or touches a
    placed room (so rooms stay separate), with a budget of 50 attempts per requested room —
    a small maze may end up with fewer rooms than asked. Rooms are then chained greedily from
    the first one to the nearest unchained one (Manhattan distance between centres) and each
    consecutive pair is joined by an L-shaped one-tile corridor between their centres, its
    bend chosen at random. The chain makes every room reachable from every other.
    """
    _fill_interior(grid, width, height, _WALL)
    wanted: int = params["rooms"]
    lo: int = params["min_room"]
    hi: int = params["max_room"]
    placed: list[tuple[int, int, int, int]] = []
    for _ in range(50 * wanted):
        if len(placed) == wanted:
            break
        w = lo + rng.below(hi - lo + 1)
        h = lo + rng.below(hi - lo + 1)
        x = 1 + rng.below(width - 1 - w)  # the room spans x .. x + w - 1 <= width - 2
        y = 1 + rng.below(height - 1 - h)
        if any(
            x <= ox + ow and ox <= x + w and y <= oy + oh and oy <= y + h
            for ox, oy, ow, oh in placed
        ):
            continue
        placed.append((x, y, w, h))
    for x, y, w, h in placed:
        for row in range(y, y + h):
            grid[row * width + x : row * width + x + w] = bytes(w)

    centres = [(x + w // 2, y + h // 2) for x, y, w, h in placed]
    chain = [centres[0]]
    left = centres[1:]
    while left:
        cx, cy = chain[-1]
        nearest = min(range(len(left)), key=lambda i: abs(left[i][0] - cx) + abs(left[i][1] - cy))
        chain.append(left.pop(nearest))
    for (x1, y1), (x2, y2) in pairwise(chain):
        if rng.chance(0.5):  # along the row first, then down the column
            _corridor(grid, width, x1, x2, y1, y1)
            _corridor(grid, width, x2, x2, y1, y2)
        else:
            _corridor(grid, width, x1, x1, y1, y2)
            _corridor(grid, width, x1, x2, y2, y2)


def _corridor(grid: bytearray, width: int, x1: int, x2: int, y1: int, y2: int) -> None:
    """Clear a straight horizontal (y1 == y2) or vertical (x1 == x2) run, ends included."""
    xa, xb = sorted((x1, x2))
    for y in range(min(y1, y2), max(y1, y2) + 1):
        grid[y * width + xa : y * width + xb + 1] = bytes(xb - xa + 1)


def _build_diagonal(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Diagonal wall lines every ``spacing`` columns: down-left in the west half, down-right
    in the east half, meeting in nested chevrons (Λ) across the whole interior.

    Oriole's maze 11 drew, for every column i = 0, 5, 10, …, a line down-right from (i, 0) and
    one down-left from (59 - i, 0), stopping at row 54: down-left lines on the west side,
    down-right lines on the east side and a cross-hatched wedge at the top. Cross-hatching at
    spacing 5 makes cells of a few tiles each, which random holes cannot keep connected
    (p = 0.15 per tile is far below the percolation threshold), so here each half gets one
    direction only: west half ``(x + y) % spacing == (width - 1) % spacing``, east half
    ``(x - y) % spacing == 0`` — the two line sets of Oriole's maze, mirror images of each
    other, running over the whole interior whatever the aspect ratio. A diagonal line blocks
    4-neighbour movement completely; each line tile becomes a hole with ``gap_probability``
    (one draw per line tile, row by row), and one hole is enough to cross a line.
    """
    spacing: int = params["spacing"]
    gap: float = params["gap_probability"]
    phase = (width - 1) % spacing
    west_end = (width - 1) // 2  # last west column; for odd widths the centre is in both
    east_start = width // 2
    for y in range(1, height - 1):
        west = range(1 + (phase - y - 1) % spacing, west_end + 1, spacing)
        first_east = east_start + (y - east_start) % spacing
        east = range(first_east, width - 1, spacing)
        base = y * width
        for x in sorted(set(west).union(east)):
            if not rng.chance(gap):
                grid[base + x] = _WALL


def _build_scatter(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Oriole's maze 12: floor(W*H*fraction) random 2x2 or 3x3 wall blocks, clipped inside."""
    for _ in range(math.floor(width * height * params["block_fraction"])):
        x, y = _random_interior(rng, width, height)
        size = 2 if rng.chance(0.5) else 3
        x_end = min(x + size, width - 1)
        for row in range(y, min(y + size, height - 1)):
            grid[row * width + x : row * width + x_end] = b"\x01" * (x_end - x)


def _fraction(name: str, default: float, description: str) -> ParamSpec:
    return ParamSpec(name, "float", default, 0, 1, description)


_DENSITY_TEXT = (
    "Oriole's density label d: if d < 0.5, floor(W*H*(0.5-d)) random interior tiles are "
    "cleared after carving (d is not the resulting wall density)"
)
_GAP_TEXT = "probability that each wall tile of the pattern is left out"

_SPECS = (
    GeneratorSpec(
        "backtracker",
        "one-path maze (recursive backtracker, stride 2) loosened by random clearings; "
        "Oriole's mazes 1-6",
        (_fraction("density", 0.3, _DENSITY_TEXT),),
        _build_backtracker,
    ),
    GeneratorSpec(
        "multiple-paths",
        "the backtracker with many clearings (density 0.15), so there are many routes; "
        "Oriole's maze 10",
        (_fraction("density", 0.15, _DENSITY_TEXT),),
        _build_backtracker,
    ),
    GeneratorSpec(
        "open-field",
        "open ground with random single-tile walls; Oriole's maze 7",
        (
            _fraction(
                "wall_fraction",
                0.05,
                "floor(W*H*fraction) random interior tiles (with replacement) become walls",
            ),
        ),
        _build_open_field,
    ),
    GeneratorSpec(
        "pillars",
        "a regular lattice of single-tile pillars; Oriole's maze 8 ('spiral')",
        (
            ParamSpec("spacing", "int", 2, 2, MAX_SIZE, "distance between pillars"),
            ParamSpec(
                "margin", "int", 3, 0, MAX_SIZE, "open tiles kept between border and pillars"
            ),
            _fraction("gap_probability", 0.0, "probability that each pillar is left out"),
        ),
        _build_pillars,
    ),
    GeneratorSpec(
        "rooms",
        "rectangular rooms joined by L-shaped corridors, all mutually reachable; Oriole's maze 9",
        (
            ParamSpec(
                "rooms", "int", 4, 1, 100, "number of rooms wanted (fewer if they don't fit)"
            ),
            ParamSpec(
                "min_room",
                "int",
                None,
                1,
                MAX_SIZE - 2,
                "smallest room side; default max_room // 2",
            ),
            ParamSpec(
                "max_room",
                "int",
                None,
                1,
                MAX_SIZE - 2,
                "largest room side; default a quarter of the shorter maze side (at least 3), "
                "at most the shorter interior side",
            ),
        ),
        _build_rooms,
        _resolve_rooms,
    ),
    GeneratorSpec(
        "diagonal",
        "nested chevrons of diagonal wall lines with random holes; Oriole's maze 11",
        (
            ParamSpec("spacing", "int", 5, 2, MAX_SIZE, "columns between parallel lines"),
            _fraction("gap_probability", 0.15, _GAP_TEXT),
        ),
        _build_diagonal,
    ),
    GeneratorSpec(
        "scatter",
        "random 2x2 and 3x3 wall blocks; Oriole's maze 12",
        (
            _fraction(
                "block_fraction",
                0.25,
                "floor(W*H*fraction) blocks are stamped at random interior top-left corners",
            ),
        ),
        _build_scatter,
    ),
)

#: Every family by name.
GENERATORS: Mapping[str, GeneratorSpec] = MappingProxyType({s.name: s for s in _SPECS})


# --- goal placement ---------------------------------------------------------------------------


def _window_centre(width: int, height: int) -> tuple[int, int]:
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
        cx, cy = _window_centre(width, height)
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
        origin = (
            _default_start(grid, width) if start is None else _check_start(start, width, height)
        )
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


def _default_start(grid: bytearray, width: int) -> Position:
    if len(grid) > width + 1 and width > 1 and grid[width + 1] != _WALL:
        return Position(1, 1)
    i = grid.find(_EMPTY)
    return Position(i % width, i // width)


def _check_start(start: Any, width: int, height: int) -> Position:
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


# --- public entry points ----------------------------------------------------------------------


def _check_int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            field,
            f"must be an integer between {low} and {high}, got {type(value).__name__} {value!r}",
        )
    if not low <= value <= high:
        raise ValidationError(field, f"must be an integer between {low} and {high}, got {value}")
    return value


def _spec(family: Any) -> GeneratorSpec:
    spec = GENERATORS.get(family) if isinstance(family, str) else None
    if spec is None:
        raise ValidationError(
            "family", f"unknown generator {family!r}; choose one of {', '.join(GENERATORS)}"
        )
    return spec


def generate(
    family: str,
    width: int,
    height: int,
    seed: int,
    *,
    name: str | None = None,
    goal: str = "oriole",
    start: tuple[int, int] | None = None,
    **params: Any,
) -> Maze:
    """Generate a maze; the same arguments give the same grid on every machine.

    The maze records ``GeneratorInfo(family, params, seed)`` where ``params`` holds every
    effective parameter (defaults included), plus ``goal`` (the strategy) and ``start``
    (``[x, y]`` or ``None``), so :func:`regenerate` can rebuild it. If a family leaves no
    empty tile at all (possible on tiny grids, e.g. scatter at 3 x 3), the tile at the goal
    window's centre is cleared first so that every valid request yields a valid maze.
    """
    spec = _spec(family)
    _check_int("width", width, MIN_SIZE, MAX_SIZE)
    _check_int("height", height, MIN_SIZE, MAX_SIZE)
    _check_int("seed", seed, 0, MAX_SEED)
    effective = spec.effective_params(width, height, params)
    if goal not in GOAL_STRATEGIES:
        raise ValidationError(
            "goal", f"unknown strategy {goal!r}; use one of {', '.join(GOAL_STRATEGIES)}"
        )
    origin = None if start is None else _check_start(start, width, height)

    grid = _bordered(width, height)
    spec.build(grid, width, height, SeededRandom(seed), effective)
    if _EMPTY not in grid:
        cx, cy = _window_centre(width, height)
        grid[cy * width + cx] = _EMPTY
    if goal == "farthest" and origin is None:
        origin = _default_start(grid, width)
    place_goal(grid, width, height, goal, origin)

    recorded = {**effective, "goal": goal, "start": None if origin is None else list(origin)}
    info = GeneratorInfo(name=family, params=recorded, seed=seed)
    rows = tuple(bytes(grid[y * width : (y + 1) * width]) for y in range(height))
    return Maze(
        name if name is not None else f"{family}-{width}x{height}-s{seed}",
        width,
        height,
        rows,
        False,
        info,
    )


def regenerate(info: GeneratorInfo, width: int, height: int, *, name: str | None = None) -> Maze:
    """Rebuild a maze from its recorded ``GeneratorInfo`` (and the size it was made at)."""
    params = dict(info.params)
    goal = params.pop("goal", "oriole")
    start = params.pop("start", None)
    if isinstance(start, list):
        start = tuple(start)
    return generate(
        info.name, width, height, info.seed, name=name, goal=goal, start=start, **params
    )
