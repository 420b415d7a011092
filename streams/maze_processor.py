"""The maze processor: the single writer of every run's event log.

It consumes three topics in one consumer group:
- the experiment-start topic (written by anyone): each start is admitted or rejected, and an
  admitted start is forwarded to the command topic keyed by run id;
- the run-control topic (written by anyone): cancel requests, forwarded the same way;
- the command topic (``runs.commands``, written only by Oriole and keyed by run id): starts,
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
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from oriole.admission import (
    ANY_ENDPOINT,
    Admitted,
    AllowedEndpoints,
    FindParent,
    Rejected,
    admit,
    no_archive,
)
from oriole.errors import RuleError, ValidationError
from oriole.events import (
    DUPLICATE_RUN_ID,
    ExperimentRejected,
    FieldProblem,
    Inheritance,
    RunEvent,
    RunStarted,
)
from oriole.intents import AgentFailure, AgentIntent, CancelRequest, StartCommand
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import (
    Outgoing,
    UndecodableMessage,
    command_from_message,
    dead_letter_for,
    encode,
    json_object,
    run_id_of_key,
)
from oriole.kafka.topics import Topics
from oriole.llm.pricing import PriceTable
from oriole.maze import Maze
from oriole.origin import derived_run_id, origin_digest, start_origin
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
from oriole.storable import without_nul
from oriole.telemetry import run_spans, spans
from streams import metrics
from streams.event_log import RebuiltRuns, read_checkpoints, rebuild

log = logging.getLogger("oriole.streams.maze")

#: The parent look-up a decoded start needs for admission (a fork's parent, read from the
#: archive); it never raises.
ParentsOf = Callable[[dict[str, Any]], Awaitable[FindParent]]

MAX_ORIGINAL_BYTES = 64 * 1024
#: Longest a stopping processor waits for its last events and checkpoints to be acknowledged.
FINAL_FLUSH_SECONDS = 5.0


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
        checkpoint_interval: float = 10.0,
        prices: PriceTable | None = None,
        endpoints: AllowedEndpoints = ANY_ENDPOINT,
        parents: ParentsOf | None = None,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.topics = topics
        self.find_maze = find_maze
        #: The archive, for forks; without it a fork is refused, saying why.
        self.parents = parents
        self.prices = prices
        self.endpoints = endpoints
        self.client_id = f"{client_id}-maze"
        self.group_id = group_id or f"{topics.prefix}.maze-processor"
        self.clock = clock
        self.tick_interval = tick_interval
        self.checkpoint_interval = checkpoint_interval
        #: The runs of the partitions this process owns (active states, finished runs).
        self.runs = RebuiltRuns()
        self._lock = asyncio.Lock()
        #: Sends not yet acknowledged, each with the run whose run.started it carries.
        self._pending: list[tuple[asyncio.Future[Any], str | None]] = []
        self._producer: Any = None
        self._consumer: Any = None
        self._recover = False
        #: Command partitions gained and waiting for their runs to be rebuilt.
        self._gained: set[int] | None = None
        self._owned: set[int] = set()
        #: Next offset of each owned events partition, as far as this process knows.
        self._log_end: dict[int, int] = {}
        #: Owned partitions whose checkpoint is out of date.
        self._dirty: set[int] = set()
        self.ready = asyncio.Event()

    @property
    def states(self) -> dict[str, RunState]:
        """The active runs this process owns."""
        return self.runs.active

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id
        )
        self._consumer.subscribe(
            [self.topics.experiments_start, self.topics.runs_control, self.topics.runs_commands],
            listener=_Listener(self),
        )
        await self._consumer.start()
        last_tick = last_checkpoint = time.monotonic()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=500)
                async with self._lock:
                    if self._gained is not None:
                        await self._rebuild()
                    if batches:
                        await self._process(batches)
                    if self._recover or time.monotonic() - last_tick >= self.tick_interval:
                        self._recover = False
                        last_tick = time.monotonic()
                        self._tick()
                        await self._flush()
                    if time.monotonic() - last_checkpoint >= self.checkpoint_interval:
                        last_checkpoint = time.monotonic()
                        await self._checkpoint(self._dirty & self._owned)
        finally:
            # Bounded: with the broker gone, a send would wait for its request timeout.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._final_flush(), FINAL_FLUSH_SECONDS)
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    async def _final_flush(self) -> None:
        async with self._lock:
            await self._flush()
            await self._checkpoint(self._dirty & self._owned)

    async def _on_revoked(self) -> None:
        async with self._lock:
            self._gained = None
            try:
                await self._flush()
                await self._checkpoint(self._owned)  # the next owner starts from here
            except Exception as exc:
                log.warning("could not write checkpoints before a rebalance: %s", exc)
            self.runs = RebuiltRuns()
            self._owned = set()
            self._log_end = {}
            self._dirty = set()
            self.ready.clear()

    def _on_assigned(self, assigned: set[Any]) -> None:
        # No I/O here: the rebuild runs in the main loop, so a long one cannot outlast the
        # rebalance or the session; commands wait until it is done.
        self._gained = {tp.partition for tp in assigned if tp.topic == self.topics.runs_commands}

    async def _rebuild(self) -> None:
        owned, self._gained = self._gained or set(), None
        checkpoints = await read_checkpoints(
            self.bootstrap, self.topics.runs_checkpoints, owned, client_id=self.client_id
        )
        self.runs, self._log_end = await rebuild(
            self.bootstrap,
            self.topics.runs_events,
            owned,
            client_id=self.client_id,
            checkpoints=checkpoints,
        )
        self._owned = owned
        self._dirty = set(owned)
        self._recover = True
        metrics.runs_in_flight("maze", len(self.runs.active))
        self.ready.set()
        log.info("maze processor owns command partitions %s", sorted(owned))

    # --- batches ------------------------------------------------------------------------

    async def _process(self, batches: dict[Any, list[Any]]) -> None:
        """Handle every record on its own: whatever one record does, the others go on."""
        assignment = self._consumer.assignment()
        commits: dict[Any, int] = {}
        for tp, records in batches.items():
            if tp not in assignment:
                continue  # fetched before a rebalance took the partition away
            for record in records:
                try:
                    if tp.topic == self.topics.experiments_start:
                        await self._ingest_start(record)
                    elif tp.topic == self.topics.runs_control:
                        self._ingest_control(record)
                    else:
                        with run_spans.consuming("oriole.maze.command", record):
                            self._handle_command(record)
                except Exception as exc:
                    self._dead_letter(record, exc)
                commits[tp] = record.offset + 1
        await self._flush()
        try:
            await self._consumer.commit(commits)
        except Exception as exc:
            # A rebalance in progress (CommitFailedError and friends): the records are read
            # again by the next owner, which recognises what was already done.
            log.warning("offset commit failed (%s); the records will be redelivered", exc)

    def _send(self, outgoing: Outgoing, started: str | None = None) -> None:
        future = self._producer.send(
            outgoing.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers
        )
        self._pending.append((asyncio.ensure_future(future), started))

    async def _flush(self) -> None:
        """Wait until everything sent so far is acknowledged (and raise if anything failed)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        sent = await asyncio.gather(*(future for future, _ in pending))
        acknowledged = await asyncio.gather(*sent)
        for (_, started), metadata in zip(pending, acknowledged, strict=True):
            if metadata.topic != self.topics.runs_events:
                continue
            partition = metadata.partition
            self._log_end[partition] = max(self._log_end.get(partition, 0), metadata.offset + 1)
            self._dirty.add(partition)
            if started is not None:
                self.runs.placed(started, partition, metadata.offset)

    async def _checkpoint(self, partitions: set[int]) -> None:
        """Write the checkpoint of ``partitions`` (after a flush: it covers only what is acked)."""
        if not partitions:
            return
        for partition in sorted(partitions):
            checkpoint = self.runs.checkpoint(partition, self._log_end.get(partition, 0))
            out = encode(self.topics.runs_checkpoints, checkpoint, str(partition))
            await self._producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=out.headers, partition=partition
            )
        self._dirty -= partitions

    def _dead_letter(self, record: Any, error: BaseException) -> None:
        try:
            self._send(dead_letter_for(record, error, self.topics.deadletter))
        except Exception as exc:  # the letter itself could not be sent: say so, go on
            log.error(
                "message %s[%s]@%s could not be dead-lettered: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )

    # --- ingress: starts and control from the outside world ----------------------------

    async def _ingest_start(self, record: Any) -> None:
        origin = start_origin(record.topic, record.partition, record.offset, record.timestamp)
        began = spans.now()  # the admission span opens once the run id is known
        try:
            # In a thread: decoding and admitting a start with a 1000x1000 maze takes most of
            # a second, which the event loop (heartbeats, other runs) must not wait for.
            data = await asyncio.to_thread(self._decoded, record.value, origin)
            find_parent = no_archive if self.parents is None else await self.parents(data)
            verdict = await asyncio.to_thread(self._admit, data, find_parent)
        except UndecodableMessage as exc:
            run_id = run_id_of_key(record.key)
            with run_spans.admission(record, run_id, began, "undecodable"):
                self._reject(run_id, [("event", str(exc))], record.value, origin, key=record.key)
                self._dead_letter(record, exc)
            return
        if not isinstance(verdict, Admitted):
            problems = list(verdict.problems)
            with run_spans.admission(record, verdict.run_id, began, "rejected"):
                self._reject(verdict.run_id, problems, record.value, origin, key=record.key)
            return
        inherited = verdict.inherited
        command = StartCommand(
            request=verdict.request,
            origin=origin,
            inherited=None if inherited is None else inherited.model_dump(by_alias=True),
        )
        with run_spans.admission(record, command.run_id, began, "admitted"):
            self._send(encode(self.topics.runs_commands, command, command.run_id))

    @staticmethod
    def _decoded(value: bytes | None, origin: str) -> dict[str, Any]:
        data = json_object(value)
        # A start without a run id gets one derived from where it came from, so that reading
        # the same record twice (a redelivery) cannot start two runs.
        data.setdefault("run_id", derived_run_id(origin))
        return data

    def _admit(self, data: dict[str, Any], find_parent: FindParent) -> Admitted | Rejected:
        return admit(
            data,
            self.find_maze,
            prices=self.prices,
            endpoints=self.endpoints,
            find_parent=find_parent,
        )

    def _reject(
        self,
        run_id: str | None,
        problems: list[tuple[str, str]],
        raw: bytes,
        origin: str | None = None,
        *,
        key: bytes | None = None,
    ) -> None:
        """Publish a rejection keyed by ``run_id``, or by the record's own ``key`` when no
        run id could be read (the client finds its answer under the key it sent)."""
        metrics.REJECTIONS.inc()
        log.info("start of %s rejected: %s", run_id or "<no run id>", problems)
        # The rejection is archived too: no NUL (PostgreSQL cannot store it) may reach it.
        rejection = ExperimentRejected(
            run_id=without_nul(run_id),
            problems=[FieldProblem(field=f, reason=r) for f, r in without_nul(problems)]
            or [FieldProblem(field="event", reason="rejected")],
            original=without_nul((raw or b"")[:MAX_ORIGINAL_BYTES].decode(errors="replace")),
            origin=origin,
        )
        out = encode(self.topics.experiments_rejected, rejection, run_id)
        if run_id is None and key:
            out = dataclasses.replace(out, key=key)
        self._send(out)

    def _ingest_control(self, record: Any) -> None:
        request = command_from_message(record.value)
        if not isinstance(request, CancelRequest):
            raise UndecodableMessage(f"{request.type} on the control topic; only run.cancel")
        self._send(encode(self.topics.runs_commands, request, request.run_id))

    # --- commands for the runs this process owns ----------------------------------------

    def _handle_command(self, record: Any) -> None:
        command = command_from_message(record.value)
        kind = command.type
        now = self.clock()
        try:
            if isinstance(command, StartCommand):
                self._start(command, now)
                return
            state = self.runs.active.get(command.run_id)
            if state is None:
                outcome = "finished" if command.run_id in self.runs.finished else "unknown_run"
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
        if self._is_duplicate(command):
            return
        if request.maze is None:  # forwarded starts always embed the maze
            raise UndecodableMessage(f"start command for {run_id} without a maze")
        try:
            inherited = (
                None if command.inherited is None else Inheritance.model_validate(command.inherited)
            )
            events = start_run(
                request,
                request.maze.to_maze(),
                now=now,
                origin=command.origin,
                inherited=inherited,
            )
        except ValidationError as exc:
            raw = command.model_dump_json().encode()
            self._reject(run_id, [(exc.field, exc.reason)], raw, command.origin)
            return
        metrics.COMMANDS.labels(command.type, "applied").inc()
        state = self.runs.active[run_id] = RunState(run_id)
        self._append(state, events)
        log.info("run %s started", run_id, extra={"run_id": run_id})

    def _is_duplicate(self, command: StartCommand) -> bool:
        """A start of a run id that exists: a redelivery is dropped, anything else refused."""
        run_id = command.run_id
        active = self.runs.active.get(run_id)
        if active is not None:
            redelivered = command.origin is not None and active.origin == command.origin
            status = "running"
        elif run_id in self.runs.finished:
            digest = self.runs.finished[run_id]
            redelivered = digest is not None and digest == origin_digest(command.origin)
            status = "finished"
        else:
            return False
        if redelivered:
            metrics.COMMANDS.labels(command.type, "redelivered").inc()
            log.debug("start of %s read again; already %s", run_id, status)
            return True
        metrics.COMMANDS.labels(command.type, "duplicate").inc()
        reason = (
            f"{DUPLICATE_RUN_ID}: run {run_id} already exists ({status}); a run id names "
            "exactly one run: choose a new run id (or leave it out)"
        )
        raw = command.request.model_dump_json().encode()
        self._reject(run_id, [("run_id", reason)], raw, command.origin)
        return True

    def _append(self, state: RunState, events: list[RunEvent]) -> None:
        for event in events:
            state.apply(event)
            metrics.RUN_EVENTS.labels(event.type).inc()
            metrics.run_event_written(state, event)
            started = event.run_id if isinstance(event, RunStarted) else None
            self._send(encode(self.topics.runs_events, event, event.run_id), started)
        if state.finished is not None:
            self.runs.finish(state.run_id)
            log.info(
                "run %s finished: %s",
                state.run_id,
                state.finished.stop_reason.value,
                extra={"run_id": state.run_id},
            )
        metrics.runs_in_flight("maze", len(self.runs.active))

    def _tick(self) -> None:
        """The lifecycle timer (and crash recovery): see `oriole.rules.handle_tick`."""
        now = self.clock()
        for state in list(self.runs.active.values()):
            try:
                events = handle_tick(state, now=now)
            except Exception:
                log.exception("the timer of run %s failed", state.run_id)
                continue
            if events:
                with run_spans.run_span("oriole.maze.timer", state.run_id):
                    self._append(state, events)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: MazeProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.processor._on_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.processor._on_assigned(assigned)
