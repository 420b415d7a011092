"""The agent's memory: the recall tool and the exploration history shown in each prompt.

Fixes against Oriole: tiles are named (``wall at 2,0``, not ``1 at 2,0``), history lines
carry the real vision instead of ``Vision data parse error``, recall rows show the real
position instead of ``(null, null)``, and a recall without a valid depth is a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oriole.geometry import Position, tile_name
from oriole.intents import ActionType
from oriole.vision import SeenTile


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One past action as memory keeps it."""

    step: int
    turn: int
    action: ActionType
    success: bool
    from_: Position
    to: Position
    tiles: tuple[SeenTile, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What an action did and what the agent is told."""

    success: bool
    to: Position
    tiles: tuple[SeenTile, ...]
    message: str
    result: dict[str, Any]


def vision_summary(tiles: Sequence[SeenTile]) -> str:
    if not tiles:
        return "No tiles visible"
    return "Saw " + ", ".join(f"{tile_name(code)} at {x},{y}" for x, y, code in tiles)


def history_line(record: ActionRecord) -> str:
    """``✓ move_north → (2, 1): Saw empty at 2,1, wall at 2,0, …``"""
    mark = "✓" if record.success else "✗"
    if record.action.is_move:
        detail = vision_summary(record.tiles)
    else:
        detail = record.note or record.action.value
    return f"{mark} {record.action.value} → {record.to}: {detail}"


def exploration_history(actions: Sequence[ActionRecord], count: int) -> list[str]:
    """The last ``count`` actions of any kind, oldest first, for the turn prompt."""
    if count <= 0:
        return []
    return [history_line(record) for record in actions[-count:]]


def recall_error(position: Position, problem: str) -> ToolResult:
    message = f"recall_movement_history: {problem}"
    return ToolResult(
        success=False,
        to=position,
        tiles=(),
        message=message,
        result={
            "success": False,
            "error": message,
            "currentPosition": {"x": position.x, "y": position.y},
        },
    )


def recall(
    actions: Sequence[ActionRecord], position: Position, depth: int | None, max_depth: int
) -> ToolResult:
    """Oriole's `recall_movement_history`: the last ``depth`` moves (capped), oldest first."""
    if depth is None:
        return recall_error(
            position, "'depth' is required: an integer >= 1, the number of past moves to recall"
        )
    if depth < 1:
        return recall_error(position, f"'depth' must be an integer >= 1, got {depth}")
    limit = min(depth, max_depth)
    moves = [record for record in actions if record.action.is_move]
    recalled = moves[-limit:]
    if recalled:
        oldest = recalled[0].from_
        path = f"{len(recalled)} actions: {oldest.x},{oldest.y} → {position.x},{position.y}"
    else:
        path = "No movement history"
    discovered: dict[str, list[str]] = {"empty": [], "wall": [], "goal": []}
    known: set[tuple[int, int]] = set()
    for record in recalled:
        for x, y, code in record.tiles:
            if (x, y) in known:
                continue
            known.add((x, y))
            name = tile_name(code).lower()
            if name in discovered:
                discovered[name].append(f"{x},{y}")
    message = (
        f"Recalled last {len(recalled)} actions. {path}. Discovered {len(known)} unique tiles."
    )
    if depth > max_depth:
        message += (
            f" NOTE: you asked for {depth} actions but the maximum depth is {max_depth}, "
            f"so only the last {max_depth} were considered."
        )
    return ToolResult(
        success=True,
        to=position,
        tiles=(),
        message=message,
        result={
            "success": True,
            "actionsRecalled": len(recalled),
            "pathSummary": path,
            "explorationHistory": [history_line(record) for record in recalled],
            "tilesDiscovered": discovered,
            "currentPosition": {"x": position.x, "y": position.y},
            "message": message,
        },
    )
