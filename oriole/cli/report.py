"""`oriole report`: compare the arms of a batch (or of any label selection).

Reads the runs from the projections, lets the core build the report, and prints it as rich
tables — or writes it as JSON, a self-contained HTML page, CSV files or Parquet tables.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from oriole.cli.common import console, err_console, parse_labels, print_json, settings
from oriole.comparison.report import Selection, build_report
from oriole.errors import OrioleError, ValidationError
from projections.database import open_database
from projections.report_source import SelectionTooLarge, load_report_runs

#: The measurements the terminal table shows (every one is in --json, --csv and --html).
TABLE_METRICS = ("footsteps", "input_tokens", "cost_usd", "duration_s", "path_efficiency")


class NothingToReport(OrioleError):
    """The batch is unknown."""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 0.01 else f"{value:,.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(low: float | None, high: float | None, fmt: Any) -> str:
    return "" if low is None or high is None else f" [{fmt(low)}, {fmt(high)}]"


def arm_table(report: dict[str, Any]) -> Table:
    table = Table(title="Arms (95% intervals: Wilson for rates, seeded bootstrap for means)")
    table.add_column("arm")
    table.add_column("runs", justify="right")
    table.add_column("success", justify="right")
    table.add_column("goal reached", justify="right")
    for metric in TABLE_METRICS:
        table.add_column(f"{metric} (mean)", justify="right")
    table.add_column("cost / success", justify="right")
    for arm in report["arms"]:
        success = arm["success"]
        cells = [
            escape(arm["arm"]),
            str(arm["runs"]),
            f"{arm['successes']}/{arm['runs']} {_pct(success['rate'])}"
            + _interval(success["low"], success["high"], _pct),
            _pct(arm["goal_reached"]["rate"]),
        ]
        for metric in TABLE_METRICS:
            summary = arm["metrics"][metric]
            cells.append(_num(summary["mean"]) + _interval(summary["low"], summary["high"], _num))
        cells.append(_num(arm["cost_per_success"]))
        table.add_row(*cells)
    return table


def comparison_table(report: dict[str, Any]) -> Table:
    table = Table(title="Comparisons (a − b; p-values Holm-adjusted per outcome)")
    for name in ("a", "b", "matched", "success a − b [Newcombe 95%]", "test", "p", "p (Holm)"):
        table.add_column(name, justify="left" if name in ("a", "b", "test") else "right")
    table.add_column("footsteps shift (Cliff's δ), p (Holm)", justify="right")
    for comparison in report["comparisons"]:
        success = comparison["success"]
        steps = comparison["metrics"]["footsteps"]
        delta = steps["cliffs_delta"]
        table.add_row(
            escape(comparison["a"]),
            escape(comparison["b"]),
            "–" if comparison["pairs"] is None else f"{comparison['pairs']} pairs",
            _pct(success["difference"]) + _interval(success["low"], success["high"], _pct),
            success["test"],
            _p(success["p_value"]),
            _p(success["p_holm"]),
            f"{_num(steps['shift'])} ({'–' if delta is None else f'{delta:+.2f}'}), "
            f"{_p(steps['p_holm'])}",
        )
    return table


def maze_table(report: dict[str, Any]) -> Table:
    arms = [arm["arm"] for arm in report["arms"]]
    table = Table(title="Success by maze")
    table.add_column("maze")
    for arm in arms:
        table.add_column(escape(arm), justify="right")
    for maze in report["mazes"]:
        row = [escape(maze["maze"])]
        for arm in arms:
            cell = maze["arms"].get(arm)
            row.append("–" if cell is None else f"{cell['successes']}/{cell['runs']}")
        table.add_row(*row)
    return table


def print_report(report: dict[str, Any]) -> None:
    selection = report["selection"]
    what = (
        f"batch {selection['batch_id']}"
        if selection["batch_id"]
        else "runs labelled " + ", ".join(f"{k}={v}" for k, v in selection["labels"].items())
    )
    console.print(
        f"[bold]{escape(what)}[/]: {report['runs']} finished runs"
        + (f", {report['running']} still running (left out)" if report["running"] else "")
        + f"; arms by {escape(', '.join(report['factors'])) or '–'}",
        highlight=False,
    )
    if not report["arms"]:
        console.print("no finished runs to compare yet")
        return
    console.print(arm_table(report))
    if report["comparisons"]:
        console.print(comparison_table(report))
    if len(report["mazes"]) > 1:
        console.print(maze_table(report))


def _split(text: str | None) -> list[str]:
    return [] if text is None else [part for part in text.split(",") if part.strip()]


def report(
    batch_id: Annotated[str | None, typer.Argument(help="The batch to report on.")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="key=value: report on the runs with this label; repeatable."),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Factors that define the arms, e.g. agent,prompt.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Compare every arm with this one (its name as shown).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.", min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report (works offline).")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="Write runs.csv, arms.csv and comparisons.csv here.")
    ] = None,
    parquet: Annotated[
        Path | None, typer.Option(help="Write the runs table here (and FILE.arms.parquet).")
    ] = None,
) -> None:
    """Compare the arms of a batch or a label selection: success with intervals, paired
    tests, effect sizes, per-maze results (docs/reports.md explains every figure)."""
    labels = parse_labels(label or [])
    if batch_id is None and not labels:
        raise ValidationError("BATCH", "name a batch, or select runs with --label key=value")
    if batch_id is not None and labels:
        raise ValidationError("--label", "a batch report covers the batch's runs: not both")
    selection = Selection(
        batch_id=batch_id, labels=labels, by=_split(by), baseline=baseline, seed=seed
    )

    async def load() -> Any:
        async with open_database(settings()) as db, db.pool.acquire() as conn:
            return await load_report_runs(conn, batch_id=batch_id, labels=labels)

    try:
        runs = asyncio.run(load())
    except SelectionTooLarge as exc:
        raise ValidationError("--label", str(exc)) from exc
    if not runs.found:
        raise NothingToReport(f"no batch {batch_id!r} in the projections (see `oriole batch list`)")
    document = build_report(
        runs.records(), selection, running=runs.running, mazes=runs.mazes if html else None
    )
    written: list[Path] = []
    if html is not None:
        from reports.html import render_html

        html.write_text(render_html(document), encoding="utf-8")
        written.append(html)
    if csv is not None:
        from reports.export import write_csv

        csv.mkdir(parents=True, exist_ok=True)
        written += write_csv(document, csv)
    if parquet is not None:
        from reports.export import write_parquet

        written += write_parquet(document, parquet)
    if as_json:
        document.pop("visits", None)
        print_json(document)
    else:
        print_report(document)
    for path in written:
        err_console.print(f"wrote {path}", highlight=False)
