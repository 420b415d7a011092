"""Run-log checkpoints: where a process that takes over a partition starts reading.

Rebuilding the runs of a partition from the first event of the log costs time in proportion
to all history ever written (35k events took 7-13 s, longer than a consumer session). The
maze processor therefore writes, per partition of the run event log, a small record to the
checkpoint topic: the log offset it has accounted for, the offset of each active run's
``run.started``, and the runs that have finished (with the origin of their start, so that a
redelivered start is told apart from a new one with the same run id). A successor reads the
newest checkpoint and folds the log only from the earliest active run's start: the cost
depends on the runs in flight and the tail since the checkpoint, not on history.

Pure: the model and the arithmetic; reading and writing Kafka is in ``streams.event_log``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from oriole.schema_base import SCHEMA_VERSION, WireModel, utc_now


class RunCheckpoint(WireModel):
    """What one partition of the run event log holds up to ``next_offset``."""

    type: Literal["runs.checkpoint"] = "runs.checkpoint"
    schema_version: Literal[1] = SCHEMA_VERSION
    partition: int = Field(ge=0)
    next_offset: int = Field(
        ge=0, description="Every event of the partition before this offset is accounted for."
    )
    active: dict[str, int] = Field(
        default_factory=dict, description="Active run id -> offset of its run.started."
    )
    finished: dict[str, str | None] = Field(
        default_factory=dict,
        description="Finished run id -> digest of the origin of its start (None if unknown).",
    )
    written_at: AwareDatetime = Field(default_factory=utc_now)

    def resume_offset(self) -> int:
        """The first log offset a successor must read: the earliest active run's start."""
        return min([self.next_offset, *self.active.values()])
