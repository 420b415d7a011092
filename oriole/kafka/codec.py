"""How Oriole's messages look on Kafka: JSON values, run-id keys, and typed headers.

Headers: ``oriole-type`` (the message ``type``), ``oriole-schema-version`` and
``oriole-trace-id`` (the run id unless the caller has a better one), so that tools like
kcat can filter without decoding JSON.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from oriole.events import DeadLetter, RunEvent, parse_run_event
from oriole.experiment import ExperimentStart
from oriole.intents import AgentFailure, AgentIntent, CancelRequest
from oriole.schema_base import SCHEMA_VERSION, WireModel

log = logging.getLogger("oriole.kafka")

Headers = list[tuple[str, bytes]]

TYPE_HEADER = "oriole-type"
VERSION_HEADER = "oriole-schema-version"
TRACE_HEADER = "oriole-trace-id"
REPLAY_HEADER = "oriole-replay"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for ``producer.send``."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


def encode(
    topic: str, message: WireModel, key: str | None, trace_id: str | None = None
) -> Outgoing:
    kind = str(getattr(message, "type", type(message).__name__))
    value = message.model_dump_json(by_alias=True).encode()
    headers: Headers = [
        (TYPE_HEADER, kind.encode()),
        (VERSION_HEADER, str(getattr(message, "schema_version", SCHEMA_VERSION)).encode()),
    ]
    trace = trace_id or key
    if trace:
        headers.append((TRACE_HEADER, trace.encode()))
    return Outgoing(topic, None if key is None else key.encode(), value, headers)


class UndecodableMessage(Exception):
    """The bytes are not a JSON object at all: a case for the dead-letter topic."""


def json_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise UndecodableMessage("empty message (null value)")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableMessage(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UndecodableMessage(f"expected a JSON object, got {type(data).__name__}")
    return data


class StartCommand(WireModel):
    """A validated start, forwarded to the command partition that owns the run.

    External clients may key (or not key) start events however their client library
    partitions; forwarding re-keys by run id so one processor owns each run.
    """

    type: Literal["run.start"] = "run.start"
    schema_version: Literal[1] = SCHEMA_VERSION
    request: ExperimentStart

    @property
    def run_id(self) -> str:
        return self.request.run_id


Command = StartCommand | AgentIntent | AgentFailure | CancelRequest

_COMMANDS: dict[str, type[pydantic.BaseModel]] = {
    "run.start": StartCommand,
    "agent.intent": AgentIntent,
    "agent.failure": AgentFailure,
    "run.cancel": CancelRequest,
}


def decode_command(data: dict[str, Any]) -> Command:
    """A command from a decoded JSON object; pydantic's ValidationError if it is invalid."""
    kind = data.get("type")
    model = _COMMANDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise UndecodableMessage(
            f"unknown command type {kind!r}; expected one of {sorted(_COMMANDS)}"
        )
    return model.model_validate(data)  # type: ignore[return-value]


def decode_run_event(value: bytes) -> RunEvent:
    return parse_run_event(value)


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BaseException,
) -> DeadLetter:
    return DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=None if key is None else base64.b64encode(key).decode(),
        value=base64.b64encode(value or b"").decode(),
        error_class=type(error).__name__,
        error=str(error)[:10_000],
    )


def dead_letter_for(record: Any, error: BaseException, deadletter_topic: str) -> Outgoing:
    """The dead-letter message for a consumed record that could not be used (logged)."""
    log.warning(
        "message %s[%s]@%s to the dead-letter topic: %s",
        record.topic,
        record.partition,
        record.offset,
        error,
    )
    letter = dead_letter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        error=error,
    )
    key = None if record.key is None else record.key.decode(errors="replace")
    return encode(deadletter_topic, letter, key)
