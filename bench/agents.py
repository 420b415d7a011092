"""Built-in agent decision speed, including the frontier agent's worst case on 1000x1000."""

from __future__ import annotations

import time
from typing import Any

from oriole.agents.base import Observation
from oriole.agents.builtin import FrontierAgent
from oriole.experiment import AgentSpec, GameRules
from oriole.geometry import Position


def _observation(known: dict[Position, int], at: Position, size: int) -> Observation:
    return Observation(
        run_id="bench",
        basis_seq=1,
        turn=0,
        position=at,
        width=size,
        height=size,
        vision=(),
        known=known,
        footsteps=0,
        actions=0,
        last_result=None,
        rules=GameRules(),
        agent=AgentSpec(provider="builtin", model="frontier"),
        prompt=None,
    )


def main() -> dict[str, Any]:
    # Everything known and open except the far corner: the search crosses the whole map.
    known = dict.fromkeys((Position(x, y) for y in range(1000) for x in range(1000)), 0)
    del known[Position(999, 999)]
    observation = _observation(known, Position(0, 0), 1000)
    agent = FrontierAgent()
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        agent.choose(observation, [])
        timings.append(time.perf_counter() - began)
    return {"frontier_worst_case_1000x1000_decision_s": round(min(timings), 3)}
