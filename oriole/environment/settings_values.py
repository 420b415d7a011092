"""How a setting's text becomes a value, shared by every settings section.

Values arrive as text from the environment, ``.env`` and ``_FILE`` secrets, so the sections
share one meaning for "empty", one spelling of the variable that names a setting and one
parser for list and JSON values; an error always names that variable, never the Python field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode

__all__ = [
    "ENV_PREFIX",
    "CommaList",
    "OptionalPath",
    "OptionalSecret",
    "OptionalText",
    "blank_is_unset",
    "env_var_name",
    "expand_path",
    "json_object",
    "lower_case",
    "split_list",
    "upper_case",
]

ENV_PREFIX = "ORIOLE_"


def env_var_name(field_name: str) -> str:
    """The environment variable that sets ``field_name`` (``gateway_port`` -> ``ORIOLE_...``)."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def expand_path(path: Path) -> Path:
    """``~`` expanded and made absolute, so that relative paths do not depend on later cwd."""
    return Path(os.path.abspath(path.expanduser()))


def _expand_if_set(path: Path | None) -> Path | None:
    return None if path is None else expand_path(path)


def blank_is_unset(value: object) -> object:
    """``ORIOLE_X=`` (empty or blank) means "not set", not an empty name, key or path."""
    return None if isinstance(value, str) and not value.strip() else value


def upper_case(value: object) -> object:
    """Names spelled in upper case (log levels, Kafka protocols) are accepted in any case."""
    return value.strip().upper() if isinstance(value, str) else value


def lower_case(value: object) -> object:
    """Names spelled in lower case (libpq's sslmode) are accepted in any case."""
    return value.strip().lower() if isinstance(value, str) else value


def split_list(value: object, separator: str) -> object:
    """A list setting from the environment: a JSON list, or items joined by ``separator``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not a valid JSON list: {exc}") from None
    return [part.strip() for part in text.split(separator) if part.strip()]


def _split_commas(value: object) -> object:
    return split_list(value, ",")


def json_object(value: object, example: str) -> object:
    """A dict setting from the environment: a JSON object, empty meaning ``{}``.

    The error never quotes the text (it may hold secrets), only the expected shape.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"is not a JSON object like {example}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"must be a JSON object like {example}")
    return parsed


#: A path that may be unset; empty means unset (not the working directory), "~" is expanded.
OptionalPath = Annotated[
    Path | None, BeforeValidator(blank_is_unset), AfterValidator(_expand_if_set)
]
#: Text that may be unset; empty means unset.
OptionalText = Annotated[str | None, BeforeValidator(blank_is_unset)]
#: A secret that may be unset; empty means unset.
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(blank_is_unset)]
#: A list given as a JSON list or as items separated by commas (URLs, host names).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]
