"""Tiles, positions and compass directions shared by every part of the game core."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import NamedTuple


class Tile(IntEnum):
    """Tile codes of Oriole's grid format."""

    EMPTY = 0
    WALL = 1
    GOAL = 2


#: The word an agent reads for each tile code (Oriole's `describeVision`).
TILE_NAMES: dict[int, str] = {Tile.EMPTY: "empty", Tile.WALL: "wall", Tile.GOAL: "GOAL"}


def tile_name(code: int) -> str:
    """Readable name of a tile code; an unknown code renders as an empty name, as Oriole's did."""
    return TILE_NAMES.get(code, "")


class Position(NamedTuple):
    x: int
    y: int

    def step(self, direction: Direction) -> Position:
        dx, dy = direction.delta
        return Position(self.x + dx, self.y + dy)

    def __str__(self) -> str:
        return f"({self.x}, {self.y})"


class Direction(StrEnum):
    """Compass directions; north is y - 1 because row 0 is the top of the grid."""

    NORTH = "north"
    SOUTH = "south"
    EAST = "east"
    WEST = "west"

    @property
    def delta(self) -> tuple[int, int]:
        return _DELTAS[self]


_DELTAS: dict[Direction, tuple[int, int]] = {
    Direction.NORTH: (0, -1),
    Direction.SOUTH: (0, 1),
    Direction.EAST: (1, 0),
    Direction.WEST: (-1, 0),
}

#: The order in which vision casts its rays (Oriole: N, S, E, W).
RAY_ORDER: tuple[Direction, ...] = (
    Direction.NORTH,
    Direction.SOUTH,
    Direction.EAST,
    Direction.WEST,
)
