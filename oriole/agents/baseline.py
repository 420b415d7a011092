"""What the built-in baselines share: the seed and its one mixing function, and decisions.

Every free choice of a built-in agent (a random move, a tie between equally near tiles, a
wall-follower's hand) is drawn from `seeded_draws`: the agent's seed mixed with a value of
the observation that a runner restarted from the event log sees again (``basis_seq``, or a
constant for a choice that holds for the whole run). So repetitions with different seeds
differ, and a decision stays a pure function of the observation and the seed.

Seed 0 (``None`` means 0) is the canonical baseline: the deterministic agents break ties in
their fixed order, exactly as they did before they took a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from oriole.agents.base import Decision, Observation
from oriole.geometry import Direction, Position, Tile
from oriole.intents import ActionType, move_action
from oriole.memory import ActionRecord
from oriole.rng import SeededRandom

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
WALL = int(Tile.WALL)
GOAL = int(Tile.GOAL)


def agent_seed(observation: Observation) -> int:
    """The agent's seed as an unsigned 64-bit word (``None`` means 0)."""
    seed = observation.agent.seed
    return 0 if seed is None else seed & MASK64


def seeded_draws(seed: int, salt: int) -> SeededRandom:
    """The draws of one decision: ``seed`` mixed with ``salt``, a stable non-negative value.

    The one mixing function of the built-in agents (SeededRandom's first output is a
    SplitMix64 finalisation of this word).
    """
    return SeededRandom(((seed * GOLDEN_GAMMA) ^ salt) & MASK64)


def move(direction: Direction, reasoning: str) -> Decision:
    return Decision(
        action=move_action(direction), reasoning=reasoning, model_call=None, new_turn=True
    )


def no_move(message: str, reasoning: str | None = None) -> Decision:
    """A turn without a move; the message says why, as a model's plain answer would."""
    return Decision(
        action=ActionType.NO_TOOL_CALL,
        reasoning=message if reasoning is None else reasoning,
        assistant_message=message,
        model_call=None,
        new_turn=True,
    )


def steps_text(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"


def failed_targets(history: Sequence[ActionRecord]) -> set[Position]:
    """Tiles a move was refused into: walls, or off the grid, even if never seen."""
    blocked: set[Position] = set()
    for record in history:
        if not record.success:
            direction = record.action.direction
            if direction is not None:
                blocked.add(record.from_.step(direction))
    return blocked


class BuiltinAgent:
    """Common shape of the baselines: a pure `choose`, wrapped by the async `decide`.

    `choose` is public so that benchmarks and replays can call it without an event loop.
    """

    name: str = "builtin"

    async def decide(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        return self.choose(observation, history)

    def choose(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        raise NotImplementedError
