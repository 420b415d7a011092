"""`oriole.schemas`: a JSON Schema for every message Oriole reads or writes on Kafka."""

from __future__ import annotations

from typing import get_args

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
        if "properties" in schema
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
