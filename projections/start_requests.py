"""Start requests and their rejections in the archive, and the requests that never ran.

With the embedded broker (memory only) a start that the broker acknowledged but no worker
turned into a run yet is gone after a crash. The projector therefore archives every record
of the start topic as it arrives (its raw bytes: any input can be kept) and every rejection;
`oriole up` re-publishes, when it starts again, the requests that neither started a run nor
were rejected. What remains at risk is the time between the broker's acknowledgement and the
projector's next batch (tens of milliseconds): docs/archive.md says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from oriole.kafka.codec import UndecodableMessage, json_object
from oriole.origin import derived_run_id, start_origin
from oriole.storable import without_nul

Row = tuple[Any, ...]

INSERT_REQUEST = """
    INSERT INTO start_requests (origin, run_id, message_key, message)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (origin) DO NOTHING"""
MARK_REJECTED = """
    UPDATE start_requests SET rejected_at = now(), problems = $3::jsonb
     WHERE origin = $1 OR ($1::text IS NULL AND run_id = $2 AND rejected_at IS NULL)"""
_UNSTARTED = """
    SELECT origin, run_id, message_key, message FROM start_requests r
     WHERE rejected_at IS NULL AND run_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM experiments e WHERE e.run_id = r.run_id)
       AND NOT EXISTS (SELECT 1 FROM run_events v WHERE v.run_id = r.run_id)
     ORDER BY received_at"""


def request_row(record: Any) -> Row:
    """``start_requests`` columns of a start-topic record (any bytes at all)."""
    origin = start_origin(record.topic, record.partition, record.offset, record.timestamp)
    return (
        origin,
        requested_run_id(record.value) or derived_run_id(origin),
        record.key,
        record.value or b"",
    )


def requested_run_id(value: bytes | None) -> str | None:
    """The run id a start names, if it can be read (the maze processor reads it the same way)."""
    try:
        requested = json_object(value).get("run_id")
    except UndecodableMessage:
        return None
    return without_nul(requested)[:200] if isinstance(requested, str) else None


def rejection_row(value: bytes | None) -> Row | None:
    """``MARK_REJECTED`` arguments of a rejection record (None if it is not one)."""
    try:
        data = json_object(value)
    except UndecodableMessage:
        return None
    origin, run_id = data.get("origin"), data.get("run_id")
    if not isinstance(origin, str) and not isinstance(run_id, str):
        return None
    return (
        origin if isinstance(origin, str) else None,
        run_id if isinstance(run_id, str) else None,
        json.dumps(without_nul(data.get("problems"))),
    )


@dataclass(frozen=True, slots=True)
class UnstartedRequest:
    origin: str
    run_id: str
    key: bytes | None
    message: bytes

    def republished(self) -> bytes:
        """The request to publish again, naming the run id it had (a new origin would
        otherwise derive another one)."""
        data = json_object(self.message)
        data.setdefault("run_id", self.run_id)
        return json.dumps(data).encode()


async def unstarted_requests(conn: Any) -> list[UnstartedRequest]:
    """Archived start requests with no run and no rejection, oldest first."""
    rows = await conn.fetch(_UNSTARTED)
    return [
        UnstartedRequest(r["origin"], r["run_id"], r["message_key"], bytes(r["message"]))
        for r in rows
    ]
