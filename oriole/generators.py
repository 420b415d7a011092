"""Seeded, deterministic maze generators for the families Oriole used (spec §1.4).

Oriole's ``generator.js`` used unseeded ``Math.random()``, so its mazes could never be made
again. Here every maze comes from ``(family, width, height, seed, params)`` through our own
PRNG (:mod:`oriole.rng`), and that tuple is recorded on the maze as ``GeneratorInfo`` so the
exact grid can be rebuilt on any machine. Sizes run from 3 x 3 to 1000 x 1000, width and
height independently; every family starts from an all-empty grid with a wall border, as
Oriole's did, and never touches the border.

This module is the registry and the entry points: each family's parameters, their defaults
and validation, and :func:`generate` / :func:`regenerate`. The carving algorithms are in
:mod:`oriole.maze_families`, the goal rules in :mod:`oriole.goal_placement`. Grids are built
as one flat ``bytearray`` (index ``y * width + x``) for speed and handed to
:class:`~oriole.maze.Maze` as ``bytes`` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from oriole.errors import ValidationError
from oriole.geometry import Tile
from oriole.goal_placement import check_start, default_start, place_goal, window_centre
from oriole.maze import GeneratorInfo, Maze
from oriole.maze_families import (
    Builder,
    Params,
    bordered_grid,
    build_backtracker,
    build_diagonal,
    build_open_field,
    build_pillars,
    build_rooms,
    build_scatter,
)
from oriole.rng import SeededRandom

__all__ = [
    "GENERATORS",
    "GOAL_STRATEGIES",
    "MAX_SEED",
    "MAX_SIZE",
    "MIN_SIZE",
    "RESERVED_PARAMS",
    "GeneratorSpec",
    "ParamSpec",
    "Params",
    "generate",
    "place_goal",
    "regenerate",
]

MIN_SIZE = 3
MAX_SIZE = 1000
#: Seeds are recorded in JSON and in Postgres ``bigint`` columns, hence 63 bits.
MAX_SEED = 2**63 - 1
GOAL_STRATEGIES = ("oriole", "farthest")
#: Keys that ``generate`` adds to ``GeneratorInfo.params`` besides the family's own.
RESERVED_PARAMS = ("goal", "start")

_EMPTY = int(Tile.EMPTY)


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


# --- parameters that depend on the maze size ------------------------------------------------------


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
        build_backtracker,
    ),
    GeneratorSpec(
        "multiple-paths",
        "the backtracker with many clearings (density 0.15), so there are many routes; "
        "Oriole's maze 10",
        (_fraction("density", 0.15, _DENSITY_TEXT),),
        build_backtracker,
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
        build_open_field,
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
        build_pillars,
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
        build_rooms,
        _resolve_rooms,
    ),
    GeneratorSpec(
        "diagonal",
        "nested chevrons of diagonal wall lines with random holes; Oriole's maze 11",
        (
            ParamSpec("spacing", "int", 5, 2, MAX_SIZE, "columns between parallel lines"),
            _fraction("gap_probability", 0.15, _GAP_TEXT),
        ),
        build_diagonal,
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
        build_scatter,
    ),
)

#: Every family by name.
GENERATORS: Mapping[str, GeneratorSpec] = MappingProxyType({s.name: s for s in _SPECS})


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
    origin = None if start is None else check_start(start, width, height)

    grid = bordered_grid(width, height)
    spec.build(grid, width, height, SeededRandom(seed), effective)
    if _EMPTY not in grid:
        cx, cy = window_centre(width, height)
        grid[cy * width + cx] = _EMPTY
    if goal == "farthest" and origin is None:
        origin = default_start(grid, width)
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
