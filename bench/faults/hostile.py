"""Hostile records: junk of every kind for every input topic, and the flood that sends it.

Each hostile start names its own run id by category, so one the stack wrongly admits shows
up as a run and tells which check is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.faults.config import HOSTILE_PREFIX, FaultConfig
from oriole import generators
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.topics import Topics


@dataclass(frozen=True)
class Hostile:
    category: str
    topic: str
    key: bytes | None
    value: bytes | None


#: 100,000 unclosed brackets: the record that used to blow the decoder's recursion limit.
DEEP = b"[" * 100_000
#: Valid JSON nested 5,000 deep, inside an otherwise valid start event.
DEEP_VALID = b"[" * 5000 + b"]" * 5000


def tiny_maze() -> dict[str, Any]:
    return generators.generate("open-field", 8, 8, seed=1, name="tiny").to_dict()


def start_doc(run_id: str, maze: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A valid start of a 20-step run on a tiny maze, with ``fields`` replaced."""
    doc = {
        "type": "experiment.start",
        "run_id": run_id,
        "maze": maze,
        "agent": {"provider": "builtin", "model": "frontier", "seed": 1},
        "limits": {"max_footsteps": 20},
    }
    return doc | fields


def dump(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def hostile_id(category: str, n: int) -> str:
    return f"{HOSTILE_PREFIX}{category}-{n}"


def hostile_starts(n: int, maze: dict[str, Any]) -> dict[str, bytes | None]:
    """Start events that must be rejected, by category; each names its own run id, so one
    the stack wrongly admits shows up as a run and tells which check is missing."""

    def doc(category: str, **fields: Any) -> bytes:
        return dump(start_doc(hostile_id(category, n), maze, **fields))

    evil_endpoint = {"provider": "ollama", "model": "qwen2.5:7b", "endpoint": "http://127.0.0.1:1/"}
    hugeint = b'{"type": "experiment.start", "run_id": "%s", "limits": {"max_footsteps": 1%s}}'
    return {
        "utf8": b'{"type": "experiment.start", "run_id": "\xff\xfe\xc3"}',
        "deep-list": DEEP,
        "deep-field": b'{"run_id": "x", "comment": ' + DEEP + b"}",
        "deep-valid": doc("deep-valid")[:-1] + b', "labels": {"a": ' + DEEP_VALID + b"}}",
        "nul": doc("nul", comment="evil\x00nul"),
        "nul-label": doc("nul-label", labels={"k\x00": "v"}),
        "strint": doc("strint", limits={"max_footsteps": "10"}),
        "hugeint": hugeint % (hostile_id("hugeint", n).encode(), b"0" * 5000),
        "types": dump({"type": 5, "run_id": hostile_id("types", n), "maze": "x", "agent": []}),
        "endpoint": doc("endpoint", agent=evil_endpoint),
        "not-object": [b"[1, 2]", b'"text"', b"null", b"42", b""][n % 5],
        "tombstone": None,
        "truncated": doc("truncated")[:200],
        "unknown-field": doc("unknown-field", evil=1),
    }


def hostile_commands(n: int, maze: dict[str, Any]) -> list[bytes]:
    """Bad shapes on the internal command topic (anyone with Kafka access can write it)."""
    run_id = hostile_id("command", n)
    nameless = start_doc(run_id, maze) | {"maze": None, "maze_name": "x"}
    return [
        b'{"type": "run.start", "request": {}}',
        b'{"type": "nope"}',
        dump({"type": "agent.intent", "run_id": run_id}),
        dump({"type": "agent.intent", "run_id": run_id, "basis_seq": "1", "turn": 1}),
        dump({"type": "run.start", "schema_version": 1, "request": nameless}),
        dump({"type": "agent.failure", "run_id": 7}),
        DEEP,
        b"\xfe",
    ]


def hostile_log_records(n: int) -> list[bytes]:
    """Junk on the run log, which the projector, the runners and the gateway read."""
    forged = {
        "type": "action.completed",
        "run_id": hostile_id("log", n),
        "seq": 1,
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "time": "2026-01-01T00:00:00Z",
        "payload": {"bad": True},
    }
    return [b"not json", DEEP, b'{"type": "run.finished", "seq": "x"}', dump(forged), b"\xff"]


def hostile_records(topics: Topics, config: FaultConfig, starts: list[bytes]) -> Iterator[Hostile]:
    """``config.hostile_records`` records cycling through every kind of junk on every input
    topic, plus duplicates of the real starts and ``huge_records`` oversized starts."""
    maze = tiny_maze()
    huge_left, left = config.huge_records, config.hostile_records
    for n in itertools.count():
        batch: list[Hostile] = []
        for category, value in hostile_starts(n, maze).items():
            key = hostile_id(category, n).encode()
            batch.append(Hostile(category, topics.experiments_start, key, value))
        batch += [
            Hostile("nokey", topics.experiments_start, None, b"\x00\x01 garbage"),
            Hostile("duplicate", topics.experiments_start, None, starts[n % len(starts)]),
        ]
        key = hostile_id("internal", n).encode()
        cancels = [b'{"type": "run.cancel"}', b'{"type": "run.cancel", "run_id": []}', DEEP]
        commands = hostile_commands(n, maze)
        logs = hostile_log_records(n)
        batch += [
            Hostile("cancel", topics.runs_control, key, cancels[n % len(cancels)]),
            Hostile("command", topics.runs_commands, key, commands[n % len(commands)]),
            Hostile("log", topics.runs_events, key, logs[n % len(logs)]),
            Hostile("replay", topics.runs_replay, key, b"\x00" * 64),
        ]
        if huge_left > 0:
            huge_left -= 1
            head = b'{"type": "experiment.start", "run_id": "%s", "comment": "'
            value = head % hostile_id("huge", n).encode() + b"A" * config.huge_bytes + b'"}'
            batch.append(Hostile("huge", topics.experiments_start, key, value))
        for record in batch:
            if left <= 0:
                return
            left -= 1
            yield record


async def flood(
    bootstrap: str,
    records: Iterable[Hostile],
    max_request_size: int,
    sent: Counter[str],
    refused: Counter[str],
) -> None:
    """Send ``records`` in bursts, paced so the flood overlaps the faults; count each record
    in ``sent`` and, if the client or the broker refused it, in ``refused`` (by category)."""
    producer = make_producer(
        bootstrap,
        client_id="faults-hostile",
        max_request_size=max_request_size,
        enable_idempotence=False,
    )
    await producer.start()
    try:
        burst: list[tuple[str, Any]] = []
        for record in records:
            sent[record.category] += 1
            try:
                delivery = await producer.send(record.topic, record.value, key=record.key)
                burst.append((record.category, delivery))
            except Exception:  # too large for the client, say: refused before the broker
                refused[record.category] += 1
            if len(burst) >= 50:
                await _delivered(burst, refused)
                burst = []
                await asyncio.sleep(0.1)  # pacing, so the flood overlaps the faults
        await _delivered(burst, refused)
    finally:
        await stop_quietly(producer)


async def _delivered(burst: list[tuple[str, Any]], refused: Counter[str]) -> None:
    """Wait for a burst; a record the broker refused is counted, not an error."""
    results = await asyncio.gather(*(sent for _, sent in burst), return_exceptions=True)
    for (category, _), result in zip(burst, results, strict=True):
        if isinstance(result, BaseException):
            refused[category] += 1
