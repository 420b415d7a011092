"""The dead-letter counter, shared by every service that dead-letters a record.

It lives below the shells so that the maze processor, the batch scheduler and the projector
count into one ``oriole_dead_letters_total`` without importing each other.
"""

from __future__ import annotations

from prometheus_client import Counter

DEAD_LETTERS = Counter(
    "oriole_dead_letters_total",
    "Messages sent to the dead-letter topic, by the topic they came from.",
    ["topic"],
)
