"""The maze processor: the single writer of every run's event log.

It consumes three topics in one consumer group:
- the experiment-start topic (written by anyone): each start is admitted or rejected, and an
  admitted start is forwarded to the command topic keyed by run id;
- the run-control topic (written by anyone): cancel requests, forwarded the same way;
- the command topic (``runs.intents``, written only by Oriole and keyed by run id): starts,
  agent intents, agent failures and cancels for the runs this process owns.
Forwarding re-keys external messages so that exactly one processor owns each run whatever
partitioner the client used. The owner of command partition *p* owns events partition *p*:
it rebuilds those runs from the log when it gains the partition, completes any decision whose
outcome was lost in a crash, and then applies commands through the pure rules.

Durability: a batch's events are acknowledged by the broker (acks=all, idempotent producer)
before the batch's offsets are committed; a command redelivered after a crash is recognised
as stale (its ``basis_seq`` is behind the log) and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pydantic
from aiokafka import ConsumerRebalanceListener, TopicPartition

from oriole.admission import Admitted, admit
from oriole.errors import RuleError, ValidationError
from oriole.events import ExperimentRejected, FieldProblem, RunEvent
from oriole.intents import AgentFailure, AgentIntent, CancelRequest
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import (
    Outgoing,
    StartCommand,
    UndecodableMessage,
    dead_letter_for,
    decode_command,
    encode,
    json_object,
)
from oriole.kafka.topics import Topics
from oriole.llm.pricing import PriceTable
from oriole.maze import Maze
from oriole.rules import (
    StaleCommand,
    handle_cancel,
    handle_failure,
    handle_intent,
    handle_tick,
    start_run,
)
from oriole.run_state import RunState
from oriole.schema_base import utc_now
from streams import metrics
from streams.event_log import rebuild

log = logging.getLogger("oriole.streams.maze")

MAX_ORIGINAL_BYTES = 64 * 1024


class MazeProcessor:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        find_maze: Callable[[str], Maze],
        client_id: str = "oriole",
        group_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        tick_interval: float = 0.5,
        prices: PriceTable | None = None,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.topics = topics
        self.find_maze = find_maze
        self.prices = prices
        self.client_id = f"{client_id}-maze"
        self.group_id = group_id or f"{topics.prefix}.maze-processor"
        self.clock = clock
        self.tick_interval = tick_interval
        self.states: dict[str, RunState] = {}
        self.finished: set[str] = set()
        self._lock = asyncio.Lock()
        self._pending: list[asyncio.Future[Any]] = []
        self._producer: Any = None
        self._consumer: Any = None
        self._recover = False
        self.ready = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id
        )
        self._consumer.subscribe(
            [self.topics.experiments_start, self.topics.runs_control, self.topics.runs_intents],
            listener=_Listener(self),
        )
        await self._consumer.start()
        last_tick = time.monotonic()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=500)
                async with self._lock:
                    if batches:
                        await self._process(batches)
                    if self._recover or time.monotonic() - last_tick >= self.tick_interval:
                        self._recover = False
                        last_tick = time.monotonic()
                        self._tick()
                        await self._flush()
        finally:
            with contextlib.suppress(Exception):
                async with self._lock:
                    await self._flush()
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    async def _on_revoked(self) -> None:
        async with self._lock:
            await self._flush()
            self.states.clear()
            self.finished.clear()
            self.ready.clear()

    async def _on_assigned(self, assigned: set[Any]) -> None:
        owned = {tp.partition for tp in assigned if tp.topic == self.topics.runs_intents}
        async with self._lock:
            runs = await rebuild(
                self.bootstrap, self.topics.runs_events, owned, client_id=self.client_id
            )
            self.states = runs.active
            self.finished = runs.finished
            self._recover = True
            metrics.ACTIVE_RUNS.labels("maze").set(len(self.states))
            self.ready.set()
        log.info("maze processor owns command partitions %s", sorted(owned))

    # --- batches ------------------------------------------------------------------------

    async def _process(self, batches: dict[Any, list[Any]]) -> None:
        commits: dict[Any, int] = {}
        for tp, records in batches.items():
            for record in records:
                try:
                    if tp.topic == self.topics.experiments_start:
                        self._ingest_start(record)
                    elif tp.topic == self.topics.runs_control:
                        self._ingest_control(record)
                    else:
                        self._handle_command(record)
                except (UndecodableMessage, pydantic.ValidationError) as exc:
                    self._dead_letter(record, exc)
                commits[tp] = record.offset + 1
        await self._flush()
        await self._consumer.commit({tp: offset for tp, offset in commits.items()})

    def _send(self, outgoing: Outgoing) -> None:
        future = self._producer.send(
            outgoing.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers
        )
        self._pending.append(asyncio.ensure_future(future))

    async def _flush(self) -> None:
        """Wait until everything sent so far is acknowledged (and raise if anything failed)."""
        pending, self._pending = self._pending, []
        if pending:
            sent = await asyncio.gather(*pending)
            await asyncio.gather(*sent)

    def _dead_letter(self, record: Any, error: BaseException) -> None:
        metrics.DEAD_LETTERS.labels(record.topic).inc()
        self._send(dead_letter_for(record, error, self.topics.deadletter))

    # --- ingress: starts and control from the outside world ----------------------------

    def _ingest_start(self, record: Any) -> None:
        try:
            data = json_object(record.value)
        except UndecodableMessage as exc:
            self._reject(None, [("event", str(exc))], record.value)
            self._dead_letter(record, exc)
            return
        verdict = admit(data, self.find_maze, prices=self.prices)
        if not isinstance(verdict, Admitted):
            self._reject(verdict.run_id, list(verdict.problems), record.value)
            return
        command = StartCommand(request=verdict.request)
        self._send(encode(self.topics.runs_intents, command, command.run_id))

    def _reject(self, run_id: str | None, problems: list[tuple[str, str]], raw: bytes) -> None:
        metrics.REJECTIONS.inc()
        log.info("start of %s rejected: %s", run_id or "<no run id>", problems)
        rejection = ExperimentRejected(
            run_id=run_id,
            problems=[FieldProblem(field=f, reason=r) for f, r in problems]
            or [FieldProblem(field="event", reason="rejected")],
            original=(raw or b"")[:MAX_ORIGINAL_BYTES].decode(errors="replace"),
        )
        self._send(encode(self.topics.experiments_rejected, rejection, run_id))

    def _ingest_control(self, record: Any) -> None:
        request = CancelRequest.model_validate(json_object(record.value))
        self._send(encode(self.topics.runs_intents, request, request.run_id))

    # --- commands for the runs this process owns ----------------------------------------

    def _handle_command(self, record: Any) -> None:
        command = decode_command(json_object(record.value))
        kind = command.type
        now = self.clock()
        try:
            if isinstance(command, StartCommand):
                self._start(command, now)
                return
            state = self.states.get(command.run_id)
            if state is None:
                outcome = "finished" if command.run_id in self.finished else "unknown_run"
                metrics.COMMANDS.labels(kind, outcome).inc()
                if outcome == "unknown_run":
                    self._dead_letter(record, RuleError("run_id", f"no run {command.run_id}"))
                return
            if isinstance(command, AgentIntent):
                events = handle_intent(state, command, now=now)
                metrics.INTENT_LATENCY.observe(max(0.0, (now - command.sent_at).total_seconds()))
            elif isinstance(command, AgentFailure):
                events = handle_failure(state, command, now=now)
            else:
                events = handle_cancel(state, command, now=now)
        except StaleCommand as exc:
            metrics.COMMANDS.labels(kind, "stale").inc()
            log.debug("stale %s for %s dropped: %s", kind, command.run_id, exc)
            return
        except RuleError as exc:
            metrics.COMMANDS.labels(kind, "refused").inc()
            self._dead_letter(record, exc)
            return
        metrics.COMMANDS.labels(kind, "applied").inc()
        self._append(state, events)

    def _start(self, command: StartCommand, now: datetime) -> None:
        request = command.request
        run_id = request.run_id
        if run_id in self.states or run_id in self.finished:
            metrics.COMMANDS.labels(command.type, "duplicate").inc()
            log.info("duplicate start of %s ignored", run_id)
            return
        if request.maze is None:  # forwarded starts always embed the maze
            raise UndecodableMessage(f"start command for {run_id} without a maze")
        try:
            events = start_run(request, request.maze.to_maze(), now=now)
        except ValidationError as exc:
            raw = command.model_dump_json().encode()
            self._reject(run_id, [(exc.field, exc.reason)], raw)
            return
        metrics.COMMANDS.labels(command.type, "applied").inc()
        state = self.states[run_id] = RunState(run_id)
        self._append(state, events)
        log.info("run %s started", run_id, extra={"run_id": run_id})

    def _append(self, state: RunState, events: list[RunEvent]) -> None:
        for event in events:
            state.apply(event)
            metrics.RUN_EVENTS.labels(event.type).inc()
            self._send(encode(self.topics.runs_events, event, event.run_id))
        if state.finished is not None:
            self.states.pop(state.run_id, None)
            self.finished.add(state.run_id)
            log.info(
                "run %s finished: %s",
                state.run_id,
                state.finished.stop_reason.value,
                extra={"run_id": state.run_id},
            )
        metrics.ACTIVE_RUNS.labels("maze").set(len(self.states))

    def _tick(self) -> None:
        """The lifecycle timer (and crash recovery): see `oriole.rules.handle_tick`."""
        now = self.clock()
        for state in list(self.states.values()):
            events = handle_tick(state, now=now)
            if events:
                self._append(state, events)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: MazeProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.processor._on_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.processor._on_assigned(assigned)
