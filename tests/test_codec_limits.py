"""The one decoder and encoder of Kafka messages: limits and clear reasons (issue 11)."""

from __future__ import annotations

import base64

import pytest

from oriole.events import ExperimentRejected, FieldProblem
from oriole.kafka.codec import (
    DEAD_LETTER_KEEP_BYTES,
    MAX_MESSAGE_BYTES,
    MessageTooLarge,
    UndecodableMessage,
    dead_letter,
    dead_letter_for,
    encode,
    json_object,
)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'{"a": ' + b"1" * 5000 + b"}", "Exceeds the limit (4300 digits)"),
        (b"\xff\xfe{\x00}\x00", "not valid UTF-8 JSON: byte 0 cannot be decoded"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b" " * (MAX_MESSAGE_BYTES + 1), f"over the limit of {MAX_MESSAGE_BYTES} bytes"),
        (None, "empty message"),
    ],
)
def test_every_undecodable_message_says_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(UndecodableMessage, match=reason.replace("(", r"\(").replace(")", r"\)")):
        json_object(value)


def test_a_message_over_the_limit_is_refused_when_it_is_encoded() -> None:
    too_big = ExperimentRejected(
        run_id="run-1",
        problems=[FieldProblem(field="event", reason="x")],
        original="x" * MAX_MESSAGE_BYTES,
    )
    with pytest.raises(MessageTooLarge, match="experiment.rejected message of"):
        encode("t", too_big, "run-1")


def test_a_dead_letter_keeps_the_head_of_a_huge_message() -> None:
    huge = b"y" * (MAX_MESSAGE_BYTES + 5)
    letter = dead_letter(
        topic="t", partition=0, offset=1, key=b"k", value=huge, error=ValueError("too big")
    )
    assert letter.value_size == len(huge)
    assert letter.value_kept == DEAD_LETTER_KEEP_BYTES
    assert base64.b64decode(letter.value) == huge[:DEAD_LETTER_KEEP_BYTES]
    encode("t.deadletter", letter, "k")  # fits on the topic itself


def test_every_dead_letter_is_counted_by_the_topic_it_came_from() -> None:
    """`dead_letter_for` builds every service's dead letters, so it is where they are counted:
    no dead-letter path can forget `oriole_dead_letters_total`."""
    from types import SimpleNamespace

    from prometheus_client import REGISTRY

    def counted() -> float:
        value = REGISTRY.get_sample_value("oriole_dead_letters_total", {"topic": "t.start"})
        return value or 0.0

    record = SimpleNamespace(topic="t.start", partition=0, offset=7, key=b"\xff", value=b"{")
    before = counted()
    out = dead_letter_for(record, ValueError("not JSON"), "t.deadletter")
    assert counted() == before + 1
    assert (out.topic, out.key) == ("t.deadletter", b"\xff")  # the record's own key bytes
