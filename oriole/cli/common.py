"""What the CLI commands share: the process's settings, maze catalogue and broker, parsing."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from rich.console import Console

from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import Settings, load_settings
from oriole.environment.stack_file import Connection, connection
from oriole.errors import ValidationError
from oriole.geometry import Position
from oriole.kafka import prepare_clients
from oriole.kafka.clients import configure_kafka_security
from oriole.kafka.topics import Topics

#: Every command and group takes -h as well as --help, as other command lines do.
HELP_OPTIONS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


@cache
def settings() -> Settings:
    current = load_settings()
    # Every Kafka client of every command (services and clients alike) uses its TLS/SASL.
    configure_kafka_security(current)
    return current


@cache
def catalogue() -> MazeCatalogue:
    """The one maze catalogue of this process (services share it)."""
    return MazeCatalogue.from_settings(settings())


@cache
def stack_connection() -> Connection:
    """The broker this command talks to (configured, or the local `oriole up`'s).

    The Kafka clients are prepared for it here, once per process: this is the only place,
    with `oriole up` starting its own broker, that applies the process-wide client patches.
    """
    current = connection(settings())
    prepare_clients(current.tansu)
    return current


def stack_topics(conn: Connection) -> Topics:
    """The topics of the stack ``conn`` points at (its prefix; the configured partitions)."""
    configured = Topics.from_settings(settings())
    return Topics(conn.topic_prefix, configured.partitions, configured.replication_factor)


def forget_process_state() -> None:
    """Drop the cached settings, catalogue and connection (for tests that change the env)."""
    for cached in (settings, catalogue, stack_connection):
        cached.cache_clear()


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


def parse_labels(items: list[str], option: str = "--label") -> dict[str, str]:
    """``key=value`` labels (values stay text), or a ValidationError naming the option."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(option, f"expected key=value, got {item!r}")
        labels[key] = value
    return labels


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), so it can be piped."""
    console.file.write(json.dumps(data, indent=2) + "\n")
    console.file.flush()
