"""The one tool set every model plays with; each wire format renders it its own way.

The run id is not an argument (Oriole's required ``experimentId`` was a value the model was
no longer told): the runner knows which run a call belongs to.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from oriole.intents import ActionType
from oriole.llm.chat import ToolSpec

_REASONING: dict[str, Any] = {
    "type": "string",
    "description": "Why you chose this action, in a sentence or two.",
}


def _move(direction: str, axis: str) -> ToolSpec:
    return ToolSpec(
        name=f"move_{direction}",
        description=(
            f"Move one tile {direction} ({axis}). Fails without moving if a wall or the edge "
            "of the maze is in the way. Returns your position and what you can see from it."
        ),
        parameters={
            "type": "object",
            "properties": {"reasoning": _REASONING},
            "required": ["reasoning"],
        },
    )


RECALL = ToolSpec(
    name=ActionType.RECALL.value,
    description=(
        "Recall your recent movement history: the last `depth` moves in order, whether each "
        "succeeded, where it left you and what you saw, plus every tile discovered on the way. "
        "Useful depths are 25, 50, 100 or 200."
    ),
    parameters={
        "type": "object",
        "properties": {
            "depth": {
                "type": "integer",
                "minimum": 1,
                "description": "How many past moves to recall.",
            },
            "reasoning": _REASONING,
        },
        "required": ["depth", "reasoning"],
    },
)

TOOLS: tuple[ToolSpec, ...] = (
    _move("north", "y decreases"),
    _move("south", "y increases"),
    _move("east", "x increases"),
    _move("west", "x decreases"),
    RECALL,
)

TOOL_ACTIONS: MappingProxyType[str, ActionType] = MappingProxyType(
    {tool.name: ActionType(tool.name) for tool in TOOLS}
)
