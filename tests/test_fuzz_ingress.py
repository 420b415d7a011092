"""Fuzzing the ingress: whatever arrives on a topic is refused with a typed error, never
with any other exception (which would crash the consumer that read it).

The contract, per entry point:

* ``json_object(bytes)``: a dict, or :class:`UndecodableMessage`;
* ``decode_command(dict)``: a command, or ``UndecodableMessage`` / pydantic's
  ``ValidationError``;
* ``parse_run_event(bytes)``: a run event, or pydantic's ``ValidationError``;
* ``admit(dict, find_maze)``: ``Admitted`` or ``Rejected``, never an exception; and what it
  admits has real integers where integers belong and no NUL in any text.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oriole import generators
from oriole.admission import Admitted, Rejected, admit
from oriole.errors import ValidationError
from oriole.events import parse_run_event
from oriole.kafka.codec import UndecodableMessage, decode_command, json_object
from oriole.maze import Maze

#: Typed refusals; anything else escaping a decoder is a bug.
DECODE_ERRORS = (UndecodableMessage, pydantic.ValidationError)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Any text, lone surrogates and NUL included (PostgreSQL can store neither).
any_text = st.text(st.characters(exclude_categories=()), max_size=30) | st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "10", "-1", "1e400", "NaN", "null", "true", "[]", "{}"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | any_text
)
json_ish = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=15,
)


def _tiny_maze() -> dict[str, Any]:
    return generators.generate("open-field", 8, 8, seed=1, name="tiny").to_dict()


TINY = _tiny_maze()


def valid_start() -> dict[str, Any]:
    return {
        "type": "experiment.start",
        "run_id": "fuzz-1",
        "maze": TINY,
        "agent": {"provider": "builtin", "model": "frontier", "seed": 1},
        "limits": {"max_footsteps": 20, "max_actions": 40},
        "rules": {"vision_range": 3},
        "comment": "fuzz",
        "labels": {"k": "v"},
    }


#: Paths into a start event where a fuzzed value goes.
START_PATHS = [
    ("run_id",),
    ("type",),
    ("schema_version",),
    ("maze",),
    ("maze_name",),
    ("start",),
    ("start", "x"),
    ("limits", "max_footsteps"),
    ("limits", "max_duration_seconds"),
    ("limits", "goal_rule"),
    ("rules", "vision_range"),
    ("agent",),
    ("agent", "provider"),
    ("agent", "model"),
    ("agent", "seed"),
    ("agent", "endpoint"),
    ("agent", "options"),
    ("prompt",),
    ("comment",),
    ("labels",),
    ("labels", "k"),
    ("rerun_of",),
    ("maze", "grid_data"),
    ("maze", "width"),
    ("maze", "name"),
]


def with_value(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[path[-1]] = value
    return doc


def find_maze(name: str) -> Maze:
    raise ValidationError("maze_name", f"unknown maze {name!r}")


def nested(depth: int, leaf: Any = 0) -> Any:
    """``[[[...leaf...]]]`` ``depth`` deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def assert_admission_contract(data: dict[str, Any]) -> Admitted | Rejected:
    verdict = admit(data, find_maze)
    assert isinstance(verdict, Admitted | Rejected)
    if isinstance(verdict, Admitted):
        stored = verdict.request.model_dump_json()
        assert "\\u0000" not in stored, "admitted a NUL, which the archive cannot store"
    return verdict


# --- bytes --------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_are_undecodable(value: bytes) -> None:
    with contextlib.suppress(UndecodableMessage):
        assert isinstance(json_object(value), dict)


@FUZZ
@given(json_ish)
def test_any_json_document_decodes_or_is_undecodable(document: Any) -> None:
    value = json.dumps(document).encode()
    with contextlib.suppress(UndecodableMessage):
        json_object(value)


@FUZZ
@given(st.binary(max_size=2000) | json_ish.map(lambda d: json.dumps(d).encode()))
def test_any_bytes_parse_as_a_run_event_or_fail_validation(value: bytes) -> None:
    with contextlib.suppress(pydantic.ValidationError):
        parse_run_event(value)


HOSTILE_BYTES = {
    "100k-[": b"[" * 100_000,
    "100k-{": b"{" * 100_000,
    "50k-objects": b'{"a":' * 50_000,
    "deep-valid-list": b"[" * 50_000 + b"]" * 50_000,
    "deep-valid-field": b'{"run_id": "x", "labels": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "5000-digit-int": b'{"limits": {"max_footsteps": 1' + b"0" * 5000 + b"}}",
    "huge-float": b'{"x": 1e999999}',
    "bad-utf8": b"\xff\xfe{}",
    "lone-surrogate-escape": b'{"comment": "\\ud800"}',
    "nul-escape": b'{"comment": "a\\u0000b"}',
}


@pytest.mark.parametrize("value", HOSTILE_BYTES.values(), ids=HOSTILE_BYTES.keys())
def test_hostile_bytes_through_the_start_path(value: bytes) -> None:
    """What the maze processor does with a start record: decode, then admit."""
    try:
        data = json_object(value)
    except UndecodableMessage:
        return
    assert_admission_contract(data)


@pytest.mark.parametrize("value", HOSTILE_BYTES.values(), ids=HOSTILE_BYTES.keys())
def test_hostile_bytes_as_a_run_event(value: bytes) -> None:
    """What the projector, the runners and the gateway do with a record of the run log."""
    with pytest.raises(DECODE_ERRORS):
        parse_run_event(value)
    with contextlib.suppress(*DECODE_ERRORS):
        decode_command(json_object(value))


# --- decoded structures -------------------------------------------------------------------


@FUZZ
@given(json_ish)
def test_admission_of_any_document_is_a_verdict(document: Any) -> None:
    if isinstance(document, dict):
        assert_admission_contract(document)


@FUZZ
@given(st.sampled_from(START_PATHS), json_ish)
def test_admission_of_a_start_with_one_bad_field_is_a_verdict(
    path: tuple[str, ...], value: Any
) -> None:
    assert_admission_contract(with_value(valid_start(), path, value))


INTEGER_PATHS = [
    ("limits", "max_footsteps"),
    ("limits", "max_actions"),
    ("rules", "vision_range"),
    ("agent", "seed"),
]
COMMAND_FIELDS = ["run_id", "basis_seq", "turn", "action", "request", "arguments", "error"]
COMMAND_FIELDS += ["schema_version", "intent_id", "sent_at", "depth", "reason"]


@FUZZ
@given(st.sampled_from(INTEGER_PATHS), st.integers(min_value=1, max_value=50))
def test_a_string_where_an_integer_belongs_is_rejected(path: tuple[str, ...], number: int) -> None:
    verdict = assert_admission_contract(with_value(valid_start(), path, str(number)))
    assert isinstance(verdict, Rejected), f"{'.'.join(path)}={str(number)!r} was admitted"


@FUZZ
@given(st.sampled_from([("comment",), ("labels", "k"), ("run_id",), ("agent", "model")]))
def test_nul_in_text_is_never_admitted(path: tuple[str, ...]) -> None:
    assert_admission_contract(with_value(valid_start(), path, "evil\x00text"))


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("path", [("labels",), ("comment",), ("agent", "options"), ("maze",)])
def test_deeply_nested_fields_are_rejected(path: tuple[str, ...], depth: int) -> None:
    verdict = assert_admission_contract(with_value(valid_start(), path, nested(depth)))
    assert isinstance(verdict, Rejected)


@FUZZ
@given(
    st.sampled_from(["run.start", "agent.intent", "agent.failure", "run.cancel", "nope", None]),
    st.dictionaries(st.sampled_from(COMMAND_FIELDS), json_ish, max_size=6),
)
def test_any_command_decodes_or_is_refused(kind: str | None, fields: dict[str, Any]) -> None:
    data: dict[str, Any] = {**fields, "type": kind}
    with contextlib.suppress(*DECODE_ERRORS):
        decode_command(data)


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("kind", ["run.start", "agent.intent", "agent.failure", "run.cancel"])
def test_deeply_nested_commands_are_refused(kind: str, depth: int) -> None:
    with pytest.raises(DECODE_ERRORS):
        decode_command(
            {"type": kind, "run_id": "r", "arguments": nested(depth), "request": nested(depth)}
        )


def test_a_string_basis_seq_is_not_an_integer() -> None:
    intent = {
        "type": "agent.intent",
        "run_id": "r",
        "basis_seq": "10",
        "turn": 1,
        "action": "move_north",
    }
    with pytest.raises(DECODE_ERRORS):
        decode_command(intent)
