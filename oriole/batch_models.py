"""The batch spec as a wire model: an A/B grid of runs the platform runs to completion.

A batch names factors (agents, prompts, model-option sweeps, mazes, start tiles) whose cross
product gives the cells, and how often each cell is repeated. `oriole.batch_expand` turns a
spec into admitted runs; this module only reads and checks the document. It reads no file:
a maze given as ``{file = "..."}`` is turned into ``{data = ...}`` by the CLI first.

Documents come from outside (TOML files through the CLI, HTTP, any Kafka client), so they
are read as strictly as start events (`oriole.admission`): ``"10"`` is not an integer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import pydantic
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from oriole.admission import endpoint_problem
from oriole.batch_events import BatchId, new_batch_id
from oriole.comparison.stopping import SequentialOption
from oriole.errors import ValidationError
from oriole.experiment import (
    GameRules,
    MazeData,
    ModelOptions,
    PromptSpec,
    ProviderName,
    RunLimits,
)
from oriole.generators import MAX_SEED, MAX_SIZE, MIN_SIZE
from oriole.maze import MAX_NAME_LENGTH
from oriole.schema_base import RunId, WireModel, field_problems
from oriole.storable import storable_json

#: A grid that expands to more runs than this is refused (split it into several batches).
MAX_BATCH_RUNS = 10_000
#: Labels every run of a batch gets; a spec may not set them itself.
BATCH_LABELS = ("batch_id", "cell", "repetition")
#: Largest base seed: seeds stay integers every JSON reader keeps exact.
MAX_BATCH_SEED = 2**53 - 1
#: Runs carry at most 50 labels (`oriole.experiment`); the batch's own take three of them.
_MAX_SPEC_LABELS = 50 - len(BATCH_LABELS)

Problems = list[tuple[str, str]]


def _kind(value: Any, tags: Mapping[str, str]) -> str | None:
    """The union member a value is (by its type, or by the key that marks an object)."""
    if isinstance(value, str):
        return tags.get("str")
    if isinstance(value, Mapping):
        for key, tag in tags.items():
            if key in value:
                return tag
        return tags.get("object")
    if isinstance(value, pydantic.BaseModel):
        return tags.get(type(value).__name__)
    return None


class AgentEntry(WireModel):
    """One agent with settings of its own; a plain string is the same with only ``agent``."""

    agent: str = Field(
        min_length=1,
        max_length=300,
        description="`PROVIDER:MODEL`, or a model name whose provider is obvious.",
        examples=["ollama:qwen2.5:7b", "frontier", "openai:gpt-4o-mini"],
    )
    options: ModelOptions = Field(
        default_factory=ModelOptions,
        description="Model options of this agent's runs; a sweep may not set the same option.",
    )
    endpoint: str | None = Field(
        default=None, max_length=2000, description="Model endpoint; default: the provider's."
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description=(
            "Fixes a built-in agent's seed for every repetition (repetitions are then "
            "identical). A model's sampling seed is `options.seed`."
        ),
    )
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Short name shown in cell descriptions; default: the agent name.",
    )


AgentChoice = Annotated[
    Annotated[str, Tag("name"), Field(min_length=1, max_length=300)]
    | Annotated[AgentEntry, Tag("entry")],
    Discriminator(
        lambda v: _kind(v, {"str": "name", "object": "entry", "AgentEntry": "entry"}),
        custom_error_type="agent",
        custom_error_message="expected an agent name or {agent = ..., options = ...}",
    ),
]

PromptChoice = Annotated[
    Annotated[str, Tag("version"), Field(min_length=1, max_length=100)]
    | Annotated[PromptSpec, Tag("prompt")],
    Discriminator(
        lambda v: _kind(v, {"str": "version", "object": "prompt", "PromptSpec": "prompt"}),
        custom_error_type="prompt",
        custom_error_message="expected a prompt version or {version = ..., text = ...}",
    ),
]


class LibraryMaze(WireModel):
    """A maze of the workers' catalogue, by name."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["01_sparse_maze"])


class EmbeddedMaze(WireModel):
    """A maze given in full (the CLI reads ``{file = "maze.json"}`` into this)."""

    data: MazeData


class GeneratedMazes(WireModel):
    """One generated maze per seed (see `oriole mazes families` for families and params)."""

    generator: str = Field(min_length=1, max_length=100, examples=["backtracker"])
    width: int = Field(ge=MIN_SIZE, le=MAX_SIZE)
    height: int = Field(ge=MIN_SIZE, le=MAX_SIZE)
    params: dict[str, Any] = Field(
        default_factory=dict, description="Family parameters, plus `goal` (strategy)."
    )
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(
        min_length=1, max_length=MAX_BATCH_RUNS
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            raise ValueError(f"seeds repeat ({', '.join(map(str, repeated))}): same maze twice")
        return seeds


_MAZE_TAGS = {"name": "library", "data": "embedded", "generator": "generated"}
MazeChoice = Annotated[
    Annotated[LibraryMaze, Tag("library")]
    | Annotated[EmbeddedMaze, Tag("embedded")]
    | Annotated[GeneratedMazes, Tag("generated")],
    Discriminator(
        lambda v: _kind(
            v,
            {
                **_MAZE_TAGS,
                "LibraryMaze": "library",
                "EmbeddedMaze": "embedded",
                "GeneratedMazes": "generated",
            },
        ),
        custom_error_type="maze",
        custom_error_message=(
            "expected {name = ...} (library), {data = ...} (a maze) or "
            "{generator = ..., width = ..., height = ..., seeds = [...]}"
        ),
    ),
]

_Coordinate = Annotated[int, Field(ge=0, le=999)]


class FixedStart(WireModel):
    """One start tile for every maze."""

    at: list[_Coordinate] = Field(
        min_length=2, max_length=2, description="[x, y]", examples=[[1, 1]]
    )


class RandomStarts(WireModel):
    """``random`` distinct start tiles per maze, drawn from ``seed``: tiles from which the goal
    can be reached but is not yet in view (so a run cannot end before its first move)."""

    random: int = Field(ge=1, le=1000)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)


class ForkStart(WireModel):
    """Every run of this start continues an archived run after its step ``at`` (a fork,
    see docs/forks.md): the arms are compared from the same situation, in its maze."""

    fork_of: RunId = Field(description="The finished, archived run to continue.")
    at: int = Field(ge=0, le=10_000_000, description="Its step to continue after (0: its start).")


StartChoice = Annotated[
    Annotated[Literal["default"], Tag("default")]
    | Annotated[FixedStart, Tag("at")]
    | Annotated[RandomStarts, Tag("random")]
    | Annotated[ForkStart, Tag("fork")],
    Discriminator(
        lambda v: _kind(
            v,
            {
                "str": "default",
                "fork_of": "fork",
                "at": "at",
                "random": "random",
                "FixedStart": "at",
                "RandomStarts": "random",
                "ForkStart": "fork",
            },
        ),
        custom_error_type="start",
        custom_error_message='expected "default", {at = [x, y]}, {random = k, seed = s} or '
        "{fork_of = RUN_ID, at = STEP}",
    ),
]


def _sweep_field(name: str, info: Any) -> Any:
    inner = [arg for arg in get_args(info.annotation) if arg is not type(None)]
    item = inner[0] if len(inner) == 1 else info.annotation
    if info.metadata:
        item = Annotated[(item, *info.metadata)]
    return (
        list[item] | None,  # type: ignore[valid-type]
        Field(default=None, min_length=1, max_length=100, description=f"Values of `{name}`."),
    )


#: The options a sweep may vary: exactly `ModelOptions`, each as a list of values.
OptionSweep: type[WireModel] = pydantic.create_model(
    "OptionSweep",
    __base__=WireModel,
    __doc__="Model options to vary: every combination of the values is one factor level.",
    **{name: _sweep_field(name, info) for name, info in ModelOptions.model_fields.items()},
)


def sweep_values(sweep: WireModel) -> dict[str, list[Any]]:
    """The swept options and their values, in `ModelOptions` field order."""
    return {k: list(v) for k, v in sweep.model_dump().items() if v is not None}


class BatchCaps(WireModel):
    """How many of the batch's runs may be in flight at once."""

    max_in_flight: int = Field(default=4, ge=1, le=1000)
    per_provider: dict[ProviderName, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict, description="At most this many runs per provider."
    )
    per_endpoint: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict, description="At most this many runs per model endpoint (URL)."
    )

    @field_validator("per_endpoint")
    @classmethod
    def _urls(cls, caps: dict[str, int]) -> dict[str, int]:
        bad = [f"{url!r}: {reason}" for url in caps if (reason := endpoint_problem(url))]
        if bad:
            raise ValueError("; ".join(bad))
        return caps


class BatchBudget(WireModel):
    """What the whole batch may spend; no run is launched once it is spent."""

    usd: float | None = Field(default=None, gt=0, le=1_000_000)
    tokens: int | None = Field(default=None, ge=1, le=10**13)

    @model_validator(mode="after")
    def _something(self) -> BatchBudget:
        if self.usd is None and self.tokens is None:
            raise ValueError("give usd and/or tokens (or leave the budget out)")
        return self


def _one_or_list(schema: dict[str, Any]) -> None:
    """The schema of a list field that also takes a single item (as ``starts`` does)."""
    array = {key: schema.pop(key) for key in ("type", "items", "minItems", "maxItems")}
    schema["anyOf"] = [array["items"], array]


class BatchSpec(WireModel):
    """An A/B grid of runs: agents x prompts x option sweep x mazes x starts, repeated."""

    schema_version: Literal[1] = 1
    batch_id: BatchId = Field(
        default_factory=new_batch_id,
        description="Batch id: 1-64 letters, digits, `_` and `-`; generated as `batch-<hex>` "
        "when absent. Its runs are `BATCH:CELL:rN` (`:aK` for retry K).",
        examples=["batch-7f3a9c2e41d0"],
    )
    name: str = Field(min_length=1, max_length=200, description="Short name of the batch.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of every run.")
    comment: str | None = Field(default=None, max_length=1500)
    agents: list[AgentChoice] = Field(min_length=1, max_length=100)
    prompts: list[PromptChoice] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Prompt versions (model agents only); default: the default prompt.",
    )
    sweep: OptionSweep = Field(
        default_factory=OptionSweep,
        description="Model options to vary, e.g. {temperature = [0.0, 0.7]} (model agents only).",
    )
    mazes: list[MazeChoice] = Field(
        default_factory=list,
        max_length=1000,
        description="The mazes (required, unless every start is a fork: a fork plays its "
        "parent's maze).",
    )
    starts: list[StartChoice] = Field(
        default_factory=lambda: list[StartChoice](["default"]),
        min_length=1,
        max_length=100,
        description="Start tiles per maze; a single entry may be given without the list.",
        json_schema_extra=_one_or_list,
    )
    repetitions: int = Field(default=1, ge=1, le=MAX_BATCH_RUNS)
    seed: int = Field(
        default=1,
        ge=1,
        le=MAX_BATCH_SEED,
        description=(
            "Repetition r gets seed `seed + r` (a built-in agent's seed, or a model's "
            "`options.seed` where the provider takes one) unless the agent fixes it. From 1: "
            "seed 0 is the built-in agents' fixed, undrawn order."
        ),
    )
    limits: RunLimits = Field(default_factory=RunLimits, description="Limits of every run.")
    rules: GameRules = Field(default_factory=GameRules, description="Rules of every run.")
    caps: BatchCaps = Field(default_factory=BatchCaps)
    budget: BatchBudget | None = None
    max_retries: int = Field(
        default=1, ge=0, le=10, description="Relaunches of a run that failed with an error."
    )
    sequential: SequentialOption | None = Field(
        default=None,
        description="Stop launching runs once the comparison of two arms is conclusive.",
    )

    @field_validator("starts", mode="before")
    @classmethod
    def _one_start(cls, value: Any) -> Any:
        return value if isinstance(value, list | tuple) else [value]

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        reserved = [key for key in BATCH_LABELS if key in labels]
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: set by the batch on every run")
        if len(labels) > _MAX_SPEC_LABELS:
            raise ValueError(f"at most {_MAX_SPEC_LABELS} labels, got {len(labels)}")
        for key, value in labels.items():
            if not key or len(key) > 100 or len(value) > 500:
                raise ValueError(f"label {key!r}: keys 1-100 and values 0-500 characters")
        return labels

    @model_validator(mode="after")
    def _mazes_or_forks(self) -> BatchSpec:
        forks = sum(isinstance(start, ForkStart) for start in self.starts)
        if forks == 0 and not self.mazes:
            raise ValidationError("mazes", "missing (required)")
        if forks and (self.mazes or forks < len(self.starts)):
            raise ValidationError(
                "starts",
                "a fork start plays its parent's maze from its parent's state: in a batch of "
                "forks every start is a fork and `mazes` is left out",
            )
        if forks and "rules" in self.model_fields_set:
            raise ValidationError(
                "rules", "a fork keeps its parent's rules: leave `rules` out of a batch of forks"
            )
        return self

    @model_validator(mode="after")
    def _seeds_fit(self) -> BatchSpec:
        if self.seed + self.repetitions - 1 > MAX_BATCH_SEED:
            raise ValueError(f"seed + repetitions - 1 must be at most {MAX_BATCH_SEED}")
        return self


_UNION_LISTS = ("agents", "prompts", "mazes", "starts")


def _spec_loc(loc: tuple[int | str, ...]) -> str:
    """``("mazes", 2, "generated", "width")`` -> ``mazes[2].width`` (union tags dropped)."""
    parts = list(loc)
    if len(parts) >= 3 and parts[0] in _UNION_LISTS and isinstance(parts[1], int):
        del parts[2]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _problems(exc: pydantic.ValidationError) -> Problems:
    """`field_problems`, with fields in the spec's own notation (``agents[1].options``)."""
    found: Problems = []
    for error, (field, reason) in zip(
        exc.errors(include_url=False), field_problems(exc), strict=True
    ):
        dotted = ".".join(str(part) for part in error["loc"])
        ours = _spec_loc(tuple(error["loc"]))
        if dotted and field.startswith(dotted):
            field = ours + field[len(dotted) :]
        found.append((field, reason))
    return found


def parse_batch(document: Mapping[str, Any]) -> BatchSpec | Problems:
    """A decoded batch document as a `BatchSpec`, or every problem with it."""
    problems: Problems = []
    mazes = document.get("mazes")
    files: set[str] = set()
    for index, entry in enumerate(mazes if isinstance(mazes, list) else []):
        if isinstance(entry, Mapping) and "file" in entry:
            files.add(f"mazes[{index}]")
            problems.append(
                (
                    f"mazes[{index}].file",
                    "maze files are read by the CLI (`oriole batch`), which sends the maze "
                    "as {data = ...}; send the maze itself",
                )
            )
    try:
        text, unstorable = storable_json(dict(document))
    except RecursionError:
        return [("batch", "nested too deeply")]
    except (TypeError, ValueError) as exc:  # e.g. a TOML date: not a JSON value
        return problems + (json_problems(document) or [("batch", f"not JSON ({exc})")])
    problems += unstorable
    try:
        spec = BatchSpec.model_validate_json(text, strict=True)
    except pydantic.ValidationError as exc:
        found = _problems(exc)
        if not mazes and not _names_a_fork(document.get("starts")):
            # Said with the other problems (the spec's own check runs only once the fields
            # are valid): `mazes` may be left out only by a batch of forks.
            found = [p for p in found if p[0] != "mazes"] + [("mazes", "missing (required)")]
        return problems + [p for p in found if p[0].partition(".")[0] not in files]
    except RecursionError:
        return [("batch", "nested too deeply")]
    return problems or spec


def _fork_entries(starts: Any) -> list[Mapping[str, Any]]:
    """The entries of a decoded document's ``starts`` (one or a list) that name a fork."""
    entries = starts if isinstance(starts, list) else [starts]
    return [entry for entry in entries if isinstance(entry, Mapping) and "fork_of" in entry]


def _names_a_fork(starts: Any) -> bool:
    return bool(_fork_entries(starts))


def forked_runs(document: Mapping[str, Any]) -> list[str]:
    """The runs a decoded batch document's fork starts continue (read before planning)."""
    named = (entry["fork_of"] for entry in _fork_entries(document.get("starts")))
    return [run_id for run_id in named if isinstance(run_id, str)]


def json_problems(value: Any, field: str = "") -> Problems:
    """Values of a decoded TOML document JSON cannot carry (dates, times), by field."""
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in json_problems(v, f"{field}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in json_problems(v, f"{field}[{i}]")]
    if value is None or isinstance(value, str | int | float | bool):
        return []
    return [(field, f"a {type(value).__name__} is not a JSON value; write it as a string")]
