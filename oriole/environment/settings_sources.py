"""Where settings come from, in which order, and how a bad one is reported.

pydantic-settings reads the keyword arguments, the environment and ``.env``; this module adds
the ``ORIOLE_<NAME>_FILE`` secrets beside them and the TOML file below them (which file
depends on those higher sources), and turns pydantic's errors into :class:`SettingsError`,
which names the ``ORIOLE_...`` variable to change whichever source the value came from.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)

from oriole.environment.settings_process import DEFAULT_HOME
from oriole.environment.settings_values import ENV_PREFIX, env_var_name, expand_path
from oriole.errors import ValidationError

__all__ = [
    "CONFIG_FILE_NAME",
    "FILE_SUFFIX",
    "SECRET_SETTINGS",
    "SettingsError",
    "describe_error",
    "field_problems_message",
    "pg_dir_message",
    "settings_sources",
]

CONFIG_FILE_NAME = "config.toml"
#: These decide which TOML file is read, so the file itself cannot set them.
_NOT_IN_TOML = ("home", "config_file")

#: Settings that hold secrets: each can also be read from the file named by
#: ``ORIOLE_<NAME>_FILE`` (container secret stores), and their values are redacted from
#: logs, error messages and events (:func:`oriole.environment.settings_checks.secret_values`).
SECRET_SETTINGS: tuple[str, ...] = (
    "database_url",
    "gateway_tokens",
    "kafka_sasl_password",
    "kafka_ssl_key_password",
    "ollama_api_key",
    "openai_api_key",
)
FILE_SUFFIX = "_FILE"

#: Prefix of the model-level pg-dir error, so it can be attributed to ORIOLE_EMBEDDED_PG_DIR.
_PG_DIR_MARKER = "embedded_pg_dir: "
#: Prefix of each line of a model-level error about one field: ``@<field>: <reason>``.
_FIELD_MARKER = "@"


class SettingsError(ValidationError):
    """One or more bad settings; ``field``/``reason`` describe the first one.

    ``problems`` lists every ``(ORIOLE_VARIABLE, reason)`` pair so that a user can fix them
    all in one go.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            raise ValueError("SettingsError needs at least one problem")
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        field, reason = problems[0]
        super().__init__(field, reason)
        if len(problems) > 1:
            lines = "\n".join(f"  {name}: {why}" for name, why in problems)
            self.args = (f"{len(problems)} invalid settings:\n{lines}",)


class _FixedValuesSource(PydanticBaseSettingsSource):
    """A source with precomputed values."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = dict(values)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


class _SecretFilesSource(_FixedValuesSource):
    """``ORIOLE_<NAME>_FILE=/run/secrets/x`` for every secret setting (Docker, Kubernetes).

    Looked up in the environment and in ``.env`` (whose strict key check would otherwise
    call the ``_FILE`` keys unknown settings). The file's content, without its trailing
    newline, is the value. Setting both ``ORIOLE_<NAME>`` and ``ORIOLE_<NAME>_FILE`` is an
    error: which one wins would be a guess.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        secrets: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        plain = [_env_vars(env), _env_vars(dotenv)]
        for field_name in SECRET_SETTINGS:
            variable = env_var_name(field_name) + FILE_SUFFIX
            key = variable.lower()
            path_text = None
            for source in (env, dotenv):
                values = _env_vars(source)
                if key in values and path_text is None:
                    path_text = values[key]
                if isinstance(source, EnvSettingsSource) and key in source.env_vars:
                    # Not a setting of its own: hide it from .env's unknown-key check.
                    source.env_vars = {k: v for k, v in source.env_vars.items() if k != key}
            if path_text is None or not path_text.strip():
                continue
            if any(
                (values.get(env_var_name(field_name).lower()) or "").strip() for values in plain
            ):
                problems.append(
                    (
                        variable,
                        f"both {env_var_name(field_name)} and {variable} are set; keep only one",
                    )
                )
                continue
            path = expand_path(Path(path_text.strip()))
            try:
                content = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                problems.append((variable, f"cannot read {path}: {reason}"))
                continue
            secrets[field_name] = content.rstrip("\r\n")
        if problems:
            raise SettingsError(problems)
        super().__init__(settings_cls, secrets)


def _env_vars(source: PydanticBaseSettingsSource) -> dict[str, str | None]:
    """The (lower-cased) variables an environment or ``.env`` source read."""
    if isinstance(source, EnvSettingsSource):
        return dict(source.env_vars)
    return {}


def _first_value(sources: tuple[PydanticBaseSettingsSource, ...], name: str) -> Any:
    """The value of setting ``name`` from the highest-priority source that has one."""
    for source in sources:
        values = source()
        if values.get(name) is not None:
            return values[name]
    return None


def _locate_toml_file(sources: tuple[PydanticBaseSettingsSource, ...]) -> Path | None:
    """The TOML file to read: explicit ``config_file`` (must exist) or ``<home>/config.toml``."""
    explicit = _first_value(sources, "config_file")
    if explicit not in (None, ""):
        path = expand_path(Path(str(explicit)))
        if not path.is_file():
            raise SettingsError([(env_var_name("config_file"), f"file not found: {path}")])
        candidate = path
    else:
        home = _first_value(sources, "home")
        home_path = expand_path(Path(str(home)) if home not in (None, "") else DEFAULT_HOME)
        candidate = home_path / CONFIG_FILE_NAME
        if not candidate.is_file():
            return None
    try:
        with candidate.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            [(env_var_name("config_file"), f"{candidate} is not valid TOML: {exc}")]
        ) from None
    except OSError as exc:
        raise SettingsError(
            [(env_var_name("config_file"), f"cannot read {candidate}: {exc.strerror}")]
        ) from None
    for name in _NOT_IN_TOML:
        if name in document:
            raise SettingsError(
                [(env_var_name(name), f"cannot be set in the TOML file {candidate}")]
            )
    return candidate


def settings_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources, highest priority first: keyword arguments, ``_FILE`` secrets, the
    environment, ``.env``, then the TOML file (pydantic's secrets-dir source is not used).

    The TOML file read is recorded as ``config_file``, above every other source.
    """
    secret_files = _SecretFilesSource(settings_cls, env_settings, dotenv_settings)
    higher = (init_settings, secret_files, env_settings, dotenv_settings)
    toml_path = _locate_toml_file(higher)
    if toml_path is None:
        return higher
    return (
        _FixedValuesSource(settings_cls, {"config_file": toml_path}),
        *higher,
        TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
    )


def field_problems_message(problems: list[tuple[str, str]]) -> str:
    """A model validator's error about several fields, which :func:`describe_error` splits."""
    return "\n".join(f"{_FIELD_MARKER}{name}: {why}" for name, why in problems)


def pg_dir_message(problem: str) -> str:
    """A model validator's error about ``embedded_pg_dir``, attributed to its variable."""
    return _PG_DIR_MARKER + problem


def describe_error(error: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(ORIOLE_VARIABLE, reason)`` pairs for one pydantic error (a model-level one may
    list several fields, one ``@field: reason`` line each)."""
    loc = error.get("loc", ())
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if error.get("type") == "extra_forbidden":
        name = str(loc[0]) if loc else "?"
        if name.upper().startswith(ENV_PREFIX):
            name = name[len(ENV_PREFIX) :]
        return [(env_var_name(name), f"unknown setting {name!r} (check the spelling)")]
    if not loc and message.startswith(_FIELD_MARKER):
        problems = []
        for line in message[len(_FIELD_MARKER) :].split("\n" + _FIELD_MARKER):
            name, _, reason = line.partition(": ")
            problems.append((env_var_name(name), reason))
        return problems
    if not loc and message.startswith(_PG_DIR_MARKER):
        return [(env_var_name("embedded_pg_dir"), message[len(_PG_DIR_MARKER) :])]
    if not loc:
        return [("ORIOLE_*", message)]
    return [(env_var_name(str(loc[0])), message)]
