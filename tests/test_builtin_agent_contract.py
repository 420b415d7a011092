"""What every built-in agent guarantees: a restarted runner decides the same, each satisfies
the Agent protocol under its name, and an unknown name is refused."""

from __future__ import annotations

import pytest

from oriole.agents.base import Agent, Observation
from oriole.agents.builtin import BUILTIN_AGENTS, check_agent_spec, create_builtin
from oriole.errors import ValidationError
from oriole.experiment import AgentSpec
from oriole.generators import generate
from oriole.intents import ActionType
from oriole.run_state import fold
from tests.builtin_agents_support import new_run, send


@pytest.mark.asyncio
@pytest.mark.parametrize("model", sorted(BUILTIN_AGENTS))
async def test_a_restarted_runner_makes_the_same_decisions(model: str) -> None:
    maze = generate("backtracker", 25, 25, 11)
    spec = AgentSpec(provider="builtin", model=model, seed=42)
    run = new_run(maze, model, seed=42, max_footsteps=120)
    agent = create_builtin(spec)
    while not run.state.is_finished:
        live = await agent.decide(Observation.from_state(run.state), run.state.actions)
        rebuilt = fold(run.state.run_id, run.events)
        restarted = create_builtin(spec)  # a fresh process: nothing carried over
        again = await restarted.decide(Observation.from_state(rebuilt), rebuilt.actions)
        assert again == live
        send(run, live)
        if live.action is ActionType.NO_TOOL_CALL:
            break
    assert run.state.tally.actions > 0


def test_agents_satisfy_the_protocol() -> None:
    for name, cls in BUILTIN_AGENTS.items():
        agent: Agent = create_builtin(AgentSpec(provider="builtin", model=name))
        assert isinstance(agent, cls)
        assert agent.name == name


def test_unknown_builtin_name_is_refused() -> None:
    spec = AgentSpec(provider="builtin", model="x")
    message = (
        "agent.model: unknown built-in agent 'x'; choose one of frontier, random, wall-follower"
    )
    with pytest.raises(ValidationError) as info:
        create_builtin(spec)
    assert str(info.value) == message
    assert info.value.field == "agent.model"
    with pytest.raises(ValidationError) as info:
        check_agent_spec(spec)
    assert str(info.value) == message
    check_agent_spec(AgentSpec(provider="builtin", model="frontier"))
    check_agent_spec(AgentSpec(provider="ollama", model="x"))  # checked elsewhere
    with pytest.raises(ValidationError, match=r"^agent\.provider: "):
        create_builtin(AgentSpec(provider="ollama", model="frontier"))
