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

__all__ = ["DEFAULT_HOME", "HomeSettings", "LogLevel", "ProcessSettings"]

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


class ProcessSettings(BaseModel):
    """Logging, and how many runs a worker takes on from which maze folders."""

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

    @field_validator("maze_dirs", mode="before")
    @classmethod
    def _split_maze_dirs(cls, value: object) -> object:
        """Accept a JSON list or an os.pathsep-separated string (like PATH)."""
        return split_list(value, os.pathsep)

    @field_validator("maze_dirs", mode="after")
    @classmethod
    def _expand_maze_dirs(cls, value: list[Path]) -> list[Path]:
        return [expand_path(path) for path in value]
