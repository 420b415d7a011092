"""The maze value object and Oriole's maze JSON format.

A maze is immutable: rows are stored as ``bytes`` (one byte per tile code), which keeps a
1000 x 1000 maze at 1 MB and makes tile look-ups and vision fast. Loading validates every
field and reports the first problem as ``<field>: <reason>``; saving a loaded Oriole file
gives back the same bytes (2-space indent, keys in Oriole's order, no trailing newline).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oriole.errors import MazeError
from oriole.geometry import Position, Tile
from oriole.vision import SeenTile, line_of_sight, see_through_square

MIN_SIDE = 1
MAX_SIDE = 1000
MAX_NAME_LENGTH = 255
DEFAULT_VISION_RANGE = 3
MAX_VISION_RANGE = MAX_SIDE

_KNOWN_FIELDS = ("name", "width", "height", "grid_data", "see_through_walls", "generator")
_VALID_CODES = frozenset(int(t) for t in Tile)


@dataclass(frozen=True, slots=True)
class GeneratorInfo:
    """How a maze was generated, so that it can be generated again."""

    name: str
    params: Mapping[str, Any]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "seed": self.seed}


@dataclass(frozen=True, slots=True, eq=True)
class Maze:
    """A rectangular grid of tiles with exactly one goal; ``rows[y][x]`` is a tile code."""

    name: str
    width: int
    height: int
    rows: tuple[bytes, ...]
    see_through_walls: bool = False
    generator: GeneratorInfo | None = field(default=None, compare=False)
    goal: Position = field(init=False, compare=False)
    content_hash: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_side("width", self.width)
        _check_side("height", self.height)
        if len(self.rows) != self.height:
            raise MazeError(
                "grid_data", f"expected {self.height} rows (the height), got {len(self.rows)}"
            )
        for y, row in enumerate(self.rows):
            if not isinstance(row, bytes):
                raise MazeError(f"grid_data[{y}]", "a row must be bytes")
            if len(row) != self.width:
                raise MazeError(
                    f"grid_data[{y}]",
                    f"expected {self.width} tiles (the width), got {len(row)}: rows are ragged",
                )
            if max(row) > Tile.GOAL:
                x = next(i for i, code in enumerate(row) if code not in _VALID_CODES)
                raise MazeError(f"grid_data[{y}][{x}]", _unknown_code_reason(row[x]))
        if not isinstance(self.see_through_walls, bool):
            raise MazeError("see_through_walls", "must be true or false")
        object.__setattr__(self, "goal", _find_single_goal(self.rows))
        object.__setattr__(self, "content_hash", _content_hash(self))

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_grid(
        cls,
        grid: Sequence[Sequence[int]],
        *,
        name: str,
        see_through_walls: bool = False,
        generator: GeneratorInfo | None = None,
    ) -> Maze:
        """Build a maze from ``grid[y][x]`` integer codes, validating every tile."""
        rows = _rows_from_grid(grid)
        height = len(rows)
        width = len(rows[0]) if rows else 0
        return cls(name, width, height, rows, see_through_walls, generator)

    @classmethod
    def from_dict(cls, doc: Any) -> Maze:
        """Parse Oriole's maze document (the decoded JSON object)."""
        if not isinstance(doc, Mapping):
            raise MazeError("maze", f"expected a JSON object, got {_json_type(doc)}")
        unknown = [key for key in doc if key not in _KNOWN_FIELDS]
        if unknown:
            raise MazeError(
                str(unknown[0]),
                f"unknown field; a maze has {', '.join(_KNOWN_FIELDS)}",
            )
        for required in ("name", "width", "height", "grid_data"):
            if required not in doc:
                raise MazeError(required, "missing (required)")
        name = doc["name"]
        _check_name(name)
        width = doc["width"]
        height = doc["height"]
        _check_side("width", width)
        _check_side("height", height)
        see_through = doc.get("see_through_walls", False)
        if not isinstance(see_through, bool):
            raise MazeError(
                "see_through_walls", f"must be true or false, got {_json_type(see_through)}"
            )
        rows = _rows_from_grid(doc["grid_data"], expected_height=height, expected_width=width)
        generator = _generator_from_doc(doc.get("generator"))
        return cls(name, width, height, rows, see_through, generator)

    @classmethod
    def from_json(cls, text: str | bytes) -> Maze:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MazeError(
                "maze", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        return cls.from_dict(doc)

    @classmethod
    def load(cls, path: str | Path) -> Maze:
        """Load a maze JSON file; errors name the file as well as the field."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MazeError(str(path), f"cannot read the file: {exc.strerror}") from exc
        try:
            return cls.from_json(data)
        except MazeError as exc:
            raise MazeError(f"{path.name}: {exc.field}", exc.reason) from exc

    # --- serialisation ------------------------------------------------------------------

    def grid_data(self) -> list[list[int]]:
        """A fresh ``[y][x]`` list of integer codes."""
        return [list(row) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "grid_data": self.grid_data(),
            "see_through_walls": self.see_through_walls,
        }
        if self.generator is not None:
            doc["generator"] = self.generator.to_dict()
        return doc

    def to_json(self) -> str:
        """Oriole's on-disk format: 2-space indent, no trailing newline."""
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    # --- queries ------------------------------------------------------------------------

    def in_bounds(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height

    def tile(self, x: int, y: int) -> int:
        self._check_position(x, y)
        return self.rows[y][x]

    def is_wall(self, x: int, y: int) -> bool:
        return self.tile(x, y) == Tile.WALL

    def open_tiles(self) -> list[Position]:
        """Every non-wall tile, row by row."""
        return [
            Position(x, y)
            for y, row in enumerate(self.rows)
            for x, code in enumerate(row)
            if code != Tile.WALL
        ]

    def count(self, code: int) -> int:
        return sum(row.count(code) for row in self.rows)

    def vision(
        self,
        x: int,
        y: int,
        range: int = DEFAULT_VISION_RANGE,
        see_through: bool | None = None,
    ) -> list[SeenTile]:
        """Tiles seen from (x, y), in Oriole's order, as ``(x, y, code)`` tuples."""
        self._check_position(x, y)
        if isinstance(range, bool) or not isinstance(range, int):
            raise MazeError("range", f"must be an integer, got {type(range).__name__}")
        if not 0 <= range <= MAX_VISION_RANGE:
            raise MazeError("range", f"must be between 0 and {MAX_VISION_RANGE}, got {range}")
        mode = self.see_through_walls if see_through is None else see_through
        look = see_through_square if mode else line_of_sight
        return look(self.rows, self.width, self.height, x, y, range)

    def _check_position(self, x: int, y: int) -> None:
        for axis, value, limit in (("x", x, self.width), ("y", y, self.height)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise MazeError(axis, f"must be an integer, got {type(value).__name__}")
            if not 0 <= value < limit:
                side = "width" if axis == "x" else "height"
                raise MazeError(
                    axis, f"{value} is outside the maze ({side} {limit}: 0..{limit - 1})"
                )

    def __repr__(self) -> str:
        return (
            f"Maze(name={self.name!r}, width={self.width}, height={self.height}, "
            f"goal={tuple(self.goal)}, hash={self.content_hash[:19]}...)"
        )


# --- validation helpers ---------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise MazeError("name", f"must be a string, got {_json_type(name)}")
    if not name.strip():
        raise MazeError("name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise MazeError("name", f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")


def _check_side(field_name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MazeError(field_name, f"must be an integer, got {_json_type(value)}")
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise MazeError(field_name, f"must be between {MIN_SIDE} and {MAX_SIDE}, got {value}")


def _unknown_code_reason(code: Any) -> str:
    return f"unknown tile code {code!r} (expected 0 empty, 1 wall or 2 goal)"


def _rows_from_grid(
    grid: Any, *, expected_height: int | None = None, expected_width: int | None = None
) -> tuple[bytes, ...]:
    if not isinstance(grid, (list, tuple)):
        raise MazeError("grid_data", f"must be an array of rows, got {_json_type(grid)}")
    if not grid:
        raise MazeError("grid_data", "must have at least one row")
    if expected_height is not None and len(grid) != expected_height:
        raise MazeError(
            "grid_data", f"expected {expected_height} rows (the height), got {len(grid)}"
        )
    width = expected_width
    rows: list[bytes] = []
    for y, row in enumerate(grid):
        if not isinstance(row, (list, tuple)):
            raise MazeError(f"grid_data[{y}]", f"must be an array of tiles, got {_json_type(row)}")
        if width is None:
            width = len(row)
        if len(row) != width:
            what = "(the width)" if expected_width is not None else "(as row 0 has)"
            raise MazeError(
                f"grid_data[{y}]",
                f"expected {width} tiles {what}, got {len(row)}: rows are ragged",
            )
        if set(map(type, row)) - {int}:
            x = next(i for i, v in enumerate(row) if type(v) is not int)
            raise MazeError(
                f"grid_data[{y}][{x}]", f"must be an integer tile code, got {_json_type(row[x])}"
            )
        try:
            packed = bytes(row)
        except ValueError:
            x = next(i for i, v in enumerate(row) if v not in _VALID_CODES)
            raise MazeError(f"grid_data[{y}][{x}]", _unknown_code_reason(row[x])) from None
        if packed and max(packed) > Tile.GOAL:
            x = next(i for i, v in enumerate(packed) if v not in _VALID_CODES)
            raise MazeError(f"grid_data[{y}][{x}]", _unknown_code_reason(packed[x]))
        rows.append(packed)
    if width == 0:
        raise MazeError("grid_data[0]", "a row must have at least one tile")
    return tuple(rows)


def _find_single_goal(rows: tuple[bytes, ...]) -> Position:
    goals: list[Position] = []
    for y, row in enumerate(rows):
        if Tile.GOAL in row:
            goals.extend(Position(x, y) for x, code in enumerate(row) if code == Tile.GOAL)
    if not goals:
        raise MazeError("grid_data", "no goal tile (code 2); a maze needs exactly one")
    if len(goals) > 1:
        listed = ", ".join(f"({g.x},{g.y})" for g in goals[:5])
        more = f" and {len(goals) - 5} more" if len(goals) > 5 else ""
        raise MazeError(
            "grid_data",
            f"{len(goals)} goal tiles at {listed}{more}; a maze needs exactly one",
        )
    return goals[0]


def _content_hash(maze: Maze) -> str:
    """Hash of what matters for play (size, tiles, see-through), not of name or provenance."""
    digest = hashlib.sha256()
    digest.update(
        f"oriole-maze-v1|{maze.width}|{maze.height}|{int(maze.see_through_walls)}|".encode()
    )
    for row in maze.rows:
        digest.update(row)
    return "sha256:" + digest.hexdigest()


def _generator_from_doc(value: Any) -> GeneratorInfo | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MazeError("generator", f"must be an object, got {_json_type(value)}")
    name = value.get("name")
    params = value.get("params", {})
    seed = value.get("seed")
    if not isinstance(name, str) or not name:
        raise MazeError("generator.name", "must be a non-empty string")
    if not isinstance(params, Mapping):
        raise MazeError("generator.params", f"must be an object, got {_json_type(params)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MazeError("generator.seed", f"must be an integer, got {_json_type(seed)}")
    return GeneratorInfo(name=name, params=dict(params), seed=seed)
