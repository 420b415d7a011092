"""Rebuilding run states from the run event log when a process takes over partitions.

The log is the only durable state. A process that gains partitions reads the newest
checkpoint of each (see `oriole.checkpoint`) and folds the log from the earliest active run's
``run.started`` to the log's end offset (taken when the rebuild starts); without a checkpoint
it folds the partition from the beginning. Redelivered events are skipped
(`apply_if_new`), and a record that cannot be decoded or folded is logged and skipped, so no
record in the log can stop a rebuild.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka import TopicPartition

from oriole.checkpoint import RunCheckpoint
from oriole.events import RunFinished, RunStarted
from oriole.kafka.clients import make_consumer, stop_quietly
from oriole.kafka.codec import decode_run_event
from oriole.origin import origin_digest
from oriole.run_state import RunState

log = logging.getLogger("oriole.streams.event_log")

#: Records of one partition that a rebuild reads per fetch.
_FETCH_RECORDS = 2000


class RebuiltRuns:
    """Active run states and finished runs found in some partitions of the log."""

    def __init__(self) -> None:
        self.active: dict[str, RunState] = {}
        #: Finished run id -> digest of its start's origin (None when unknown).
        self.finished: dict[str, str | None] = {}
        #: Active run id -> offset of its run.started in its partition.
        self.started_at: dict[str, int] = {}
        #: Run id -> its partition of the log (runs of several partitions mix here).
        self.partition_of: dict[str, int] = {}
        self.events_read = 0

    def seed(self, checkpoint: RunCheckpoint) -> None:
        """Start from a checkpoint: its finished runs are known without reading their events."""
        self.finished.update(checkpoint.finished)
        for run_id in checkpoint.finished:
            self.partition_of[run_id] = checkpoint.partition

    def started(self, state: RunState, partition: int, offset: int) -> None:
        """Register an active run whose run.started is at ``offset`` of ``partition``."""
        self.active[state.run_id] = state
        self.placed(state.run_id, partition, offset)

    def placed(self, run_id: str, partition: int, offset: int) -> None:
        """Where a run's run.started landed in the log (known once the broker acknowledged
        it); a run that already finished keeps only its partition."""
        self.partition_of[run_id] = partition
        if run_id in self.active:
            self.started_at[run_id] = offset

    def fold(self, raw: bytes | None, partition: int = -1, offset: int = -1) -> str | None:
        """Fold one raw event in; returns its run id (None if it was skipped)."""
        try:
            event = decode_run_event(raw)
        except Exception as exc:  # any record, however hostile, is skipped, never fatal
            log.error(
                "undecodable record %s@%s in the run event log skipped: %s",
                partition,
                offset,
                str(exc)[:500],
            )
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
            state = RunState(run_id)
            self.started(state, partition, offset)
        try:
            state.apply_if_new(event)
        except Exception as exc:
            log.error("run %s: event %s refused by the fold: %s", run_id, event.seq, exc)
            if not state.started:
                self.forget(run_id)
            return None
        if isinstance(event, RunFinished):
            self.finish(run_id)
        return run_id

    def finish(self, run_id: str) -> None:
        """Move a run from active to finished (keeping its start's origin digest)."""
        state = self.active.pop(run_id, None)
        self.started_at.pop(run_id, None)
        self.finished[run_id] = origin_digest(state.origin if state is not None else None)

    def forget(self, run_id: str) -> None:
        self.active.pop(run_id, None)
        self.started_at.pop(run_id, None)
        self.partition_of.pop(run_id, None)

    def checkpoint(self, partition: int, next_offset: int) -> RunCheckpoint:
        """The checkpoint of ``partition`` for a log accounted for up to ``next_offset``."""
        active = {
            run_id: offset
            for run_id, offset in self.started_at.items()
            if self.partition_of.get(run_id) == partition
        }
        finished = {
            run_id: digest
            for run_id, digest in self.finished.items()
            if self.partition_of.get(run_id) == partition
        }
        return RunCheckpoint(
            partition=partition, next_offset=next_offset, active=active, finished=finished
        )


async def read_checkpoints(
    bootstrap_servers: str, topic: str, partitions: Iterable[int], *, client_id: str
) -> dict[int, RunCheckpoint]:
    """The newest checkpoint of each of ``partitions`` (partition p of ``topic``)."""
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    found: dict[int, RunCheckpoint] = {}
    if not wanted:
        return found
    async with partition_reader(bootstrap_servers, wanted, f"{client_id}-checkpoint") as (
        reader,
        ends,
    ):
        remaining = {tp for tp in wanted if ends[tp] > 0}
        for tp in remaining:
            reader.seek(tp, ends[tp] - 1)
        while remaining:
            batches = await reader.getmany(*remaining, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset == ends[tp] - 1:
                        checkpoint = _checkpoint(record, tp.partition)
                        if checkpoint is not None:
                            found[tp.partition] = checkpoint
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    return found


@contextlib.asynccontextmanager
async def partition_reader(
    bootstrap_servers: str, wanted: list[TopicPartition], client_id: str
) -> AsyncIterator[tuple[Any, dict[TopicPartition, int]]]:
    """A consumer outside any group, assigned ``wanted``, with their end offsets now."""
    reader = make_consumer(bootstrap_servers=bootstrap_servers, group_id=None, client_id=client_id)
    await reader.start()
    try:
        reader.assign(wanted)
        yield reader, await reader.end_offsets(wanted)
    finally:
        await stop_quietly(reader)


def _checkpoint(record: Any, partition: int) -> RunCheckpoint | None:
    try:
        checkpoint = RunCheckpoint.model_validate_json(record.value or b"")
    except Exception as exc:
        log.error(
            "checkpoint of partition %s unreadable (%s); reading the whole log",
            partition,
            str(exc)[:300],
        )
        return None
    if checkpoint.partition != partition:
        log.error(
            "checkpoint on partition %s names partition %s; ignored",
            partition,
            checkpoint.partition,
        )
        return None
    return checkpoint


async def rebuild(
    bootstrap_servers: str,
    topic: str,
    partitions: Iterable[int],
    *,
    client_id: str,
    checkpoints: dict[int, RunCheckpoint] | None = None,
) -> tuple[RebuiltRuns, dict[int, int]]:
    """Fold ``partitions`` of ``topic`` up to their end; returns the runs and the end offsets.

    With a checkpoint for a partition the fold starts at the checkpoint's resume offset
    (a checkpoint that is ahead of the log, e.g. of a re-created topic, is ignored).
    """
    runs = RebuiltRuns()
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not wanted:
        return runs, {}
    checkpoints = checkpoints or {}
    async with partition_reader(bootstrap_servers, wanted, f"{client_id}-rebuild") as (
        reader,
        ends,
    ):
        for tp in wanted:
            checkpoint = checkpoints.get(tp.partition)
            if checkpoint is not None and checkpoint.next_offset > ends[tp]:
                log.warning(
                    "checkpoint of %s[%s] is ahead of the log (%s > %s); reading it all",
                    topic,
                    tp.partition,
                    checkpoint.next_offset,
                    ends[tp],
                )
                checkpoint = None
            if checkpoint is None:
                await reader.seek_to_beginning(tp)
            else:
                runs.seed(checkpoint)
                reader.seek(tp, checkpoint.resume_offset())
        remaining = {tp for tp in wanted if ends[tp] > 0}
        while remaining:
            batches = await reader.getmany(*remaining, timeout_ms=500, max_records=_FETCH_RECORDS)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        runs.fold(record.value, tp.partition, record.offset)
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    log.info(
        "rebuilt %d active and %d finished runs from %d events in partitions %s of %s",
        len(runs.active),
        len(runs.finished),
        runs.events_read,
        [tp.partition for tp in wanted],
        topic,
    )
    return runs, {tp.partition: end for tp, end in ends.items()}
