"""The `oriole` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from oriole.cli import archive, batch, data, mazes, prompts, report, run, serve, status, watch
from oriole.cli.common import HELP_OPTIONS, console, err_console
from oriole.errors import OrioleError
from oriole.schemas import json_schemas

app = typer.Typer(
    name="oriole",
    no_args_is_help=True,
    add_completion=False,
    help="Oriole: run LLM agents through grid mazes and compare them, on an event log.",
    pretty_exceptions_enable=False,
    # -h is help, as in every other CLI; sub-commands inherit it, the groups say it too.
    context_settings=HELP_OPTIONS,
)
app.add_typer(mazes.app, name="mazes")
app.add_typer(prompts.app, name="prompts")
app.add_typer(batch.app, name="batch")
app.command("up")(serve.up)
app.command("worker")(serve.worker)
app.command("projector")(serve.projector)
app.command("gateway")(serve.gateway)
app.command("run")(run.run)
app.command("watch")(watch.watch)
app.command("replay")(data.replay)
app.command("rerun")(run.rerun)
app.command("fork")(run.fork)
app.command("report")(report.report)
app.command("status")(status.status)
app.add_typer(data.db_app, name="db")
app.add_typer(data.projections_app, name="projections")
app.add_typer(archive.app, name="archive")


@app.command("schema")
def schema(
    folder: Annotated[Path, typer.Argument(help="Folder to write the *.schema.json files to.")],
) -> None:
    """Write the JSON Schemas of every event and command Oriole reads or writes, and of the
    batch spec."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, document in json_schemas().items():
        target = folder / f"{stem}.schema.json"
        target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {target}")


#: Usage errors: click's, and (typer 0.24 and later) typer's own copy of click's.
_USAGE_ERRORS: tuple[type[Any], ...] = (click.ClickException,) + (
    (typer.TyperException,) if hasattr(typer, "TyperException") else ()
)


def main() -> None:
    """Entry point: our own errors become one readable line and exit status 2."""
    try:
        status = app(standalone_mode=False)
    except OrioleError as exc:
        # Messages quote user input: "[/x]" in a path is text, not rich markup.
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _USAGE_ERRORS as exc:  # a mistyped option or argument: the usage line, no trace
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(status, int) and status:
        sys.exit(status)
