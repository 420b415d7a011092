"""Leaf-by-leaf comparison of a recorded event with its re-derived twin, as JSON sees them.

Apart from the walk (:mod:`oriole.replay`) because what counts as equal (``True`` is not
``1``, ``time`` and ``event_id`` are inputs) and how a difference is addressed
(``payload.tiles[2]``) is one decision, independent of how the log is grouped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from oriole.events import RunEvent
from oriole.replay_report import MISSING

#: Envelope fields that are inputs of the rules (``now``, ``new_id``), never compared.
_NOT_COMPARED = ("time", "event_id")


def identical(recorded: RunEvent, derived: RunEvent) -> bool:
    """Equal as JSON text, inputs aside: then no leaf differs (``true`` and ``1`` are written
    differently). The common answer of a verification, found without opening either event;
    any other pair is walked leaf by leaf (which may still find ``1`` and ``1.0`` equal)."""
    exclude = set(_NOT_COMPARED)
    return recorded.model_dump_json(by_alias=True, exclude=exclude) == derived.model_dump_json(
        by_alias=True, exclude=exclude
    )


def comparable(event: RunEvent) -> dict[str, Any]:
    data = event.model_dump(mode="json", by_alias=True)
    for name in _NOT_COMPARED:
        data.pop(name, None)
    return data


def summary(event: RunEvent) -> dict[str, Any]:
    """An event that has no counterpart: its type and payload say what it is."""
    data = comparable(event)
    return {"type": data["type"], "payload": data["payload"]}


def _is_leaf(value: Any) -> bool:
    """Points and number tuples (a seen tile) read best whole; other containers are opened."""
    if isinstance(value, dict):
        return set(value) == {"x", "y"}
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, int | float) for item in value)
    return True


def _equal(left: Any, right: Any) -> bool:
    """Deep equality as JSON sees it (``True`` is not ``1``)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_equal, left, right))
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return bool(left == right)


def leaf_differences(path: str, recorded: Any, derived: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(path, recorded, derived)`` for every differing leaf, in document order."""
    opened = not (_is_leaf(recorded) and _is_leaf(derived))
    if opened and isinstance(recorded, dict) and isinstance(derived, dict):
        for key in list(recorded) + [key for key in derived if key not in recorded]:
            yield from leaf_differences(
                f"{path}.{key}" if path else str(key),
                recorded.get(key, MISSING),
                derived.get(key, MISSING),
            )
    elif opened and isinstance(recorded, list) and isinstance(derived, list):
        for index in range(max(len(recorded), len(derived))):
            yield from leaf_differences(
                f"{path}[{index}]",
                recorded[index] if index < len(recorded) else MISSING,
                derived[index] if index < len(derived) else MISSING,
            )
    elif not _equal(recorded, derived):
        yield path or "event", recorded, derived
