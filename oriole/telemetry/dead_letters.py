"""The dead-letter counter: ``oriole_dead_letters_total``, by the topic a record came from.

Counted in `oriole.kafka.codec.dead_letter_for`, which builds every dead letter of every
service (the maze processor, the batch scheduler, the projector), so no path can forget it.
"""

from __future__ import annotations

from prometheus_client import Counter

DEAD_LETTERS = Counter(
    "oriole_dead_letters_total",
    "Messages sent to the dead-letter topic, by the topic they came from.",
    ["topic"],
)
