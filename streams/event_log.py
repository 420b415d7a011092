"""Rebuilding run states from the run event log when a process takes over partitions.

The log is the only durable state: a processor that gains a partition reads that partition
of the events topic from the beginning up to its end offset (taken when the rebuild starts)
and folds every run in it. Redelivered events are skipped (`apply_if_new`), so a duplicate
record in the log cannot corrupt a state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import TopicPartition

from oriole.errors import RuleError
from oriole.events import RunFinished, RunStarted
from oriole.kafka.clients import make_consumer, stop_quietly
from oriole.kafka.codec import decode_run_event
from oriole.run_state import RunState

log = logging.getLogger("oriole.streams.event_log")


class RebuiltRuns:
    """Active run states and the ids of finished runs found in some partitions."""

    def __init__(self) -> None:
        self.active: dict[str, RunState] = {}
        self.finished: set[str] = set()
        self.events_read = 0

    def fold(self, raw: bytes) -> str | None:
        """Fold one raw event in; returns its run id (None if it was skipped)."""
        try:
            event = decode_run_event(raw)
        except ValueError as exc:
            log.error("undecodable record in the run event log skipped: %s", exc)
            return None
        run_id = event.run_id
        self.events_read += 1
        if run_id in self.finished:
            return None
        state = self.active.get(run_id)
        if state is None:
            if not isinstance(event, RunStarted):
                log.error("run %s: event %s before run.started skipped", run_id, event.seq)
                return None
            state = self.active[run_id] = RunState(run_id)
        try:
            state.apply_if_new(event)
        except RuleError as exc:
            log.error("run %s: event %s refused by the fold: %s", run_id, event.seq, exc)
            return None
        if isinstance(event, RunFinished):
            del self.active[run_id]
            self.finished.add(run_id)
        return run_id


async def rebuild(
    bootstrap_servers: str, topic: str, partitions: Iterable[int], *, client_id: str
) -> RebuiltRuns:
    """Fold everything currently in ``topic``'s ``partitions``."""
    runs = RebuiltRuns()
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not wanted:
        return runs
    reader = make_consumer(
        bootstrap_servers=bootstrap_servers, group_id=None, client_id=f"{client_id}-rebuild"
    )
    await reader.start()
    try:
        reader.assign(wanted)
        ends = await reader.end_offsets(wanted)
        await reader.seek_to_beginning(*wanted)
        remaining = {tp for tp in wanted if ends[tp] > 0}
        while remaining:
            batches = await reader.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        runs.fold(record.value)
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await stop_quietly(reader)
    log.info(
        "rebuilt %d active and %d finished runs from %d events in partitions %s of %s",
        len(runs.active),
        len(runs.finished),
        runs.events_read,
        [tp.partition for tp in wanted],
        topic,
    )
    return runs
