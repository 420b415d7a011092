"""The audit record of a write action through the gateway (pure: no I/O).

One record per write request that passed authentication: who (the token's name, never the
token), from where, did what to which run, and how it ended. The gateway publishes it to
``<prefix>.audit`` and logs it on the ``oriole.audit`` logger (docs/events.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from oriole.schema_base import SCHEMA_VERSION, WireModel, utc_now

AuditAction = Literal["experiment.start", "experiment.cancel", "batch.request", "batch.cancel"]
AuditOutcome = Literal["accepted", "refused", "failed"]


class AuditRecord(WireModel):
    """Who started or cancelled which run, and what the gateway answered."""

    type: Literal["gateway.audit"] = "gateway.audit"
    schema_version: Literal[1] = SCHEMA_VERSION
    time: datetime = Field(default_factory=utc_now)
    action: AuditAction
    run_id: str | None = Field(
        default=None,
        max_length=128,
        description="The run acted on; null when the request named no valid run.",
    )
    batch_id: str | None = Field(
        default=None,
        max_length=64,
        description="The batch acted on (batch actions); null otherwise or when invalid.",
    )
    token_name: str = Field(
        min_length=1,
        max_length=64,
        description="Name of the token used ('anonymous' with authentication off).",
    )
    client: str = Field(max_length=100, description="The client's IP address.")
    status: int = Field(ge=100, le=599, description="HTTP status the gateway answered.")
    outcome: AuditOutcome
    detail: str | None = Field(default=None, max_length=2000)


def outcome_of(status: int) -> AuditOutcome:
    """``accepted`` for 2xx, ``refused`` for 4xx (the client's fault), else ``failed``."""
    if 200 <= status < 300:
        return "accepted"
    if 400 <= status < 500:
        return "refused"
    return "failed"


def log_fields(record: AuditRecord) -> dict[str, Any]:
    """The record as ``extra`` fields of a log record (JSON logs keep them as keys)."""
    return {
        "audit_action": record.action,
        "run_id": record.run_id,
        "batch_id": record.batch_id,
        "token_name": record.token_name,
        "client": record.client,
        "status": record.status,
        "outcome": record.outcome,
    }
