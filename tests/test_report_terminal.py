"""`oriole report`'s terminal tables: user text (agent labels, maze names, label values) is
printed as text, never read as rich markup."""

from __future__ import annotations

from collections import Counter

import pytest
from rich.console import Console

from oriole.cli import report as report_cli
from oriole.comparison.records import METRICS, RunRecord
from oriole.comparison.report import Selection, build_report

HOSTILE = "[/][bold red]pwn[/] [link=http://x]"


def _record(run_id: str, agent: str, maze: str, success: bool, steps: int) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        factors={"agent": agent, "maze": maze, "start": "(1,1)"},
        maze_hash=f"h-{maze}",
        maze_name=maze,
        start=(1, 1),
        seed=None,
        batch_id=None,
        cell=None,
        repetition=None,
        status="succeeded" if success else "stopped",
        stop_reason="goal_seen" if success else "max_footsteps",
        success=success,
        goal_reached=False,
        failed=False,
        metrics={metric: None for metric in METRICS} | {"footsteps": steps, "cost_usd": 0.0},
        visits=Counter(),
    )


def test_user_text_is_printed_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        _record(f"r{i}", HOSTILE if i % 2 else "frontier", f"maze {HOSTILE}" if i < 4 else "m2",
                i % 3 == 0, 10 + i)
        for i in range(8)
    ]  # fmt: skip
    document = build_report(records, Selection(labels={"team": HOSTILE}))
    console = Console(record=True, width=400, color_system=None)
    monkeypatch.setattr(report_cli, "console", console)
    report_cli.print_report(document)
    text = console.export_text()
    assert text.count("[bold red]pwn[/]") >= 3  # the header, the arm table, the comparison
    assert f"team={HOSTILE}" in text
    assert "Success by maze" in text and f"maze {HOSTILE}" in text
