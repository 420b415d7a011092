"""Text PostgreSQL can store: finding and replacing the characters it cannot hold.

PostgreSQL ``text`` and ``jsonb`` cannot hold U+0000 (NUL), and its UTF-8 encoding has no
lone surrogate (which Python's ``json`` happily decodes from ``"\\ud800"``). Every event is
archived there, so one such character in a start event once crashed the projector after
the run had been admitted. Admission refuses them in external input
(:func:`text_problems`); text Oriole did not choose, such as a model's reply, is cleaned
instead (:func:`without_nul`), because refusing it would fail a run for what a model said.

Pure: works on decoded JSON (dicts, lists, strings, numbers), keys included.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: What replaces an unstorable character: U+FFFD, Unicode's "replacement character".
REPLACEMENT = "\ufffd"

_NUL = re.compile("\x00")
#: In a Python ``str`` decoded from JSON a valid surrogate pair is already one code point,
#: so any surrogate left is a lone one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: In JSON text written by ``json.dumps`` (ASCII only, lowercase hex): an escaped NUL or a
#: lone surrogate. (An escaped backslash before ``u0000`` also matches: only a false alarm.)
_ESCAPED = re.compile(
    r"\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}"
)

_NUL_REASON = "contains a NUL character (\\u0000), which PostgreSQL cannot store"
_SURROGATE_REASON = (
    "contains a lone surrogate ({}), which is not valid Unicode and PostgreSQL cannot store"
)


def without_nul(value: Any) -> Any:
    """``value`` with every NUL in its strings and keys replaced by U+FFFD.

    Returns ``value`` itself (not a copy) when there is nothing to replace, so cleaning
    every command costs nothing in the usual case.
    """
    return _replaced(value, _NUL)


def without_unstorable(value: Any) -> Any:
    """``value`` with every NUL and lone surrogate replaced by U+FFFD (same object if none)."""
    return _replaced(value, _UNSTORABLE)


def storable_json(value: Any) -> tuple[str, list[tuple[str, str]]]:
    """``value`` as JSON text without unstorable characters, and the fields that had one.

    The usual case costs one ``json.dumps``: the field-by-field walk runs only when the text
    holds an escape that may be such a character. RecursionError if nested too deeply.
    """
    text = json.dumps(value)
    if _ESCAPED.search(text) is None:
        return text, []
    return json.dumps(without_unstorable(value)), text_problems(value)


def text_problems(value: Any, field: str = "") -> list[tuple[str, str]]:
    """One ``(field, reason)`` per string or key of ``value`` that PostgreSQL cannot store.

    Fields are dotted paths with ``[i]`` for list items; a bad key is shown with its
    characters escaped (``labels.te\\u0000am``) so the problem itself is storable.
    """
    problems: list[tuple[str, str]] = []
    if isinstance(value, str):
        reason = _reason(value)
        if reason is not None:
            problems.append((field or "event", reason))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = _shown(str(key))
            path = f"{field}.{name}" if field else name
            reason = _reason(str(key))
            if reason is not None:
                problems.append((path, f"the key {reason}"))
            problems.extend(text_problems(item, path))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problems.extend(text_problems(item, f"{field}[{index}]"))
    return problems


def _reason(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if "\x00" in text:
        return _NUL_REASON
    return _SURROGATE_REASON.format(_shown(found.group()))


def _shown(text: str) -> str:
    """``text`` with unstorable characters written as JSON escapes (``\\u0000``)."""
    return _UNSTORABLE.sub(lambda m: json.dumps(m.group())[1:-1], text)


def _replaced(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REPLACEMENT, value) if pattern.search(value) else value
    if isinstance(value, dict):
        changed = False
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = _replaced(key, pattern) if isinstance(key, str) else key
            new_item = _replaced(item, pattern)
            changed = changed or new_key is not key or new_item is not item
            cleaned[new_key] = new_item
        return cleaned if changed else value
    if isinstance(value, list | tuple):
        items = [_replaced(item, pattern) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value
