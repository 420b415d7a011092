"""Reading batches' event logs back, for a scheduler that takes their partitions over."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import TopicPartition

from oriole.batch_events import BatchEvent, parse_batch_event
from streams.event_log import partition_reader

log = logging.getLogger("oriole.streams.batches")


async def read_batch_logs(
    bootstrap_servers: str, topic: str, partitions: Iterable[int], *, client_id: str
) -> dict[str, list[BatchEvent]]:
    """Every batch event in ``partitions`` of ``topic`` up to their end, by batch, in order.

    A record that cannot be read is logged and skipped (the fold then refuses the gap it
    leaves, for that batch only), so no record can stop the scheduler.
    """
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    logs: dict[str, list[BatchEvent]] = {}
    if not wanted:
        return logs
    async with partition_reader(bootstrap_servers, wanted, f"{client_id}-rebuild") as (
        reader,
        ends,
    ):
        for tp in wanted:
            await reader.seek_to_beginning(tp)
        remaining = {tp for tp in wanted if ends[tp] > 0}
        while remaining:
            batches = await reader.getmany(*remaining, timeout_ms=500, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    try:
                        event = parse_batch_event(record.value or b"")
                    except Exception as exc:
                        log.error(
                            "batch event %s[%s]@%s unreadable: %s",
                            topic,
                            tp.partition,
                            record.offset,
                            str(exc)[:300],
                        )
                        continue
                    logs.setdefault(event.batch_id, []).append(event)
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    return logs
