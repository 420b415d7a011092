"""Archived runs back onto Kafka: the replay topic, keyed and ordered, marked as replay.

Works from the archive alone, so a run whose original topics are gone (the embedded broker
keeps nothing across restarts) can still be streamed to any subscriber. After such a
restart, `oriole up` also puts back what the workers need to carry on: the logs of
unfinished runs and batches, checkpoints, and start requests that never became runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from oriole.batch_events import BatchEvent, BatchRunEnded, RunEnded, batch_of_run
from oriole.checkpoint import RunCheckpoint
from oriole.events import FieldProblem, RunEvent, RunFinished, dump_run_event
from oriole.kafka import ensure_topics
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.codec import (
    REPLAY_HEADER,
    TYPE_HEADER,
    VERSION_HEADER,
    UndecodableMessage,
    encode,
)
from oriole.kafka.topics import Topics
from oriole.origin import origin_digest
from oriole.telemetry.tracing import trace_headers
from projections.batch_rows import has_ended, unended_attempts
from projections.batch_store import UNFINISHED_BATCHES, batch_events_of
from projections.rows import event_from_archive
from projections.start_requests import unstarted_requests
from projections.store import ARCHIVE_COLUMNS, run_events_of

#: Header naming one replay, so a subscriber can tell two replays of the same run apart.
REPLAY_ID_HEADER = "oriole-replay-id"


async def publish_replay(bootstrap_servers: str, topics: Topics, events: Sequence[RunEvent]) -> str:
    """Publish ``events`` (one run, in seq order) to the replay topic; returns the replay id."""
    replay_id = str(uuid.uuid4())
    marks = [(REPLAY_HEADER, b"1"), (REPLAY_ID_HEADER, replay_id.encode())]
    await _publish(bootstrap_servers, topics, topics.runs_replay, [events], marks)
    return replay_id


async def restore_unfinished_runs(pool: Any, bootstrap_servers: str, topics: Topics) -> list[str]:
    """Put the archived logs of unfinished runs back on a fresh, empty broker.

    The embedded broker forgets everything when it stops; the archive does not. Before the
    workers start, every run the archive still shows as running gets its log back on the run
    events topic, so a maze processor rebuilds it and it carries on (or its duration limit
    ends it) instead of staying "running" forever. The projector sees only duplicates.
    """
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT run_id FROM experiments WHERE status = 'running' ORDER BY started_at"
        )
        logs = [await run_events_of(conn, row["run_id"]) for row in rows]
        finished = await conn.fetch(_FINISHED_RUNS)
    logs = [events for events in logs if events]
    if logs:
        await _publish(bootstrap_servers, topics, topics.runs_events, logs, [])
    await _publish_checkpoints(
        bootstrap_servers, topics, {r["run_id"]: r["origin"] for r in finished}
    )
    return [events[0].run_id for events in logs]


#: Every archived run that has finished, with the origin of its start.
_FINISHED_RUNS = """
    SELECT e.run_id, s.payload->>'origin' AS origin
      FROM experiments e JOIN run_events s ON s.run_id = e.run_id AND s.seq = 1
     WHERE e.status <> 'running'"""


async def _publish_checkpoints(
    bootstrap_servers: str, topics: Topics, finished: dict[str, str | None]
) -> None:
    """Tell the maze processors of a fresh broker which runs have finished (from the archive).

    A start re-published for one of them is then refused as a duplicate instead of running
    it again. The checkpoints account for no offset of the fresh log (``next_offset`` 0), so
    the restored logs of unfinished runs are still read from the beginning.
    """
    partitioner = DefaultPartitioner()
    partitions = list(range(topics.partitions))
    per_partition: dict[int, dict[str, str | None]] = {p: {} for p in partitions}
    for run_id, origin in finished.items():
        partition = partitioner(run_id.encode(), partitions, partitions)
        per_partition[partition][run_id] = origin_digest(origin)
    producer = make_producer(bootstrap_servers, client_id="oriole-restore")
    await producer.start()
    try:
        for partition, runs in per_partition.items():
            checkpoint = RunCheckpoint(partition=partition, next_offset=0, finished=runs)
            out = encode(topics.runs_checkpoints, checkpoint, str(partition))
            await producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=out.headers, partition=partition
            )
    finally:
        await stop_quietly(producer)


async def _publish(
    bootstrap_servers: str,
    topics: Topics,
    topic: str,
    logs: Sequence[Sequence[RunEvent]],
    extra_headers: list[tuple[str, bytes]],
) -> None:
    await ensure_topics(bootstrap_servers, topics.specs)
    producer = make_producer(bootstrap_servers, client_id="oriole-replay")
    await producer.start()
    try:
        pending = []
        for events in logs:
            for event in events:
                headers = [
                    (TYPE_HEADER, event.type.encode()),
                    (VERSION_HEADER, str(event.schema_version).encode()),
                    *trace_headers(event.run_id),
                    *extra_headers,
                ]
                pending.append(
                    await producer.send(
                        topic, dump_run_event(event), key=event.run_id.encode(), headers=headers
                    )
                )
        for future in pending:
            await future
    finally:
        await stop_quietly(producer)


async def republish_unstarted_requests(
    pool: Any, bootstrap_servers: str, topics: Topics
) -> list[str]:
    """Publish again the archived start requests that neither ran nor were rejected.

    Called by `oriole up` on a fresh embedded broker, after `restore_unfinished_runs`: a start
    acknowledged just before a crash is run now instead of vanishing. Returns their run ids.
    """
    async with pool.acquire() as conn:
        waiting = await unstarted_requests(conn)
    if not waiting:
        return []
    producer = make_producer(bootstrap_servers, client_id="oriole-restore")
    await producer.start()
    published: list[str] = []
    try:
        for request in waiting:
            try:
                message = request.republished()
            except UndecodableMessage:
                continue  # never a start at all: its rejection was lost with the broker
            await producer.send_and_wait(topics.experiments_start, message, key=request.key)
            published.append(request.run_id)
    finally:
        await stop_quietly(producer)
    return published


async def restore_unfinished_batches(
    pool: Any, bootstrap_servers: str, topics: Topics
) -> list[str]:
    """Put the archived logs of unfinished batches back on a fresh, empty broker.

    Called by `oriole up` beside :func:`restore_unfinished_runs`, before the workers start.
    Every batch whose archived log has neither ``batch.finished`` nor ``batch.rejected`` gets
    its log back on the batch events topic (in seq order, keyed by batch id), so a batch
    scheduler folds it and carries on. An attempt it launched whose end never made it into
    the log, while the archive knows how the run ended (its ``run.finished``, or the
    rejection of its start), gets a ``batch.run_ended`` on the batch commands topic: the
    forwarder that would have sent it read a log the broker has forgotten. Returns the
    batch ids.
    """
    async with pool.acquire() as conn:
        rows = await conn.fetch(UNFINISHED_BATCHES)
        logs = [await batch_events_of(conn, row["batch_id"]) for row in rows]
        logs = [events for events in logs if events and not has_ended(events)]
        unended = [run_id for events in logs for run_id in unended_attempts(events)]
        # Runs that finished before their launch reached the archive: the scheduler launches
        # them again, is told "duplicate run id", and learns their end only from here.
        unended += await _finished_unlogged(conn, logs, set(unended))
        ends = await _archived_ends(conn, unended)
    if not logs:
        return []
    await ensure_topics(bootstrap_servers, topics.specs)
    producer = make_producer(bootstrap_servers, client_id="oriole-restore")
    await producer.start()
    try:
        pending = []
        for events in logs:
            for event in events:
                out = encode(topics.batches_events, event, event.batch_id)
                pending.append(
                    await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                )
        for notice in ends:
            out = encode(topics.batches_commands, notice, notice.batch_id)
            pending.append(
                await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
            )
        for future in pending:
            await future
    finally:
        await stop_quietly(producer)
    return [events[0].batch_id for events in logs]


_FINISHED_OF_BATCHES = """
    SELECT DISTINCT run_id FROM run_events
     WHERE type = 'run.finished'
       AND run_id ^@ ANY($1::text[])"""


async def _finished_unlogged(conn: Any, logs: list[list[BatchEvent]], known: set[str]) -> list[str]:
    """Archived finished runs of these batches whose end their logs do not hold."""
    prefixes = [f"{events[0].batch_id}:" for events in logs]
    if not prefixes:
        return []
    ended = {
        event.payload.run_id for events in logs for event in events if isinstance(event, RunEnded)
    }
    rows = await conn.fetch(_FINISHED_OF_BATCHES, prefixes)
    return sorted(
        row["run_id"]
        for row in rows
        if row["run_id"] not in ended
        and row["run_id"] not in known
        and batch_of_run(row["run_id"]) is not None
    )


_RUN_ENDS = f"""
    SELECT {", ".join(ARCHIVE_COLUMNS)} FROM run_events
     WHERE run_id = ANY($1::text[]) AND type = 'run.finished'"""
_REFUSED_STARTS = """
    SELECT DISTINCT ON (run_id) run_id, problems FROM start_requests s
     WHERE run_id = ANY($1::text[]) AND rejected_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM run_events v WHERE v.run_id = s.run_id)
     ORDER BY run_id, rejected_at"""


async def _archived_ends(conn: Any, run_ids: list[str]) -> list[BatchRunEnded]:
    """A ``batch.run_ended`` for each of ``run_ids`` whose end the archive knows."""
    if not run_ids:
        return []
    finished: dict[str, BatchRunEnded] = {}
    for record in await conn.fetch(_RUN_ENDS, run_ids):
        event = event_from_archive(record)
        batch_id = batch_of_run(event.run_id)
        if isinstance(event, RunFinished) and batch_id is not None:
            finished[event.run_id] = BatchRunEnded(
                batch_id=batch_id, run_id=event.run_id, finished=event.payload
            )
    for record in await conn.fetch(_REFUSED_STARTS, run_ids):
        run_id, batch_id = record["run_id"], batch_of_run(record["run_id"])
        if run_id in finished or batch_id is None:
            continue
        try:
            problems = [FieldProblem.model_validate(p) for p in json.loads(record["problems"])]
        except (TypeError, ValueError):
            continue  # not a rejection this version can read
        if problems:
            finished[run_id] = BatchRunEnded(batch_id=batch_id, run_id=run_id, problems=problems)
    return [finished[run_id] for run_id in run_ids if run_id in finished]
