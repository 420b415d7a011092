"""Kafka plumbing: the embedded broker, the topic catalogue and broker-specific client fixes.

Call :func:`prepare_clients` once at start-up, before creating any Kafka client:
it applies the Tansu compatibility patches when (and only when) the embedded broker is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oriole.kafka import tansu_compat
from oriole.kafka.embedded import EmbeddedBroker, EmbeddedBrokerError, find_tansu_binary
from oriole.kafka.topics import TopicError, Topics, TopicSpec, ensure_topics, wait_for_broker

if TYPE_CHECKING:
    from oriole.environment.settings import Settings

__all__ = [
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "TopicError",
    "TopicSpec",
    "Topics",
    "ensure_topics",
    "find_tansu_binary",
    "prepare_clients",
    "wait_for_broker",
]


def prepare_clients(target: Settings | bool) -> bool:
    """Apply the client patches the broker in use needs; return True if any were applied.

    ``target`` is the settings (patches apply when ``settings.embedded_broker``) or a flag
    saying whether the embedded broker is used. With a real Kafka nothing is changed. The
    patches are process-wide and idempotent.
    """
    embedded = target if isinstance(target, bool) else target.embedded_broker
    if not embedded:
        return False
    tansu_compat.apply()
    return True
