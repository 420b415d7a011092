"""`oriole prompts`: the released prompt versions a run can name."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from oriole.cli.common import HELP_OPTIONS, console, print_json
from oriole.errors import ValidationError
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION, load_prompt, released_prompts

_PREVIEW = 60

app = typer.Typer(
    no_args_is_help=True,
    help="Released prompt versions (oriole/prompts).",
    context_settings=HELP_OPTIONS,
)


@app.command("list")
def list_prompts(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every released version: release date, sha256 prefix and first line."""
    prompts = released_prompts()
    if json_output:
        print_json(
            [
                {
                    "version": p.version,
                    "released": p.released.isoformat(),
                    "sha256": p.sha256,
                    "default": p.version == DEFAULT_PROMPT_VERSION,
                    "first_line": p.first_line,
                }
                for p in prompts
            ]
        )
        return
    table = Table()
    for column in ("version", "released", "sha256", "first line"):
        table.add_column(column)
    for p in prompts:
        name = f"{p.version} (default)" if p.version == DEFAULT_PROMPT_VERSION else p.version
        line = p.first_line
        preview = line if len(line) <= _PREVIEW else line[: _PREVIEW - 1].rstrip() + "…"
        table.add_row(name, p.released.isoformat(), p.sha256[:12], preview)
    console.print(table)


@app.command("show")
def show_prompt(
    version: Annotated[str, typer.Argument(help="A released version, e.g. v1.")],
) -> None:
    """Print a released prompt's text exactly as runs receive it."""
    try:
        text = load_prompt(version).text
    except ValidationError as exc:
        raise ValidationError("VERSION", exc.reason) from None
    console.file.write(f"{text}\n")
