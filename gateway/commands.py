"""The gateway's write side: starting and cancelling experiments, each audited.

(Batch requests and cancels, `gateway.batches`, publish and audit through the same
:meth:`Commands.publish` and :meth:`Commands.audit`.)

A start body is admitted with the core's admission (in a thread: a big maze takes a while)
and published to the start topic; a cancel goes to the control topic. Every answer, taken
or refused, becomes an audit record on the audit topic and in the log — by token name,
never the token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.http11 import Request, Response

from gateway import api
from gateway.frames import valid_run_id
from gateway.guard import ANONYMOUS
from gateway.http import HttpRequest, error_response, json_response
from oriole.admission import Admitted, AllowedEndpoints, FindParent, admit, no_archive
from oriole.audit import AuditAction, AuditRecord, log_fields, outcome_of
from oriole.intents import CancelRequest
from oriole.kafka.codec import MessageTooLarge, UndecodableMessage, encode, json_object
from oriole.kafka.topics import Topics
from oriole.llm.pricing import PriceTable
from oriole.maze import Maze
from oriole.telemetry import run_spans, spans

log = logging.getLogger("oriole.gateway")
#: One record per write action: who (token name), what, which run, the answer.
audit_log = logging.getLogger("oriole.audit")

#: Longest publishing a start or a cancel may take before the client hears 503.
PUBLISH_TIMEOUT = 30.0
#: Longest publishing an audit record may take (the action's answer waits for it).
AUDIT_TIMEOUT = 10.0


class Commands:
    """Start and cancel through HTTP; ``producer`` is the gateway's (set while it runs)."""

    def __init__(
        self,
        *,
        topics: Topics,
        find_maze: Callable[[str], Maze],
        prices: PriceTable,
        endpoints: AllowedEndpoints,
        parents: Callable[[dict[str, Any]], Awaitable[FindParent]] | None = None,
    ) -> None:
        self.topics = topics
        self.find_maze = find_maze
        #: A fork's parent from the archive (admission is pure: it is read first).
        self.parents = parents
        self.prices = prices
        self.endpoints = endpoints
        self.producer: Any = None

    async def start_experiment(self, request: Request) -> Response:
        """``POST /api/experiments``: admit the body (in a thread), publish the start event."""
        body = request.body if isinstance(request, HttpRequest) else b""
        began = spans.now()
        try:
            document = await asyncio.to_thread(_decoded_body, body)
            find_parent = no_archive if self.parents is None else await self.parents(document)
            verdict = await asyncio.to_thread(
                admit,
                document,
                self.find_maze,
                prices=self.prices,
                endpoints=self.endpoints,
                find_parent=find_parent,
            )
        except api.InvalidRequest as problems:
            answer = json_response(400, problems.document())
            await self.audit(request, "experiment.start", None, answer, "not valid JSON")
            return answer
        if not isinstance(verdict, Admitted):
            document = api.InvalidRequest(verdict.problems).document()
            answer = json_response(400, document)
            run_id = verdict.run_id if isinstance(verdict.run_id, str) else None
            await self.audit(request, "experiment.start", run_id, answer, "rejected")
            return answer
        start = verdict.request
        try:
            # The run's trace starts here: the start event carries this span's context.
            with run_spans.gateway_start(start.run_id, began):
                message = encode(self.topics.experiments_start, start, start.run_id)
        except MessageTooLarge as exc:
            answer = json_response(413, api.InvalidRequest([("body", str(exc))]).document())
            await self.audit(request, "experiment.start", start.run_id, answer, "too large")
            return answer
        if not await self.publish(message, "the start of"):
            answer = error_response(503, "Kafka is unavailable; the experiment was not started")
            await self.audit(request, "experiment.start", start.run_id, answer)
            return answer
        log.info("experiment %s published through the gateway", start.run_id)
        answer = json_response(202, {"run_id": start.run_id, "warnings": list(verdict.warnings)})
        await self.audit(request, "experiment.start", start.run_id, answer)
        return answer

    async def cancel(self, request: Request, run_id: str) -> Response:
        """``POST /api/experiments/{run_id}/cancel``: a cancel request on the control topic."""
        if not valid_run_id(run_id):
            answer = error_response(400, "not a run id")
            await self.audit(request, "experiment.cancel", None, answer, "not a run id")
            return answer
        actor = actor_of(request)
        cancel = CancelRequest(
            run_id=run_id, reason="cancelled through the gateway", requested_by=actor
        )
        if not await self.publish(encode(self.topics.runs_control, cancel, run_id), "cancel"):
            answer = error_response(503, "Kafka is unavailable; the run was not cancelled")
        else:
            answer = json_response(202, {"run_id": run_id, "cancel": "requested"})
        await self.audit(request, "experiment.cancel", run_id, answer)
        return answer

    async def publish(self, out: Any, what: str) -> bool:
        """Publish one message (bounded in time); False, logged, if Kafka did not take it."""
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers),
                PUBLISH_TIMEOUT,
            )
        except Exception as exc:
            key = out.key.decode(errors="replace") if out.key else "?"
            log.error("publishing %s %s failed: %r", what, key, exc)
            return False
        return True

    async def audit(
        self,
        request: Request,
        action: AuditAction,
        run_id: str | None,
        answer: Response,
        detail: str | None = None,
        *,
        batch_id: str | None = None,
    ) -> None:
        """Log and publish who did what (by token name, never the token)."""
        record = AuditRecord(
            action=action,
            run_id=run_id,
            batch_id=batch_id,
            token_name=actor_of(request),
            client=request.client if isinstance(request, HttpRequest) else "",
            status=answer.status_code,
            outcome=outcome_of(answer.status_code),
            detail=detail,
        )
        audit_log.info(
            "%s %s by %s from %s: %d %s",
            record.action,
            record.run_id or record.batch_id or "-",
            record.token_name,
            record.client,
            record.status,
            record.outcome,
            extra=log_fields(record),
        )
        out = encode(self.topics.audit, record, run_id or batch_id)
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers),
                AUDIT_TIMEOUT,
            )
        except Exception as exc:
            log.error("publishing the audit record of %s failed: %r", record.action, exc)


def actor_of(request: Request) -> str:
    return request.actor if isinstance(request, HttpRequest) else ANONYMOUS


def _decoded_body(body: bytes) -> dict[str, Any]:
    """A start event's body, decoded as Kafka messages are (one decoder: UTF-8 JSON, an
    object, not nested too deeply); in a thread: a big maze takes a while."""
    try:
        return json_object(body)
    except UndecodableMessage as exc:
        raise api.InvalidRequest([("body", f"{exc}; expected an experiment-start event")]) from None
