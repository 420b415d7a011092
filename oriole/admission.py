"""Admitting an experiment-start request: every check a start must pass, with every problem.

Pure: the maze catalogue is passed in as a look-up function and the price table as a value.
Used by the workers (a failed admission becomes a rejection event) and by `oriole run`
(which refuses before publishing).

Admission also completes the request so that the run is reproducible from its first event:
a named maze is embedded, and a prompt given by version (or, for a model, no prompt at all:
the default version) gets its full text.

Seeds: ``agent.seed`` drives a built-in agent's choices; a model's sampling seed is
``agent.options.seed``. ``agent.seed`` on a model provider is refused (with that hint) rather
than silently moved, so a run never records a seed that did not do what its author meant.

Start events come from outside (any Kafka client, HTTP, the CLI), so they are read strictly as
JSON: ``"10"`` is not an integer and ``"true"`` is not a boolean (a coerced value would be a
run nobody asked for). Text PostgreSQL cannot store (NUL, lone surrogates) is refused here
rather than found by the projector, and an ``agent.endpoint`` the operator did not configure
is refused here rather than when the run's first model call is made.

A fork (``fork_of``) is admitted against its parent's archived log, which the caller reads
and passes in as a look-up function like the maze catalogue (`oriole.fork`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pydantic

from oriole.agents.builtin import check_agent_spec
from oriole.errors import ValidationError
from oriole.events import Inheritance, RunEvent
from oriole.experiment import (
    MODEL_PROVIDERS,
    AgentSpec,
    ExperimentStart,
    ForkPoint,
    GameRules,
    MazeData,
    PromptSpec,
    RunLimits,
)
from oriole.fork import ForkBasis, ForkRefused, fork_basis, fork_problems
from oriole.llm.pricing import PriceTable
from oriole.llm.prompts import (
    DEFAULT_PROMPT_VERSION,
    is_released,
    load_prompt,
    normalise_prompt,
    prompt_versions,
)
from oriole.maze import Maze
from oriole.redaction import redact_url
from oriole.rules import resolve_start
from oriole.schema_base import Point, field_problems
from oriole.storable import storable_json, text_problems

#: Model options only some providers understand; elsewhere they are ignored, with a warning.
_OPTION_PROVIDERS: dict[str, frozenset[str]] = {
    # num_ctx means something everywhere: Ollama gets it, and for every provider Oriole trims
    # the conversation to fit it. repeat_penalty and top_k go to OpenAI-compatible servers as
    # the extensions llama.cpp and vLLM accept.
    "keep_alive": frozenset({"ollama"}),
    "seed": frozenset({"ollama", "openai"}),
}
#: Ollama's own default context is small and it truncates silently beyond it; a run that does
#: not choose gets this, recorded in its start event, and Oriole trims to fit it.
DEFAULT_OLLAMA_NUM_CTX = 8192
#: Bedrock's models take a temperature between 0 and 1 and fail the call above it.
_BEDROCK_MAX_TEMPERATURE = 1.0

ProblemList = list[tuple[str, str]]
#: A parent run's archived log by run id ([] when it is not archived); may raise
#: `ForkRefused` (e.g. when the caller cannot read the archive).
FindParent = Callable[[str], Sequence[RunEvent]]


def no_archive(run_id: str) -> Sequence[RunEvent]:
    """The parent look-up of a caller without an archive: every fork is refused, saying why."""
    raise ForkRefused(
        "fork_of",
        "this worker cannot read the archive, which a fork starts from: give the worker a "
        "database (ORIOLE_DATABASE_URL, or run it with `oriole up`)",
    )


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be a model endpoint, or None: an http(s) URL with a host.

    The one check, used by admission (``agent.endpoint``), the settings (configured
    endpoints), the CLI (``--endpoint``) and the transport.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return "expected an http(s) URL with a host"
    return None


def normalise_endpoint(url: str) -> str:
    """The form endpoints are compared in (the settings store them without a trailing slash)."""
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class AllowedEndpoints:
    """The endpoints each provider's runs may name in ``agent.endpoint``.

    The endpoint is sent the provider's API key, so by default (``llm_endpoint_allowlist_only``)
    only configured ones may be named. One rule for admission and for the agent factory,
    which checks again at run time. ``restricted=False`` (the default) allows any endpoint.
    """

    by_provider: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    restricted: bool = False

    @classmethod
    def only(cls, by_provider: Mapping[str, Sequence[str]]) -> AllowedEndpoints:
        """Only these endpoints; a provider not named may name none."""
        return cls(
            {
                provider: tuple(normalise_endpoint(url) for url in urls)
                for provider, urls in by_provider.items()
            },
            restricted=True,
        )

    def refusal(self, provider: str, endpoint: str) -> str | None:
        """Why ``endpoint`` may not be used for ``provider`` (None: it may); no secrets in it."""
        if not self.restricted:
            return None
        allowed = self.by_provider.get(provider, ())
        if normalise_endpoint(endpoint) in allowed:
            return None
        shown = ", ".join(redact_url(url) for url in allowed) or "none"
        return (
            f"{redact_url(endpoint)!r} is not one of the configured {provider} endpoints: "
            f"{shown}; set ORIOLE_{provider.upper()}_ENDPOINTS or leave it out"
        )


#: No restriction: for callers without settings (tests, tools).
ANY_ENDPOINT = AllowedEndpoints()


@dataclass(frozen=True, slots=True)
class Admitted:
    request: ExperimentStart  # with the maze embedded, never only named
    maze: Maze
    warnings: tuple[str, ...]
    #: A fork's state at its fork point, for its run.started (None for any other run).
    inherited: Inheritance | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    run_id: str | None
    problems: tuple[tuple[str, str], ...]


def admit(
    data: Mapping[str, Any],
    find_maze: Callable[[str], Maze],
    *,
    prices: PriceTable | None = None,
    endpoints: AllowedEndpoints = ANY_ENDPOINT,
    find_parent: FindParent = no_archive,
) -> Admitted | Rejected:
    """Validate a decoded start event (JSON data); resolve a named maze through ``find_maze``.

    ``prices`` (default: the built-in table) decides whether a cost limit can be enforced;
    ``endpoints`` (default: any) which ``agent.endpoint`` values may be named; ``find_parent``
    reads a fork's parent from the archive (default: none, so forks are refused). Every problem
    is reported at once: a schema error in one part does not hide the later checks of the
    parts that are valid (a missing ``agent`` and an unknown maze are both named).
    """
    requested_id = data.get("run_id")
    run_id = (
        requested_id
        if isinstance(requested_id, str) and requested_id and not text_problems(requested_id)
        else None
    )
    try:
        # Validated without the unstorable characters (reported field by field), so that no
        # later check or message carries them.
        document, problems = storable_json(dict(data))
    except RecursionError:
        return Rejected(run_id, (("event", "nested too deeply"),))
    # (a maze name refused for its text is not looked up: it names no maze)
    unreadable_name = any(f == "maze_name" for f, _ in problems)
    try:
        # JSON mode: strict about types, yet reads times and enum values from their strings.
        request = ExperimentStart.model_validate_json(document, strict=True)
    except pydantic.ValidationError as exc:
        schema = field_problems(exc)
        decoded = json.loads(document)
        parts = _Parts.valid_ones(decoded, {f for f, _ in schema})
        problems.extend(schema)
        parts.check(find_maze, prices, endpoints, problems, [], unreadable_name)
        if not any(f.startswith("fork_of") for f, _ in schema):
            _valid_fork_basis(decoded.get("fork_of"), find_parent, problems)
        return Rejected(run_id, tuple(problems))
    warnings: list[str] = []
    basis: ForkBasis | None = None
    if request.fork_of is not None:
        basis = _fork_basis(request.fork_of, find_parent, problems)
        if basis is not None:
            problems.extend(fork_problems(request, basis))
            # The parent's maze, start and rules are the fork's (what the start gave was
            # checked against them just now).
            parent = basis.spec
            request = request.model_copy(
                update={"maze": parent.maze, "start": parent.start, "rules": parent.rules}
            )
    maze, prompt = _Parts.of(request).check(
        find_maze, prices, endpoints, problems, warnings, unreadable_name
    )
    if problems or maze is None:
        return Rejected(request.run_id, tuple(problems))
    update: dict[str, Any] = {}
    if prompt != request.prompt:
        update["prompt"] = prompt
    if request.agent.provider == "ollama" and request.agent.options.num_ctx is None:
        options = request.agent.options.model_copy(update={"num_ctx": DEFAULT_OLLAMA_NUM_CTX})
        update["agent"] = request.agent.model_copy(update={"options": options})
        warnings.append(
            f"agent.options.num_ctx not given: using {DEFAULT_OLLAMA_NUM_CTX} (Ollama's own "
            "default is smaller and truncates silently)"
        )
    if request.maze is None:
        update |= {"maze": MazeData.from_maze(maze), "maze_name": None}
    if update:
        request = request.model_copy(update=update)
    inherited = None if basis is None else basis.inheritance
    return Admitted(request, maze, tuple(warnings), inherited)


def _fork_basis(
    point: ForkPoint, find_parent: FindParent, problems: ProblemList
) -> ForkBasis | None:
    try:
        return fork_basis(find_parent(point.run_id), point)
    except ForkRefused as refused:
        problems.append((refused.field, refused.reason))
        return None


def _valid_fork_basis(fork_of: Any, find_parent: FindParent, problems: ProblemList) -> None:
    """A fork named by a start that failed the schema elsewhere is still checked."""
    if fork_of is None:
        return
    try:
        point = ForkPoint.model_validate_json(json.dumps(fork_of), strict=True)
    except pydantic.ValidationError:
        return
    _fork_basis(point, find_parent, problems)


#: The parts of a start the checks after the schema look at, and their types.
_PART_TYPES: dict[str, type[pydantic.BaseModel]] = {
    "agent": AgentSpec,
    "prompt": PromptSpec,
    "limits": RunLimits,
    "rules": GameRules,
    "maze": MazeData,
    "start": Point,
}


@dataclass(slots=True)
class _Parts:
    """The parts of a start that the later checks need; None where a part is missing or
    invalid (its schema problem is reported already, and no later check looks at it)."""

    agent: AgentSpec | None
    prompt: PromptSpec | None
    limits: RunLimits | None
    rules: GameRules | None
    maze: MazeData | None
    maze_name: str | None
    start: Point | None
    #: False when ``start`` was given but is invalid (no start tile is checked then).
    start_usable: bool = True

    @classmethod
    def of(cls, request: ExperimentStart) -> _Parts:
        return cls(
            request.agent,
            request.prompt,
            request.limits,
            request.rules,
            request.maze,
            request.maze_name,
            request.start,
        )

    @classmethod
    def valid_ones(cls, document: dict[str, Any], refused: set[str]) -> _Parts:
        """The parts of an event that failed the schema which are themselves valid."""
        bad = {field.split(".", 1)[0].split("[", 1)[0] for field in refused}
        found: dict[str, Any] = {}
        for name, model in _PART_TYPES.items():
            if name in bad or document.get(name) is None:
                continue
            try:
                found[name] = model.model_validate_json(json.dumps(document[name]), strict=True)
            except pydantic.ValidationError:
                bad.add(name)
        maze_name = document.get("maze_name")
        if "maze_name" in bad or not isinstance(maze_name, str):
            maze_name = None
        if (found.get("maze") is None) == (maze_name is None):
            found["maze"], maze_name = None, None  # both or neither: no maze to check against
        return cls(
            found.get("agent"),
            found.get("prompt"),
            None if "limits" in bad else found.get("limits", RunLimits()),
            None if "rules" in bad else found.get("rules", GameRules()),
            found.get("maze"),
            maze_name,
            found.get("start"),
            start_usable="start" not in bad,
        )

    def check(
        self,
        find_maze: Callable[[str], Maze],
        prices: PriceTable | None,
        endpoints: AllowedEndpoints,
        problems: ProblemList,
        warnings: list[str],
        unreadable_name: bool,
    ) -> tuple[Maze | None, PromptSpec | None]:
        """Every check after the schema, of the parts there are: the maze, the start tile,
        the agent, its endpoint, prompt and prices. Returns the maze and resolved prompt."""
        maze: Maze | None = None
        if self.maze is not None:
            maze = self.maze.to_maze()
        elif self.maze_name is not None and not unreadable_name:
            try:
                maze = find_maze(self.maze_name)
            except ValidationError as exc:
                problems.append(("maze_name", exc.reason))
        agent = self.agent
        if agent is not None:
            try:
                check_agent_spec(agent)
            except ValidationError as exc:
                problems.append((exc.field, exc.reason))
            if agent.provider in MODEL_PROVIDERS and agent.endpoint is not None:
                refusal = endpoint_problem(agent.endpoint) or endpoints.refusal(
                    agent.provider, agent.endpoint
                )
                if refusal is not None:
                    problems.append(("agent.endpoint", refusal))
        prompt = _resolve_prompt(None if agent is None else agent.provider, self.prompt, problems)
        if agent is not None:
            _check_agent(agent, problems, warnings)
            if self.limits is not None:
                table = PriceTable.builtin() if prices is None else prices
                _check_prices(agent, self.limits, table, problems, warnings)
        if maze is not None and self.rules is not None and self.start_usable:
            try:
                _, found = resolve_start(maze, self.start, self.rules.vision_range)
                warnings.extend(found)
            except ValidationError as exc:
                problems.append((exc.field, exc.reason))
        return maze, prompt


def _resolve_prompt(
    provider: str | None, prompt: PromptSpec | None, problems: ProblemList
) -> PromptSpec | None:
    """The prompt with its full text: a model without one gets the default version.

    A released version name always stands for its released text, so that comparisons by
    version compare like with like. Built-in agents ignore prompts but their runs still
    record a resolved one, so the same rules apply.
    """
    if prompt is None:
        if provider not in MODEL_PROVIDERS:  # (None: no valid agent, nothing to resolve)
            return None
        return _load(DEFAULT_PROMPT_VERSION, problems)
    released = is_released(prompt.version)
    if prompt.text is None:
        if not released:
            problems.append(
                (
                    "prompt.version",
                    f"unknown prompt version {prompt.version!r}; available: "
                    f"{', '.join(prompt_versions())} (or give `text` for a custom prompt)",
                )
            )
            return prompt
        return _load(prompt.version, problems) or prompt
    if not released:
        return prompt
    official = _load(prompt.version, problems)
    if official is None or official.text == normalise_prompt(prompt.text):
        return official or prompt
    problems.append(
        (
            "prompt.text",
            f"differs from the released prompt {prompt.version!r}: released prompts are "
            "immutable; give a new version name for new text (or leave `text` out)",
        )
    )
    return prompt


def _load(version: str, problems: ProblemList) -> PromptSpec | None:
    try:
        return load_prompt(version)
    except ValidationError as exc:
        problems.append((exc.field, exc.reason))
        return None


def _check_agent(agent: AgentSpec, problems: ProblemList, warnings: list[str]) -> None:
    """Settings that mean nothing for the agent's provider: errors if clearly wrong."""
    options = agent.options
    given = sorted(options.model_dump(exclude_none=True))
    if agent.provider not in MODEL_PROVIDERS:
        if given:
            warnings.append(
                f"built-in agents ignore model options ({', '.join(given)}); "
                "their only setting is agent.seed"
            )
        if agent.endpoint is not None:
            warnings.append("built-in agents ignore agent.endpoint")
        return
    if agent.seed is not None:
        problems.append(
            (
                "agent.seed",
                "is the seed of the built-in agents; a model's sampling seed is "
                "agent.options.seed (oriole run --model-seed)",
            )
        )
    for option in given:
        supported = _OPTION_PROVIDERS.get(option)
        if supported is not None and agent.provider not in supported:
            warnings.append(
                f"agent.options.{option} is not supported by {agent.provider} "
                f"(only {', '.join(sorted(supported))}); it is ignored"
            )
    temperature = options.temperature
    if (
        agent.provider == "bedrock"
        and temperature is not None
        and temperature > _BEDROCK_MAX_TEMPERATURE
    ):
        problems.append(
            (
                "agent.options.temperature",
                f"bedrock models take a temperature from 0 to 1, got {temperature}",
            )
        )


def _check_prices(
    agent: AgentSpec,
    limits: RunLimits,
    prices: PriceTable,
    problems: ProblemList,
    warnings: list[str],
) -> None:
    """A cost limit needs a price; a paid model without one is run but costed at 0."""
    if agent.provider not in MODEL_PROVIDERS:
        return
    if prices.price(agent.provider, agent.model) is not None:
        return
    if limits.max_cost_usd is not None:
        problems.append(
            (
                "limits.max_cost_usd",
                f"no price for {agent.provider} model {agent.model!r}, so its cost cannot be "
                "limited; add the model to a price file (ORIOLE_PRICE_FILE, see "
                "docs/pricing.md) or drop the cost limit",
            )
        )
    else:
        warnings.append(
            f"no price for {agent.provider} model {agent.model!r}: its cost is recorded as 0 "
            "(add it to a price file: ORIOLE_PRICE_FILE, see docs/pricing.md)"
        )
