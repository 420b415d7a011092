"""JSON Schemas of everything Oriole reads from or writes to Kafka, for external clients.

Also the batch spec (`batch-spec`), the document ``oriole batch`` reads from TOML and a
batch request carries, the batch commands clients publish and the batch event log.
"""

from __future__ import annotations

from typing import Any

from oriole.batch_events import BatchCommand, BatchEvent
from oriole.batch_spec import BatchSpec
from oriole.events import DeadLetter, ExperimentRejected, RunEvent
from oriole.experiment import ExperimentStart
from oriole.intents import AgentFailure, AgentIntent, CancelRequest, StartCommand
from oriole.schema_base import model_json_schema

#: File stem -> the model (or union) it describes.
SCHEMAS: dict[str, Any] = {
    "experiment-start": ExperimentStart,
    "run-event": RunEvent,
    "run-start": StartCommand,
    "agent-intent": AgentIntent,
    "agent-failure": AgentFailure,
    "run-cancel": CancelRequest,
    "experiment-rejected": ExperimentRejected,
    "dead-letter": DeadLetter,
    "batch-spec": BatchSpec,
    "batch-command": BatchCommand,
    "batch-event": BatchEvent,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every schema, keyed by file stem, with a stable ``$id`` and title."""
    result: dict[str, dict[str, Any]] = {}
    for stem, model in SCHEMAS.items():
        schema = model_json_schema(model)
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://oriole.dev/schemas/{stem}.schema.json",
            **schema,
        }
        schema.setdefault("title", stem)
        result[stem] = schema
    return result
