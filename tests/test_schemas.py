"""`oriole.schemas`: a JSON Schema for every message Oriole reads or writes, and the batch spec."""

from __future__ import annotations

from typing import get_args

from oriole.batch_spec import BatchSpec
from oriole.intents import StartCommand
from oriole.kafka.codec import Command
from oriole.schemas import SCHEMAS, json_schemas


def test_every_command_on_the_command_topic_has_a_schema() -> None:
    commands = set(get_args(Command))
    assert StartCommand in commands
    assert commands <= set(SCHEMAS.values())
    kinds = {
        schema["properties"]["type"]["const"]
        for schema in json_schemas().values()
        if "type" in schema.get("properties", {})
    }
    assert kinds >= {"run.start", "agent.intent", "agent.failure", "run.cancel"}


def test_the_start_command_schema_embeds_the_start_event() -> None:
    assert SCHEMAS["run-start"] is StartCommand
    schema = json_schemas()["run-start"]
    assert schema["$id"] == "https://oriole.dev/schemas/run-start.schema.json"
    assert schema["title"] == "StartCommand"
    assert "request" in schema["required"]
    assert schema["properties"]["type"]["const"] == "run.start"
    target = schema["properties"]["request"]["$ref"].rsplit("/", 1)[-1]
    assert target == "ExperimentStart"
    assert "agent" in schema["$defs"][target]["required"]


def test_the_batch_spec_schema_is_exported() -> None:
    assert SCHEMAS["batch-spec"] is BatchSpec
    schema = json_schemas()["batch-spec"]
    assert schema["$id"] == "https://oriole.dev/schemas/batch-spec.schema.json"
    assert schema["title"] == "BatchSpec"
    # `mazes` may be left out by a batch of forks only (the spec's own check, which the
    # schema cannot say): its description does
    assert set(schema["required"]) == {"name", "agents"}
    assert "fork" in schema["properties"]["mazes"]["description"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert properties["name"]["description"]
    # an agent is a name or an object; a maze one of three kinds; starts one or a list
    assert len(properties["agents"]["items"]["oneOf"]) == 2
    assert len(properties["mazes"]["items"]["oneOf"]) == 3
    single, many = properties["starts"]["anyOf"]
    assert many["type"] == "array" and many["items"] == single
    # the sweep takes exactly the model options, each as a list of values
    sweep = schema["$defs"]["OptionSweep"]["properties"]
    assert set(sweep) == set(schema["$defs"]["ModelOptions"]["properties"])
    temperature = sweep["temperature"]["anyOf"][0]
    assert temperature["type"] == "array" and temperature["items"]["maximum"] == 2
