"""Shared building blocks of every wire schema: strict models, ids, points, times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from oriole.errors import ValidationError
from oriole.geometry import Position

#: Current version of every schema in this package; bump per schema on incompatible change.
SCHEMA_VERSION: Literal[1] = 1

RunId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(
        description=(
            "Run identifier: 1-128 characters of letters, digits and . _ : -, starting with a "
            "letter or digit. Every event of the run is keyed by it."
        ),
        examples=["run-2f9c1e4a"],
    ),
]


class WireModel(BaseModel):
    """Immutable, strict about unknown fields, so a typo is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(WireModel):
    """A tile coordinate: x grows east, y grows south, (0,0) is the north-west corner."""

    x: int = Field(ge=0, le=999)
    y: int = Field(ge=0, le=999)

    @classmethod
    def of(cls, position: tuple[int, int]) -> Point:
        return cls(x=position[0], y=position[1])

    def position(self) -> Position:
        return Position(self.x, self.y)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:16]}"


def field_problems(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    """Pydantic's errors as ``(dotted.field, reason)`` pairs a user can act on."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, ValidationError):
            # Our own validators know the exact field (e.g. `grid_data[3][7]`): keep it.
            loc = f"{loc}.{original.field}" if loc else original.field
            message = original.reason
        loc = loc or "event"
        if error["type"] == "missing":
            message = "missing (required)"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] in _EXPECTED:
            message = f"expected {_EXPECTED[error['type']]}, got {_json_kind(error['input'])}"
        problems.append((loc, message))
    return problems


#: Wrong-type errors (strict input is never coerced) and what the field wants, in JSON terms.
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
}


def _json_kind(value: object) -> str:
    """What a JSON value is, for "expected X, got Y" (numbers shown: they hold no secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def model_json_schema(model: type[BaseModel] | Any) -> dict[str, Any]:
    """JSON Schema in serialisation mode: what a publisher must send."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_json_schema(mode="validation")
    adapter = pydantic.TypeAdapter(model)
    return adapter.json_schema(mode="validation")
