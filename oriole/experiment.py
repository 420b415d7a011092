"""What a run is asked to do: the experiment-start event and the resolved run spec.

`ExperimentStart` is what clients publish (CLI, HTTP, any Kafka client). It may name a maze
from the catalogue instead of embedding it, and may leave the start position to Oriole.
`RunSpec` is the resolved form carried by the run's first event: the full maze grid, the
start, limits, agent and model config and the full prompt text — everything needed to
reproduce the run without reading anything mutable later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from oriole.errors import MazeError, ValidationError
from oriole.maze import MAX_NAME_LENGTH, GeneratorInfo, Maze
from oriole.schema_base import SCHEMA_VERSION, Point, RunId, WireModel, new_run_id, utc_now

ProviderName = Literal["builtin", "ollama", "openai", "bedrock"]
#: The one list of providers this version can run, in the order the documentation names them.
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
#: Providers that call a language model (and so take a prompt, options, prices, endpoints).
MODEL_PROVIDERS: frozenset[ProviderName] = frozenset(PROVIDERS) - {"builtin"}


class GeneratorData(WireModel):
    name: str = Field(min_length=1, description="Generator family, e.g. `backtracker`.")
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int


class MazeData(WireModel):
    """A maze in Oriole's JSON format (``grid_data[y][x]``: 0 empty, 1 wall, 2 goal)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    width: int = Field(ge=1, le=1000)
    height: int = Field(ge=1, le=1000)
    grid_data: list[list[int]]
    see_through_walls: bool = False
    generator: GeneratorData | None = None
    content_hash: str | None = Field(
        default=None,
        description="sha256 of the playable content; checked if given, filled in by Oriole.",
    )

    _maze: Maze | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _valid_maze(self) -> MazeData:
        doc = self.model_dump(exclude={"content_hash"}, exclude_none=True)
        maze = Maze.from_dict(doc)
        if self.content_hash is not None and self.content_hash != maze.content_hash:
            raise MazeError(
                "content_hash",
                f"does not match the grid (grid hashes to {maze.content_hash})",
            )
        self._maze = maze
        return self

    @classmethod
    def from_maze(cls, maze: Maze) -> MazeData:
        generator = (
            None
            if maze.generator is None
            else GeneratorData(
                name=maze.generator.name,
                params=dict(maze.generator.params),
                seed=maze.generator.seed,
            )
        )
        data = cls.model_construct(
            name=maze.name,
            width=maze.width,
            height=maze.height,
            grid_data=maze.grid_data(),
            see_through_walls=maze.see_through_walls,
            generator=generator,
            content_hash=maze.content_hash,
        )
        data._maze = maze
        return data

    def to_maze(self) -> Maze:
        if self._maze is None:  # only after model_construct by a caller other than from_maze
            gen = self.generator
            info = None if gen is None else GeneratorInfo(gen.name, dict(gen.params), gen.seed)
            self._maze = Maze.from_grid(
                self.grid_data,
                name=self.name,
                see_through_walls=self.see_through_walls,
                generator=info,
            )
        return self._maze


_MAX_FOOTSTEPS = 1_000_000
_DEFAULT_MAX_FOOTSTEPS = 500
_DEFAULT_MAX_ACTIONS = 2000


class RunLimits(WireModel):
    """Stop rules, evaluated after every action. ``None`` switches a rule off.

    A run never makes more footsteps than actions, so ``max_footsteps`` above ``max_actions``
    could never be reached. That is never a silent cap: given both, it is an error (on
    ``max_footsteps``); given one, the other's default gives way — ``max_actions`` is raised
    to ``max_footsteps``, or ``max_footsteps`` (which could never bind) is switched off — so
    a run's first event records the limits that apply. Recorded limits are history: a
    reader of recorded events validates with the context ``{"recorded": True}``, which
    accepts the contradictions of runs started before this rule.
    """

    max_footsteps: int | None = Field(
        default=_DEFAULT_MAX_FOOTSTEPS,
        ge=1,
        le=_MAX_FOOTSTEPS,
        description="Successful moves before the run stops.",
    )
    max_actions: int | None = Field(
        default=_DEFAULT_MAX_ACTIONS,
        ge=1,
        le=10_000_000,
        description="Actions of any kind (moves, failed moves, recalls, no-tool turns).",
    )
    max_duration_seconds: float | None = Field(
        default=1800.0, gt=0, le=7 * 24 * 3600, description="Wall-clock limit of the run."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=10**12, description="Input + output tokens over all model calls."
    )
    max_cost_usd: float | None = Field(
        default=None, gt=0, le=1_000_000, description="Cost budget over all model calls."
    )
    loop_revisit_limit: int | None = Field(
        default=None,
        ge=2,
        le=1_000_000,
        description="Stop when the agent stands on the same tile this many times (off if null).",
    )
    goal_rule: Literal["seen", "reached"] = Field(
        default="seen",
        description=(
            "Oriole counts the goal as found once it is in view; `reached` needs a step on it."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_give_way(cls, data: Any) -> Any:
        """The default of the limit not given gives way to the one given (see above).

        Only for a valid integer: a bad value is reported on its own field, once.
        """
        if not isinstance(data, dict):
            return data
        footsteps, actions = data.get("max_footsteps"), data.get("max_actions")
        if (
            "max_actions" not in data
            and type(footsteps) is int
            and _DEFAULT_MAX_ACTIONS < footsteps <= _MAX_FOOTSTEPS
        ):
            return {**data, "max_actions": footsteps}
        if (
            "max_footsteps" not in data
            and type(actions) is int
            and 1 <= actions < _DEFAULT_MAX_FOOTSTEPS
        ):
            return {**data, "max_footsteps": None}
        return data

    @model_validator(mode="after")
    def _footsteps_reachable(self, info: ValidationInfo) -> RunLimits:
        if isinstance(info.context, dict) and info.context.get("recorded"):
            return self
        footsteps, actions = self.max_footsteps, self.max_actions
        if footsteps is not None and actions is not None and footsteps > actions:
            raise ValidationError(
                "max_footsteps",
                f"{footsteps} can never be reached: max_actions is {actions} (a run never "
                "makes more footsteps than actions); raise max_actions or lower max_footsteps",
            )
        return self


class GameRules(WireModel):
    """Rules of perception and memory, fixed for the whole run."""

    vision_range: int = Field(default=3, ge=0, le=100)
    see_through_walls: bool | None = Field(
        default=None, description="Override the maze's own flag; null uses the maze's."
    )
    recall_max_depth: int = Field(
        default=50, ge=1, le=100_000, description="Cap on `recall_movement_history` depth."
    )
    history_actions: int = Field(
        default=20, ge=0, le=10_000, description="Past actions shown in each turn's prompt."
    )
    max_actions_per_turn: int = Field(
        default=50, ge=0, le=100_000, description="Tool calls per model turn; 0 = unlimited."
    )


class ModelOptions(WireModel):
    """Sampling and context options passed to the model; zero values stay zero."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    num_ctx: int | None = Field(default=None, ge=256, le=10_000_000)
    max_output_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    repeat_penalty: float | None = Field(default=None, ge=0, le=10)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1, le=100_000)
    seed: int | None = None
    keep_alive: str | None = Field(default=None, max_length=32)


class AgentSpec(WireModel):
    """Who plays: a built-in baseline or a model behind a provider."""

    provider: ProviderName
    model: str = Field(
        min_length=1,
        max_length=200,
        description="Model name; for `builtin`: `random`, `wall-follower` or `frontier`.",
        examples=["frontier", "qwen2.5:7b"],
    )
    endpoint: str | None = Field(default=None, max_length=2000)
    seed: int | None = Field(default=None, description="Seed of a built-in agent's choices.")
    options: ModelOptions = Field(default_factory=ModelOptions)


class PromptSpec(WireModel):
    """A prompt by version; a start event may leave the text of a released version out."""

    version: str = Field(min_length=1, max_length=100)
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=200_000,
        description=(
            "The full prompt text. Optional in a start event for a released version (Oriole "
            "fills it in); always present in a run's spec."
        ),
    )


class ForkPoint(WireModel):
    """Where a fork begins: the state an archived run had after its step ``after_step``."""

    run_id: RunId = Field(description="The parent: a finished, archived run.")
    after_step: int = Field(
        ge=0,
        le=10_000_000,
        description="The parent's last action the fork inherits (0: just after its start).",
    )


class _RunFields(WireModel):
    limits: RunLimits = Field(default_factory=RunLimits)
    rules: GameRules = Field(default_factory=GameRules)
    agent: AgentSpec
    prompt: PromptSpec | None = None
    comment: str | None = Field(default=None, max_length=2000)
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free labels for batches and comparisons."
    )
    rerun_of: RunId | None = Field(default=None, description="The run this one re-runs.")
    fork_of: ForkPoint | None = Field(
        default=None,
        description=(
            "Continue another run from one of its steps: the run starts in the parent's state "
            "after that step (maze, start, rules, position, tiles seen, history)."
        ),
    )

    @field_validator("labels")
    @classmethod
    def _small_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > 50:
            raise ValueError(f"at most 50 labels, got {len(labels)}")
        for key, value in labels.items():
            if not key or len(key) > 100 or len(value) > 500:
                raise ValueError(f"label {key!r}: keys 1-100 and values 0-500 characters")
        return labels


class ExperimentStart(_RunFields):
    """The request to start one run, as published to the experiment-start topic."""

    type: Literal["experiment.start"] = "experiment.start"
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: RunId = Field(default_factory=new_run_id)
    requested_at: datetime = Field(default_factory=utc_now)
    maze: MazeData | None = Field(default=None, description="The full maze (preferred).")
    maze_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Or the name of a maze in the workers' catalogue.",
    )
    start: Point | None = Field(
        default=None,
        description=(
            "Start tile; if omitted, (2,2) or, if that is unusable, the nearest usable tile."
        ),
    )

    @model_validator(mode="after")
    def _one_maze(self) -> ExperimentStart:
        if self.fork_of is not None:
            # A fork plays its parent's maze: a given maze is checked against it at admission.
            if self.maze_name is not None:
                raise ValueError("a fork plays its parent's maze: leave `maze_name` out")
            return self
        if self.maze is None and self.maze_name is None:
            raise ValueError("give either `maze` (the full grid) or `maze_name`")
        if self.maze is not None and self.maze_name is not None:
            raise ValueError("give `maze` or `maze_name`, not both")
        return self


class RunSpec(_RunFields):
    """The resolved, self-contained description of a run (first event's payload)."""

    maze: MazeData
    start: Point
    requested_at: datetime

    @model_validator(mode="after")
    def _full_prompt(self) -> RunSpec:
        # The spec must reproduce the run without reading anything mutable, prompts included.
        if self.prompt is not None and self.prompt.text is None:
            raise ValidationError("prompt.text", "missing: a run's spec carries the full text")
        return self

    @model_validator(mode="after")
    def _start_on_grid(self) -> RunSpec:
        maze = self.maze
        if self.start.x >= maze.width or self.start.y >= maze.height:
            raise ValueError(
                f"start ({self.start.x},{self.start.y}) is outside the maze "
                f"({maze.width}x{maze.height})"
            )
        return self

    def see_through(self) -> bool:
        flag = self.rules.see_through_walls
        return self.maze.see_through_walls if flag is None else flag
