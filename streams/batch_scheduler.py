"""The batch scheduler: runs every batch to its end through the normal start path.

It reads ``batches.commands`` in one consumer group (requests, cancels, and run ends from
:mod:`streams.batch_forwarder`) and is the single writer of ``batches.events``: the owner of
command partition *p* owns the batches of events partition *p* (both keyed by batch id, with
the same partition count). When it gains a partition it folds those batches' logs
(`oriole.batch_state`) and starts again every run it launched whose end it has not seen —
a run that exists answers "duplicate run id", which changes nothing. Decisions are the pure
`oriole.batch_rules`; each decision's events are acknowledged by the broker before the
starts they announce are published and before the command's offset is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from oriole.admission import ANY_ENDPOINT, AllowedEndpoints, FindParent, no_archive
from oriole.batch_events import (
    BatchCancel,
    BatchCommand,
    BatchEvent,
    BatchRejected,
    BatchRejectedPayload,
    BatchRequest,
    BatchRunEnded,
    BatchStarted,
    BatchStartedPayload,
    PlannedRunRef,
    parse_batch_command,
)
from oriole.batch_plan import BatchPlan, plan_batch
from oriole.batch_rules import Launch, launches, run_ended
from oriole.batch_rules import cancel as cancel_batch
from oriole.batch_state import BatchLogGap, BatchState
from oriole.events import FieldProblem
from oriole.intents import CancelRequest
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import dead_letter_for, encode
from oriole.kafka.topics import Topics
from oriole.llm.pricing import PriceTable
from oriole.maze import Maze
from oriole.schema_base import utc_now
from streams import metrics
from streams.batch_log import read_batch_logs

log = logging.getLogger("oriole.streams.batches")


class BatchScheduler:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        find_maze: Callable[[str], Maze],
        prices: PriceTable | None = None,
        endpoints: AllowedEndpoints = ANY_ENDPOINT,
        client_id: str = "oriole",
        group_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        parents: Callable[[dict[str, Any]], Awaitable[FindParent]] | None = None,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.topics = topics
        self.find_maze = find_maze
        #: The parents of a batch of forks, read from the archive (none: forks are refused).
        self.parents = parents
        self.prices = prices
        self.endpoints = endpoints
        self.client_id = f"{client_id}-batches"
        self.group_id = group_id or f"{topics.prefix}.batch-scheduler"
        self.clock = clock
        self.states: dict[str, BatchState] = {}
        self.plans: dict[str, BatchPlan] = {}
        self._gained: set[int] | None = None
        self._producer: Any = None
        self._consumer: Any = None
        self.ready = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id
        )
        self._consumer.subscribe([self.topics.batches_commands], listener=_Listener(self))
        await self._consumer.start()
        try:
            while not stop.is_set():
                records = await self._consumer.getmany(timeout_ms=200, max_records=200)
                if self._gained is not None:
                    await self._rebuild()
                if records:
                    await self._process(records)
        finally:
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    def _on_assigned(self, assigned: set[Any]) -> None:
        self._gained = {tp.partition for tp in assigned}

    def _on_revoked(self) -> None:
        self._gained = None
        self.states, self.plans = {}, {}
        metrics.show_batches(self.states, {})
        self.ready.clear()

    async def _rebuild(self) -> None:
        """Fold the owned batches' logs; start again what was launched and not seen to end."""
        owned, self._gained = self._gained or set(), None
        logs = await read_batch_logs(
            self.bootstrap, self.topics.batches_events, owned, client_id=self.client_id
        )
        self.states, self.plans = {}, {}
        for batch_id, events in logs.items():
            state = BatchState(batch_id)
            try:
                for event in events:
                    state.apply(event)
            except BatchLogGap as exc:  # one broken log must not stop the other batches
                log.error("batch %s cannot be folded (%s); left alone", batch_id, exc)
                continue
            self.states[batch_id] = state
            if state.active and state.started is not None:
                plan = await self._planned(state.started.spec, batch_id)
                if isinstance(plan, BatchPlan):
                    self.plans[batch_id] = plan
                    await self._publish_starts(
                        batch_id,
                        [
                            Launch(run_id, planned, state.attempts.get(planned, 1))
                            for run_id, planned in state.launched_not_ended().items()
                        ],
                    )
                    await self._append(batch_id, self._launch(batch_id)[0])
                else:
                    log.error("batch %s cannot be planned again: %s", batch_id, plan)
        active = sum(1 for state in self.states.values() if state.active)
        log.info("batch scheduler owns partitions %s (%d active batches)", sorted(owned), active)
        metrics.show_batches(self.states, self._budgets())
        self.ready.set()

    # --- commands -----------------------------------------------------------------------

    async def _process(self, batches: dict[Any, list[Any]]) -> None:
        assignment = self._consumer.assignment()
        commits: dict[Any, int] = {}
        for tp, records in batches.items():
            if tp not in assignment:
                continue
            for record in records:
                try:
                    await self._handle(parse_batch_command(record.value or b""))
                except Exception as exc:
                    await self._dead_letter(record, exc)
                commits[tp] = record.offset + 1
        metrics.show_batches(self.states, self._budgets())
        try:
            await self._consumer.commit(commits)
        except Exception as exc:
            log.warning("offset commit failed (%s); the records will be redelivered", exc)

    async def _handle(self, command: BatchCommand) -> None:
        batch_id = command.batch_id
        now = self.clock()
        if isinstance(command, BatchRequest):
            await self._request(command, now)
            return
        state, plan = self.states.get(batch_id), self.plans.get(batch_id)
        if state is None or plan is None:
            log.info("%s for unknown or finished batch %s ignored", command.type, batch_id)
            return
        if isinstance(command, BatchCancel):
            events, in_flight = cancel_batch(state, command, now)
            await self._append(batch_id, events)
            for run_id in in_flight:
                cancel = CancelRequest(
                    run_id=run_id,
                    reason=f"batch {batch_id} cancelled",
                    requested_by=command.requested_by,
                )
                out = encode(self.topics.runs_control, cancel, run_id)
                await self._producer.send_and_wait(out.topic, out.value, key=out.key)
            return
        if isinstance(command, BatchRunEnded):
            events = run_ended(state, plan.policy, command, now)
            more, chosen = self._launch(batch_id)
            await self._append(batch_id, events + more)
            await self._publish_starts(batch_id, chosen)

    async def _request(self, command: BatchRequest, now: datetime) -> None:
        batch_id = command.batch_id
        if batch_id in self.states:
            log.info("request for batch %s read again (or its id reused): ignored", batch_id)
            return
        state = self.states[batch_id] = BatchState(batch_id)
        plan = await self._planned(command.spec, batch_id)
        base = {"batch_id": batch_id, "seq": 1, "time": now}
        if not isinstance(plan, BatchPlan):
            problems = [FieldProblem(field=f, reason=r) for f, r in plan]
            rejected = BatchRejected(
                **base,
                payload=BatchRejectedPayload(problems=problems, requested_by=command.requested_by),
            )
            state.apply(rejected)
            await self._append(batch_id, [rejected])
            log.info("batch %s rejected: %d problem(s)", batch_id, len(problems))
            return
        started = BatchStarted(
            **base,
            payload=BatchStartedPayload(
                name=plan.name,
                labels=plan.labels,
                spec=command.spec,
                runs=[PlannedRunRef(run_id=r, cell=c, repetition=n) for r, c, n in plan.order],
                cells=plan.cells,
                warnings=plan.warnings,
                requested_by=command.requested_by,
            ),
        )
        state.apply(started)
        self.plans[batch_id] = plan
        events, chosen = self._launch(batch_id)
        await self._append(batch_id, [started, *events])
        await self._publish_starts(batch_id, chosen)
        log.info("batch %s started: %d runs planned", batch_id, len(plan.order))

    # --- helpers ------------------------------------------------------------------------

    async def _planned(
        self, spec: dict[str, Any], batch_id: str
    ) -> BatchPlan | list[tuple[str, str]]:
        """The plan, made in a thread (a big grid takes a while) once any fork parents are
        read from the archive."""
        parents = no_archive if self.parents is None else await self.parents(spec)
        return await asyncio.to_thread(
            plan_batch,
            spec,
            batch_id,
            find_maze=self.find_maze,
            prices=self.prices,
            endpoints=self.endpoints,
            find_parent=parents,
        )

    def _budgets(self) -> dict[str, float | None]:
        return {batch_id: plan.policy.budget_usd for batch_id, plan in self.plans.items()}

    def _launch(self, batch_id: str) -> tuple[list[BatchEvent], list[Launch]]:
        plan = self.plans[batch_id]
        return launches(self.states[batch_id], plan.policy, plan.slots, self.clock())

    async def _append(self, batch_id: str, events: list[BatchEvent]) -> None:
        """Write ``events`` to the batch's log and wait until the broker has them."""
        futures = []
        for event in events:
            out = encode(self.topics.batches_events, event, batch_id)
            futures.append(
                await self._producer.send(out.topic, out.value, key=out.key, headers=out.headers)
            )
        for future in futures:
            await future

    async def _publish_starts(self, batch_id: str, chosen: list[Launch]) -> None:
        plan = self.plans[batch_id]
        futures = []
        for launch in chosen:
            request = plan.requests[launch.planned_run_id].model_copy(
                update={"run_id": launch.run_id}
            )
            out = encode(self.topics.experiments_start, request, launch.run_id)
            futures.append(
                await self._producer.send(out.topic, out.value, key=out.key, headers=out.headers)
            )
        for future in futures:
            await future

    async def _dead_letter(self, record: Any, error: BaseException) -> None:
        log.warning("batch command %s@%s dead-lettered: %s", record.topic, record.offset, error)
        with contextlib.suppress(Exception):
            out = dead_letter_for(record, error, self.topics.deadletter)
            await self._producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=out.headers
            )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, scheduler: BatchScheduler) -> None:
        self.scheduler = scheduler

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.scheduler._on_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.scheduler._on_assigned(assigned)
