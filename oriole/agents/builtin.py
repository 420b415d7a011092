"""Built-in baseline agents: ``random``, ``wall-follower`` and ``frontier``.

They are the yardsticks LLM runs are compared against, so they play by exactly the same
rules: they see only the `Observation` (what the maze told them so far) and the action
history, never the maze itself. None of them keeps state between calls — every decision is
a pure function of its inputs and the agent's seed — so a runner restarted from the event
log on another machine makes identical decisions.

The seed decides each agent's free choices, and nothing else (`oriole.agents.baseline`):
every move of ``random``; the hand and the first heading of ``wall-follower``; ties between
equally near tiles and equally short first steps of ``frontier``. Seed 0 (or none) is the
canonical baseline, so repetitions of a deterministic agent differ only when their seeds do.

What an agent may assume about the grid (shared by the wall-follower and the frontier agent):
a tile is a wall if it was seen as one, or if a move into it failed (which is how an agent
with vision range 0 learns walls). Off-grid tiles are never entered.

This module holds the random agent and the registry; the others have a module each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from oriole.agents.base import Decision, Observation
from oriole.agents.baseline import BuiltinAgent, agent_seed, move, seeded_draws
from oriole.agents.frontier import FrontierAgent
from oriole.agents.wall_follower import WallFollowerAgent
from oriole.errors import ValidationError
from oriole.experiment import AgentSpec
from oriole.geometry import RAY_ORDER
from oriole.memory import ActionRecord

__all__ = [
    "BUILTIN_AGENTS",
    "BuiltinAgent",
    "FrontierAgent",
    "RandomAgent",
    "WallFollowerAgent",
    "check_agent_spec",
    "create_builtin",
]


class RandomAgent(BuiltinAgent):
    """Uniform random moves; the draw depends only on (seed, lived_seq), so it is replayable.

    Walls are not avoided on purpose: this is the know-nothing baseline.
    """

    name = "random"

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        seed = agent_seed(observation)
        direction = RAY_ORDER[seeded_draws(seed, observation.lived_seq).below(4)]
        return move(
            direction,
            f"random move (seed {seed}, after event {observation.lived_seq}): {direction.value}",
        )


#: Every built-in agent by the name used as ``AgentSpec.model``.
BUILTIN_AGENTS: Mapping[str, type[BuiltinAgent]] = MappingProxyType(
    {cls.name: cls for cls in (FrontierAgent, RandomAgent, WallFollowerAgent)}
)


def _unknown(name: str) -> ValidationError:
    choices = ", ".join(sorted(BUILTIN_AGENTS))
    return ValidationError(
        "agent.model", f"unknown built-in agent '{name}'; choose one of {choices}"
    )


def check_agent_spec(spec: AgentSpec) -> None:
    """Refuse a ``builtin`` spec naming no built-in agent; other providers are checked elsewhere."""
    if spec.provider == "builtin" and spec.model not in BUILTIN_AGENTS:
        raise _unknown(spec.model)


def create_builtin(spec: AgentSpec) -> BuiltinAgent:
    """The built-in agent a spec names (the seed is read from each observation, not here)."""
    if spec.provider != "builtin":
        raise ValidationError(
            "agent.provider", f"provider '{spec.provider}' is not served by the built-in agents"
        )
    cls = BUILTIN_AGENTS.get(spec.model)
    if cls is None:
        raise _unknown(spec.model)
    return cls()
