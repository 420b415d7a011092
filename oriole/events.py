"""The run event log: every event of a run, numbered 1, 2, 3, ... without gaps.

Each event is an envelope (event id, run id, seq, type, schema version, time) around a typed
payload. Decisions (`action.requested`, `model.called`) and outcomes (`action.completed`)
are separate events; the run always ends with exactly one `run.finished`.
Also here: the rejection and dead-letter records that the start topic's consumers emit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AwareDatetime, ConfigDict, Field

from oriole.experiment import RunSpec
from oriole.intents import ActionType, ModelCall
from oriole.schema_base import SCHEMA_VERSION, Point, RunId, WireModel, utc_now

#: ``(x, y, code)`` of one tile seen, in the order vision produced it.
SeenTileData = tuple[int, int, int]


class StopReason(StrEnum):
    GOAL_SEEN = "goal_seen"
    GOAL_REACHED = "goal_reached"
    MAX_FOOTSTEPS = "max_footsteps"
    MAX_ACTIONS = "max_actions"
    MAX_DURATION = "max_duration"
    BUDGET = "budget"
    LOOP_DETECTED = "loop_detected"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_success(self) -> bool:
        return self in (StopReason.GOAL_SEEN, StopReason.GOAL_REACHED)


class _Envelope(WireModel):
    event_id: uuid.UUID
    run_id: RunId
    seq: int = Field(ge=1, description="Per-run sequence number: 1-based and gap-free.")
    schema_version: Literal[1] = SCHEMA_VERSION
    time: AwareDatetime


# --- payloads ------------------------------------------------------------------------------


class DecisionPayload(WireModel):
    """What the agent asked for (copied from its intent)."""

    intent_id: uuid.UUID
    turn: int = Field(ge=1)
    action: ActionType
    reasoning: str | None = None
    depth: int | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    problem: str | None = None
    assistant_message: str | None = None
    call_id: str | None = None
    sent_at: datetime


class OutcomePayload(WireModel):
    """What the maze made of the decision."""

    step: int = Field(ge=1, description="1-based action number within the run.")
    turn: int = Field(ge=1)
    action: ActionType
    success: bool
    from_: Point = Field(alias="from")
    to: Point
    tiles_seen: list[SeenTileData] = Field(
        default_factory=list, description="Vision after the action, in ray order."
    )
    goal_seen: bool = Field(description="The goal is among `tiles_seen`.")
    goal_reached: bool = Field(description="The agent stands on the goal.")
    footsteps: int = Field(ge=0, description="Successful moves so far, this one included.")
    message: str
    result: dict[str, Any] = Field(description="The tool result exactly as the agent got it.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Inheritance(WireModel):
    """What a fork starts with: its parent's outcomes up to the fork point, and usage.

    Carried whole by the fork's `run.started`, so that the fork's log alone rebuilds its
    state (the agent runner and the viewer never read the parent); ``state_hash`` lets
    ``oriole replay --verify`` check it against the parent's archive (`oriole.fork`).
    """

    parent_seq: int = Field(ge=1, description="The parent's last event the fork inherits.")
    lived_seq: int = Field(
        ge=1,
        description="That event's seq over the lineage (as `parent_seq`, unless the parent is "
        "itself a fork): the fork's events continue the numbering seeded agents draw from.",
    )
    outcomes: list[OutcomePayload] = Field(
        default_factory=list, description="The parent's outcomes of steps 1..after_step."
    )
    model_calls: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    state_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the inherited state (spec.fork_of, parent_seq, outcomes, usage).",
    )


class RunStartedPayload(WireModel):
    spec: RunSpec
    warnings: list[str] = Field(default_factory=list)
    origin: str | None = Field(
        default=None,
        max_length=500,
        description="The start-topic record the run was requested by "
        "(topic:partition:offset@timestamp): a start read twice is recognised, not refused.",
    )
    inherited: Inheritance | None = Field(
        default=None, description="A fork's inherited state (present exactly when spec.fork_of)."
    )


class ErrorInfo(WireModel):
    error_class: str
    message: str


class RunFinishedPayload(WireModel):
    stop_reason: StopReason
    detail: str
    success: bool = Field(description="The goal was found under the run's goal rule.")
    goal_seen: bool
    goal_reached: bool
    position: Point
    footsteps: int = Field(ge=0)
    actions: int = Field(ge=0)
    turns: int = Field(ge=0)
    model_calls: int = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0)
    duration_seconds: float = Field(ge=0)
    error: ErrorInfo | None = None


class CancelPayload(WireModel):
    reason: str | None = None
    requested_by: str | None = None


# --- events --------------------------------------------------------------------------------


class RunStarted(_Envelope):
    type: Literal["run.started"] = "run.started"
    payload: RunStartedPayload


class ModelCalled(_Envelope):
    type: Literal["model.called"] = "model.called"
    payload: ModelCall


class ActionRequested(_Envelope):
    type: Literal["action.requested"] = "action.requested"
    payload: DecisionPayload


class ActionCompleted(_Envelope):
    type: Literal["action.completed"] = "action.completed"
    payload: OutcomePayload


class CancelRequested(_Envelope):
    type: Literal["run.cancel_requested"] = "run.cancel_requested"
    payload: CancelPayload


class RunFinished(_Envelope):
    type: Literal["run.finished"] = "run.finished"
    payload: RunFinishedPayload


RunEvent = Annotated[
    RunStarted | ModelCalled | ActionRequested | ActionCompleted | CancelRequested | RunFinished,
    Field(discriminator="type"),
]

RUN_EVENT_TYPES: tuple[type[_Envelope], ...] = (
    RunStarted,
    ModelCalled,
    ActionRequested,
    ActionCompleted,
    CancelRequested,
    RunFinished,
)

_run_event_adapter: pydantic.TypeAdapter[RunEvent] = pydantic.TypeAdapter(RunEvent)


#: Events are records of what happened: read under the rules they were written with (a
#: start admitted before a rule was added stays readable; see `RunLimits`).
_RECORDED = {"recorded": True}


def parse_run_event(data: str | bytes) -> RunEvent:
    """Decode one run event from JSON; raises pydantic's ValidationError on bad input."""
    return _run_event_adapter.validate_json(data, context=_RECORDED)


def run_event_from_dict(data: Any) -> RunEvent:
    return _run_event_adapter.validate_python(data, context=_RECORDED)


def dump_run_event(event: RunEvent) -> bytes:
    return event.model_dump_json(by_alias=True).encode()


# --- records about the start topic ----------------------------------------------------------


#: How a refused start whose run id exists begins its reason (batches rely on it).
DUPLICATE_RUN_ID = "duplicate run id"


class FieldProblem(WireModel):
    field: str
    reason: str


class ExperimentRejected(WireModel):
    """An experiment-start event that could not start a run, and why."""

    type: Literal["experiment.rejected"] = "experiment.rejected"
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str | None = Field(description="The requested run id, if one could be read.")
    problems: list[FieldProblem] = Field(min_length=1)
    original: str = Field(description="The start event as received (truncated to 64 KiB).")
    origin: str | None = Field(
        default=None,
        description="The start-topic record refused (topic:partition:offset@timestamp).",
    )
    time: AwareDatetime = Field(default_factory=utc_now)


class DeadLetter(WireModel):
    """A message no consumer could decode, kept with its original bytes."""

    type: Literal["dead_letter"] = "dead_letter"
    schema_version: Literal[1] = SCHEMA_VERSION
    source_topic: str
    partition: int
    offset: int
    key: str | None = Field(description="Message key, base64.")
    value: str = Field(
        description="Original message bytes, base64 (only the first `value_kept` bytes of a "
        "message larger than that, so that the dead letter itself fits on the topic)."
    )
    value_size: int | None = Field(
        default=None, ge=0, description="Size of the original message in bytes."
    )
    value_kept: int | None = Field(
        default=None, ge=0, description="Bytes of the original message in `value`."
    )
    error_class: str
    error: str
    time: AwareDatetime = Field(default_factory=utc_now)
