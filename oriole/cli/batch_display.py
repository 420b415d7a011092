"""How a batch looks in the terminal: per cell done / running / failed, goal rate, spend, ETA.

`follow_batch` positions itself at the end of the batch event log before the request is
published (nothing the scheduler writes can be missed), folds the batch's events with the
core's `BatchState` and redraws a rich ``Live`` table until the batch ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from oriole.batch_events import BatchFinished, BatchRejected, parse_batch_event
from oriole.batch_state import BatchState
from oriole.cli.common import console, err_console
from oriole.comparison.arms import ARM_SEPARATOR
from oriole.comparison.batch_power import BatchPower, difference_text
from oriole.kafka.clients import make_consumer, stop_quietly
from oriole.kafka.topics import Topics


async def follow_batch(
    bootstrap: str,
    topics: Topics,
    batch_id: str,
    *,
    publish: Callable[[], Awaitable[None]],
    live: bool,
    budget: Any = None,
) -> BatchState:
    """Publish (through ``publish``) and fold the batch's events until it finishes."""
    consumer = make_consumer(bootstrap_servers=bootstrap, group_id=None, client_id="oriole-cli")
    await consumer.start()
    state = BatchState(batch_id)
    key = batch_id.encode()
    try:
        wanted = [TopicPartition(topics.batches_events, p) for p in range(topics.partitions)]
        consumer.assign(wanted)
        await consumer.seek_to_end(*wanted)
        for tp in wanted:  # the end positions now, before anything is published
            await consumer.position(tp)
        await publish()
        display = Live(render_batch(state, budget), console=console, auto_refresh=False)
        with display if live else _Quiet():
            while state.finished is None and not state.rejected:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.key != key:
                            continue
                        event = parse_batch_event(record.value or b"")
                        state.apply(event)
                        if isinstance(event, BatchFinished | BatchRejected):
                            break
                if live:
                    display.update(render_batch(state, budget), refresh=True)
    finally:
        await stop_quietly(consumer)
    return state


class _Quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def render_batch(state: BatchState, budget: Any = None) -> Group:
    """The batch's header, its cells and (when known) its warnings and problems."""
    parts: list[Any] = [Text(_headline(state), style="bold")]
    if state.rejected:
        for problem in state.problems:
            parts.append(Text(f"  {problem.field}: {problem.reason}", style="red"))
        return Group(*parts)
    counts = state.counts()
    spend = f"spent ${counts.spent_usd:.4f}, {counts.spent_tokens} tokens"
    if isinstance(budget, dict) and (budget.get("usd") or budget.get("tokens")):
        limits = [
            f"${budget['usd']:g}" if budget.get("usd") else "",
            str(budget.get("tokens") or ""),
        ]
        spend += f" of {' / '.join(x for x in limits if x)}"
    running = f"{counts.in_flight} running"
    if state.finished is not None and counts.in_flight:
        running = f"{counts.in_flight} were running when it ended"
    parts.append(
        Text(
            f"{counts.finished}/{counts.planned} done · {running} · "
            f"{counts.failed} failed · {counts.succeeded} found the goal · {spend}{_eta(state)}"
        )
    )
    parts.append(_cells_table(state))
    if state.finished is not None:
        parts.append(Text(f"{state.finished.stop_reason.value}: {state.finished.detail}"))
        if counts.finished:
            parts.append(Text(f"compare its arms: oriole report {state.batch_id}", style="dim"))
    return Group(*parts)


def _headline(state: BatchState) -> str:
    name = "" if state.started is None else f" “{state.started.name}”"
    if state.rejected:
        return f"batch {state.batch_id}{name}: rejected"
    if state.finished is not None:
        return f"batch {state.batch_id}{name}: finished ({state.finished.stop_reason.value})"
    return f"batch {state.batch_id}{name}: " + ("running" if state.started else "requested")


def _eta(state: BatchState) -> str:
    counts = state.counts()
    if state.started_at is None or state.finished is not None or not counts.finished:
        return ""
    elapsed = (datetime.now(UTC) - state.started_at).total_seconds()
    left = elapsed / counts.finished * (counts.planned - counts.finished)
    return f" · ETA {left:.0f} s"


def _cells_table(state: BatchState) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("cell", "agent", "maze", "done", "running", "failed", "goal rate"):
        table.add_column(column, justify="right" if column in ("done", "running") else "left")
    started = state.started
    if started is None:
        return table
    running = set(state.in_flight.values())
    for cell, about in started.cells.items():
        planned = [ref.run_id for ref in started.runs if ref.cell == cell]
        done = [state.done[p] for p in planned if p in state.done]
        failed = sum(1 for end in done if end.failed)
        goals = sum(1 for end in done if end.success)
        rate = f"{goals}/{len(done)} ({100 * goals / len(done):.0f}%)" if done else "–"
        table.add_row(
            cell,
            str(about.get("agent", "")),
            str(about.get("maze", "")),
            f"{len(done)}/{len(planned)}",
            str(sum(1 for p in planned if p in running)),
            str(failed),
            rate,
        )
    return table


def print_batch(state: BatchState) -> None:
    (err_console if state.rejected else console).print(render_batch(state))
    if state.started is not None:
        for warning in state.started.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def print_batches(states: list[BatchState]) -> None:
    table = Table(title="batches")
    for column in ("batch", "name", "status", "done", "goal", "spent"):
        table.add_column(column)
    for state in states:
        counts = state.counts()
        if state.rejected:
            status = "rejected"
        elif state.finished is not None:
            status = state.finished.stop_reason.value
        else:
            status = "running"
        table.add_row(
            state.batch_id,
            "" if state.started is None else state.started.name,
            status,
            f"{counts.finished}/{counts.planned}",
            str(counts.succeeded),
            f"${counts.spent_usd:.4f}",
        )
    console.print(table)


def print_power(name: str, plan: BatchPower) -> None:
    """`oriole batch plan`: the batch's size, its arms, and what each comparison can detect."""
    console.print(Text(f"batch “{name}”: {plan.runs} runs", style="bold"))
    console.print(
        f"{plan.places} place{'s' if plan.places != 1 else ''} (maze × start) on "
        f"{plan.mazes} maze{'s' if plan.mazes != 1 else ''}, "
        f"{plan.repetitions} repetition{'s' if plan.repetitions != 1 else ''} each",
        highlight=False,
    )
    arms = Table(show_edge=False, pad_edge=False)
    for column in (f"arm ({ARM_SEPARATOR.join(plan.factors)})", "runs", "cells"):
        arms.add_column(column, justify="right" if column == "runs" else "left")
    for arm in plan.arms:
        arms.add_row(arm.name, str(arm.runs), str(len(arm.cells)))
    console.print(arms)
    count = len(plan.comparisons)
    if not count:
        console.print("one arm: nothing to compare")
        return
    per = plan.comparisons[0].detectable.alpha
    console.print(
        f"{count} comparison{'s' if count != 1 else ''} (every pair of arms): alpha "
        f"{plan.alpha:g} two-sided"
        + (f" ({per:.3g} each, Bonferroni/Holm)" if count > 1 else "")
        + f", power {plan.power:g}, baseline rate {plan.baseline:g}",
        highlight=False,
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("arm A", "arm B", "runs", "paired", "smallest detectable difference"):
        table.add_column(column, justify="right" if column == "runs" else "left")
    for comparison in plan.comparisons:
        found = comparison.detectable
        table.add_row(
            comparison.a,
            comparison.b,
            f"{found.runs_a} vs {found.runs_b}",
            "yes" if found.paired else "no",
            difference_text(found),
        )
    console.print(table)
