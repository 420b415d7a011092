"""The PostgreSQL settings: which server (or the embedded one), its pool, TLS and batches.

A section of :class:`oriole.environment.settings.Settings`; whether the TLS settings work
together, and where the embedded server may keep its data, is checked in
:mod:`oriole.environment.settings_checks`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, field_validator

from oriole.environment.settings_values import (
    OptionalPath,
    blank_is_unset,
    env_var_name,
    lower_case,
)

__all__ = ["DatabaseSettings", "DatabaseSslMode"]

DatabaseSslMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]

_DSN_SCHEMES = ("postgresql://", "postgres://")


class DatabaseSettings(BaseModel):
    """Where the archive and the projections live."""

    database_url: str = Field(
        default="",
        repr=False,
        description=(
            "PostgreSQL DSN (postgresql://user:password@host:port/db). Empty: start the "
            "embedded PostgreSQL server in embedded_pg_dir."
        ),
    )
    database_pool_min_size: int = Field(
        default=1, ge=0, le=100, description="Connections the pool keeps open when idle."
    )
    database_pool_max_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Most connections the pool opens; at least database_pool_min_size.",
    )
    database_command_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Longest a single SQL statement may run."
    )
    database_sslmode: Annotated[
        DatabaseSslMode | None, BeforeValidator(lower_case), BeforeValidator(blank_is_unset)
    ] = Field(
        default=None,
        description=(
            "TLS to PostgreSQL: disable, prefer, require, verify-ca or verify-full; unset: "
            "the DSN's own ?sslmode= (libpq default prefer). Overrides the DSN."
        ),
    )
    database_sslrootcert: OptionalPath = Field(
        default=None,
        description="PEM file of the CA that signed the server certificate (verify-ca/-full).",
    )
    projection_batch_size: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most run events the projector writes in one transaction.",
    )
    embedded_pg_dir: OptionalPath = Field(
        default=None,
        description=(
            "Data directory of the embedded PostgreSQL (default <home>/pgdata). Must not be "
            "under /root."
        ),
    )

    @field_validator("database_url", mode="after")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(_DSN_SCHEMES):
            # Never echo the value: a DSN may hold a password.
            raise ValueError(
                "must start with postgresql:// or postgres:// (or be empty for the "
                "embedded PostgreSQL)"
            )
        return value

    @field_validator("database_pool_max_size", mode="after")
    @classmethod
    def _check_pool_sizes(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("database_pool_min_size")
        if isinstance(minimum, int) and value < minimum:
            raise ValueError(
                f"is {value}, below {env_var_name('database_pool_min_size')}={minimum}"
            )
        return value

    @property
    def embedded_database(self) -> bool:
        """True when Oriole must start its own PostgreSQL server."""
        return not self.database_url
