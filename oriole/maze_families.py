"""How each maze family carves its grid: the seeded algorithms behind `oriole.generators`.

Kept apart from the registry (parameters, validation, goal, ``GeneratorInfo``) so each
algorithm reads on its own. A builder gets a flat ``bytearray`` grid (index ``y * width + x``)
that already has its wall border, the seeded PRNG and the family's validated parameters, and
carves in place without ever touching the border. The order of PRNG draws is part of each
family's contract: changing it changes every recorded maze.

How the families scale: the backtracker, open field and scatter are defined per tile or per
cell, so they look the same at any size; pillars and diagonal lines keep their spacing and
fill the whole interior; rooms keep their count (default 4) and grow with the maze — the
largest side defaults to a quarter of the shorter maze side (15 at 60 x 60, like Oriole's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

from oriole.geometry import Tile
from oriole.rng import SeededRandom

_EMPTY = int(Tile.EMPTY)
_WALL = int(Tile.WALL)

Params = Mapping[str, Any]
#: Carves one family into a bordered grid: ``(grid, width, height, rng, params)``.
Builder = Callable[[bytearray, int, int, SeededRandom, Params], None]


# --- helpers ----------------------------------------------------------------------------------


def bordered_grid(width: int, height: int) -> bytearray:
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


def build_backtracker(
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


def build_open_field(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Oriole's maze 7: floor(W*H*fraction) random interior tiles (with replacement) walled."""
    for _ in range(math.floor(width * height * params["wall_fraction"])):
        x, y = _random_interior(rng, width, height)
        grid[y * width + x] = _WALL


def build_pillars(
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


def build_rooms(
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


def build_diagonal(
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


def build_scatter(
    grid: bytearray, width: int, height: int, rng: SeededRandom, params: Params
) -> None:
    """Oriole's maze 12: floor(W*H*fraction) random 2x2 or 3x3 wall blocks, clipped inside."""
    for _ in range(math.floor(width * height * params["block_fraction"])):
        x, y = _random_interior(rng, width, height)
        size = 2 if rng.chance(0.5) else 3
        x_end = min(x + size, width - 1)
        for row in range(y, min(y + size, height - 1)):
            grid[row * width + x : row * width + x_end] = b"\x01" * (x_end - x)
