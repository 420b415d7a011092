"""A run driven in memory: the rules and the fold wired together without any broker.

Used by tests, benchmarks and replay verification; the stream processors do the same with
Kafka in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from oriole.events import Inheritance, RunEvent
from oriole.experiment import ExperimentStart
from oriole.intents import ActionType, AgentFailure, AgentIntent, CancelRequest, ModelCall
from oriole.maze import Maze
from oriole.rules import (
    IdFactory,
    handle_cancel,
    handle_failure,
    handle_intent,
    handle_tick,
    start_run,
)
from oriole.run_state import RunState
from oriole.schema_base import utc_now


class ManualClock:
    """A clock that only moves when told to, so runs are reproducible."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def counting_ids(prefix: int = 0) -> IdFactory:
    """Deterministic event ids (for reproducible logs in tests and replays)."""
    counter = iter(range(1, 2**63))

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=(prefix << 64) | next(counter))

    return new_id


class LocalRun:
    """Start a run and feed it commands; ``events`` is its complete log so far."""

    def __init__(
        self,
        request: ExperimentStart,
        maze: Maze,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: IdFactory = uuid.uuid4,
        inherited: Inheritance | None = None,
    ) -> None:
        self.clock = clock
        self.new_id = new_id
        self.state = RunState(request.run_id)
        self.events: list[RunEvent] = []
        self.turn = 1
        self._append(start_run(request, maze, now=clock(), new_id=new_id, inherited=inherited))

    def _append(self, events: list[RunEvent]) -> list[RunEvent]:
        for event in events:
            self.state.apply(event)
        self.events.extend(events)
        return events

    def act(
        self,
        action: ActionType | str,
        *,
        turn: int | None = None,
        model_call: ModelCall | None = None,
        **fields: Any,
    ) -> list[RunEvent]:
        """Send one intent replying to the latest event; returns the new events."""
        intent = AgentIntent(
            run_id=self.state.run_id,
            basis_seq=self.state.seq,
            turn=turn or self.turn,
            action=ActionType(action),
            model_call=model_call,
            **fields,
        )
        return self.send(intent)

    def send(self, intent: AgentIntent) -> list[RunEvent]:
        return self._append(handle_intent(self.state, intent, now=self.clock(), new_id=self.new_id))

    def fail(
        self, error_class: str, message: str, *, model_call: ModelCall | None = None
    ) -> list[RunEvent]:
        failure = AgentFailure(
            run_id=self.state.run_id,
            error_class=error_class,
            message=message,
            model_call=model_call,
        )
        return self._append(
            handle_failure(self.state, failure, now=self.clock(), new_id=self.new_id)
        )

    def cancel(self, reason: str | None = None) -> list[RunEvent]:
        request = CancelRequest(run_id=self.state.run_id, reason=reason)
        return self._append(
            handle_cancel(self.state, request, now=self.clock(), new_id=self.new_id)
        )

    def tick(self) -> list[RunEvent]:
        return self._append(handle_tick(self.state, now=self.clock(), new_id=self.new_id))
