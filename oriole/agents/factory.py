"""Creating the agent a run asks for."""

from __future__ import annotations

from oriole.admission import AVAILABLE_PROVIDERS
from oriole.agents.base import Agent
from oriole.agents.builtin import create_builtin
from oriole.errors import ValidationError
from oriole.experiment import AgentSpec


def create_agent(spec: AgentSpec) -> Agent:
    if spec.provider == "builtin":
        return create_builtin(spec)
    raise ValidationError(
        "agent.provider",
        f"provider {spec.provider!r} is not available in this version; "
        f"available: {', '.join(sorted(AVAILABLE_PROVIDERS))}",
    )
