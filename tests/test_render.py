"""The one maze renderer (`oriole mazes show` and `oriole watch`): glyphs, styles, the
fallback to one character per tile, cropping, and windows around the agent."""

from __future__ import annotations

from rich.text import Text

from oriole.cli.render import (
    AGENT_STYLE,
    GOAL_STYLE,
    IN_VIEW_STYLE,
    PATH_STYLE,
    SEEN_STYLE,
    START_STYLE,
    WALL_IN_VIEW_STYLE,
    WALL_SEEN_STYLE,
    WALL_STYLE,
    Area,
    area_around,
    glyph,
    render_maze,
)
from oriole.geometry import Position
from tests.support import maze_from_text

CORRIDOR = maze_from_text(
    """
    #######
    #.....#
    #.###.#
    #...#G#
    #######
    """,
    name="corridor",
)
START = Position(1, 1)
ROUTE = [Position(x, 1) for x in range(1, 6)] + [Position(5, 2)]


def styles(text: Text, cell: int) -> dict[tuple[int, int], str]:
    """The style of every tile that has one, by (x, y)."""
    lines = text.plain.split("\n")
    found: dict[tuple[int, int], str] = {}
    offset = 0
    for y, line in enumerate(lines):
        for x in range(len(line) // cell):
            at = offset + x * cell
            style = " ".join(str(s.style) for s in text.spans if s.start <= at < s.end)
            if style:
                found[(x, y)] = style
        offset += len(line) + 1
    return found


def test_mazes_show_drawing_is_unchanged() -> None:
    """What `oriole mazes show --path` draws (as before watch shared the renderer)."""
    text, cropped = render_maze(CORRIDOR, start=START, path=ROUTE)
    assert not cropped
    assert text.plain == (
        "██████████████\n██S · · · · ██\n██  ██████· ██\n██      ██G ██\n██████████████\n"
    )
    found = styles(text, 2)
    assert found[(1, 1)] == START_STYLE
    assert found[(5, 3)] == GOAL_STYLE
    assert {found[(x, 1)] for x in range(2, 6)} == {found[(5, 2)]} == {PATH_STYLE}
    walls = {
        (x, y) for y, row in enumerate(CORRIDOR.rows) for x, code in enumerate(row) if code == 1
    }
    assert {found[tile] for tile in walls} == {WALL_STYLE}
    assert set(found) == walls | set(ROUTE) | {Position(5, 3)}  # nothing else is styled


def test_narrow_terminals_get_one_character_per_tile_then_a_crop() -> None:
    text, cropped = render_maze(CORRIDOR, start=START, path=ROUTE, max_columns=10)
    assert (text.plain, cropped) == ("███████\n█S····█\n█ ███·█\n█   █G█\n███████\n", False)
    text, cropped = render_maze(CORRIDOR, start=START, path=ROUTE, max_columns=5)
    assert (text.plain, cropped) == ("█████\n█S···\n█ ███\n█   █\n█████\n", True)


def test_agent_seen_and_in_view() -> None:
    agent = Position(2, 1)
    seen = {Position(1, 2), Position(1, 0), Position(2, 0), Position(3, 1)}
    in_view = {Position(2, 0), Position(3, 1)}
    text, _ = render_maze(
        CORRIDOR, start=START, path=[START, agent], seen=seen, in_view=in_view, agent=agent
    )
    assert text.plain.split("\n")[1] == "██S @       ██"
    found = styles(text, 2)
    assert found[(2, 1)] == AGENT_STYLE
    assert found[(2, 0)] == WALL_IN_VIEW_STYLE
    assert found[(1, 0)] == WALL_SEEN_STYLE
    assert found[(0, 0)] == WALL_STYLE
    assert found[(3, 1)] == IN_VIEW_STYLE
    assert found[(1, 2)] == SEEN_STYLE
    assert (4, 1) not in found
    # The agent is drawn over everything, the start over the goal.
    assert glyph(2, Position(5, 3), agent=Position(5, 3), start=Position(5, 3)) == (
        "@",
        AGENT_STYLE,
    )
    assert glyph(2, Position(5, 3), start=Position(5, 3)) == ("S", START_STYLE)
    assert glyph(0, Position(4, 1), path={Position(4, 1)}, seen={Position(4, 1)}) == (
        "·",
        f"{PATH_STYLE} {SEEN_STYLE}",
    )


def test_an_area_of_the_maze() -> None:
    area = area_around(CORRIDOR, Position(5, 3), 3, 2)
    assert area == Area(4, 2, 7, 4)
    text, cropped = render_maze(CORRIDOR, area=area, agent=Position(5, 3), max_columns=6)
    assert (text.plain, cropped) == ("██  ██\n██@ ██\n", False)
    assert area_around(CORRIDOR, Position(1, 1), 40, 40) == Area.whole(CORRIDOR)
