"""A new experiment from an archived run's spec, with overrides (`oriole rerun`, `oriole fork`).

The recorded spec is complete (maze grid, start, limits, rules, agent, prompt), so a rerun
never depends on what the maze library or the configuration say today. Overrides are dotted
paths into the experiment-start document (``agent.options.temperature=0.2``); the result is
validated like any start event, so a typo names the field it could not use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from oriole.batch_models import BATCH_LABELS
from oriole.errors import ValidationError
from oriole.events import RunStarted
from oriole.schema_base import new_run_id


def rerun_document(
    started: RunStarted, overrides: Mapping[str, Any], *, run_id: str | None = None
) -> dict[str, Any]:
    """The experiment-start document (not yet validated) for rerunning ``started``'s run."""
    spec = started.payload.spec.model_dump(mode="json", by_alias=True)
    spec.pop("requested_at", None)
    document: dict[str, Any] = {
        **spec,
        "run_id": run_id or new_run_id(),
        "rerun_of": started.run_id,
        # A rerun or fork of a batch's run is not one of the batch's runs.
        "labels": {k: v for k, v in spec["labels"].items() if k not in BATCH_LABELS},
    }
    for path, value in overrides.items():
        set_path(document, path, value)
    if "maze_name" in overrides and "maze" not in overrides:
        document.pop("maze", None)  # choosing a library maze replaces the recorded grid
    return document


def fork_document(
    started: RunStarted,
    after_step: int,
    overrides: Mapping[str, Any],
    *,
    agent: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The start document of a fork of ``started``'s run after ``after_step``: the parent's
    spec (its agent unless ``agent`` is given) with the overrides, continuing from there.

    The maze and start are left to admission, which takes them from the parent; its rules
    stay (a fork keeps them, so overriding one is refused with the reason).
    """
    document = rerun_document(started, {}, run_id=run_id)
    del document["rerun_of"]
    for inherited_from_parent in ("maze", "start"):
        document.pop(inherited_from_parent, None)
    document["fork_of"] = {"run_id": started.run_id, "after_step": after_step}
    if agent is not None:
        document["agent"] = dict(agent)
    for path, value in overrides.items():
        if path.split(".")[0] in ("fork_of", "maze", "maze_name", "start"):
            raise ValidationError(
                "--set",
                f"{path.split('.')[0]} of a fork is its parent's: choose the run and --at",
            )
        set_path(document, path, value)
    return document


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating missing levels (``null`` switches a limit off)."""
    keys = path.split(".")
    if not path or any(not key for key in keys):
        raise ValidationError(
            "--set", f"{path!r} is not a dotted field path (e.g. limits.max_footsteps)"
        )
    if keys[0] in ("run_id", "rerun_of", "type", "schema_version"):
        raise ValidationError("--set", f"{keys[0]} cannot be overridden")
    node = document
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise ValidationError("--set", f"{where} is a value, not a group of fields")
        node = child
    node[keys[-1]] = copy.deepcopy(value)
