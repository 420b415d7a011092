"""Helpers shared by the CLI commands: settings, the maze catalogue, argument parsing."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from rich.console import Console

from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import Settings, load_settings
from oriole.errors import ValidationError
from oriole.geometry import Position
from oriole.kafka.clients import configure_kafka_security

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


@cache
def settings() -> Settings:
    current = load_settings()
    # Every Kafka client of every command (services and clients alike) uses its TLS/SASL.
    configure_kafka_security(current)
    return current


def catalogue() -> MazeCatalogue:
    current = settings()
    return MazeCatalogue(current.home / "mazes", current.maze_dirs)


def parse_point(text: str, option: str) -> Position:
    """``"X,Y"`` -> Position, or a ValidationError naming the option."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise ValidationError(option, f"expected X,Y with two integers, got {text!r}")
    x, y = (int(p) for p in parts)
    if x < 0 or y < 0:
        raise ValidationError(option, f"coordinates must not be negative, got {text!r}")
    return Position(x, y)


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (numbers, true, null)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(option, f"expected key=value, got {item!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), so it can be piped."""
    console.file.write(json.dumps(data, indent=2) + "\n")
    console.file.flush()
