"""How a run looks in the terminal: the live progress line and the summary at its end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oriole.cli.common import console, err_console, print_json
from oriole.cli.follower import RunEnded
from oriole.events import ActionCompleted, RunEvent, RunFinished, RunStarted
from oriole.experiment import ExperimentStart
from oriole.schema_base import Point


@contextmanager
def run_progress(request: ExperimentStart) -> Iterator[Callable[[RunEvent], None]]:
    """A progress line for ``request``'s run; yields the callback that advances it.

    A terminal gets a live bar; a file or pipe gets plain, complete lines instead, because a
    log has no width to fit: rich would cut the line at 80 columns (``133/… footsteps``).
    """
    if not console.is_terminal:
        yield PlainProgress(request, console.file.write).on_event
        console.file.flush()
        return
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


class PlainProgress:
    """Progress as whole lines for a log: one when the run starts, one each time it passes
    another tenth of its limit (footsteps, else actions; every 100 footsteps without either),
    one at its end.

    Few lines, so a long run does not flood the log; each one complete, never cut to a width.
    """

    def __init__(self, request: ExperimentStart, write: Callable[[str], object]) -> None:
        limits = request.limits
        self.run_id = request.run_id
        self.footstep_limit = limits.max_footsteps
        self.action_limit = None if limits.max_footsteps else limits.max_actions
        total = self.footstep_limit or self.action_limit
        self.every = max(1, total // 10) if total else 100
        self.next_line_at = self.every
        self.write = write
        self.started = time.monotonic()

    def on_event(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            start = event.payload.spec.start
            if self.footstep_limit:
                limit = f"up to {self.footstep_limit} footsteps"
            elif self.action_limit:
                limit = f"up to {self.action_limit} actions"
            else:
                limit = "no footstep or action limit"
            self._line(f"started at ({start.x},{start.y}), {limit}")
        elif isinstance(event, ActionCompleted):
            outcome = event.payload
            counted = outcome.step if self.action_limit else outcome.footsteps
            if counted >= self.next_line_at:
                self.next_line_at = (counted // self.every + 1) * self.every
                self._line(self._progress(outcome.footsteps, outcome.step, outcome.to))
        elif isinstance(event, RunFinished):
            end = event.payload
            self._line(
                f"ended ({end.stop_reason.value}): "
                + self._progress(end.footsteps, end.actions, end.position)
            )

    def _progress(self, footsteps: int, actions: int, at: Point) -> str:
        of_footsteps = f"/{self.footstep_limit}" if self.footstep_limit else ""
        of_actions = f"/{self.action_limit}" if self.action_limit else ""
        return (
            f"{footsteps}{of_footsteps} footsteps · {actions}{of_actions} actions "
            f"· at ({at.x},{at.y})"
        )

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.write(f"{self.run_id} {text} · {elapsed:.1f} s\n")


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
