"""The agent runner: reads the run event log and answers each outcome with the next intent.

It folds the events of the partitions it owns into run states (reading them from the start
when it gains a partition, and deciding nothing until it has caught up), and whenever an
active run waits for a decision it asks the run's agent and sends an `agent.intent` replying
to the run's last event. Decisions run concurrently across runs (bounded) and one at a time
within a run. An agent that raises ends its run with an `agent.failure`.

The runner keeps no state of its own: after a crash or a rebalance another runner rebuilds
everything from the log. A decision sent twice (before and after a takeover) is harmless:
the maze processor applies the first and drops the second as stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError

from oriole.agents.base import Agent, AgentFailed, Observation
from oriole.experiment import RunSpec
from oriole.intents import AgentFailure
from oriole.kafka.clients import make_consumer, make_producer, stop_quietly
from oriole.kafka.codec import encode
from oriole.kafka.topics import Topics
from oriole.redaction import redact_userinfo
from oriole.run_state import RunState
from oriole.telemetry import run_spans
from streams import metrics
from streams.event_log import RebuiltRuns, read_checkpoints

log = logging.getLogger("oriole.streams.agents")

#: Creates the agent of a run from its spec (the agent, its model options and prompt).
MakeAgent = Callable[[RunSpec], Agent]


class AgentRunner:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        agent_factory: MakeAgent,
        client_id: str = "oriole",
        group_id: str | None = None,
        max_concurrency: int = 50,
        redact: Callable[[str], str] = redact_userinfo,
    ) -> None:
        self.bootstrap = bootstrap_servers
        self.topics = topics
        self.agent_factory = agent_factory
        #: Masks secrets in an agent's error text before it becomes an event.
        self.redact = redact
        self.client_id = f"{client_id}-agents"
        self.group_id = group_id or f"{topics.prefix}.agent-runner"
        self.runs = RebuiltRuns()
        self.agents: dict[str, Agent] = {}
        self.decided: dict[str, int] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        #: Each run's newest record headers: the parent of its next decision's span.
        self.traces = run_spans.RunContexts()
        self._limit = asyncio.Semaphore(max_concurrency)
        self._catch_up: dict[Any, int] = {}
        self._producer: Any = None
        self._consumer: Any = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self._producer = make_producer(self.bootstrap, client_id=self.client_id)
        await self._producer.start()
        self._consumer = make_consumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id
        )
        self._consumer.subscribe([self.topics.runs_events], listener=_Listener(self))
        await self._consumer.start()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200, max_records=1000)
                touched: set[str] = set()
                for tp, records in batches.items():
                    for record in records:
                        run_id = self.runs.fold(record.value, tp.partition, record.offset)
                        if run_id is not None:
                            touched.add(run_id)
                            self.traces.note(run_id, record.headers)
                if self._catch_up:
                    if not await self._caught_up():
                        continue
                    touched = set(self.runs.active)
                    self.ready.set()
                for run_id in touched:
                    self._consider(run_id)
                metrics.runs_in_flight("agents", len(self.runs.active))
        finally:
            await self._cancel_all()
            await stop_quietly(self._consumer)
            await stop_quietly(self._producer)

    async def _caught_up(self) -> bool:
        assignment = self._consumer.assignment()
        for tp, end in list(self._catch_up.items()):
            # A rebalance may have taken the partition away since the catch-up began.
            if tp not in assignment:
                del self._catch_up[tp]
                continue
            try:
                position = await self._consumer.position(tp)
            except IllegalStateError:  # revoked while we asked
                del self._catch_up[tp]
                continue
            if position >= end:
                del self._catch_up[tp]
        return not self._catch_up

    # --- rebalancing --------------------------------------------------------------------

    async def _on_revoked(self) -> None:
        await self._cancel_all()
        self._catch_up = {}
        self.runs = RebuiltRuns()
        self.agents.clear()
        self.decided.clear()
        self.traces.clear()
        self.ready.clear()

    async def _on_assigned(self, assigned: set[Any]) -> None:
        partitions = [tp for tp in assigned if tp.topic == self.topics.runs_events]
        if not partitions:
            self.ready.set()
            return
        ends = await self._consumer.end_offsets(partitions)
        # Only the newest checkpoint is read here (one record per partition); the log from the
        # earliest active run's start is folded by the main loop, outside this callback.
        checkpoints = await read_checkpoints(
            self.bootstrap,
            self.topics.runs_checkpoints,
            [tp.partition for tp in partitions],
            client_id=self.client_id,
        )
        for tp in partitions:
            checkpoint = checkpoints.get(tp.partition)
            if checkpoint is None or checkpoint.next_offset > ends[tp]:
                await self._consumer.seek_to_beginning(tp)
            else:
                self.runs.seed(checkpoint)
                self._consumer.seek(tp, checkpoint.resume_offset())
        self._catch_up = {tp: end for tp, end in ends.items() if end > 0}
        if not self._catch_up:
            self.ready.set()
        log.info("agent runner owns event partitions %s", sorted(tp.partition for tp in partitions))

    async def _cancel_all(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- deciding -----------------------------------------------------------------------

    def _consider(self, run_id: str) -> None:
        state = self.runs.active.get(run_id)
        if state is None:
            self.agents.pop(run_id, None)
            self.traces.forget(run_id)
            self.decided.pop(run_id, None)
            task = self.tasks.pop(run_id, None)
            if task is not None:
                task.cancel()
            return
        if state.pending is not None or self.decided.get(run_id) == state.seq:
            return
        if run_id in self.tasks and not self.tasks[run_id].done():
            return
        decide = functools.partial(self._decide, state, state.seq)
        task = asyncio.create_task(
            run_spans.decision(state, decide, self.traces), name=f"decide {run_id}"
        )
        self.tasks[run_id] = task
        task.add_done_callback(functools.partial(self._finished, run_id))

    def _finished(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(run_id) is task:
            del self.tasks[run_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("decision task for %s crashed: %r", run_id, task.exception())
        # Events may have arrived while deciding: look again.
        if run_id in self.runs.active:
            self._consider(run_id)

    async def _decide(self, state: RunState, basis_seq: int) -> None:
        async with self._limit:
            if state.seq != basis_seq or not state.is_active:
                return
            spec, _ = state.require_spec()
            run_id = state.run_id
            try:
                agent = self.agents.get(run_id)
                if agent is None:
                    agent = self.agents[run_id] = self.agent_factory(spec)
                observation = Observation.from_state(state)
                decision = await agent.decide(observation, list(state.actions))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the agent's failure ends its run, never the runner
                if isinstance(exc, AgentFailed):
                    error_class, message, call = exc.error_class, exc.message, exc.model_call
                else:
                    error_class, message, call = type(exc).__name__, str(exc), None
                message = self.redact(message)
                metrics.AGENT_FAILURES.labels(error_class).inc()
                log.warning(
                    "agent of %s failed: %s: %s",
                    run_id,
                    error_class,
                    message,
                    extra={"run_id": run_id},
                )
                failure = AgentFailure(
                    run_id=run_id,
                    error_class=error_class[:200],
                    message=message[:10_000],
                    model_call=call,
                )
                await self._send(encode(self.topics.runs_commands, failure, run_id))
                self.decided[run_id] = basis_seq
                return
            intent = decision.to_intent(run_id, basis_seq, observation.turn)
            await self._send(encode(self.topics.runs_commands, intent, run_id))
            self.decided[run_id] = basis_seq
            metrics.DECISIONS.labels(spec.agent.provider).inc()

    async def _send(self, outgoing: Any) -> None:
        delivery = await self._producer.send(
            outgoing.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers
        )
        await delivery


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: AgentRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.runner._on_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.runner._on_assigned(assigned)
