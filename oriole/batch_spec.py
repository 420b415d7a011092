"""Batches: an A/B grid of runs the platform runs to completion — the pure part.

Everything a caller needs is importable from here:

- `BatchSpec` (and its parts, `oriole.batch_models`): the document, with `parse_batch` to
  read a decoded one and `load_batch_file` to read TOML text;
- `expand_batch` (`oriole.batch_expand`): the spec as admitted runs (`BatchPlan` of
  `PlannedRun`) or every problem with it (`BatchRejected`);
- `maze_files`: which maze entries name a file, for the CLI to read (this module reads
  no file: the CLI replaces ``{file = "x.json"}`` by ``{data = <the maze>}``).

A TOML spec looks like::

    name = "temperature A/B"
    agents = ["frontier", { agent = "ollama:qwen2.5:7b", options = { num_ctx = 16384 } }]
    prompts = ["v1", "v2-explore"]
    sweep = { temperature = [0.0, 0.7] }
    mazes = [{ name = "01_sparse_maze" },
             { generator = "backtracker", width = 21, height = 21, seeds = [1, 2, 3] }]
    starts = { random = 2, seed = 7 }
    repetitions = 3
    [caps]
    max_in_flight = 4
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from oriole.batch_events import new_batch_id
from oriole.batch_expand import (
    MAX_RUN_ID_LENGTH,
    BatchPlan,
    BatchRejected,
    PlannedRun,
    expand_batch,
    run_id_for,
)
from oriole.batch_levels import random_starts
from oriole.batch_models import (
    BATCH_LABELS,
    MAX_BATCH_RUNS,
    AgentEntry,
    BatchBudget,
    BatchCaps,
    BatchSpec,
    EmbeddedMaze,
    FixedStart,
    GeneratedMazes,
    LibraryMaze,
    OptionSweep,
    RandomStarts,
    json_problems,
    parse_batch,
)
from oriole.errors import ValidationError

__all__ = [
    "BATCH_LABELS",
    "MAX_BATCH_RUNS",
    "MAX_RUN_ID_LENGTH",
    "AgentEntry",
    "BatchBudget",
    "BatchCaps",
    "BatchFileError",
    "BatchPlan",
    "BatchRejected",
    "BatchSpec",
    "EmbeddedMaze",
    "FixedStart",
    "GeneratedMazes",
    "LibraryMaze",
    "OptionSweep",
    "PlannedRun",
    "RandomStarts",
    "expand_batch",
    "load_batch_file",
    "maze_files",
    "new_batch_id",
    "parse_batch",
    "random_starts",
    "run_id_for",
]

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class BatchFileError(ValidationError):
    """A batch file that is not a batch document; ``problems`` as `BatchRejected` has them.

    ``field`` and ``reason`` are those of the first problem (a ValidationError like any).
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(*problems[0])
        self.problems = problems


def load_batch_file(text: str, *, source: str) -> dict[str, Any]:
    """TOML text as the JSON-like batch document (not yet checked: see `parse_batch`).

    Raises `BatchFileError`: for a TOML syntax error, one problem on ``source:line``; for
    values JSON cannot carry (TOML dates and times), one per value, on ``source: field``.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _POSITION.search(message)
        if found is None:
            raise BatchFileError([(source, f"not valid TOML: {message}")]) from exc
        line, column = found.groups()
        reason = f"not valid TOML: {message[: found.start()]} (column {column})"
        raise BatchFileError([(f"{source}:{line}", reason)]) from exc
    problems = json_problems(document)
    if problems:
        raise BatchFileError([(f"{source}: {field}", reason) for field, reason in problems])
    return document


def maze_files(document: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``(index, path)`` of each maze entry given as ``{file = "path"}``: the CLI reads the
    file (relative to the batch file) and replaces the entry by ``{data = <the maze>}``."""
    mazes = document.get("mazes")
    if not isinstance(mazes, list):
        return []
    return [
        (index, entry["file"])
        for index, entry in enumerate(mazes)
        if isinstance(entry, Mapping) and isinstance(entry.get("file"), str)
    ]
