"""Maze generator requests: a bad one names the field and the allowed range, defaults
follow each other, and the registry describes every family."""

from __future__ import annotations

import pytest

from oriole.errors import ValidationError
from oriole.generators import GENERATORS, MAX_SEED, generate


@pytest.mark.parametrize(
    ("call", "field", "reason"),
    [
        (
            lambda: generate("maze", 10, 10, 1),
            "family",
            "unknown generator 'maze'; choose one of backtracker, multiple-paths, open-field, "
            "pillars, rooms, diagonal, scatter",
        ),
        (
            lambda: generate("backtracker", 2, 10, 1),
            "width",
            "must be an integer between 3 and 1000, got 2",
        ),
        (
            lambda: generate("backtracker", 10, 1001, 1),
            "height",
            "must be an integer between 3 and 1000, got 1001",
        ),
        (
            lambda: generate("backtracker", 10, 10, -1),
            "seed",
            f"must be an integer between 0 and {MAX_SEED}, got -1",
        ),
        (
            lambda: generate("backtracker", 10, 10, 1, density=1.5),
            "density",
            "must be a number between 0 and 1, got 1.5",
        ),
        (
            lambda: generate("backtracker", 10, 10, 1, density=-0.1),
            "density",
            "must be a number between 0 and 1, got -0.1",
        ),
        (
            lambda: generate("backtracker", 10, 10, 1, density="0.3"),
            "density",
            "must be a number between 0 and 1, got str '0.3'",
        ),
        (
            lambda: generate("backtracker", 10, 10, 1, density=float("nan")),
            "density",
            "must be a number between 0 and 1, got nan",
        ),
        (
            lambda: generate("pillars", 10, 10, 1, density=0.3),
            "density",
            "unknown parameter for generator 'pillars'; it takes spacing, margin, gap_probability",
        ),
        (
            lambda: generate("pillars", 10, 10, 1, spacing=1),
            "spacing",
            "must be an integer between 2 and 1000, got 1",
        ),
        (
            lambda: generate("pillars", 10, 10, 1, spacing=2.0),
            "spacing",
            "must be an integer between 2 and 1000, got float 2.0",
        ),
        (
            lambda: generate("diagonal", 10, 10, 1, gap_probability=2),
            "gap_probability",
            "must be a number between 0 and 1, got 2",
        ),
        (
            lambda: generate("rooms", 10, 10, 1, rooms=0),
            "rooms",
            "must be an integer between 1 and 100, got 0",
        ),
        (
            lambda: generate("rooms", 60, 40, 1, max_room=39),
            "max_room",
            "must be an integer between 1 and 38 for a 60x40 maze (the shorter interior side), "
            "got 39",
        ),
        (
            lambda: generate("rooms", 60, 60, 1, min_room=9, max_room=8),
            "min_room",
            "must be an integer between 1 and max_room (8), got 9",
        ),
        (
            lambda: generate("open-field", 10, 10, 1, goal="random"),
            "goal",
            "unknown strategy 'random'; use one of oriole, farthest",
        ),
        (
            lambda: generate("open-field", 10, 10, 1, start=(10, 2)),
            "start",
            "(10,2) is outside the maze (10x10: x 0..9, y 0..9)",
        ),
        (
            lambda: generate("open-field", 10, 10, 1, start="a1"),  # type: ignore[arg-type]
            "start",
            "must be an (x, y) pair of integers, got 'a1'",
        ),
    ],
)
def test_bad_requests_name_the_field_and_the_allowed_range(
    call: object, field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as err:
        call()  # type: ignore[operator]
    assert err.value.field == field
    assert err.value.reason == reason
    assert str(err.value) == f"{field}: {reason}"


def test_min_room_alone_raises_the_default_max_room() -> None:
    maze = generate("rooms", 60, 60, 1, min_room=20)
    assert maze.generator is not None
    assert (maze.generator.params["min_room"], maze.generator.params["max_room"]) == (20, 20)


def test_registry_describes_every_family() -> None:
    for name, spec in GENERATORS.items():
        assert spec.name == name
        assert spec.description
        for param in spec.params:
            assert param.description
            assert param.default is None or param.minimum <= param.default <= param.maximum
    assert GENERATORS["backtracker"].defaults() == {"density": 0.3}
    assert GENERATORS["multiple-paths"].defaults() == {"density": 0.15}
    assert GENERATORS["diagonal"].defaults() == {"spacing": 5, "gap_probability": 0.15}
    assert GENERATORS["scatter"].defaults() == {"block_fraction": 0.25}
    assert GENERATORS["open-field"].defaults() == {"wall_fraction": 0.05}
    with pytest.raises(TypeError):
        GENERATORS["x"] = GENERATORS["rooms"]  # type: ignore[index]
