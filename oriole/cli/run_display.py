"""How a run looks in the terminal: the live progress line and the summary at its end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oriole.cli.common import console, err_console, print_json
from oriole.cli.follower import RunEnded
from oriole.events import ActionCompleted, RunEvent, RunStarted
from oriole.experiment import ExperimentStart


@contextmanager
def run_progress(request: ExperimentStart) -> Iterator[Callable[[RunEvent], None]]:
    """A progress line for ``request``'s run; yields the callback that advances it."""
    limits = request.limits
    total = limits.max_footsteps or limits.max_actions
    with Progress(
        TextColumn("[bold]{task.fields[run]}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("footsteps · {task.fields[actions]} actions · at {task.fields[at]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("run", total=total, run=request.run_id, actions=0, at="(start)")

        def on_event(event: RunEvent) -> None:
            if isinstance(event, RunStarted):
                start = event.payload.spec.start
                progress.update(task, at=f"({start.x},{start.y})")
            elif isinstance(event, ActionCompleted):
                outcome = event.payload
                progress.update(
                    task,
                    completed=outcome.footsteps,
                    actions=outcome.step,
                    at=f"({outcome.to.x},{outcome.to.y})",
                )

        yield on_event


def print_run_result(request: ExperimentStart, ended: RunEnded, json_output: bool) -> None:
    if not json_output:
        print_summary(ended)
    elif ended.rejected is not None:
        print_json(json.loads(ended.rejected.model_dump_json()))
    elif ended.finished is not None:
        print_json(
            {"run_id": request.run_id, **json.loads(ended.finished.payload.model_dump_json())}
        )


def print_summary(ended: RunEnded) -> None:
    if ended.rejected is not None:
        err_console.print("[bold red]the experiment was rejected:[/]")
        for problem in ended.rejected.problems:
            err_console.print(f"  {problem.field}: {problem.reason}", highlight=False)
        return
    if ended.finished is None:
        return
    end = ended.finished.payload
    table = Table(title=f"Run {ended.finished.run_id}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    outcome = "[green]goal found[/]" if end.success else "[red]goal not found[/]"
    table.add_row("outcome", outcome)
    table.add_row("stop reason", f"{end.stop_reason.value} — {end.detail}")
    table.add_row("footsteps", str(end.footsteps))
    table.add_row("actions", str(end.actions))
    table.add_row("turns", str(end.turns))
    table.add_row("final position", f"({end.position.x},{end.position.y})")
    table.add_row("duration", f"{end.duration_seconds:.2f} s")
    if end.model_calls:
        table.add_row("model calls", str(end.model_calls))
        table.add_row("tokens in/out", f"{end.input_tokens} / {end.output_tokens}")
        table.add_row("cost", f"${end.cost_usd:.6f}")
    console.print(table)
