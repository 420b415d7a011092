"""The random agent: reproducible for a seed, and the seed is read from the observation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oriole.agents.base import Observation
from oriole.agents.builtin import RandomAgent
from oriole.experiment import AgentSpec
from oriole.generators import generate
from oriole.intents import ActionType
from tests.builtin_agents_support import new_run, play


async def random_actions(seed: int | None) -> list[tuple[object, ...]]:
    maze = generate("open-field", 20, 20, 9)
    run = new_run(maze, "random", seed=seed, max_footsteps=150)
    await play(RandomAgent(), run, avoid_walls=False)
    return [(r.action, r.success, r.from_, r.to) for r in run.state.actions]


@pytest.mark.asyncio
async def test_random_is_reproducible_for_a_seed() -> None:
    first = await random_actions(7)
    assert len(first) >= 150
    assert await random_actions(7) == first
    assert await random_actions(8) != first
    assert await random_actions(None) == await random_actions(0)
    moves = {action for action, *_ in first}
    assert moves == {
        ActionType.MOVE_NORTH,
        ActionType.MOVE_SOUTH,
        ActionType.MOVE_EAST,
        ActionType.MOVE_WEST,
    }


@pytest.mark.asyncio
async def test_the_seed_is_read_from_the_observation() -> None:
    maze = generate("open-field", 20, 20, 9)
    run = new_run(maze, "random", seed=5)
    observation = Observation.from_state(run.state)
    agent = RandomAgent()
    reasons = set()
    for seed in range(8):
        changed = replace(
            observation, agent=AgentSpec(provider="builtin", model="random", seed=seed)
        )
        reasons.add((await agent.decide(changed, [])).reasoning)
    assert len(reasons) == 8
