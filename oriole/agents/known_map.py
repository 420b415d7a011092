"""The frontier agent's map: breadth-first searches over the known, non-wall tiles.

Two questions, each answered by two implementations that must agree exactly (same FIFO
order, same N, S, E, W neighbour order, hence the same answer; the tests check it):

- `KnownMap.search`: *one* nearest frontier tile (or the way to a target), ties broken by
  that fixed order. This is what seed 0 plays.
- `KnownMap.ties`: *every* frontier tile at the least distance (or the target), each with
  every first step that starts a shortest path to it. A seeded agent draws from these.

A lazy implementation looks tiles up in the observation's mapping only as it reaches them —
cheap when the target is near, the usual case — and a flat one runs over a padded byte grid,
about five times faster per tile but paying a copy of the whole known map first. The lazy
search hands over once it has visited a fixed share of the known tiles, which bounds a
decision on a fully known 1000 x 1000 map to well under a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Literal, cast

from oriole.agents.base import Observation
from oriole.agents.baseline import WALL
from oriole.geometry import RAY_ORDER, Direction, Position

_BY_DELTA = {d.delta: d for d in RAY_ORDER}

Cell = tuple[int, int]
#: What `KnownMap.search` finds: the tile reached, the tile beyond it (the unknown neighbour
#: of a frontier tile, or the tile itself), the first step from the root and the distance.
Found = tuple[Cell, Cell, Direction, int]
#: What `KnownMap.ties` finds: the distance, and each tile at that distance (in search order)
#: with a bit mask of first steps (bit i: ``RAY_ORDER[i]``). At distance 0 the one tile is
#: the root and its bits are the steps into its unknown neighbours.
Tied = tuple[int, list[tuple[Cell, int]]]
# Cell states of the flat search grid.
_UNKNOWN, _OPEN, _CLOSED = 0, 1, 2


class KnownMap:
    """The known part of the grid, searched breadth-first (see the module docstring)."""

    __slots__ = ("blocked", "height", "known", "width")

    def __init__(self, observation: Observation, blocked: set[Position]) -> None:
        # Plain tuples equal and hash like the `Position` keys and are much cheaper to build.
        self.known = cast(Mapping[Cell, int], observation.known)
        self.blocked = cast(set[Cell], blocked)
        self.width = observation.width
        self.height = observation.height

    def search(self, root: Position, target: Position | None, *, budget: int = -1) -> Found | None:
        """BFS from ``root`` to ``target``, or to the nearest frontier tile if it is None.

        ``budget`` (tiles the lazy search may visit; -1 chooses from the map size) exists so
        that tests can force either implementation.
        """
        budget = self._budget(root, target, budget)
        if budget > 0:
            found = self._lazy(root, target, budget)
            if found is not False:
                return found
        return self._flat(root, target)

    def ties(self, root: Position, target: Position | None, *, budget: int = -1) -> Tied | None:
        """Like `search`, but every tile at the least distance, with all its first steps."""
        budget = self._budget(root, target, budget)
        if budget > 0:
            tied = self._lazy_ties(root, target, budget)
            if tied is not False:
                return tied
        return self._flat_ties(root, target)

    def unknown_neighbour(self, cell: Cell) -> Cell:
        """The first (N, S, E, W) neighbour of a frontier tile still unknown, as `search`."""
        x, y = cell
        for near in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y)):
            if self._unexplored(near):
                return near
        raise ValueError(f"{cell} is not a frontier tile")

    def _budget(self, root: Position, target: Position | None, budget: int) -> int:
        if target == root:
            raise ValueError(f"already at {root}: there is no first step to take")
        return 1024 + len(self.known) // 16 if budget < 0 else budget

    def _unexplored(self, cell: Cell) -> bool:
        """An in-grid tile neither seen nor refused: stepping next to it explores."""
        return (
            cell not in self.known
            and 0 <= cell[0] < self.width
            and 0 <= cell[1] < self.height
            and cell not in self.blocked
        )

    def _lazy(
        self, root: Position, target: Position | None, budget: int
    ) -> Found | Literal[False] | None:
        """The search over the mapping; False if it visited ``budget`` tiles without an answer."""
        get = self.known.get
        blocked = self.blocked
        width, height = self.width, self.height
        wall = WALL
        start: Cell = (root.x, root.y)
        parents: dict[Cell, Cell] = {start: start}
        queue = deque([start])
        pop, push = queue.popleft, queue.append
        while queue:
            budget -= 1
            if budget < 0:
                return False
            node = pop()
            if node == target:
                return _walk_back(parents, start, node, node)
            x, y = node
            for cell in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y)):
                code = get(cell)
                if code is None:
                    if (
                        target is None
                        and 0 <= cell[0] < width
                        and 0 <= cell[1] < height
                        and cell not in blocked
                    ):
                        # BFS pops in distance order, so ``node`` is the nearest frontier tile.
                        return _walk_back(parents, start, node, cell)
                elif code != wall and cell not in parents:
                    parents[cell] = node
                    push(cell)
        return None

    def _lazy_ties(
        self, root: Position, target: Position | None, budget: int
    ) -> Tied | Literal[False] | None:
        """`ties` over the mapping, level by level; False once past ``budget`` tiles."""
        get = self.known.get
        unexplored = self._unexplored
        wall = WALL
        explore = target is None
        goal = None if target is None else (target.x, target.y)
        start: Cell = (root.x, root.y)
        # The root: each neighbour is its own first step.
        bits = 0
        level: dict[Cell, int] = {}  # tile -> first steps of its shortest paths
        x, y = start
        for bit, cell in enumerate(((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y))):
            code = get(cell)
            if code is None:
                if explore and unexplored(cell):
                    bits |= 1 << bit
            elif code != wall:
                level[cell] = 1 << bit
        if bits:
            return 0, [(start, bits)]
        visited = {start} | level.keys()
        steps = 1
        while level:
            budget -= len(level)
            if budget < 0:
                return False
            found: list[tuple[Cell, int]] = []
            following: dict[Cell, int] = {}
            for node, mask in level.items():
                if node == goal:
                    found.append((node, mask))
                    continue
                x, y = node
                frontier = False
                for cell in ((x, y - 1), (x, y + 1), (x + 1, y), (x - 1, y)):
                    code = get(cell)
                    if code is None:
                        frontier = frontier or (explore and unexplored(cell))
                    elif code != wall and cell not in visited:
                        following[cell] = following.get(cell, 0) | mask
                if frontier:
                    found.append((node, mask))
            if found:
                return steps, found
            visited.update(following)
            level = following
            steps += 1
        return None

    def _grid(self) -> bytearray:
        """The known map as a padded byte grid (a ring of closed cells around it)."""
        width, height = self.width, self.height
        stride = width + 2
        grid = bytearray([_CLOSED]) * (stride * (height + 2))
        unknown_row = bytes([_UNKNOWN]) * width
        for y in range(height):
            base = (y + 1) * stride + 1
            grid[base : base + width] = unknown_row
        for x, y in self.blocked:  # first, so that seen tiles win, as in the lazy search
            if 0 <= x < width and 0 <= y < height:
                grid[(y + 1) * stride + x + 1] = _CLOSED
        wall = WALL
        for (x, y), code in self.known.items():
            grid[(y + 1) * stride + x + 1] = _CLOSED if code == wall else _OPEN
        return grid

    def _flat(self, root: Position, target: Position | None) -> Found | None:
        """The search over the byte grid."""
        grid = self._grid()
        stride = self.width + 2
        start = (root.y + 1) * stride + root.x + 1
        goal = -1 if target is None else (target.y + 1) * stride + target.x + 1
        explore = target is None
        # came[i]: 0 unvisited, 1-4 reached by a step N, S, E, W, 5 the root.
        came = bytearray(len(grid))
        came[start] = 5
        level = [start]
        while level:
            following: list[int] = []
            push = following.append
            for i in level:
                if i == goal:
                    return self._flat_found(came, stride, start, i, i)
                for arrival, j in enumerate((i - stride, i + stride, i + 1, i - 1), 1):
                    state = grid[j]
                    if state == _UNKNOWN:
                        if explore:
                            return self._flat_found(came, stride, start, i, j)
                    elif state == _OPEN and not came[j]:
                        came[j] = arrival
                        push(j)
            level = following
        return None

    def _flat_ties(self, root: Position, target: Position | None) -> Tied | None:
        """`ties` over the byte grid."""
        grid = self._grid()
        stride = self.width + 2
        start = (root.y + 1) * stride + root.x + 1
        goal = -1 if target is None else (target.y + 1) * stride + target.x + 1
        explore = target is None
        # mark[i]: 0 unvisited, else 16 * (distance % 3 + 1) + first-step bits. A neighbour of
        # a tile at distance d is at d - 1, d or d + 1: distinct modulo 3.
        mark = bytearray(len(grid))
        mark[start] = 16
        # The root: each neighbour is its own first step.
        bits = 0
        level: list[int] = []
        for bit, j in enumerate((start - stride, start + stride, start + 1, start - 1)):
            state = grid[j]
            if state == _UNKNOWN:
                if explore:
                    bits |= 1 << bit
            elif state == _OPEN:
                mark[j] = 32 | 1 << bit
                level.append(j)
        if bits:
            return 0, [(_cell(start, stride), bits)]
        steps = 1
        while level:
            found: list[tuple[Cell, int]] = []
            following: list[int] = []
            push = following.append
            tag = 16 * ((steps + 1) % 3 + 1)
            for i in level:
                mask = mark[i] & 15
                if i == goal:
                    found.append((_cell(i, stride), mask))
                    continue
                marked = tag | mask
                frontier = False
                for j in (i - stride, i + stride, i + 1, i - 1):
                    state = grid[j]
                    if state == _OPEN:
                        seen = mark[j]
                        if not seen:
                            mark[j] = marked
                            push(j)
                        elif seen & 48 == tag:
                            mark[j] = seen | mask
                    elif state == _UNKNOWN:
                        frontier = True
                if frontier and explore:
                    found.append((_cell(i, stride), mask))
            if found:
                return steps, found
            level = following
            steps += 1
        return None

    @staticmethod
    def _flat_found(came: bytearray, stride: int, start: int, end: int, beyond: int) -> Found:
        back = (0, stride, -stride, -1, 1)  # undo a step N, S, E, W
        steps = 0
        node, step_to = end, beyond
        while node != start:
            node, step_to = node + back[came[node]], node
            steps += 1
        first = _BY_DELTA[_delta(step_to - start, stride)]
        return _cell(end, stride), _cell(beyond, stride), first, steps


def _cell(index: int, stride: int) -> Cell:
    """The tile at a flat index of the padded grid."""
    y, x = divmod(index, stride)
    return x - 1, y - 1


def _delta(offset: int, stride: int) -> tuple[int, int]:
    """(dx, dy) of a one-tile step given as a flat offset."""
    if offset in (1, -1):
        return offset, 0
    return 0, offset // stride


def _walk_back(parents: Mapping[Cell, Cell], start: Cell, end: Cell, beyond: Cell) -> Found:
    """Follow the parents from ``end`` back to the root; at distance 0 step to ``beyond``."""
    steps = 0
    node, step_to = end, beyond
    while node != start:
        node, step_to = parents[node], node
        steps += 1
    first = _BY_DELTA[(step_to[0] - start[0], step_to[1] - start[1])]
    return end, beyond, first, steps
