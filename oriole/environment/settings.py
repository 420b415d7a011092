"""Oriole's settings: environment, ``.env`` file, TOML file, defaults — in that order.

Every setting has an environment variable ``ORIOLE_<NAME>`` (e.g. ``ORIOLE_GATEWAY_PORT``).
Values are looked up, highest priority first, in:

1. keyword arguments to :func:`load_settings` (used by the CLI for its flags and by tests);
2. the process environment (and ``ORIOLE_<NAME>_FILE`` for secrets);
3. the ``.env`` file in the working directory;
4. the TOML file: ``ORIOLE_CONFIG_FILE`` if set (it must exist), else
   ``<home>/config.toml`` if that file exists;
5. the defaults of the sections.

:class:`Settings` is one flat model built from one section per concern (home, Kafka,
PostgreSQL, gateway, process, model providers: the ``settings_*`` modules beside this one),
so every setting keeps its one ``ORIOLE_<NAME>`` however the code is organised.
:func:`load_settings` reports a bad value as :class:`SettingsError`, an
:class:`oriole.errors.ValidationError` whose ``field`` is the environment variable, so the
user knows what to change whichever source the value came from. ``docs/configuration.md``
lists every setting.

The names other modules use are imported from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
from pydantic import model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oriole.environment.settings_checks import (
    ROOT_FALLBACK_PG_DIR,
    database_tls_problems,
    kafka_security_problems,
    pg_dir_problem,
    secret_values,
)
from oriole.environment.settings_database import DatabaseSettings
from oriole.environment.settings_gateway import GatewaySettings, GatewayToken
from oriole.environment.settings_kafka import KafkaSettings
from oriole.environment.settings_llm import LlmSettings
from oriole.environment.settings_process import HomeSettings, LogLevel, ProcessSettings
from oriole.environment.settings_sources import (
    SECRET_SETTINGS,
    SettingsError,
    describe_error,
    field_problems_message,
    pg_dir_message,
    settings_sources,
)
from oriole.environment.settings_tracing import TracingSettings
from oriole.environment.settings_values import ENV_PREFIX, env_var_name

__all__ = [
    "ENV_PREFIX",
    "ROOT_FALLBACK_PG_DIR",
    "SECRET_SETTINGS",
    "GatewayToken",
    "LogLevel",
    "Settings",
    "SettingsError",
    "env_var_name",
    "load_settings",
    "secret_values",
]

DEFAULT_ENV_FILE = Path(".env")


# pydantic orders the fields from the last base to the first: home, Kafka, PostgreSQL,
# gateway, process, model providers, tracing, as in docs/configuration.md.
class Settings(
    TracingSettings,
    LlmSettings,
    ProcessSettings,
    GatewaySettings,
    DatabaseSettings,
    KafkaSettings,
    HomeSettings,
    BaseSettings,
):
    """All of Oriole's configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        # Other tools' variables in a shared .env are none of our business; ORIOLE_ ones are.
        dotenv_filtering="match_prefix",
        case_sensitive=False,
        # Typos in .env or TOML files are errors, not silently ignored settings.
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Put the TOML file below the environment and ``.env``; ``ORIOLE_<NAME>_FILE``
        secrets rank with the environment (pydantic's secrets-dir source is not used)."""
        return settings_sources(settings_cls, init_settings, env_settings, dotenv_settings)

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        """Refuse TLS/SASL combinations that cannot work, all at once, naming each variable."""
        problems = kafka_security_problems(self) + database_tls_problems(self)
        if problems:
            raise ValueError(field_problems_message(problems))
        return self

    @model_validator(mode="after")
    def _check_pg_dir(self) -> Settings:
        """Refuse an explicit data directory under /root as soon as the settings load.

        The default ``<home>/pgdata`` is checked only when used (:attr:`resolved_pg_dir`),
        so that commands that never start PostgreSQL work as root with the default home.
        """
        if self.embedded_database and self.embedded_pg_dir is not None:
            problem = pg_dir_problem(self.embedded_pg_dir, from_home=False)
            if problem is not None:
                raise ValueError(pg_dir_message(problem))
        return self

    @property
    def resolved_pg_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL.

        The default is ``<home>/pgdata``; when that is under /root (root with the default
        home) it is :data:`ROOT_FALLBACK_PG_DIR` instead. An explicit directory under /root
        raises :class:`SettingsError` naming ``ORIOLE_EMBEDDED_PG_DIR``.
        """
        explicit = self.embedded_pg_dir
        if explicit is None:
            path = self.home / "pgdata"
            if pg_dir_problem(path, from_home=True) is not None:
                return ROOT_FALLBACK_PG_DIR
            return path
        problem = pg_dir_problem(explicit, from_home=False)
        if problem is not None:
            raise SettingsError([(env_var_name("embedded_pg_dir"), problem)])
        return explicit


def load_settings(*, env_file: str | Path | None = DEFAULT_ENV_FILE, **overrides: Any) -> Settings:
    """Build :class:`Settings` from all sources, with ``overrides`` winning over all of them.

    ``env_file`` is the ``.env`` file to read (``None``: none). Raises :class:`SettingsError`
    (an :class:`oriole.errors.ValidationError`) naming the ``ORIOLE_...`` variable at fault.
    """
    try:
        return Settings(_env_file=env_file, **overrides)
    except pydantic.ValidationError as exc:
        raise SettingsError(
            [problem for err in exc.errors() for problem in describe_error(err)]
        ) from None
