"""Commands sent to the maze processor, the single writer of each run's event log.

Every command travels on the command topic (``<prefix>.runs.commands``) keyed by its run id:
a `StartCommand` (an admitted start, forwarded), `AgentIntent`, `AgentFailure` and
`CancelRequest` (also what clients publish on the control topic).

Agents never write run events themselves: they send an `AgentIntent` (what the model asked
for, with its usage) and the maze processor turns it into numbered events through the pure
rules. ``basis_seq`` is the sequence number of the last event the agent saw, which makes a
redelivered or stale intent recognisable and harmless.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from oriole.experiment import ExperimentStart
from oriole.geometry import Direction
from oriole.schema_base import SCHEMA_VERSION, RunId, WireModel, utc_now


class ActionType(StrEnum):
    """Everything an agent can do in one step (Oriole's `action_type`)."""

    MOVE_NORTH = "move_north"
    MOVE_SOUTH = "move_south"
    MOVE_EAST = "move_east"
    MOVE_WEST = "move_west"
    RECALL = "recall_movement_history"
    NO_TOOL_CALL = "no_tool_call"
    INVALID_TOOL_CALL = "invalid_tool_call"

    @property
    def direction(self) -> Direction | None:
        return _MOVE_DIRECTIONS.get(self)

    @property
    def is_move(self) -> bool:
        return self in _MOVE_DIRECTIONS


_MOVE_DIRECTIONS: dict[ActionType, Direction] = {
    ActionType.MOVE_NORTH: Direction.NORTH,
    ActionType.MOVE_SOUTH: Direction.SOUTH,
    ActionType.MOVE_EAST: Direction.EAST,
    ActionType.MOVE_WEST: Direction.WEST,
}


def move_action(direction: Direction) -> ActionType:
    return ActionType(f"move_{direction.value}")


class RetryRecord(WireModel):
    """One failed attempt of a model call that was tried again (or given up)."""

    attempt: int = Field(ge=1)
    endpoint: str | None = Field(default=None, max_length=2000)
    error_class: str = Field(min_length=1, max_length=200)
    message: str = Field(max_length=2000)
    status: int | None = Field(default=None, description="HTTP status, if there was one.")
    wait_ms: float = Field(default=0.0, ge=0, description="Backoff before the next attempt.")


class ModelCall(WireModel):
    """Usage and timings of one model call: the unit of token and cost accounting."""

    call_id: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=50)
    model: str = Field(min_length=1, max_length=200)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    duration_ms: float | None = Field(default=None, ge=0)
    prompt_eval_ms: float | None = Field(default=None, ge=0)
    eval_ms: float | None = Field(default=None, ge=0)
    tokens_per_second: float | None = Field(default=None, ge=0)
    done_reason: str | None = Field(default=None, max_length=100)
    attempts: int = Field(default=1, ge=1, description="1 + the number of retries.")
    endpoint: str | None = Field(default=None, max_length=2000)
    context_trimmed: int = Field(
        default=0, ge=0, description="Oldest tool results dropped to fit the context window."
    )
    tool_calls: int | None = Field(
        default=None, ge=0, description="Tool calls in the reply (some may not be executed)."
    )
    retries: list[RetryRecord] = Field(
        default_factory=list, description="The failed attempts before the one that counted."
    )


class StartCommand(WireModel):
    """A validated start, forwarded to the command partition that owns the run.

    External clients may key (or not key) start events however their client library
    partitions; forwarding re-keys by run id so one processor owns each run.
    """

    type: Literal["run.start"] = "run.start"
    schema_version: Literal[1] = SCHEMA_VERSION
    request: ExperimentStart
    origin: str | None = Field(
        default=None, max_length=500, description="The start-topic record it was admitted from."
    )
    inherited: dict[str, Any] | None = Field(
        default=None,
        description="A fork's inherited state (an `Inheritance` of `oriole.events`, which "
        "this module cannot name: the events module builds on it).",
    )

    @property
    def run_id(self) -> str:
        return self.request.run_id


class AgentIntent(WireModel):
    """One action the agent asks for, in reply to the run's event ``basis_seq``."""

    type: Literal["agent.intent"] = "agent.intent"
    schema_version: Literal[1] = SCHEMA_VERSION
    intent_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    run_id: RunId
    basis_seq: int = Field(ge=1)
    turn: int = Field(ge=1)
    action: ActionType
    reasoning: str | None = Field(default=None, max_length=100_000)
    depth: int | None = Field(default=None, description="Recall depth; required for recalls.")
    tool_name: str | None = Field(default=None, max_length=200)
    arguments: dict[str, Any] | None = Field(
        default=None, description="The tool arguments exactly as the model gave them."
    )
    problem: str | None = Field(
        default=None, max_length=2000, description="Why an invalid tool call is invalid."
    )
    assistant_message: str | None = Field(default=None, max_length=1_000_000)
    model_call: ModelCall | None = Field(
        default=None,
        description="Usage of the model call that produced this intent; "
        "attached to the first intent of that call only.",
    )
    sent_at: datetime = Field(default_factory=utc_now)


class AgentFailure(WireModel):
    """The agent could not go on (provider error, tool support missing, ...)."""

    type: Literal["agent.failure"] = "agent.failure"
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: RunId
    error_class: str = Field(min_length=1, max_length=200)
    message: str = Field(max_length=10_000)
    model_call: ModelCall | None = None
    sent_at: datetime = Field(default_factory=utc_now)


class CancelRequest(WireModel):
    """Ask for a run to stop; published to the run-control topic."""

    type: Literal["run.cancel"] = "run.cancel"
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: RunId
    reason: str | None = Field(default=None, max_length=2000)
    requested_by: str | None = Field(default=None, max_length=200)
    sent_at: datetime = Field(default_factory=utc_now)
