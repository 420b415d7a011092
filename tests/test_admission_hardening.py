"""Admission of external start events: unstorable text, strict JSON types, allowed endpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest

from oriole import generators
from oriole.admission import (
    ANY_ENDPOINT,
    Admitted,
    AllowedEndpoints,
    Rejected,
    admit,
    normalise_endpoint,
)
from oriole.agents.base import AgentFailed
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import load_settings
from oriole.errors import ValidationError
from oriole.experiment import AgentSpec, ExperimentStart, MazeData, ModelOptions, PromptSpec
from oriole.intents import ActionType, AgentIntent, CancelRequest, StartCommand
from oriole.kafka.codec import decode_command, json_object
from oriole.kafka.topics import Topics
from oriole.maze import Maze
from oriole.storable import REPLACEMENT, storable_json, text_problems, without_nul
from providers.factory import ConfiguredAgentFactory, allowed_endpoints
from streams.worker import Worker

MAZE = generators.generate("open-field", 12, 10, seed=3, name="field")
NUL_REASON = "contains a NUL character (\\u0000), which PostgreSQL cannot store"


def find_maze(name: str) -> Maze:
    assert "\x00" not in name, "a name refused for its text must not be looked up"
    if name == MAZE.name:
        return MAZE
    raise ValidationError("maze_name", f"no maze named {name!r}")


def start(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": "run-hard-1",
        "maze_name": "field",
        "agent": {"provider": "builtin", "model": "frontier", "seed": 3},
    }
    doc.update(fields)
    return doc


def ollama(**agent: Any) -> dict[str, Any]:
    return {"provider": "ollama", "model": "qwen2.5:7b", "options": {"num_ctx": 8192}} | agent


def admitted(data: dict[str, Any], **kwargs: Any) -> Admitted:
    verdict = admit(data, find_maze, **kwargs)
    assert isinstance(verdict, Admitted), verdict
    return verdict


def rejected(data: dict[str, Any], **kwargs: Any) -> Rejected:
    verdict = admit(data, find_maze, **kwargs)
    assert isinstance(verdict, Rejected), verdict
    return verdict


def problems(data: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    return dict(rejected(data, **kwargs).problems)


# --- text PostgreSQL cannot store ---------------------------------------------------------


def test_a_nul_in_the_comment_is_refused_naming_the_field() -> None:
    assert problems(start(comment="a\u0000b")) == {"comment": NUL_REASON}


def test_every_nul_is_reported_at_once_one_problem_per_field() -> None:
    data = start(
        comment="a\x00",
        labels={"team": "x\x00y", "ok": "fine"},
        agent=ollama(model="qwen\x00", options={"keep_alive": "5\x00m", "num_ctx": 8192}),
        prompt={"version": "mine", "text": "Find\x00 the goal."},
    )
    verdict = rejected(data)
    assert sorted(verdict.problems) == sorted(
        [
            ("comment", NUL_REASON),
            ("labels.team", NUL_REASON),
            ("agent.model", NUL_REASON),
            ("agent.options.keep_alive", NUL_REASON),
            ("prompt.text", NUL_REASON),
        ]
    )


def test_a_nul_in_a_key_is_refused_and_never_echoed() -> None:
    verdict = rejected(start(labels={"te\x00am": "a"}, **{"col\x00our": "red"}))
    found = dict(verdict.problems)
    assert found["labels.te\\u0000am"] == f"the key {NUL_REASON}"
    assert found["col\\u0000our"] == f"the key {NUL_REASON}"
    # The rejection itself goes to Kafka and PostgreSQL: it must be storable too.
    assert not text_problems([list(problem) for problem in verdict.problems])


def test_a_nul_maze_name_is_refused_without_looking_it_up() -> None:
    assert problems(start(maze_name="fi\x00eld")) == {"maze_name": NUL_REASON}


def test_a_nul_run_id_is_not_echoed_as_the_rejections_key() -> None:
    verdict = rejected(start(run_id="run-\x00"))
    assert verdict.run_id is None
    assert ("run_id", NUL_REASON) in verdict.problems  # (and the pattern it does not match)


def test_nuls_deep_in_an_embedded_maze_are_found() -> None:
    maze = MAZE.to_dict() | {
        "generator": {"name": "open-field", "seed": 3, "params": {"notes": ["ok", "b\x00d"]}}
    }
    found = problems(start(maze_name=None, maze=maze))
    assert found["maze.generator.params.notes[1]"] == NUL_REASON


def test_a_nul_is_reported_along_with_type_problems() -> None:
    found = problems(start(comment="\x00", limits={"max_footsteps": "10"}))
    assert found == {
        "comment": NUL_REASON,
        "limits.max_footsteps": "expected an integer, got a string",
    }


def test_a_lone_surrogate_is_refused_naming_the_field() -> None:
    # json.loads decodes "\ud800" into a str that is not Unicode: PostgreSQL cannot hold it.
    data = json.loads('{"comment": "a\\ud800"}')
    found = problems(start(**data))
    assert found == {
        "comment": "contains a lone surrogate (\\ud800), which is not valid Unicode and "
        "PostgreSQL cannot store"
    }


def test_text_nested_too_deeply_is_refused_not_raised() -> None:
    deep: Any = []
    for _ in range(5000):  # deeper than any recursive walk can go
        deep = [deep]
    assert problems(start(comment=deep)) == {"event": "nested too deeply"}


def test_without_nul_replaces_in_strings_and_keys() -> None:
    value = {"a\x00": ["x\x00y", 1, None, {"k": ("\x00",)}], "b": 2.5, "c": True}
    cleaned = without_nul(value)
    assert cleaned == {
        f"a{REPLACEMENT}": [f"x{REPLACEMENT}y", 1, None, {"k": (REPLACEMENT,)}],
        "b": 2.5,
        "c": True,
    }
    assert value["a\x00"] == ["x\x00y", 1, None, {"k": ("\x00",)}]  # the input is untouched
    assert without_nul("\x00\x00") == REPLACEMENT * 2


def test_without_nul_returns_the_same_object_when_clean() -> None:
    value = {"a": ["x", 1, {"k": ("y",)}], "b": None}
    assert without_nul(value) is value
    text = "no nul here"
    assert without_nul(text) is text
    nested = [{"ok": "yes"}, {"bad": "n\x00"}]
    cleaned = without_nul(nested)
    assert cleaned is not nested
    assert cleaned[0] is nested[0]  # clean parts are shared, not copied


def test_without_nul_leaves_other_characters() -> None:
    text = "tab\there \u00e9 \U0001f600"
    assert without_nul(text) is text


# --- strict types on the wire ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"limits": {"max_footsteps": "10"}},
            "limits.max_footsteps",
            "expected an integer, got a string",
        ),
        (
            {"limits": {"max_footsteps": 10.0}},
            "limits.max_footsteps",
            "expected an integer, got a number (10.0)",
        ),
        ({"start": {"x": "1", "y": 1}}, "start.x", "expected an integer, got a string"),
        (
            {"agent": ollama(options={"temperature": "0.5", "num_ctx": 8192})},
            "agent.options.temperature",
            "expected a number, got a string",
        ),
        (
            {"rules": {"see_through_walls": "true"}},
            "rules.see_through_walls",
            "expected true or false, got a string",
        ),
        (
            {"rules": {"see_through_walls": 1}},
            "rules.see_through_walls",
            "expected true or false, got a number (1)",
        ),
        (
            {"agent": ollama(options={"top_k": True})},
            "agent.options.top_k",
            "expected an integer, got a boolean",
        ),
        ({"comment": 5}, "comment", "expected a string, got a number (5)"),
        (
            {"rules": {"vision_range": "3"}},
            "rules.vision_range",
            "expected an integer, got a string",
        ),
    ],
)
def test_strings_and_floats_are_not_coerced(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    assert problems(start(**changes)) == {field: reason}


def test_all_type_problems_are_reported_at_once() -> None:
    found = problems(
        start(limits={"max_footsteps": "10", "max_actions": 2.0}, start={"x": "1", "y": "1"})
    )
    assert set(found) == {"limits.max_footsteps", "limits.max_actions", "start.x", "start.y"}


def test_json_values_that_are_their_types_are_admitted() -> None:
    verdict = admitted(
        start(
            requested_at="2026-11-24T12:00:00Z",
            limits={"goal_rule": "reached", "max_cost_usd": 1, "max_duration_seconds": 60},
            rules={"see_through_walls": False, "vision_range": 2},
            start={"x": 1, "y": 1},
            agent=ollama(options={"temperature": 0, "num_ctx": 8192}),
        )
    )
    request = verdict.request
    assert request.requested_at == datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert request.limits.goal_rule == "reached"
    assert request.limits.max_cost_usd == 1.0  # an integer is a number
    assert request.agent.options.temperature == 0.0


def test_oriole_own_json_is_admitted_strictly() -> None:
    """What `oriole run --print-event` writes (and kcat publishes) admits as it is."""
    request = ExperimentStart(
        run_id="run-own-1",
        maze=MazeData.from_maze(MAZE),
        agent=AgentSpec(
            provider="ollama",
            model="qwen2.5:7b",
            options=ModelOptions(temperature=0.2, num_ctx=32768, top_p=0.9, seed=4),
        ),
        prompt=PromptSpec(version="mine", text="Find the goal."),
        labels={"batch": "3"},
        requested_at=datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC),
    )
    verdict = admitted(json.loads(request.model_dump_json()))
    assert verdict.request == request


def test_commands_are_decoded_strictly() -> None:
    intent = {
        "type": "agent.intent",
        "schema_version": 1,
        "intent_id": "00000000-0000-0000-0000-000000000123",
        "run_id": "run-1",
        "basis_seq": 5,
        "turn": 1,
        "action": "move_east",
        "sent_at": "2026-11-24T12:00:05Z",
    }
    command = decode_command(dict(intent))
    assert isinstance(command, AgentIntent)
    assert command.action is ActionType.MOVE_EAST
    assert command.sent_at == datetime(2026, 11, 24, 12, 0, 5, tzinfo=UTC)
    for field, value in (("basis_seq", "5"), ("turn", 1.0)):
        with pytest.raises(pydantic.ValidationError) as info:
            decode_command(intent | {field: value})
        assert [e["loc"] for e in info.value.errors()] == [(field,)]
    cancel = {"type": "run.cancel", "run_id": "run-1", "reason": 7}
    with pytest.raises(pydantic.ValidationError, match="reason"):
        decode_command(cancel)
    assert isinstance(decode_command(cancel | {"reason": "stop"}), CancelRequest)


def test_a_forwarded_start_decodes_strictly() -> None:
    verdict = admitted(start(agent=ollama()))
    command = StartCommand(request=verdict.request)
    decoded = decode_command(json_object(command.model_dump_json().encode()))
    assert decoded == command


# --- endpoints the operator did not configure --------------------------------------------

ALLOWED = AllowedEndpoints.only(
    {"ollama": ["http://10.0.0.7:11434/"], "openai": ["https://key:pw@llm.internal/v1"]}
)


def test_a_configured_endpoint_is_admitted_with_or_without_its_slash() -> None:
    for endpoint in ("http://10.0.0.7:11434", "http://10.0.0.7:11434/"):
        admitted(start(agent=ollama(endpoint=endpoint)), endpoints=ALLOWED)


def test_an_endpoint_that_is_not_configured_is_refused_at_admission() -> None:
    found = problems(start(agent=ollama(endpoint="http://evil.example:11434")), endpoints=ALLOWED)
    assert found == {
        "agent.endpoint": "'http://evil.example:11434' is not one of the configured ollama "
        "endpoints: http://10.0.0.7:11434; set ORIOLE_OLLAMA_ENDPOINTS or leave it out"
    }


def test_the_refusal_shows_no_secret() -> None:
    agent = {"provider": "openai", "model": "gpt-4o", "endpoint": "https://u:hunter2@x.io/v1?k=s3"}
    reason = problems(start(agent=agent), endpoints=ALLOWED)["agent.endpoint"]
    assert "configured openai endpoints: https://llm.internal/v1;" in reason
    assert "ORIOLE_OPENAI_ENDPOINTS" in reason
    for secret in ("hunter2", "s3", "pw", "key:"):
        assert secret not in reason


def test_a_provider_without_configured_endpoints_may_name_none() -> None:
    agent = {"provider": "bedrock", "model": "amazon.nova-lite-v1:0", "endpoint": "https://x.io"}
    reason = problems(start(agent=agent), endpoints=ALLOWED)["agent.endpoint"]
    assert "configured bedrock endpoints: none;" in reason


def test_without_a_restriction_any_endpoint_is_admitted() -> None:
    agent = ollama(endpoint="http://anywhere:11434")
    admitted(start(agent=agent))  # callers that pass no endpoints keep working
    admitted(start(agent=agent), endpoints=ANY_ENDPOINT)
    # Built-in agents ignore an endpoint (with a warning): nothing to refuse.
    builtin = {"provider": "builtin", "model": "frontier", "endpoint": "http://anywhere"}
    assert (
        "built-in agents ignore agent.endpoint"
        in admitted(start(agent=builtin), endpoints=ALLOWED).warnings
    )


def test_the_settings_decide_and_the_factory_agrees(tmp_path: Path) -> None:
    settings = load_settings(
        env_file=None, home=tmp_path, ollama_endpoints=["http://10.0.0.7:11434"]
    )
    allowed = allowed_endpoints(settings)
    assert allowed.refusal("ollama", "http://10.0.0.7:11434/") is None
    reason = allowed.refusal("ollama", "http://evil:11434")
    assert reason is not None
    assert problems(start(agent=ollama(endpoint="http://evil:11434")), endpoints=allowed) == {
        "agent.endpoint": reason
    }
    spec = AgentSpec.model_validate(ollama(endpoint="http://evil:11434"))
    with pytest.raises(AgentFailed) as info:
        ConfiguredAgentFactory(settings).check_endpoint(spec)
    assert info.value.error_class == "EndpointNotAllowed"
    assert str(reason) in info.value.message
    ConfiguredAgentFactory(settings).check_endpoint(spec.model_copy(update={"endpoint": None}))
    free = load_settings(env_file=None, home=tmp_path, llm_endpoint_allowlist_only=False)
    assert allowed_endpoints(free).refusal("ollama", "http://evil:11434") is None


def test_the_worker_admits_with_the_settings_endpoints(tmp_path: Path) -> None:
    settings = load_settings(
        env_file=None, home=tmp_path, ollama_endpoints=["http://10.0.0.7:11434"]
    )
    worker = Worker.create(
        settings, "127.0.0.1:9", Topics(), MazeCatalogue.from_settings(settings).get
    )
    assert worker.processor.endpoints == allowed_endpoints(settings)
    assert worker.processor.endpoints.refusal("ollama", "http://evil:11434") is not None


def test_endpoints_compare_as_the_settings_store_them() -> None:
    assert normalise_endpoint("http://h:1/v1/") == "http://h:1/v1"
    assert normalise_endpoint("http://h:1/v1") == "http://h:1/v1"


@pytest.mark.parametrize(
    "value",
    [
        {"comment": "emoji \U0001f600 and \u00e9"},
        {"comment": "a literal \\u0000 and \\ud800 typed as text"},
        {"grid": [[0, 1], [2, 0]], "n": None, "ok": True},
    ],
)
def test_storable_json_leaves_clean_values_alone(value: Any) -> None:
    assert storable_json(value) == (json.dumps(value), [])


def test_storable_json_replaces_and_reports() -> None:
    text, found = storable_json({"k\x00": ["\ud800", "ok"]})
    assert json.loads(text) == {f"k{REPLACEMENT}": [REPLACEMENT, "ok"]}
    assert found == [
        ("k\\u0000", f"the key {NUL_REASON}"),
        (
            "k\\u0000[0]",
            "contains a lone surrogate (\\ud800), which is not valid Unicode and PostgreSQL "
            "cannot store",
        ),
    ]
