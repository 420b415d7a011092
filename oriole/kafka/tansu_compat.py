"""aiokafka patches that make it talk correctly to the embedded Tansu broker.

Apply them (through :func:`oriole.kafka.prepare_clients`) only when the embedded broker is in
use: a real Kafka cluster needs neither, and patch B adds one extra Fetch round trip to every
end-offset lookup. Both patches change process-wide aiokafka classes, so they affect every
client in the process, including clients created before :func:`apply` was called.

Measured against Tansu 0.6 (memory store) and aiokafka 0.14; ``tests/test_tansu_compat.py``
shows each failure without its patch and the fix with it.

Patch A — ``InitProducerId`` v3
    aiokafka only knows InitProducerId v0. Tansu allocates a producer id only when the
    request carries ``producer_id=-1, producer_epoch=-1``, fields that exist from v3 on; to
    v0 it answers UnknownError, so ``enable_idempotence=True`` and transactional producers
    fail with "Unexpected error during InitProducerIdRequest: UnknownError". The patch
    teaches aiokafka the flexible v3 request (sending ``-1/-1``, "allocate a new producer
    id"); version negotiation then picks v3 on Tansu.

Patch B — end offsets and offsets for times
    Tansu's ListOffsets(LATEST) answers *(base offset of the last record batch) + 1* instead
    of the log end offset, e.g. 102 instead of 111 after 111 records in several batches.
    ``end_offsets()``, ``seek_to_end()`` and ``auto_offset_reset="latest"`` then land inside
    the last batch; faust table recovery silently loses and double-counts updates. The
    Fetch response's high watermark *is* correct, so for LATEST lookups the patch sends one
    small Fetch and takes the larger of the two answers (the last stable offset under
    ``read_committed``). Tansu also answers a timestamp lookup that matches no record with
    offset 0 and timestamp -1 instead of "no offset"; the patch turns that into aiokafka's
    "no offset", so ``offsets_for_times()`` returns ``None`` for that partition as documented.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from aiokafka.consumer import (
    fetcher as _fetcher,
)
from aiokafka.protocol import (
    transaction as _transaction,
)
from aiokafka.protocol.api import (
    RequestStruct,
    Response,
)
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.types import (
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)
from aiokafka.structs import TopicPartition

__all__ = ["apply", "is_applied"]

#: Marker attribute set on our replacement functions; its presence means "already patched".
_MARKER: Final = "__oriole_tansu_compat__"

#: ``NO_PRODUCER_ID``/``NO_PRODUCER_EPOCH`` of the Kafka protocol: "allocate a new id".
_NO_PRODUCER_ID: Final = -1
_NO_PRODUCER_EPOCH: Final = -1

#: Fetch parameters of the high-watermark probe. ``max_wait`` must be at least 1 ms: with 0,
#: Tansu answers without any partitions. One byte is enough, only the header is used.
_PROBE_MAX_WAIT_MS: Final = 1
_PROBE_MIN_BYTES: Final = 1
_PROBE_MAX_BYTES: Final = 1

#: Fetch v4 is the first version whose partition entries carry ``last_stable_offset``.
_FIRST_FETCH_VERSION_WITH_LSO: Final = 4


# -- patch A: InitProducerId v3 ------------------------------------------------------------


class InitProducerIdResponseV3(Response):  # type: ignore[misc]
    """InitProducerId response v3 (flexible version, tagged fields)."""

    API_KEY = 22
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("tags", TaggedFields),
    )


class InitProducerIdRequestV3(RequestStruct):  # type: ignore[misc]
    """InitProducerId request v3: adds the current producer id/epoch (``-1/-1`` for new)."""

    FLEXIBLE_VERSION = True
    API_KEY = 22
    API_VERSION = 3
    RESPONSE_TYPE = InitProducerIdResponseV3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("transaction_timeout_ms", Int32),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("tags", TaggedFields),
    )


def _build_init_producer_id(request: Any, struct_class: type[Any]) -> Any:
    """Replacement ``InitProducerIdRequest.build`` that can fill both v0 and v3 structs."""
    if struct_class.API_VERSION >= InitProducerIdRequestV3.API_VERSION:
        return struct_class(
            request._transactional_id,
            request._transaction_timeout_ms,
            _NO_PRODUCER_ID,
            _NO_PRODUCER_EPOCH,
            {},
        )
    return struct_class(request._transactional_id, request._transaction_timeout_ms)


setattr(_build_init_producer_id, _MARKER, True)


def _apply_patch_a() -> None:
    request_class = _transaction.InitProducerIdRequest
    if getattr(request_class.build, _MARKER, False):
        return
    # ``Request.prepare`` walks ``_CLASSES`` newest first and picks the first version that
    # the broker advertises, so appending v3 is all version negotiation needs.
    request_class._CLASSES = (*request_class._CLASSES, InitProducerIdRequestV3)
    request_class.build = _build_init_producer_id


# -- patch B: end offsets and offsets_for_times --------------------------------------------

_OffsetResult = dict[Any, tuple[int, int | None]]
_ProcOffsetRequest = Callable[[Any, int, Mapping[str, Sequence[tuple[int, int]]]], Awaitable[Any]]


def _wrap_proc_offset_request(original: _ProcOffsetRequest) -> _ProcOffsetRequest:
    """Wrap ``Fetcher._proc_offset_request`` (one ListOffsets round trip to one broker)."""

    @functools.wraps(original)
    async def proc_offset_request(
        self: Any, node_id: int, topic_data: Mapping[str, Sequence[tuple[int, int]]]
    ) -> _OffsetResult:
        result: _OffsetResult = await original(self, node_id, topic_data)
        latest: dict[str, list[tuple[int, int, int]]] = collections.defaultdict(list)
        for topic, partitions in topic_data.items():
            for partition, timestamp in partitions:
                tp = TopicPartition(topic, partition)
                if tp not in result:
                    continue
                offset, found_timestamp = result[tp]
                if timestamp == _fetcher.OffsetResetStrategy.LATEST:
                    latest[topic].append((partition, max(offset, 0), _PROBE_MAX_BYTES))
                elif timestamp >= 0 and found_timestamp == -1:
                    # Tansu's "no record at or after this time": offset 0, timestamp -1.
                    result[tp] = (_fetcher.UNKNOWN_OFFSET, None)
        if latest:
            await _raise_to_high_watermark(self, node_id, latest, result)
        return result

    setattr(proc_offset_request, _MARKER, True)
    return proc_offset_request


async def _raise_to_high_watermark(
    fetcher: Any,
    node_id: int,
    probes: Mapping[str, list[tuple[int, int, int]]],
    result: _OffsetResult,
) -> None:
    """Replace too-small LATEST offsets in ``result`` by the Fetch high watermark."""
    request = FetchRequest(
        _PROBE_MAX_WAIT_MS,
        _PROBE_MIN_BYTES,
        _PROBE_MAX_BYTES,
        fetcher._isolation_level,
        list(probes.items()),
    )
    response = await fetcher._client.send(node_id, request)
    read_committed = fetcher._isolation_level == _fetcher.READ_COMMITTED
    has_lso = response.API_VERSION >= _FIRST_FETCH_VERSION_WITH_LSO
    for topic, partitions in response.topics:
        for partition, error_code, high_watermark, *rest in partitions:
            tp = TopicPartition(topic, partition)
            if error_code or tp not in result:
                continue  # keep ListOffsets' answer; a real error shows up on the next fetch
            end = high_watermark
            if read_committed and has_lso and rest[0] >= 0:
                end = rest[0]  # last stable offset: what a read_committed consumer can reach
            offset, timestamp = result[tp]
            if end > offset:
                result[tp] = (end, timestamp)


def _apply_patch_b() -> None:
    fetcher_class = _fetcher.Fetcher
    if getattr(fetcher_class._proc_offset_request, _MARKER, False):
        return
    fetcher_class._proc_offset_request = _wrap_proc_offset_request(
        fetcher_class._proc_offset_request
    )


# -- public API ----------------------------------------------------------------------------


def is_applied() -> bool:
    """True when both patches are in place in this process."""
    return bool(
        getattr(_transaction.InitProducerIdRequest.build, _MARKER, False)
        and getattr(_fetcher.Fetcher._proc_offset_request, _MARKER, False)
    )


def apply() -> None:
    """Apply patches A and B to aiokafka (idempotent; affects the whole process)."""
    _apply_patch_a()
    _apply_patch_b()
