"""Batch specs expanded into admitted runs: counts, ids, labels, seeds, starts, problems."""

from __future__ import annotations

from typing import Any

import pytest

from oriole import analysis, generators
from oriole.admission import Admitted, admit
from oriole.batch_spec import (
    MAX_BATCH_RUNS,
    BatchPlan,
    BatchRejected,
    BatchSpec,
    expand_batch,
    parse_batch,
    random_starts,
)
from oriole.errors import ValidationError
from oriole.geometry import Position
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION, load_prompt
from oriole.maze import Maze

LIBRARY = {
    maze.name: maze
    for maze in (
        generators.generate("backtracker", 15, 15, seed=1, name="lib-a"),
        generators.generate("open-field", 12, 10, seed=3, name="lib-b"),
    )
}
GENERATED = {"generator": "backtracker", "width": 11, "height": 11, "seeds": [5, 6]}


def find_maze(name: str) -> Maze:
    if name in LIBRARY:
        return LIBRARY[name]
    raise ValidationError("maze_name", f"no maze named {name!r}")


def spec(**fields: Any) -> dict[str, Any]:
    return {
        "batch_id": "b7",
        "name": "test batch",
        "agents": ["frontier"],
        "mazes": [{"name": "lib-a"}],
        **fields,
    }


def plan(document: dict[str, Any] | BatchSpec, **kwargs: Any) -> BatchPlan:
    result = expand_batch(document, find_maze=find_maze, prices=None, **kwargs)
    assert isinstance(result, BatchPlan), result
    return result


def problems(document: dict[str, Any]) -> dict[str, str]:
    result = expand_batch(document, find_maze=find_maze, prices=None)
    assert isinstance(result, BatchRejected), result
    assert not hasattr(result, "runs")  # a rejected batch plans nothing
    fields = [field for field, _ in result.problems]
    assert len(fields) == len(set(fields)), "one line per problem"
    return dict(result.problems)


THREE_BY_FOUR = spec(
    agents=["frontier", "random", {"agent": "ollama:qwen2.5:7b", "options": {"num_ctx": 4096}}],
    mazes=[{"name": "lib-a"}, {"name": "lib-b"}, GENERATED],
    starts={"random": 1, "seed": 11},
    repetitions=5,
)


def test_three_agents_on_four_mazes_five_times_is_sixty_runs() -> None:
    first = plan(THREE_BY_FOUR)
    assert len(first.cells) == 12 and len(first.runs) == 60
    ids = [run.run_id for run in first.runs]
    assert len(set(ids)) == 60
    for run in first.runs:
        assert run.run_id == f"b7:{run.cell_id}:r{run.repetition}" == run.request.run_id
    again = plan(THREE_BY_FOUR)
    assert [run.run_id for run in again.runs] == ids
    assert again.cells == first.cells
    for one, other in zip(first.runs, again.runs, strict=True):
        assert one.request.model_dump(exclude={"requested_at"}) == other.request.model_dump(
            exclude={"requested_at"}
        )


def test_runs_are_listed_repetition_major_and_agents_alternate() -> None:
    result = plan(THREE_BY_FOUR)
    cells = len(result.cells)
    for index, run in enumerate(result.runs):
        assert run.repetition == index // cells
    assert [run.cell_id for run in result.runs[:cells]] == list(result.cells)
    assert [run.request.agent.model for run in result.runs[:3]] == [
        "frontier",
        "random",
        "qwen2.5:7b",
    ]


def test_cell_ids_name_the_levels_and_descriptions_their_values() -> None:
    result = plan(
        spec(
            agents=["wall-follower", "ollama:qwen2.5:7b"],
            prompts=["v1", "v2-explore"],
            sweep={"temperature": [0.2, 0.7]},
            mazes=[{"name": "lib-a"}, GENERATED],
            starts=["default", {"at": [1, 1]}],
        )
    )
    # built-in agents ignore prompts and options: one cell per maze and start
    builtin = [cell for cell in result.cells if cell.startswith("a0")]
    assert builtin == ["a0-m0-s0", "a0-m0-s1", "a0-m1-s0", "a0-m1-s1", "a0-m2-s0", "a0-m2-s1"]
    assert len(result.cells) == 6 + 2 * 2 * 3 * 2
    cell = result.cells["a1-p1-o1-m2-s1"]
    assert cell == {
        "agent": "ollama:qwen2.5:7b",
        "provider": "ollama",
        "model": "qwen2.5:7b",
        "endpoint": None,
        "prompt": "v2-explore",
        "options": {"temperature": 0.7},
        "maze": "backtracker-11x11-s6",
        "start": "(1,1)",
    }
    assert result.cells["a0-m0-s0"]["prompt"] is None
    assert result.cells["a0-m0-s0"]["start"] == "default"
    # a single-level factor is left out of the ids
    assert list(plan(spec(agents=["frontier", "random"])).cells) == ["a0-m0", "a1-m0"]


def test_every_run_is_admitted_with_labels_maze_and_prompt() -> None:
    result = plan(
        spec(
            agents=["frontier", "ollama:qwen2.5:7b"],
            labels={"team": "mazes"},
            comment="first try",
            limits={"max_footsteps": 99},
            rules={"vision_range": 2},
            repetitions=2,
        )
    )
    for run in result.runs:
        request = run.request
        assert request.labels == {
            "team": "mazes",
            "batch_id": "b7",
            "cell": run.cell_id,
            "repetition": str(run.repetition),
        }
        assert request.comment == "test batch: first try"
        assert request.maze is not None and request.maze.name == "lib-a"
        assert request.maze_name is None
        assert request.limits.max_footsteps == 99 and request.rules.vision_range == 2
        # what the scheduler publishes is accepted by the workers' admission as it is
        again = admit(request.model_dump(mode="json"), find_maze)
        assert isinstance(again, Admitted), again
    model_run = next(run for run in result.runs if run.request.agent.provider == "ollama")
    assert model_run.request.prompt == load_prompt(DEFAULT_PROMPT_VERSION)  # text filled in


def test_repetitions_get_consecutive_seeds_unless_the_spec_fixes_one() -> None:
    result = plan(
        spec(
            agents=[
                "random",
                {"agent": "frontier", "seed": 42},
                "ollama:qwen2.5:7b",
                {"agent": "openai:gpt-4o-mini", "options": {"seed": 9}},
                "bedrock:amazon.nova-lite-v1:0",
            ],
            seed=100,
            repetitions=3,
        )
    )
    seeds: dict[str, list[tuple[int | None, int | None]]] = {}
    for run in result.runs:
        agent = run.request.agent
        seeds.setdefault(run.cell_id, []).append((agent.seed, agent.options.seed))
    assert seeds == {
        "a0-m0": [(100, None), (101, None), (102, None)],
        "a1-m0": [(42, None)] * 3,
        "a2-m0": [(None, 100), (None, 101), (None, 102)],
        "a3-m0": [(None, 9)] * 3,
        "a4-m0": [(None, None)] * 3,  # bedrock takes no seed
    }


def test_random_starts_are_reachable_distinct_hidden_and_deterministic() -> None:
    maze = LIBRARY["lib-a"]
    drawn = random_starts(maze, 6, seed=4, vision_range=3)
    assert drawn is not None and len(set(drawn)) == 6
    reachable = analysis.reachable(maze, maze.goal)
    in_view = analysis.goal_viewpoints(maze, 3)
    for tile in drawn:
        assert tile in reachable and tile != maze.goal and tile not in in_view
    assert random_starts(maze, 6, seed=4, vision_range=3) == drawn
    assert random_starts(maze, 3, seed=4, vision_range=3) == drawn[:3]  # prefix-stable
    assert random_starts(maze, 6, seed=5, vision_range=3) != drawn
    assert random_starts(maze, 10_000, seed=4, vision_range=3) is None

    result = plan(spec(mazes=[{"name": "lib-a"}, GENERATED], starts={"random": 3, "seed": 4}))
    assert len(result.cells) == 9
    by_maze: dict[str, set[Position]] = {}
    for run in result.runs:
        request = run.request
        assert request.start is not None and request.maze is not None
        by_maze.setdefault(request.maze.name, set()).add(request.start.position())
    assert by_maze["lib-a"] == set(drawn[:3])
    assert all(len(tiles) == 3 for tiles in by_maze.values())


def test_too_few_start_tiles_is_a_problem_of_the_starts() -> None:
    found = problems(spec(starts={"random": 500}))
    assert found == {
        "starts[0].random": "fewer than 500 tiles from which the goal can be reached but is "
        "not yet in view, in maze lib-a"
    }


def test_bad_cells_are_rejected_each_named_with_its_field() -> None:
    found = problems(
        spec(
            agents=["frontier", "bedrock:amazon.nova-lite-v1:0", "ollama:qwen2.5:7b"],
            sweep={"temperature": [0.5, 1.5]},
            prompts=["v1", "no-such-prompt"],
            mazes=[{"name": "lib-a"}, {"name": "lib-b"}],
            starts=["default", {"at": [0, 0]}],
        )
    )
    assert set(found) == {
        # bedrock refuses temperature 1.5 (option level 1) in every one of its cells
        "cells.a1-p*-o1-m*-s*.agent.options.temperature",
        # the unknown prompt (level 1), for both model agents
        "cells.a*-p1-o*-m*-s*.prompt.version",
        # (0,0) is a wall: one line per maze, naming the built-in and the model cells
        "cells.{a0-m0-s1,a*-p*-o*-m0-s1}.start",
        "cells.{a0-m1-s1,a*-p*-o*-m1-s1}.start",
    }
    assert "1.5" in found["cells.a1-p*-o1-m*-s*.agent.options.temperature"]
    assert "no-such-prompt" in found["cells.a*-p1-o*-m*-s*.prompt.version"]


def test_a_single_bad_cell_is_named_alone() -> None:
    assert not LIBRARY["lib-a"].is_wall(13, 13)
    found = problems(spec(mazes=[{"name": "lib-a"}, {"name": "lib-b"}], starts={"at": [13, 13]}))
    assert set(found) == {"cells.a0-m1.start"}
    assert "outside maze lib-b" in found["cells.a0-m1.start"]


def test_spec_level_problems_come_all_at_once() -> None:
    found = problems(
        spec(
            agents=[
                "frontier",
                {"agent": "ollama:qwen2.5:7b", "options": {"temperature": 0.1}},
                "nonsense-model",
                "builtin:teleporter",
                {"agent": "ollama:qwen2.5:7b", "seed": 4},
            ],
            sweep={"temperature": [0.0, 0.7]},
            mazes=[
                {"name": "lib-a"},
                {"name": "no-such-maze"},
                {
                    "generator": "backtracker",
                    "width": 11,
                    "height": 11,
                    "params": {"x": 1},
                    "seeds": [1],
                },
                {"generator": "wormhole", "width": 11, "height": 11, "seeds": [1]},
            ],
        )
    )
    assert set(found) == {
        "agents[1].options.temperature",
        "agents[2]",
        "agents[3]",
        "agents[4].seed",
        "mazes[1].name",
        "mazes[2].params.x",
        "mazes[3].generator",
    }
    assert "also swept" in found["agents[1].options.temperature"]
    assert "PROVIDER:MODEL" in found["agents[2]"]
    assert "teleporter" in found["agents[3]"]
    assert "options.seed" in found["agents[4].seed"]


def test_a_document_is_read_strictly_with_every_problem() -> None:
    found = problems(
        {
            "name": "",
            "agents": [],
            "mazes": [{"file": "maze.json"}, {"width": 3}],
            "starts": {"at": [1]},
            "repetitions": "3",
            "labels": {"cell": "mine"},
            "sweep": {"temperature": [0.5, 3], "colour": ["red"]},
            "budget": {},
            "colour": "blue",
        }
    )
    assert set(found) == {
        "name",
        "agents",
        "mazes[0].file",
        "mazes[1]",
        "starts[0].at",
        "repetitions",
        "labels",
        "sweep.temperature[1]",
        "sweep.colour",
        "budget",
        "colour",
    }
    assert found["repetitions"] == "expected an integer, got a string"
    assert "set by the batch" in found["labels"]
    assert "CLI" in found["mazes[0].file"]


def test_a_grid_of_more_than_the_cap_is_refused_before_any_work() -> None:
    def no_lookup(name: str) -> Maze:
        raise AssertionError("nothing is looked up for a refused grid")

    document = spec(
        agents=["frontier", "ollama:qwen2.5:7b", "openai:gpt-4o-mini"],
        prompts=["v1", "v2-explore"],
        sweep={"temperature": [0.0, 0.5, 1.0]},
        mazes=[{"name": "lib-a"}, {**GENERATED, "seeds": list(range(20))}],
        starts={"random": 5},
        repetitions=10,
    )
    result = expand_batch(document, find_maze=no_lookup, prices=None)
    assert isinstance(result, BatchRejected)
    (field, reason), *_ = result.problems
    total = (1 + 2 * 2 * 3) * 21 * 5 * 10
    assert total > MAX_BATCH_RUNS
    assert field == "batch"
    assert f"{total:,} runs" in reason
    assert (
        "(2 model agents x 2 prompts x 3 option combinations + 1 built-in agent) "
        "x 21 mazes x 5 starts x 10 repetitions" in reason
    )


def test_a_batch_id_that_cannot_prefix_run_ids_is_refused() -> None:
    for bad in ("b" * 65, "b:1", "b.1"):
        found = problems(spec(batch_id=bad, agents=["frontier", "random"]))
        assert set(found) == {"batch_id"}, bad
    longest = plan(spec(batch_id="b" * 64, agents=["frontier", "random"]))
    assert max(len(run.run_id) for run in longest.runs) <= 128


def test_a_spec_without_an_id_gets_one_and_keeps_it() -> None:
    document = spec()
    del document["batch_id"]
    parsed = parse_batch(document)
    assert isinstance(parsed, BatchSpec)
    assert parsed.batch_id.startswith("batch-") and len(parsed.batch_id) == 18
    assert plan(parsed).runs[0].run_id == plan(parsed).runs[0].run_id
    assert plan(parsed).batch_id == parsed.batch_id
    other = parse_batch(document)
    assert isinstance(other, BatchSpec) and other.batch_id != parsed.batch_id


@pytest.mark.parametrize("bad", [{"at": [-1, 0]}, "middle", {"random": 0}])
def test_bad_starts_are_spec_problems(bad: Any) -> None:
    assert set(problems(spec(starts=[bad]))) <= {"starts[0]", "starts[0].at[0]", "starts[0].random"}


def test_a_prompt_may_be_given_with_its_text() -> None:
    custom = {"version": "terse-1", "text": "Find the goal. Move with the tools."}
    result = plan(spec(agents=["ollama:qwen2.5:7b"], prompts=["v1", custom]))
    assert [cell["prompt"] for cell in result.cells.values()] == ["v1", "terse-1"]
    prompt = result.runs[1].request.prompt
    assert prompt is not None and prompt.text == custom["text"]
