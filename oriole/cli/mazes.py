"""`oriole mazes ...`: generate, show, import, list, analyze and look through mazes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from oriole import analysis, generators
from oriole.cli.common import (
    HELP_OPTIONS,
    catalogue,
    console,
    err_console,
    parse_assignments,
    parse_point,
    print_json,
)
from oriole.cli.render import render_maze
from oriole.errors import ValidationError
from oriole.geometry import Position, tile_name
from oriole.maze import DEFAULT_VISION_RANGE, Maze
from oriole.rules import DEFAULT_START
from oriole.vision import describe_vision, goal_in_view

app = typer.Typer(
    no_args_is_help=True,
    help="Generate, import, inspect and analyse mazes. MAZE is a file path or a library name.",
    context_settings=HELP_OPTIONS,
)

MazeArg = Annotated[
    str, typer.Argument(help="A maze JSON file, or the name of a maze in the library.")
]
StartOpt = Annotated[str | None, typer.Option("--start", help="Start tile as X,Y (default 2,2).")]
RangeOpt = Annotated[int, typer.Option("--range", min=0, max=100, help="Vision range in tiles.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("families")
def families() -> None:
    """List the generator families and their parameters."""
    table = Table(title="Maze generator families")
    table.add_column("family", style="bold")
    table.add_column("what it makes")
    table.add_column("parameters (default, range)")
    for spec in generators.GENERATORS.values():
        params = "\n".join(
            f"{p.name}={'size-based' if p.default is None else p.default} "
            f"[{p.minimum}..{p.maximum}]"
            for p in spec.params
        )
        table.add_row(spec.name, spec.description, params or "-")
    console.print(table)


@app.command("generate")
def generate(
    family: Annotated[str, typer.Argument(help="Generator family (see `oriole mazes families`).")],
    width: Annotated[int, typer.Option("--width", "-w", help="Columns, 3..1000.")] = 60,
    # -H, not -h: -h is help on every command.
    height: Annotated[int, typer.Option("--height", "-H", help="Rows, 3..1000.")] = 60,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Same seed, same maze.")] = 1,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Family parameter as key=value; repeatable."),
    ] = None,
    goal: Annotated[
        str, typer.Option("--goal", help="Goal placement: oriole or farthest.")
    ] = "oriole",
    start: StartOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Maze name (default from family, size, seed).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of the library.")
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Draw the maze after generating it.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a different maze of that name.")
    ] = False,
) -> None:
    """Generate a seeded maze and save it to the library (or --out FILE)."""
    params = parse_assignments(param or [], "--param")
    origin = None if start is None else parse_point(start, "--start")
    maze = generators.generate(
        family, width, height, seed, name=name, goal=goal, start=origin, **params
    )
    if out is not None:
        if out.exists() and not replace:
            raise ValidationError("--out", f"{out} exists; pass --replace to overwrite it")
        maze.save(out)
        where = out
    else:
        where = catalogue().add(maze, replace=replace)
    console.print(
        f"[bold]{maze.name}[/] {maze.width}x{maze.height}, goal at ({maze.goal.x},{maze.goal.y}), "
        f"{maze.content_hash[:19]}... -> {where}",
        soft_wrap=True,
    )
    if show:
        _draw(maze, origin)


@app.command("show")
def show(
    maze_ref: MazeArg,
    start: StartOpt = None,
    path: Annotated[
        bool, typer.Option("--path", help="Draw the shortest path to the goal.")
    ] = False,
) -> None:
    """Draw a maze in the terminal (S start, G goal, · shortest path)."""
    maze = catalogue().resolve(maze_ref)
    origin = parse_point(start, "--start") if start else None
    route: list[Position] = []
    if path:
        route = analysis.shortest_path(maze, origin or DEFAULT_START) or []
        if not route:
            err_console.print("[yellow]the goal cannot be reached from the start[/]")
    _draw(maze, origin, route)


def _draw(maze: Maze, start: Position | None, route: list[Position] | None = None) -> None:
    text, cropped = render_maze(
        maze, start=start, path=route or (), max_columns=max(console.width, 20)
    )
    console.print(
        f"[bold]{maze.name}[/] {maze.width}x{maze.height}  goal ({maze.goal.x},{maze.goal.y})"
        f"  see-through walls: {'yes' if maze.see_through_walls else 'no'}"
    )
    console.print(text, end="", soft_wrap=True, crop=False)
    if cropped:
        err_console.print(f"[yellow]cropped to the terminal width ({console.width} columns)[/]")


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Oriole maze JSON files.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite different mazes of the same name.")
    ] = False,
) -> None:
    """Validate Oriole maze files and add them to the library."""
    library = catalogue()
    failures = 0
    for file in files:
        try:
            maze = Maze.load(file)
            target = library.add(maze, replace=replace)
        except ValidationError as exc:
            failures += 1
            err_console.print(f"[red]✗ {file}:[/] {exc}")
            continue
        console.print(
            f"[green]✓[/] {maze.name} ({maze.width}x{maze.height}, {maze.content_hash[:19]}...)"
            f" -> {target}",
            soft_wrap=True,
        )
    if failures:
        raise typer.Exit(1)


@app.command("list")
def list_(json_output: JsonOpt = False) -> None:
    """List the mazes in the library and the extra maze folders."""
    library = catalogue()
    rows = []
    for name in library.names():
        maze = library.get(name)
        rows.append(
            {
                "name": name,
                "width": maze.width,
                "height": maze.height,
                "goal": {"x": maze.goal.x, "y": maze.goal.y},
                "content_hash": maze.content_hash,
                "generator": None if maze.generator is None else maze.generator.to_dict(),
            }
        )
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"Mazes ({len(rows)})")
    for column in ("name", "size", "goal", "hash", "generator"):
        table.add_column(column)
    for row in rows:
        gen = row["generator"]
        table.add_row(
            str(row["name"]),
            f"{row['width']}x{row['height']}",
            f"({row['goal']['x']},{row['goal']['y']})",  # type: ignore[index]
            str(row["content_hash"])[:19] + "...",
            "-" if gen is None else f"{gen['name']} seed {gen['seed']}",  # type: ignore[index]
        )
    console.print(table)


@app.command("analyze")
def analyze(
    maze_ref: MazeArg,
    start: StartOpt = None,
    vision_range: RangeOpt = DEFAULT_VISION_RANGE,
    json_output: JsonOpt = False,
) -> None:
    """Reachability, shortest paths to reach and to see the goal, dead ends, warnings."""
    maze = catalogue().resolve(maze_ref)
    origin = parse_point(start, "--start") if start else DEFAULT_START
    result = analysis.analyze(maze, origin, vision_range)
    data = result.to_dict()
    if json_output:
        print_json(data)
        return
    table = Table(title=f"{maze.name} from ({origin.x},{origin.y})", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    for key, value in data.items():
        if key == "warnings":
            continue
        if isinstance(value, dict) and set(value) == {"x", "y"}:
            value = f"({value['x']},{value['y']})"
        elif key == "start_tile" and isinstance(value, int):
            value = _tile_label(value)  # a reader knows "wall", not code 1
        elif isinstance(value, float):
            value = f"{value:.3f}"
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _tile_label(code: int) -> str:
    """The tile's name as the maze format documents it (empty, wall, goal); an unknown code
    stays a code, so that it is not shown as a blank."""
    name = tile_name(code).lower()
    return name or f"code {code}"


@app.command("vision")
def vision(
    maze_ref: MazeArg,
    x: Annotated[int, typer.Argument(help="Column of the agent.")],
    y: Annotated[int, typer.Argument(help="Row of the agent.")],
    vision_range: RangeOpt = DEFAULT_VISION_RANGE,
    see_through: Annotated[
        bool, typer.Option("--see-through", help="See through walls (the full square).")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """What an agent at (X, Y) sees, exactly as the model is told."""
    maze = catalogue().resolve(maze_ref)
    mode = True if see_through else None
    tiles = maze.vision(x, y, vision_range, mode)
    text = describe_vision(tiles)
    if json_output:
        print_json(
            {
                "maze": maze.name,
                "x": x,
                "y": y,
                "vision_range": vision_range,
                "see_through_walls": see_through or maze.see_through_walls,
                "tiles": {f"{tx},{ty}": code for tx, ty, code in tiles},
                "tiles_ordered": [list(tile) for tile in tiles],
                "description": text,
                "found_goal": goal_in_view(tiles),
            }
        )
        return
    console.print(text, highlight=False, markup=False, soft_wrap=True)
