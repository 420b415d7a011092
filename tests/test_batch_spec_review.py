"""Batch plans: the warnings a careful user wants first, TOML batch files, real mazes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oriole import admission, generators
from oriole.batch_levels import SEEDED_PROVIDERS
from oriole.batch_spec import (
    BatchFileError,
    BatchPlan,
    BatchRejected,
    expand_batch,
    load_batch_file,
    maze_files,
    parse_batch,
)
from oriole.errors import ValidationError
from oriole.llm.pricing import Price, PriceTable
from oriole.maze import Maze

MAZE = generators.generate("backtracker", 15, 15, seed=1, name="lib-a")
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "oriole-mazes"
PRICES = PriceTable(
    {
        "ollama": {"*": Price(0, 0)},
        "openai": {"gpt-4o-mini": Price("0.15", "0.60")},
    }
)


def find_maze(name: str) -> Maze:
    if name == MAZE.name:
        return MAZE
    raise ValidationError("maze_name", f"no maze named {name!r}")


def warnings(prices: PriceTable = PRICES, **fields: Any) -> list[str]:
    document = {"batch_id": "w1", "name": "w", "mazes": [{"name": "lib-a"}], **fields}
    result = expand_batch(document, find_maze=find_maze, prices=prices)
    assert isinstance(result, BatchPlan), result
    assert len(result.warnings) == len(set(result.warnings))
    return result.warnings


def about(found: list[str], text: str) -> list[str]:
    return [warning for warning in found if text in warning]


OLLAMA = {"agent": "ollama:qwen2.5:7b", "options": {"num_ctx": 4096}}


def test_the_seeded_providers_are_those_admission_knows() -> None:
    assert admission._OPTION_PROVIDERS["seed"] == SEEDED_PROVIDERS


@pytest.mark.parametrize(
    ("agents", "repetitions", "identical"),
    [
        # built-in agents use their seed, which changes per repetition ...
        (["frontier", "wall-follower", "random"], 3, []),
        # ... unless the spec fixes it
        ([{"agent": "wall-follower", "seed": 5}], 3, ["wall-follower has its seed fixed at 5"]),
        # greedy sampling, with or without a seed
        ([{**OLLAMA, "options": {"num_ctx": 4096, "temperature": 0.0}}], 2, ["temperature 0"]),
        (
            [{"agent": "bedrock:amazon.nova-lite-v1:0", "options": {"temperature": 0}}],
            2,
            ["bedrock takes no seed"],
        ),
        # a fixed sampling seed
        ([{**OLLAMA, "options": {"num_ctx": 4096, "seed": 3}}], 2, ["options.seed fixed at 3"]),
        # sampling that varies: a new seed per repetition, or a provider default temperature
        ([{**OLLAMA, "options": {"num_ctx": 4096, "temperature": 0.7}}], 2, []),
        (["bedrock:amazon.nova-lite-v1:0"], 2, []),
        # one repetition cannot repeat itself
        ([{"agent": "frontier", "seed": 5}], 1, []),
    ],
)
def test_identical_repetitions_are_warned_of(
    agents: list[Any], repetitions: int, identical: list[str]
) -> None:
    found = about(warnings(agents=agents, repetitions=repetitions), "identical")
    assert len(found) == len(identical), found
    for warning, text in zip(found, identical, strict=True):
        assert text in warning
        assert warning.startswith("cell a0-m0: ")


def test_a_swept_temperature_names_only_its_greedy_cells() -> None:
    found = warnings(
        agents=["frontier", OLLAMA],
        sweep={"temperature": [0.0, 0.7]},
        starts={"random": 2},
        repetitions=3,
    )
    greedy = about(found, "temperature 0")
    assert greedy == [
        "cells a1-o0-m0-s*: ollama:qwen2.5:7b at temperature 0 samples greedily, so its 3 "
        "repetitions are likely identical (the per-repetition seed does not change greedy "
        "sampling)"
    ]
    assert about(found, "built-in agents (agents[0]) ignore sweep")


def test_a_budget_that_cannot_cover_one_run_is_warned_of() -> None:
    gpt = ["openai:gpt-4o-mini"]
    (tiny,) = about(warnings(agents=gpt, budget={"usd": 1e-6}), "cannot cover even one run")
    assert tiny.startswith("budget.usd 1e-06 cannot cover even one run")
    assert not about(warnings(agents=gpt, budget={"usd": 5.0}), "cannot cover")
    (tokens,) = about(warnings(agents=gpt, budget={"tokens": 10}), "cannot cover")
    assert tokens.startswith("budget.tokens 10 cannot cover even one run")
    limited = warnings(agents=gpt, budget={"usd": 0.5}, limits={"max_cost_usd": 2.0})
    assert about(limited, "less than one run's limits.max_cost_usd 2")
    assert not about(limited, "overshoot")
    assert about(warnings(agents=gpt, budget={"usd": 5.0}), "overshoot it by any amount")


def test_a_budget_that_limits_nothing_is_warned_of() -> None:
    (builtin,) = about(warnings(agents=["frontier"], budget={"usd": 1.0}), "budget")
    assert "limits nothing" in builtin
    free = about(warnings(agents=[OLLAMA], budget={"usd": 1.0}), "cost 0 USD")
    assert free and "ollama:qwen2.5:7b" in free[0]
    unpriced = warnings(agents=["openai:gpt-5-nano"], budget={"usd": 1.0}, prices=PRICES)
    assert about(unpriced, "openai:gpt-5-nano cost 0 USD")


def test_ignored_settings_and_duplicates_are_warned_of() -> None:
    found = warnings(
        agents=["frontier", "frontier"],
        prompts=["v1"],
        caps={"per_provider": {"openai": 2}, "per_endpoint": {"http://gpu-1:11434": 1}},
    )
    assert about(found, "prompts ignored: every agent is built-in")
    assert about(found, "caps.per_provider.openai: no agent of the batch uses openai")
    assert about(found, "no agent names http://gpu-1:11434")
    assert about(found, "cells a0-m0, a1-m0 run the same experiment")
    assert not warnings(agents=["frontier"], starts={"at": [1, 1]})


def test_admission_warnings_are_kept_once_for_all_their_cells() -> None:
    found = warnings(agents=["frontier", "ollama:qwen2.5:7b"], repetitions=3, starts={"random": 2})
    (num_ctx,) = about(found, "num_ctx not given")
    assert num_ctx.startswith("cells a1-m0-s*: agent.options.num_ctx not given: using 8192")


def test_no_run_limit_at_all_is_warned_of() -> None:
    off = {
        "max_footsteps": None,
        "max_actions": None,
        "max_duration_seconds": None,
    }
    assert about(warnings(agents=["frontier"], limits=off), "every limit is off")


EXAMPLE = """
name = "temperature A/B"
comment = "does a little randomness help?"
labels = { team = "mazes" }
agents = [
  "frontier",
  { agent = "ollama:qwen2.5:7b", options = { num_ctx = 8192 }, label = "qwen 7b" },
]
prompts = ["v1", "v2-explore"]
sweep = { temperature = [0.0, 0.7] }
mazes = [
  { name = "lib-a" },
  { generator = "backtracker", width = 21, height = 21, seeds = [1, 2] },
]
starts = { random = 2, seed = 7 }
repetitions = 2
seed = 1000

[limits]
max_footsteps = 300

[caps]
max_in_flight = 4
per_provider = { ollama = 2 }

[budget]
tokens = 5_000_000
"""


def test_a_toml_batch_file_expands() -> None:
    document = load_batch_file(EXAMPLE, source="ab.toml")
    assert maze_files(document) == []
    result = expand_batch(document, find_maze=find_maze, prices=PRICES)
    assert isinstance(result, BatchPlan), result
    cells = (1 + 2 * 2) * 3 * 2
    assert len(result.cells) == cells and len(result.runs) == 2 * cells
    assert result.name == "temperature A/B" and result.batch_id.startswith("batch-")
    assert result.cells["a1-p1-o1-m2-s1"]["agent"] == "qwen 7b"
    assert {run.request.limits.max_footsteps for run in result.runs} == {300}
    assert result.spec.caps.per_provider == {"ollama": 2}


def test_toml_syntax_errors_name_the_file_and_line() -> None:
    with pytest.raises(BatchFileError) as caught:
        load_batch_file('name = "x"\nagents = [\n  "frontier"\n  "random"\n]\n', source="b.toml")
    ((field, reason),) = caught.value.problems
    assert field == "b.toml:4"
    assert reason.startswith("not valid TOML: ") and "column" in reason
    assert isinstance(caught.value, ValidationError) and caught.value.field == "b.toml:4"


def test_toml_values_json_cannot_carry_are_named() -> None:
    with pytest.raises(BatchFileError) as caught:
        load_batch_file('name = "x"\n[labels]\nwhen = 2026-11-29\n', source="c.toml")
    assert caught.value.problems == [
        ("c.toml: labels.when", "a date is not a JSON value; write it as a string")
    ]


def test_maze_files_are_listed_for_the_cli_and_refused_by_the_spec() -> None:
    document = load_batch_file(
        'name = "x"\nagents = ["frontier"]\n'
        'mazes = [{ name = "lib-a" }, { file = "mazes/a.json" }, { file = "b.json" }]\n',
        source="d.toml",
    )
    assert maze_files(document) == [(1, "mazes/a.json"), (2, "b.json")]
    problems = parse_batch(document)
    assert isinstance(problems, list)
    assert [field for field, _ in problems] == ["mazes[1].file", "mazes[2].file"]
    # the CLI replaces them with the maze itself
    document["mazes"][1] = {"data": MAZE.to_dict()}
    document["mazes"][2] = {"data": {**MAZE.to_dict(), "name": "copy"}}
    result = expand_batch(document, find_maze=find_maze, prices=PRICES)
    assert isinstance(result, BatchPlan)
    assert [cell["maze"] for cell in result.cells.values()] == ["lib-a", "lib-a", "copy"]
    assert about(result.warnings, "run the same experiment")  # same grid, same name twice


def test_a_rejected_document_keeps_its_batch_id() -> None:
    result = expand_batch(
        {"batch_id": "mine-1", "name": "x", "agents": [], "mazes": []},
        find_maze=find_maze,
        prices=None,
    )
    assert isinstance(result, BatchRejected)
    assert result.batch_id == "mine-1"
    assert {field for field, _ in result.problems} == {"agents", "mazes"}


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="Oriole's reference mazes are not here")
def test_oriole_reference_mazes_expand() -> None:
    mazes = {path.stem: Maze.load(path) for path in sorted(REFERENCE.glob("*.json"))}

    def reference(name: str) -> Maze:
        if name not in mazes:
            raise ValidationError("maze_name", f"no maze named {name!r}")
        return mazes[name]

    document = {
        "batch_id": "ref",
        "name": "reference",
        "agents": ["frontier", "random"],
        "mazes": [{"name": name} for name in mazes],
        "starts": {"random": 1, "seed": 3},
    }
    result = expand_batch(document, find_maze=reference, prices=None)
    assert isinstance(result, BatchPlan), result
    assert len(result.runs) == 2 * len(mazes)
