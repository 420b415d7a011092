"""Commands over the PostgreSQL archive: `oriole db`, `oriole projections`, `oriole replay`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.table import Table

from oriole.cli.common import (
    HELP_OPTIONS,
    console,
    err_console,
    print_json,
    settings,
    stack_connection,
    stack_topics,
)
from oriole.environment.logs import configure_logging
from oriole.environment.settings import Settings
from oriole.environment.stack_file import NoStackError
from oriole.errors import OrioleError
from oriole.events import RunEvent
from oriole.replay import fork_parent, verify_run
from projections.database import (
    DatabaseError,
    EmbeddedPostgres,
    configured_dsn,
    has_embedded_data,
    open_database,
)
from projections.migrate import applied_migrations, available_migrations, migrate
from projections.replay_source import publish_replay
from projections.store import rebuild_projections, run_events_of

db_app = typer.Typer(
    help="The PostgreSQL database: where it is, its schema version.",
    context_settings=HELP_OPTIONS,
)
projections_app = typer.Typer(
    help="Tables derived from the event archive.", context_settings=HELP_OPTIONS
)


class RunNotArchived(OrioleError):
    """The archive has no events for the run id."""


# --- oriole db ------------------------------------------------------------------------------


@db_app.command("url")
def db_url() -> None:
    """Print the DSN in use, e.g. for `psql "$(oriole db url)"` or a notebook.

    With no stack running, the embedded PostgreSQL is started and left running (as `oriole
    replay` starts it for its own lifetime), so that the URL printed can be used.
    """
    current = settings()
    try:
        dsn = configured_dsn(current)
    except NoStackError:
        dsn = None  # a stack killed with -9: its database is found by its data directory
    if dsn is None:
        dsn = start_embedded_for_url(current)
    console.file.write(dsn + "\n")
    console.file.flush()


def start_embedded_for_url(current: Settings) -> str:
    """The embedded server's DSN, starting it in the background when no stack runs.

    Only a database that exists is started: one that was never created has no archive to
    look at, and a URL to an empty new database would only hide that.
    """
    data_dir = current.resolved_pg_dir
    if not has_embedded_data(current):
        raise DatabaseError(
            f"there is no database yet: ORIOLE_DATABASE_URL is empty and the embedded "
            f"PostgreSQL has never run in {data_dir}. `oriole up` creates it (and keeps it "
            "running while it runs); or set ORIOLE_DATABASE_URL to a server of your own"
        )
    server = EmbeddedPostgres(data_dir)
    dsn = server.start()
    server.detach()
    err_console.print(
        f"no `oriole up` is running: the embedded PostgreSQL (data in {data_dir}) now runs "
        "on its own, in the background, for this URL, until an Oriole command that uses it "
        "ends (`oriole up` at Ctrl-C, `oriole replay`, `oriole db version`...)",
        highlight=False,
        markup=False,
    )
    return dsn


@db_app.command("version")
def db_version(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the schema version of the database and the migrations applied."""

    async def main() -> list[Any]:
        async with (
            open_database(settings(), run_migrations=False) as db,
            db.pool.acquire() as conn,
        ):
            return await applied_migrations(conn)

    applied = asyncio.run(main())
    latest = available_migrations()[-1].version
    current = applied[-1].version if applied else 0
    if json_output:
        print_json(
            {
                "version": current,
                "latest": latest,
                "applied": [
                    {"version": m.version, "name": m.name, "applied_at": m.applied_at.isoformat()}
                    for m in applied
                ],
            }
        )
        return
    table = Table(title=f"schema version {current} (this Oriole ships {latest})")
    table.add_column("version", justify="right")
    table.add_column("migration")
    table.add_column("applied at")
    for m in applied:
        table.add_row(str(m.version), m.name, m.applied_at.isoformat(timespec="seconds"))
    console.print(table)
    if current < latest:
        console.print(f"{latest - current} migration(s) pending: run `oriole db migrate`")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (`oriole up` also does this at start-up)."""

    async def main() -> int:
        async with (
            open_database(settings(), run_migrations=False) as db,
            db.pool.acquire() as conn,
        ):
            return len(await migrate(conn))

    applied = asyncio.run(main())
    console.print(f"applied {applied} migration(s); schema at {available_migrations()[-1].version}")


# --- oriole projections ---------------------------------------------------------------------


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Empty every projection table and refill it from the archive (one transaction)."""
    configure_logging(settings())

    async def main() -> Any:
        async with open_database(settings()) as db:
            return await rebuild_projections(db.pool)

    with console.status("rebuilding projections from the archive..."):
        result = asyncio.run(main())
    console.print(
        f"rebuilt from {result.events_read} archived events: {result.rows_written} rows written"
    )
    for problem in result.problems:
        err_console.print(f"[yellow]not projected:[/] {problem}", highlight=False)


# --- oriole replay / rerun ------------------------------------------------------------------


async def archived_run(run_id: str) -> list[RunEvent]:
    return (await archived_lineage(run_id))[0]


async def archived_runs(run_ids: list[str]) -> dict[str, list[RunEvent]]:
    """Several runs' archived events ([] for a run that is not archived)."""
    async with open_database(settings()) as db, db.pool.acquire() as conn:
        return {run_id: await run_events_of(conn, run_id) for run_id in dict.fromkeys(run_ids)}


async def archived_lineage(run_id: str) -> tuple[list[RunEvent], list[RunEvent] | None]:
    """A run's archived events and, for a fork, its parent's (which replay verifies it by)."""
    async with open_database(settings()) as db, db.pool.acquire() as conn:
        events = await run_events_of(conn, run_id)
        point = fork_parent(events)
        parent = None if point is None else await run_events_of(conn, point.run_id)
    if not events:
        raise RunNotArchived(f"run {run_id!r} is not in the archive (`oriole db url` to look)")
    return events, parent


def replay(
    run_id: Annotated[str, typer.Argument(help="The archived run.")],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Re-derive the run from its decisions and compare (exit 1 on a difference).",
        ),
    ] = False,
    to_topic: Annotated[
        bool,
        typer.Option("--to-topic", help="Re-publish the run's events to the replay topic."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replay an archived run: verify it, re-publish it, or (by default) print its events."""
    events, parent = asyncio.run(archived_lineage(run_id))
    failed = False
    if verify:
        # A fork's inherited state is checked against its parent's archive too.
        report = verify_run(events, parent)
        failed = not report.ok
        if json_output:
            print_json(report.to_dict())
        else:
            (console if report.ok else err_console).print(report.render(), highlight=False)
    if to_topic:
        conn = stack_connection()
        topics = stack_topics(conn)
        replay_id = asyncio.run(publish_replay(conn.bootstrap_servers, topics, events))
        message = {"run_id": run_id, "topic": topics.runs_replay, "events": len(events)}
        if json_output:
            print_json({**message, "replay_id": replay_id})
        else:
            console.print(
                f"replayed {len(events)} events of run {run_id} to {topics.runs_replay} "
                f"(replay id {replay_id})"
            )
    if not verify and not to_topic:
        for event in events:
            console.file.write(event.model_dump_json(by_alias=True) + "\n")
        console.file.flush()
    if failed:
        raise typer.Exit(1)
