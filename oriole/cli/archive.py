"""`oriole archive`: retention of the PostgreSQL archive (the SQL is in projections.prune)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from oriole.cli.common import HELP_OPTIONS, console, print_json, settings
from oriole.environment.logs import configure_logging
from projections.database import open_database
from projections.prune import PruneReport, parse_before, prune_archive

app = typer.Typer(
    help="The run archive in PostgreSQL: retention of old experiments.",
    context_settings=HELP_OPTIONS,
)


@app.command("prune")
def prune(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="Remove finished runs that started before this date (YYYY-MM-DD, UTC) or "
            "ISO 8601 time.",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would go; change nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remove old finished runs from the archive and every projection.

    Running runs, ancestors of remaining forks and batches not removed whole are kept;
    month partitions whose runs all go are dropped whole (docs/archive.md, "Retention").
    """
    moment = parse_before(before)
    configure_logging(settings())

    async def main() -> PruneReport:
        async with open_database(settings()) as db, db.pool.acquire() as conn:
            return await prune_archive(conn, moment, dry_run=dry_run)

    report = asyncio.run(main())
    if json_output:
        print_json(report.to_dict())
        return
    render(report)


#: The tables in the order a reader thinks of them: the archive first.
_ORDER = ("run_events", "agent_actions", "model_calls", "experiments", "start_requests",
          "batches", "batch_runs", "batch_events")  # fmt: skip


def render(report: PruneReport) -> None:
    verb = "would remove" if report.dry_run else "removed"
    console.print(
        f"{verb} {report.runs:,} runs started before {report.before.isoformat()}: "
        f"{report.events:,} events, {report.batches:,} batches, about "
        f"{report.bytes_estimate / 1e6:,.1f} MB",
        highlight=False,
    )
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name in sorted(report.rows, key=lambda n: _ORDER.index(n) if n in _ORDER else 99):
        table.add_row(name, f"{report.rows[name]:,}")
    console.print(table)
    dropped = ", ".join(report.partitions_dropped) or "none"
    console.print(f"partitions dropped whole: {dropped}", highlight=False)
    console.print(
        f"kept although older: {report.kept_running} running, {report.kept_fork_ancestors} "
        f"ancestors of remaining forks, {report.kept_in_batches} in batches not removed whole",
        highlight=False,
    )
    if report.dry_run:
        console.print("dry run: nothing was changed", highlight=False)
