"""How Oriole's messages look on Kafka: JSON values, run-id keys, and typed headers.

Headers: ``oriole-type`` (the message ``type``), ``oriole-schema-version`` and
``oriole-trace-id`` (the trace id of the message's context: 32 hex digits), so that tools
like kcat can filter without decoding JSON; with tracing on also W3C ``traceparent`` (and
``tracestate``). `oriole.telemetry.tracing` decides the trace headers, here in the one place
every Oriole message is encoded.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic
from pydantic import Field

from oriole.errors import OrioleError
from oriole.events import DeadLetter, RunEvent, parse_run_event
from oriole.intents import AgentFailure, AgentIntent, CancelRequest, StartCommand
from oriole.schema_base import SCHEMA_VERSION, RunId, WireModel
from oriole.storable import without_nul
from oriole.telemetry.dead_letters import DEAD_LETTERS
from oriole.telemetry.tracing import TRACE_HEADER as TRACE_HEADER
from oriole.telemetry.tracing import trace_headers

log = logging.getLogger("oriole.kafka")

Headers = list[tuple[str, bytes]]

TYPE_HEADER = "oriole-type"
VERSION_HEADER = "oriole-schema-version"
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
    """The message as it goes to Kafka. Its trace headers carry the current trace context;
    without one, the trace id derived from ``trace_id`` (default: the key, a run id)."""
    kind = str(getattr(message, "type", type(message).__name__))
    value = message.model_dump_json(by_alias=True).encode()
    headers: Headers = [
        (TYPE_HEADER, kind.encode()),
        (VERSION_HEADER, str(getattr(message, "schema_version", SCHEMA_VERSION)).encode()),
    ]
    headers.extend(trace_headers(trace_id or key))
    if len(value) > MAX_MESSAGE_BYTES - _ENVELOPE_ALLOWANCE:
        # Refused here, where the caller can still say which record it came from; the
        # producer would only fail the send later, with the whole batch.
        raise MessageTooLarge(
            f"a {kind} message of {len(value)} bytes for {topic} is over the limit of "
            f"{MAX_MESSAGE_BYTES - _ENVELOPE_ALLOWANCE} bytes"
        )
    return Outgoing(topic, None if key is None else key.encode(), value, headers)


class MessageTooLarge(OrioleError, ValueError):
    """A message Oriole would produce is over the topics' size limit."""


#: Largest message on any Oriole topic: the producers' request limit, the consumers' fetch
#: limit and the topics' ``max.message.bytes``; a consumer dead-letters a bigger one unread.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Room kept under the limit for the key, headers and the record's own framing.
_ENVELOPE_ALLOWANCE = 64 * 1024
#: Bytes of the original message a dead letter keeps (base64 makes them a third larger).
DEAD_LETTER_KEEP_BYTES = 1024 * 1024


class UndecodableMessage(Exception):
    """The bytes are not a JSON object at all: a case for the dead-letter topic."""


def json_object(value: bytes | None) -> dict[str, Any]:
    """The JSON object a message holds, or :class:`UndecodableMessage` saying why not."""
    if value is None:
        raise UndecodableMessage("empty message (null value)")
    _check_size(value)
    try:
        # Decoded here, not by json.loads, which would guess UTF-16 or UTF-32 from the bytes.
        data = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UndecodableMessage(
            f"not valid UTF-8 JSON: byte {exc.start} cannot be decoded"
        ) from None
    except json.JSONDecodeError as exc:
        raise UndecodableMessage(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise UndecodableMessage("not usable JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise UndecodableMessage(f"not usable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UndecodableMessage(f"expected a JSON object, got {type(data).__name__}")
    return data


_RUN_ID: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(RunId)


def run_id_of_key(key: bytes | None) -> str | None:
    """A record's key as the run id it names, or None: clients often key a start by its run
    id, and a rejection of a start whose value cannot be read should still name it."""
    if not key:
        return None
    try:
        return _RUN_ID.validate_python(key.decode(), strict=True)
    except (UnicodeDecodeError, pydantic.ValidationError):
        return None


Command = StartCommand | AgentIntent | AgentFailure | CancelRequest

_COMMANDS: dict[str, type[pydantic.BaseModel]] = {
    "run.start": StartCommand,
    "agent.intent": AgentIntent,
    "agent.failure": AgentFailure,
    "run.cancel": CancelRequest,
}


def decode_command(data: dict[str, Any]) -> Command:
    """A command from a decoded JSON object; pydantic's ValidationError if it is invalid.

    Validated strictly, as the JSON it came from: any Kafka client can write the command
    topic, and ``"10"`` is not an integer. (JSON mode still reads times, UUIDs and enum
    values from their strings.)
    """
    kind = data.get("type")
    model = _COMMANDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise UndecodableMessage(
            f"unknown command type {kind!r}; expected one of {sorted(_COMMANDS)}"
        )
    try:
        document = json.dumps(data)
    except RecursionError:
        raise UndecodableMessage("not usable JSON: nested too deeply") from None
    return model.model_validate_json(document, strict=True)  # type: ignore[return-value]


_COMMAND_ADAPTER: pydantic.TypeAdapter[Command] = pydantic.TypeAdapter(
    Annotated[Command, Field(discriminator="type")]
)
#: A NUL as JSON writes it; its presence sends a message down the slow, cleaning path.
_ESCAPED_NUL = b"\\u0000"


def command_from_message(value: bytes | None) -> Command:
    """A command from a message of the command or control topic, validated strictly.

    Text in commands comes from agents, whose models may say anything: a NUL in it (which
    PostgreSQL cannot store) becomes U+FFFD instead of failing the run. Everything else is
    parsed and validated in one pass.
    """
    _check_size(value)
    if value is None:
        raise UndecodableMessage("empty message (null value)")
    if _ESCAPED_NUL in value:
        return decode_command(without_nul(json_object(value)))
    return _COMMAND_ADAPTER.validate_json(value, strict=True)


def decode_run_event(value: bytes | None) -> RunEvent:
    """A run event from a message (over the size limit: refused unread)."""
    _check_size(value)
    return parse_run_event(value or b"")


def _check_size(value: bytes | None) -> None:
    if value is not None and len(value) > MAX_MESSAGE_BYTES:
        raise UndecodableMessage(
            f"message of {len(value)} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes"
        )


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BaseException,
) -> DeadLetter:
    original = value or b""
    kept = original[:DEAD_LETTER_KEEP_BYTES]
    return DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=None if key is None else base64.b64encode(key[:DEAD_LETTER_KEEP_BYTES]).decode(),
        value=base64.b64encode(kept).decode(),
        value_size=len(original),
        value_kept=len(kept),
        error_class=type(error).__name__,
        error=_error_text(error),
    )


def _error_text(error: BaseException) -> str:
    """The error's message, bounded; never fails (a hostile ``__str__`` cannot stop us)."""
    try:
        text = str(error)
    except Exception:
        text = f"<{type(error).__name__} with an unprintable message>"
    return text[:10_000]


def dead_letter_for(record: Any, error: BaseException, deadletter_topic: str) -> Outgoing:
    """The dead-letter message for a consumed record that could not be used (logged, and
    counted in ``oriole_dead_letters_total``: every service dead-letters through here)."""
    DEAD_LETTERS.labels(record.topic).inc()
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
    trace = None if record.key is None else record.key.decode(errors="replace")
    # Keyed by the original key, byte for byte, so the letter sits beside its record's peers.
    return dataclasses.replace(encode(deadletter_topic, letter, trace), key=record.key)
