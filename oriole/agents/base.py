"""The interface every agent implements — built-in baselines and LLM providers alike.

An agent sees an `Observation` (what the maze told it so far, never the maze itself) and the
run's action history, and returns one `Decision`. Agents hold no state that matters between
calls: everything they need is derived from the run's events, so a runner restarted on
another machine makes the same decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from oriole.errors import OrioleError
from oriole.experiment import AgentSpec, GameRules, PromptSpec
from oriole.geometry import Position
from oriole.intents import ActionType, AgentIntent, ModelCall
from oriole.memory import ActionRecord
from oriole.run_state import RunState
from oriole.vision import SeenTile


@dataclass(frozen=True, slots=True)
class Observation:
    """What the agent knows at the moment it must act."""

    run_id: str
    basis_seq: int
    turn: int
    position: Position
    width: int
    height: int
    vision: tuple[SeenTile, ...]
    known: Mapping[Position, int]
    footsteps: int
    actions: int
    last_result: Mapping[str, Any] | None
    rules: GameRules
    agent: AgentSpec
    prompt: PromptSpec | None
    goal_rule: str = "seen"
    #: A fork's offset from its own seqs to its lineage's (`RunState.seq_offset`).
    seq_offset: int = 0

    @property
    def lived_seq(self) -> int:
        """``basis_seq`` counted over the run's lineage: what seeded choices draw from, so a
        fork with its parent's agent and seed chooses as the parent did."""
        return self.basis_seq + self.seq_offset

    @classmethod
    def from_state(cls, state: RunState) -> Observation:
        spec, maze = state.require_spec()
        vision = tuple(
            maze.vision(
                state.position.x, state.position.y, spec.rules.vision_range, spec.see_through()
            )
        )
        return cls(
            run_id=state.run_id,
            basis_seq=state.seq,
            turn=state.turn,
            position=state.position,
            width=maze.width,
            height=maze.height,
            vision=vision,
            known=dict(state.seen),
            footsteps=state.tally.footsteps,
            actions=state.tally.actions,
            last_result=state.last_result,
            rules=spec.rules,
            agent=spec.agent,
            prompt=spec.prompt,
            goal_rule=spec.limits.goal_rule,
            seq_offset=state.seq_offset,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """One action chosen by the agent, with what it said and what the choice cost."""

    action: ActionType
    reasoning: str | None = None
    depth: int | None = None
    tool_name: str | None = None
    arguments: Mapping[str, Any] | None = field(default=None)
    problem: str | None = None
    assistant_message: str | None = None
    model_call: ModelCall | None = None
    new_turn: bool = True

    def to_intent(self, run_id: str, basis_seq: int, current_turn: int) -> AgentIntent:
        """The intent a runner sends for this decision, replying to event ``basis_seq``."""
        turn = current_turn + 1 if self.new_turn or current_turn == 0 else current_turn
        return AgentIntent(
            run_id=run_id,
            basis_seq=basis_seq,
            turn=turn,
            action=self.action,
            reasoning=self.reasoning,
            depth=self.depth,
            tool_name=self.tool_name,
            arguments=None if self.arguments is None else dict(self.arguments),
            problem=self.problem,
            assistant_message=self.assistant_message,
            model_call=self.model_call,
        )


class AgentFailed(OrioleError):
    """The agent cannot go on; the run ends failed with this error class and message.

    ``model_call`` carries the usage (and the failed attempts) of a call that was made, so a
    failing run's tokens and retries are still on record.
    """

    def __init__(self, error_class: str, message: str, model_call: ModelCall | None = None):
        super().__init__(f"{error_class}: {message}")
        self.error_class = error_class
        self.message = message
        self.model_call = model_call


class Agent(Protocol):
    """Decides the next action; must be deterministic for a given seed and observation."""

    name: str

    async def decide(
        self, observation: Observation, history: Sequence[ActionRecord]
    ) -> Decision: ...
