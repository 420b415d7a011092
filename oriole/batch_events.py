"""Batches on the log: the commands a batch scheduler reads and the events it writes.

Commands (topic ``<prefix>.batches.commands``, key: batch id) come from clients
(``batch.request``, ``batch.cancel``) and from the run-end forwarder (``batch.run_ended``,
one per run of a batch that finished or was refused). Events (topic
``<prefix>.batches.events``, key: batch id) are the scheduler's own log, numbered 1, 2, 3, ...
per batch without gaps: its state after a crash is the fold of this log, so a command read
twice changes nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AwareDatetime, Field

from oriole.events import FieldProblem, RunFinishedPayload
from oriole.schema_base import SCHEMA_VERSION, RunId, WireModel, utc_now

#: A batch id: letters, digits, ``_`` and ``-`` (no ``:``, which separates it from the cell
#: and repetition in the ids of its runs).
BATCH_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
BatchId = Annotated[str, Field(pattern=BATCH_ID_PATTERN, description="The batch's id.")]
_BATCH_RUN = re.compile(
    r"^(?P<batch>[A-Za-z0-9][A-Za-z0-9_-]{0,63}):(?P<cell>[^:]+)"
    r":r(?P<repetition>[0-9]+)(?::a(?P<attempt>[0-9]+))?$"
)


def new_batch_id() -> str:
    return f"batch-{uuid.uuid4().hex[:12]}"


def batch_run_id(batch_id: str, cell_id: str, repetition: int) -> str:
    """The deterministic id of a batch's planned run: ``BATCH:CELL:rN``."""
    return f"{batch_id}:{cell_id}:r{repetition}"


def attempt_run_id(planned_run_id: str, attempt: int) -> str:
    """The run id of attempt ``attempt`` of a planned run: its own id, then ``:aK``."""
    return planned_run_id if attempt == 1 else f"{planned_run_id}:a{attempt}"


@dataclass(frozen=True, slots=True)
class BatchRunPlace:
    """Where a run sits in its batch, as its id says."""

    batch_id: str
    cell: str
    repetition: int
    attempt: int


def batch_run_place(run_id: str) -> BatchRunPlace | None:
    """The batch, cell, repetition and attempt of a batch run's id (None: not a batch run)."""
    found = _BATCH_RUN.match(run_id)
    if found is None:
        return None
    attempt = 1 if found["attempt"] is None else int(found["attempt"])
    return BatchRunPlace(found["batch"], found["cell"], int(found["repetition"]), attempt)


def batch_of_run(run_id: str) -> str | None:
    """The batch a run id belongs to, read from the id alone (None: not a batch's run)."""
    place = batch_run_place(run_id)
    return None if place is None else place.batch_id


class BatchStopReason(StrEnum):
    COMPLETED = "completed"
    BUDGET = "budget"
    CANCELLED = "cancelled"
    FAILED = "failed"
    #: The ``sequential`` comparison reached its verdict (docs/batches.md): no run launched
    #: after that, the runs in flight ended normally.
    CONCLUSIVE = "conclusive"


# --- commands -------------------------------------------------------------------------------


class _Command(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: BatchId
    time: AwareDatetime = Field(default_factory=utc_now)


class BatchRequest(_Command):
    """Run this batch. ``spec`` is a batch spec document (docs/batches.md): mazes given as
    files are embedded by the client before publishing; the scheduler admits every cell."""

    type: Literal["batch.request"] = "batch.request"
    spec: dict[str, Any]
    requested_by: str | None = Field(default=None, max_length=200)


class BatchCancel(_Command):
    type: Literal["batch.cancel"] = "batch.cancel"
    reason: str | None = Field(default=None, max_length=2000)
    requested_by: str | None = Field(default=None, max_length=200)


class BatchRunEnded(_Command):
    """A run of the batch finished (``finished``) or its start was refused (``problems``)."""

    type: Literal["batch.run_ended"] = "batch.run_ended"
    run_id: RunId
    finished: RunFinishedPayload | None = None
    problems: list[FieldProblem] = Field(default_factory=list)


BatchCommand = Annotated[BatchRequest | BatchCancel | BatchRunEnded, Field(discriminator="type")]
_command_adapter: pydantic.TypeAdapter[BatchCommand] = pydantic.TypeAdapter(BatchCommand)


def parse_batch_command(data: str | bytes) -> BatchCommand:
    return _command_adapter.validate_json(data)


# --- events ---------------------------------------------------------------------------------


class PlannedRunRef(WireModel):
    run_id: RunId
    cell: str
    repetition: int = Field(ge=0)


class BatchCounts(WireModel):
    planned: int = Field(ge=0)
    launched: int = Field(ge=0, description="Runs launched (retries included).")
    finished: int = Field(ge=0, description="Planned runs done: ended and not to be retried.")
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0, description="Planned runs whose last attempt failed.")
    in_flight: int = Field(ge=0)
    spent_usd: float = Field(ge=0)
    spent_tokens: int = Field(ge=0)


class _Event(WireModel):
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    batch_id: BatchId
    seq: int = Field(ge=1, description="Per-batch sequence number: 1-based and gap-free.")
    schema_version: Literal[1] = SCHEMA_VERSION
    time: AwareDatetime


class BatchStartedPayload(WireModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(description="The spec as requested (re-expanded on recovery).")
    runs: list[PlannedRunRef] = Field(description="Every planned run, in launch order.")
    cells: dict[str, dict[str, Any]] = Field(description="Cell id -> its factor values.")
    warnings: list[str] = Field(default_factory=list)
    requested_by: str | None = None


class BatchStarted(_Event):
    type: Literal["batch.started"] = "batch.started"
    payload: BatchStartedPayload


class BatchRejectedPayload(WireModel):
    problems: list[FieldProblem] = Field(min_length=1)
    requested_by: str | None = None


class BatchRejected(_Event):
    type: Literal["batch.rejected"] = "batch.rejected"
    payload: BatchRejectedPayload


class RunLaunchedPayload(WireModel):
    run_id: RunId
    planned_run_id: RunId = Field(description="The planned run this attempt belongs to.")
    attempt: int = Field(ge=1)


class RunLaunched(_Event):
    type: Literal["batch.run_launched"] = "batch.run_launched"
    payload: RunLaunchedPayload


class RunEndedPayload(WireModel):
    run_id: RunId
    planned_run_id: RunId
    attempt: int = Field(ge=1)
    success: bool
    failed: bool = Field(description="The run failed (an error), or its start was refused.")
    stop_reason: str
    cost_usd: float = Field(ge=0)
    tokens: int = Field(ge=0)
    retry: bool = Field(description="Another attempt of the planned run will be launched.")


class RunEnded(_Event):
    type: Literal["batch.run_ended"] = "batch.run_ended"
    payload: RunEndedPayload


class BatchProgress(_Event):
    type: Literal["batch.progress"] = "batch.progress"
    payload: BatchCounts


class ComparisonEvidence(WireModel):
    """The ``sequential`` comparison of two arms when the batch finished: at its first
    crossing of 1/alpha (conclusive), else over every pair that ended in plan order."""

    arm_a: str
    arm_b: str
    wins_a: int = Field(ge=0, description="Discordant pairs where only arm A found the goal.")
    wins_b: int = Field(ge=0, description="Discordant pairs where only arm B found the goal.")
    concordant: int = Field(ge=0, description="Pairs where both arms or neither found it.")
    left_out: int = Field(ge=0, description="Pairs left out because one of their runs failed.")
    e_value: float = Field(ge=0)
    alpha: float = Field(gt=0, lt=1)
    conclusive: bool
    better: str | None = Field(description="The arm that won more discordant pairs.")
    summary: str


class BatchFinishedPayload(WireModel):
    stop_reason: BatchStopReason
    detail: str
    counts: BatchCounts
    evidence: ComparisonEvidence | None = Field(
        default=None, description="Batches with the sequential option: the comparison."
    )


class BatchFinished(_Event):
    type: Literal["batch.finished"] = "batch.finished"
    payload: BatchFinishedPayload


BatchEvent = Annotated[
    BatchStarted | BatchRejected | RunLaunched | RunEnded | BatchProgress | BatchFinished,
    Field(discriminator="type"),
]
BATCH_EVENT_TYPES = (
    BatchStarted,
    BatchRejected,
    RunLaunched,
    RunEnded,
    BatchProgress,
    BatchFinished,
)
_event_adapter: pydantic.TypeAdapter[BatchEvent] = pydantic.TypeAdapter(BatchEvent)


def parse_batch_event(data: str | bytes) -> BatchEvent:
    return _event_adapter.validate_json(data)


def dump_batch_event(event: BatchEvent) -> bytes:
    return event.model_dump_json().encode()
