"""Moving one tile (Oriole's `move_handler`): targets off the grid or on a wall fail.

The current tile is never checked, so an agent that starts on a wall can step off it.
Vision is taken from where the agent ends up, after success or failure alike.
"""

from __future__ import annotations

from oriole.geometry import Direction, Position, Tile
from oriole.maze import Maze
from oriole.memory import ToolResult
from oriole.vision import describe_vision, goal_in_view


def move(
    maze: Maze, position: Position, direction: Direction, vision_range: int, see_through: bool
) -> ToolResult:
    target = position.step(direction)
    if not maze.in_bounds(target.x, target.y):
        blocked: str | None = "boundary"
    elif maze.rows[target.y][target.x] == Tile.WALL:
        blocked = "wall"
    else:
        blocked = None
    end = position if blocked else target
    tiles = tuple(maze.vision(end.x, end.y, vision_range, see_through))
    if blocked:
        message = f"Cannot move {direction.value} - {blocked} in the way. Still at {end}"
    else:
        message = f"Moved {direction.value} to {end}"
    return ToolResult(
        success=blocked is None,
        to=end,
        tiles=tiles,
        message=message,
        result={
            "success": blocked is None,
            "position": {"x": end.x, "y": end.y},
            "visible": describe_vision(tiles),
            "foundGoal": goal_in_view(tiles),
            "message": message,
        },
    )
