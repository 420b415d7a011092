"""`oriole batch plan|run|status|list|cancel`: A/B grids that the platform runs to their end.

`run` reads a TOML batch file, embeds the maze files it names, checks every cell with the
same admission the scheduler uses (nothing is published when any cell is refused), and
publishes one ``batch.request``; the batch scheduler in the workers does the rest, so the
terminal may go away. `status` and `list` fold the batch event logs; `--wait` follows one.
`plan` reads and checks the file as `run` does and says, before anything is spent, how many
runs it makes and the smallest success-rate difference each pair of its arms can detect.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from oriole.admission import FindParent, no_archive
from oriole.batch_events import BatchCancel, BatchRequest, new_batch_id
from oriole.batch_models import forked_runs
from oriole.batch_plan import BatchPlan, plan_batch
from oriole.batch_spec import BatchFileError, load_batch_file, maze_files
from oriole.batch_state import BatchState
from oriole.cli.batch_display import follow_batch, print_batch, print_batches, print_power
from oriole.cli.common import (
    HELP_OPTIONS,
    catalogue,
    console,
    err_console,
    print_json,
    settings,
    stack_connection,
    stack_topics,
)
from oriole.cli.data import archived_runs
from oriole.comparison.batch_power import batch_power, power_document, power_warning
from oriole.comparison.power import DEFAULT_ALPHA, DEFAULT_BASELINE, DEFAULT_POWER
from oriole.errors import MazeError, OrioleError, ValidationError
from oriole.experiment import MazeData
from oriole.kafka.clients import make_producer, stop_quietly
from oriole.kafka.codec import encode
from oriole.llm.pricing import load_price_table
from oriole.maze import Maze
from providers.factory import allowed_endpoints
from streams.batch_log import read_batch_logs

app = typer.Typer(
    no_args_is_help=True,
    help="Batches: A/B grids of runs (docs/batches.md).",
    context_settings=HELP_OPTIONS,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class UnknownBatch(OrioleError):
    """No batch event log has this batch id."""


@app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="The batch file (TOML, docs/batches.md).")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the batch live until it ends.")
    ] = False,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Choose the batch id (default: generated).")
    ] = None,
    json_output: JsonOpt = False,
    print_request: Annotated[
        bool, typer.Option("--print-request", help="Print the batch request, publish nothing.")
    ] = False,
) -> None:
    """Check a batch file cell by cell and hand it to the platform to run."""
    document = read_batch_document(file)
    chosen = batch_id or document.get("batch_id") or new_batch_id()
    plan = check_batch(document, str(chosen))
    request = BatchRequest(batch_id=str(chosen), spec=document)
    if print_request:
        console.file.write(request.model_dump_json() + "\n")
        return
    for warning in run_warnings(plan):
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    conn = stack_connection()
    topics = stack_topics(conn)

    async def publish() -> BatchState | None:
        if not wait:
            await _publish(conn.bootstrap_servers, topics.batches_commands, request)
            return None
        return await follow_batch(
            conn.bootstrap_servers,
            topics,
            request.batch_id,
            publish=lambda: _publish(conn.bootstrap_servers, topics.batches_commands, request),
            live=not json_output,
            budget=document.get("budget"),
        )

    state = asyncio.run(publish())
    if state is not None and not json_output:  # the live display already shows the end
        console.print()
        if state.rejected:
            raise typer.Exit(2)
        return
    if state is None:
        if json_output:
            print_json({"batch_id": request.batch_id, "runs": len(plan.order), "published": True})
        else:
            console.print(
                f"published batch [bold]{request.batch_id}[/] ({len(plan.order)} runs); "
                f"follow it with `oriole batch status {request.batch_id}`"
            )
        return
    _report(state, json_output)


@app.command("plan")
def plan(
    file: Annotated[Path, typer.Argument(help="The batch file (TOML, docs/batches.md).")],
    alpha: Annotated[
        float, typer.Option("--alpha", help="Two-sided significance level of the family.")
    ] = DEFAULT_ALPHA,
    power: Annotated[
        float, typer.Option("--power", help="Chance of detecting a difference that exists.")
    ] = DEFAULT_POWER,
    baseline_rate: Annotated[
        float,
        typer.Option(
            "--baseline-rate", help="One arm's expected success rate (0.5: outcomes vary most)."
        ),
    ] = DEFAULT_BASELINE,
    json_output: JsonOpt = False,
) -> None:
    """Before anything is spent: the runs, the arms and the smallest difference in success
    rate each comparison of two arms can detect. Publishes nothing; needs no stack."""
    for option, value in (
        ("--alpha", alpha),
        ("--power", power),
        ("--baseline-rate", baseline_rate),
    ):
        if not 0 < value < 1:
            raise ValidationError(option, f"must be between 0 and 1 (exclusive), got {value:g}")
    if power <= alpha:  # a test at level alpha "detects" even no difference that often
        raise ValidationError("--power", f"must be above --alpha ({alpha:g}), got {power:g}")
    document = read_batch_document(file)
    checked = check_batch(document, str(document.get("batch_id") or new_batch_id()))
    found = batch_power(
        checked.cells, checked.order, alpha=alpha, power=power, baseline=baseline_rate
    )
    if json_output:
        print_json(
            {
                "name": checked.name,
                **power_document(found),
                "warnings": checked.warnings,
                "published": False,
            }
        )
        return
    print_power(checked.name, found)
    for warning in [*checked.warnings, *filter(None, [power_warning(found)])]:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def run_warnings(plan: BatchPlan) -> list[str]:
    """What `batch run` warns of: the plan's own warnings, then an underpowered batch
    (at the defaults of `batch plan`)."""
    underpowered = power_warning(batch_power(plan.cells, plan.order))
    if underpowered is None:
        return list(plan.warnings)
    return [*plan.warnings, f"{underpowered} (`oriole batch plan FILE` shows every comparison)"]


def read_batch_document(file: Path) -> dict[str, Any]:
    """The batch file as a document, its maze files embedded (paths relative to the file)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OrioleError(f"cannot read the batch file {file}: {exc}") from None
    try:
        document = load_batch_file(text, source=str(file))
    except BatchFileError as exc:
        _exit_with(exc.problems)
    for index, name in maze_files(document):
        path = (file.parent / name).expanduser()
        try:
            maze = Maze.load(path)
        except (OSError, MazeError, ValueError) as exc:
            _exit_with([(f"mazes[{index}].file", f"cannot load {path}: {exc}")])
        document["mazes"][index] = {"data": MazeData.from_maze(maze).model_dump(mode="json")}
    return document


def check_batch(document: dict[str, Any], batch_id: str) -> BatchPlan:
    """Every cell admitted here as the scheduler will; exit 2 naming every problem."""
    current = settings()
    plan = plan_batch(
        document,
        batch_id,
        find_maze=catalogue().get,
        prices=load_price_table(current.price_file),
        endpoints=allowed_endpoints(current),
        find_parent=_fork_parents(document),
    )
    if not isinstance(plan, BatchPlan):
        _exit_with(plan)
    return plan


def _fork_parents(document: dict[str, Any]) -> FindParent:
    """The archived parents a batch of forks names (read only when it names some)."""
    run_ids = forked_runs(document)
    if not run_ids:
        return no_archive
    logs = asyncio.run(archived_runs(run_ids))
    return lambda run_id: logs.get(run_id, [])


def _exit_with(problems: list[tuple[str, str]]) -> NoReturn:
    for field, reason in problems:
        err_console.print(f"[bold red]error:[/] {field}: {reason}", highlight=False)
    err_console.print("nothing was published", highlight=False)
    raise typer.Exit(2)


async def _publish(bootstrap: str, topic: str, message: BatchRequest | BatchCancel) -> None:
    producer = make_producer(bootstrap, client_id="oriole-cli")
    await producer.start()
    try:
        out = encode(topic, message, message.batch_id)
        await producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers)
    finally:
        await stop_quietly(producer)


async def _states() -> dict[str, BatchState]:
    conn = stack_connection()
    topics = stack_topics(conn)
    logs = await read_batch_logs(
        conn.bootstrap_servers,
        topics.batches_events,
        range(topics.partitions),
        client_id="oriole-cli",
    )
    states = {}
    for batch_id, events in logs.items():
        state = states[batch_id] = BatchState(batch_id)
        for event in events:
            state.apply(event)
    return states


@app.command("status")
def status(
    batch_id: Annotated[str, typer.Argument(help="The batch.")], json_output: JsonOpt = False
) -> None:
    """Where a batch stands: per cell done / running / failed, goal rate, spend."""
    state = asyncio.run(_states()).get(batch_id)
    if state is None:
        raise UnknownBatch(
            f"no batch {batch_id!r} on this stack's batch log (`oriole batch list` shows them)"
        )
    _report(state, json_output)


@app.command("list")
def list_batches(json_output: JsonOpt = False) -> None:
    """Every batch on this stack's batch log, newest first."""
    states = sorted(asyncio.run(_states()).values(), key=_started_at, reverse=True)
    if json_output:
        print_json([_summary(state) for state in states])
        return
    print_batches(states)


@app.command("cancel")
def cancel(
    batch_id: Annotated[str, typer.Argument(help="The batch.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record.")] = None,
) -> None:
    """Stop launching a batch's runs and cancel those in flight."""
    conn = stack_connection()
    topics = stack_topics(conn)
    command = BatchCancel(batch_id=batch_id, reason=reason, requested_by="cli")
    asyncio.run(_publish(conn.bootstrap_servers, topics.batches_commands, command))
    console.print(f"cancel of batch [bold]{batch_id}[/] published")


def _report(state: BatchState, json_output: bool) -> None:
    if json_output:
        print_json(_summary(state))
    else:
        print_batch(state)
    if state.rejected:
        raise typer.Exit(2)


def _started_at(state: BatchState) -> str:
    return "" if state.started_at is None else state.started_at.isoformat()


def _summary(state: BatchState) -> dict[str, Any]:
    finished = state.finished
    return {
        "batch_id": state.batch_id,
        "name": None if state.started is None else state.started.name,
        "status": "rejected"
        if state.rejected
        else ("finished" if finished else ("running" if state.started else "requested")),
        "stop_reason": None if finished is None else finished.stop_reason.value,
        "detail": None if finished is None else finished.detail,
        "counts": state.counts().model_dump(),
        "warnings": [] if state.started is None else state.started.warnings,
    }
