"""Admitting model runs: prompts resolved and immutable, prices, seeds and provider options."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from oriole import generators
from oriole.admission import (
    DEFAULT_OLLAMA_NUM_CTX,
    Admitted,
    Rejected,
    admit,
)
from oriole.errors import ValidationError
from oriole.events import RunStarted
from oriole.experiment import PROVIDERS, MazeData, RunSpec
from oriole.llm.pricing import Price, PriceTable
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION, load_prompt
from oriole.maze import Maze
from oriole.rules import start_run

MAZE = generators.generate("open-field", 12, 10, seed=3, name="field")


def find_maze(name: str) -> Maze:
    if name == MAZE.name:
        return MAZE
    raise ValidationError("maze_name", f"no maze named {name!r}")


def start(agent: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"run_id": "run-llm-1", "maze_name": "field", "agent": agent, **fields}


def admitted(data: dict[str, Any], **kwargs: Any) -> Admitted:
    verdict = admit(data, find_maze, **kwargs)
    assert isinstance(verdict, Admitted), verdict
    return verdict


def problems(data: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    verdict = admit(data, find_maze, **kwargs)
    assert isinstance(verdict, Rejected), verdict
    return dict(verdict.problems)


OLLAMA = {"provider": "ollama", "model": "qwen2.5:7b", "options": {"num_ctx": 16384}}


def test_every_provider_is_available() -> None:
    assert PROVIDERS == ("builtin", "ollama", "openai", "bedrock")


def test_a_model_without_a_prompt_gets_the_default_with_its_text() -> None:
    verdict = admitted(start(OLLAMA))
    assert verdict.request.prompt == load_prompt(DEFAULT_PROMPT_VERSION)
    assert verdict.warnings == ()
    assert verdict.request.maze is not None  # the named maze is embedded as before


def test_a_builtin_agent_without_a_prompt_stays_without() -> None:
    verdict = admitted(start({"provider": "builtin", "model": "frontier", "seed": 3}))
    assert verdict.request.prompt is None


def test_a_version_alone_gets_its_text_and_the_run_spec_carries_it() -> None:
    verdict = admitted(start(OLLAMA, prompt={"version": "v2-explore"}))
    assert verdict.request.prompt == load_prompt("v2-explore")
    first = start_run(verdict.request, verdict.maze, now=verdict.request.requested_at)[0]
    assert isinstance(first, RunStarted)
    assert first.payload.spec.prompt == load_prompt("v2-explore")


def test_the_released_text_itself_is_accepted() -> None:
    text = load_prompt("v1").text
    assert text is not None
    verdict = admitted(start(OLLAMA, prompt={"version": "v1", "text": text + "\n"}))
    assert verdict.request.prompt == load_prompt("v1")


def test_a_released_version_with_other_text_is_rejected() -> None:
    found = problems(start(OLLAMA, prompt={"version": "v1", "text": "Just wander."}))
    assert "released prompts are immutable; give a new version name" in found["prompt.text"]


def test_a_custom_version_needs_text_and_is_kept_verbatim() -> None:
    custom = {"version": "2026-11-mine", "text": "Wander until you see GOAL."}
    verdict = admitted(start(OLLAMA, prompt=custom))
    assert verdict.request.prompt is not None
    assert verdict.request.prompt.model_dump() == custom
    found = problems(start(OLLAMA, prompt={"version": "2026-11-mine"}))
    assert "unknown prompt version '2026-11-mine'" in found["prompt.version"]
    assert "v1" in found["prompt.version"]


def test_builtin_agents_accept_a_prompt() -> None:
    verdict = admitted(
        start({"provider": "builtin", "model": "random"}, prompt={"version": "v3-minimal"})
    )
    assert verdict.request.prompt == load_prompt("v3-minimal")


def test_a_run_spec_must_carry_the_prompt_text() -> None:
    verdict = admitted(start(OLLAMA))
    spec = verdict.request.model_dump() | {"start": {"x": 1, "y": 1}}
    for key in ("type", "schema_version", "run_id", "maze_name"):
        spec.pop(key)
    spec["maze"] = MazeData.from_maze(MAZE).model_dump()
    assert RunSpec.model_validate(spec).prompt == load_prompt("v1")
    spec["prompt"] = {"version": "v1"}
    with pytest.raises(pydantic.ValidationError, match="prompt.text"):
        RunSpec.model_validate(spec)


def test_a_cost_limit_needs_a_price() -> None:
    agent = {"provider": "openai", "model": "my-finetune"}
    found = problems(start(agent, limits={"max_cost_usd": 1.0}))
    assert "my-finetune" in found["limits.max_cost_usd"]
    table = PriceTable.builtin().merged(PriceTable({"openai": {"my-finetune": Price(1, 2)}}))
    admitted(start(agent, limits={"max_cost_usd": 1.0}), prices=table)
    admitted(start(OLLAMA, limits={"max_cost_usd": 1.0}))  # local models cost 0
    admitted(
        start(
            {"provider": "bedrock", "model": "us.amazon.nova-lite-v1:0"}, limits={"max_cost_usd": 1}
        )
    )


def test_a_paid_model_without_a_price_is_run_with_a_warning() -> None:
    verdict = admitted(start({"provider": "openai", "model": "my-finetune"}))
    assert any(
        "no price for openai model 'my-finetune': its cost is recorded as 0" in w
        for w in verdict.warnings
    )
    assert admitted(start({"provider": "openai", "model": "gpt-4o-mini"})).warnings == ()


def test_agent_seed_is_for_builtin_agents() -> None:
    found = problems(start(OLLAMA | {"seed": 7}))
    assert "agent.options.seed" in found["agent.seed"]
    verdict = admitted(start(OLLAMA | {"options": {"seed": 7}}))
    assert verdict.request.agent.options.seed == 7


def test_options_a_provider_ignores_are_warned_about() -> None:
    agent = {"provider": "bedrock", "model": "amazon.nova-lite-v1:0", "options": {"seed": 4}}
    warnings = admitted(start(agent | {"options": {"keep_alive": "5m", "seed": 4}})).warnings
    assert any("agent.options.keep_alive is not supported by bedrock" in w for w in warnings)
    assert any("agent.options.seed is not supported by bedrock" in w for w in warnings)
    # num_ctx, top_k and repeat_penalty mean something to OpenAI-compatible servers.
    openai = {
        "provider": "openai",
        "model": "gpt-4o",
        "options": {"num_ctx": 8192, "top_k": 4, "repeat_penalty": 1.1},
    }
    assert admitted(start(openai)).warnings == ()
    ollama = OLLAMA | {"options": {"keep_alive": "5m", "num_ctx": 32768, "repeat_penalty": 1.1}}
    assert admitted(start(ollama)).warnings == ()
    builtin = {"provider": "builtin", "model": "frontier", "options": {"temperature": 0.5}}
    assert any("ignore model options (temperature)" in w for w in admitted(start(builtin)).warnings)


def test_ollama_without_num_ctx_gets_a_recorded_default() -> None:
    verdict = admitted(start({"provider": "ollama", "model": "qwen2.5:7b"}))
    assert verdict.request.agent.options.num_ctx == DEFAULT_OLLAMA_NUM_CTX
    assert any("num_ctx not given" in w for w in verdict.warnings)
    chosen = admitted(start(OLLAMA | {"options": {"num_ctx": 4096}}))
    assert chosen.request.agent.options.num_ctx == 4096


def test_bedrock_temperature_above_one_is_an_error() -> None:
    agent = {
        "provider": "bedrock",
        "model": "amazon.nova-lite-v1:0",
        "options": {"temperature": 1.5},
    }
    assert "0 to 1" in problems(start(agent))["agent.options.temperature"]


def test_every_problem_is_reported_at_once() -> None:
    data = start(
        {"provider": "openai", "model": "my-finetune", "seed": 1},
        prompt={"version": "v1", "text": "Other text."},
        limits={"max_cost_usd": 2.0},
        maze_name="nowhere",
    )
    assert set(problems(data)) == {"maze_name", "agent.seed", "prompt.text", "limits.max_cost_usd"}


@pytest.mark.parametrize("endpoint", ["ftp://models.local", "http://", "localhost:11434"])
def test_an_endpoint_that_is_not_an_http_url_is_rejected(endpoint: str) -> None:
    maze = generators.generate("backtracker", 9, 9, seed=1)
    document = {
        "maze": MazeData.from_maze(maze).model_dump(mode="json"),
        "agent": {**OLLAMA, "endpoint": endpoint},
    }
    verdict = admit(document, lambda name: maze)
    assert isinstance(verdict, Rejected)
    assert ("agent.endpoint", "expected an http(s) URL with a host") in verdict.problems
