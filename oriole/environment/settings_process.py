"""The settings of the process itself: where its state lives, how it logs, what it takes on.

Sections of :class:`oriole.environment.settings.Settings`, which combines them into one flat
model; a section holds fields and their per-field validators only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode

from oriole.environment.settings_values import OptionalPath, expand_path, split_list, upper_case

__all__ = ["DEFAULT_HOME", "HomeSettings", "LogLevel", "ProcessSettings", "metrics_port_value"]

DEFAULT_HOME = Path("~/.oriole")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class HomeSettings(BaseModel):
    """Oriole's state directory and the TOML file read (they decide where the rest comes from)."""

    config_file: OptionalPath = Field(
        default=None,
        description=(
            "TOML file to read settings from. If unset, <home>/config.toml is read when it "
            "exists. After loading, holds the TOML file that was actually read (or None)."
        ),
    )
    home: Path = Field(
        default=DEFAULT_HOME,
        description="Oriole's state directory: default config file, logs, embedded PostgreSQL.",
    )

    @field_validator("home", mode="before")
    @classmethod
    def _empty_home_is_default(cls, value: object) -> object:
        return DEFAULT_HOME if isinstance(value, str) and not value.strip() else value

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return expand_path(value)

    @property
    def log_dir(self) -> Path:
        """Where background processes (embedded broker, database) write their logs."""
        return self.home / "logs"


def metrics_port_value(value: object) -> object:
    """``off``, a port or ``host:port`` as one canonical text (None: the command's default).

    A port alone binds the loopback address, like the gateway's default: metrics name models
    and batches, so another address (``0.0.0.0:9464`` in a container) is a deliberate choice.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r}: expected off, a port 0-65535 or host:port")
    text = str(value).strip().lower()
    if not text or text == "default":
        return None
    if text == "off":
        return "off"
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r}: expected off, a port 0-65535 or host:port")
    if ":" in text and not host:
        raise ValueError(f"{value!r}: the host before ':' is empty")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, [::]:9464")
    return f"{host}:{int(port)}" if host else str(int(port))


class ProcessSettings(BaseModel):
    """Logging, how many runs a worker takes on from which maze folders, where metrics go."""

    log_level: Annotated[LogLevel, BeforeValidator(upper_case)] = Field(
        default="INFO",
        description="Minimum level of log records: DEBUG, INFO, WARNING or ERROR (any case).",
    )
    log_format: Literal["console", "json"] = Field(
        default="console",
        description="'console' for people, 'json' for log collectors (one object per line).",
    )
    max_concurrent_runs: int = Field(
        default=50,
        ge=1,
        le=10000,
        description="Most runs one worker process executes at the same time.",
    )
    maze_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Extra folders of maze JSON files. In the environment: a JSON list or "
            "paths separated by ':'."
        ),
    )

    metrics_port: Annotated[str | None, BeforeValidator(metrics_port_value)] = Field(
        default=None,
        description=(
            "Where `oriole worker`, `oriole projector` and `oriole gateway` serve /metrics "
            "and /healthz: 'off', a port on 127.0.0.1 (0: a free port, logged), or "
            "host:port. Unset: worker 9464, projector 9465, gateway none (its own port "
            "serves both). `oriole up` serves everything on the gateway."
        ),
    )

    def metrics_listen(self, default_port: int | None) -> tuple[str, int] | None:
        """(host, port) of the metrics listener of a command whose default is ``default_port``
        (None: no listener unless configured); None: no listener."""
        value = self.metrics_port
        if value == "off" or (value is None and default_port is None):
            return None
        if value is None:
            return "127.0.0.1", int(default_port or 0)
        host, _, port = value.rpartition(":")
        return (host.strip("[]") or "127.0.0.1"), int(port)

    @field_validator("maze_dirs", mode="before")
    @classmethod
    def _split_maze_dirs(cls, value: object) -> object:
        """Accept a JSON list or an os.pathsep-separated string (like PATH)."""
        return split_list(value, os.pathsep)

    @field_validator("maze_dirs", mode="after")
    @classmethod
    def _expand_maze_dirs(cls, value: list[Path]) -> list[Path]:
        return [expand_path(path) for path in value]
