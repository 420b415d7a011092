"""The HTML tables of the report page (arms, arm × maze, comparisons) and the formatting of
its numbers. Every string from the report is escaped here: names and labels are user input.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

import matplotlib as mpl

DASH = "–"
#: The metrics the arm table shows; the others are in the "all metrics" table below it.
KEY_METRICS = ("footsteps", "turns", "input_tokens", "output_tokens", "cost_usd", "duration_s")
METRIC_TITLES = {
    "footsteps": "Footsteps",
    "actions": "Actions",
    "turns": "Turns",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cost_usd": "Cost per run (USD)",
    "duration_s": "Duration (s)",
    "inference_s": "Inference (s)",
    "path_efficiency": "Path efficiency",
    "unique_tiles": "Unique tiles",
    "revisit_ratio": "Revisit ratio",
    "seen_share": "Share of maze seen",
    "wall_bumps": "Wall bumps",
    "recalls": "Recalls",
    "no_tool_turns": "Turns without a tool call",
}


def esc(value: Any) -> str:
    """Any report value as HTML text, quotes included (safe in attributes too)."""
    return html.escape(str(value), quote=True)


def title_of(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.replace("_", " ").capitalize())


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(value: Any, metric: str = "") -> str:
    """A measurement for reading: thousands separated, three significant digits, dollars
    for costs; "–" when undefined."""
    if not is_number(value):
        return DASH
    if metric in ("cost_usd", "cost_per_success"):
        sign = "-" if value < 0 else ""
        amount = abs(value)
        return f"{sign}${amount:,.2f}" if amount >= 1 else f"{sign}${amount:.3g}"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def percent(value: Any) -> str:
    return f"{value * 100:.1f}%" if is_number(value) else DASH


def interval(low: Any, high: Any, show: Any = number, metric: str = "") -> str:
    """``[low – high]``, or "–" when either end is undefined."""
    if not (is_number(low) and is_number(high)):
        return DASH
    if show is percent:
        return f"[{low * 100:.1f}–{high * 100:.1f}%]"
    return f"[{show(low, metric)} – {show(high, metric)}]"


def p_text(value: Any) -> str:
    if not is_number(value):
        return DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _table(
    caption: str, head: Sequence[str], rows: Iterable[str], testid: str, text: Sequence[int] = ()
) -> str:
    """A captioned table in a box that scrolls sideways; header cells at ``text`` are
    left-aligned like the words below them."""
    heads = "".join(
        f'<th class="text">{cell}</th>' if i in text else f"<th>{cell}</th>"
        for i, cell in enumerate(head)
    )
    return (
        f'<div class="scroll"><table data-table="{testid}"><caption>{caption}</caption>'
        f"<thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _metric_cell(summary: Mapping[str, Any] | None, metric: str) -> str:
    summary = summary or {}
    mean = number(summary.get("mean"), metric)
    median = number(summary.get("median"), metric)
    spread = interval(summary.get("low"), summary.get("high"), number, metric)
    return (
        f'<span class="main">{esc(mean)}</span>'
        f'<span class="sub">median {esc(median)} · {esc(spread)} · n {esc(summary.get("n", 0))}'
        "</span>"
    )


def arms_table(arms: Sequence[Mapping[str, Any]], confidence: float) -> str:
    """One row per arm: runs, success with its Wilson interval, goal reached, failures,
    cost per success and the key metrics (mean, then median, interval and n)."""
    head = [
        "Arm",
        "Runs",
        "Success",
        f"{confidence:.0%} interval",
        "Goal reached",
        "Failed",
        "Cost per success",
        *(title_of(metric) for metric in KEY_METRICS),
    ]
    rows = []
    for arm in arms:
        success = arm.get("success") or {}
        goal = arm.get("goal_reached") or {}
        metrics = arm.get("metrics") or {}
        cells = [
            f'<th scope="row">{esc(arm.get("arm"))}</th>',
            esc(arm.get("runs", DASH)),
            f'{esc(percent(success.get("rate")))} <span class="sub">'
            f"{esc(arm.get('successes', DASH))}/{esc(arm.get('runs', DASH))}</span>",
            esc(interval(success.get("low"), success.get("high"), percent)),
            f"{esc(goal.get('count', DASH))} ({esc(percent(goal.get('rate')))})",
            esc(arm.get("failed", DASH)),
            esc(number(arm.get("cost_per_success"), "cost_per_success")),
            *(_metric_cell(metrics.get(metric), metric) for metric in KEY_METRICS),
        ]
        rows.append("<tr>" + cells[0] + "".join(f"<td>{c}</td>" for c in cells[1:]) + "</tr>")
    return _table(
        "Arms: success, failures, cost and key measurements (mean; median, "
        f"{confidence:.0%} bootstrap interval and n below)",
        head,
        rows,
        "arms",
    )


def all_metrics_table(arms: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str:
    """Every metric (rows) for every arm (columns), for readers who want all of them."""
    head = ["Metric", *(esc(arm.get("arm")) for arm in arms)]
    rows = [
        "<tr>"
        + f'<th scope="row">{esc(title_of(metric))}</th>'
        + "".join(
            f"<td>{_metric_cell((arm.get('metrics') or {}).get(metric), metric)}</td>"
            for arm in arms
        )
        + "</tr>"
        for metric in metrics
    ]
    return _table("Every measurement per arm", head, rows, "all-metrics")


def rate_colour(rate: float) -> tuple[str, str]:
    """Background and text colour of a success-rate cell (light = low, dark blue = high)."""
    red, green, blue, _ = mpl.colormaps["YlGnBu"](0.06 + 0.8 * rate)
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    background = f"rgb({red * 255:.0f},{green * 255:.0f},{blue * 255:.0f})"
    return background, "#ffffff" if luminance < 0.5 else "#111827"


def _rate_cell(entry: Mapping[str, Any] | None) -> str:
    if not entry or not entry.get("runs"):
        return f'<td class="none">{DASH}</td>'
    rate = entry.get("rate")
    if not is_number(rate):
        rate = entry.get("successes", 0) / entry["runs"]
    background, colour = rate_colour(float(rate))
    spread = interval(entry.get("low"), entry.get("high"), percent)
    tip = f"{percent(rate)} {spread}"
    return (
        f'<td class="rate" style="background:{background};color:{colour}" title="{esc(tip)}">'
        f"{esc(entry.get('successes', DASH))}/{esc(entry['runs'])}"
        f'<span class="sub">{esc(percent(rate))}</span></td>'
    )


def arm_maze_table(mazes: Sequence[Mapping[str, Any]], arms: Sequence[Mapping[str, Any]]) -> str:
    """Successes out of runs for each maze (rows) and arm (columns), coloured by rate; the
    last row is every maze together."""
    names = [str(arm.get("arm")) for arm in arms]
    head = ["Maze", *(esc(name) for name in names)]
    rows = []
    for maze in mazes:
        entries = maze.get("arms") or {}
        cells = "".join(_rate_cell(entries.get(name)) for name in names)
        rows.append(f'<tr><th scope="row">{esc(maze.get("maze"))}</th>{cells}</tr>')
    totals = "".join(
        _rate_cell(
            {
                "runs": arm.get("runs"),
                "successes": arm.get("successes"),
                **(arm.get("success") or {}),
            }
        )
        for arm in arms
    )
    rows.append(f'<tr class="total"><th scope="row">All mazes</th>{totals}</tr>')
    return _table("Successes / runs per maze and arm", head, rows, "arm-maze")


def _cells(values: Sequence[Any], text: Sequence[int]) -> str:
    """Escaped cells; those at ``text`` are words (left-aligned), the others numbers."""
    return "".join(
        f'<td class="text">{esc(v)}</td>' if i in text else f"<td>{esc(v)}</td>"
        for i, v in enumerate(values)
    )


def _significant(p_holm: Any, alpha: float) -> str:
    return ' class="significant"' if is_number(p_holm) and p_holm < alpha else ""


def comparisons_table(comparisons: Sequence[Mapping[str, Any]], confidence: float) -> str:
    """Success: difference of rates (A − B) with Newcombe's interval and the exact test."""
    alpha = 1 - confidence
    head = [
        "A",
        "B",
        "Pairs",
        "A rate",
        "B rate",
        "Difference A − B",
        f"{confidence:.0%} interval",
        "Test",
        "p",
        "Holm p",
    ]
    rows = []
    for comparison in comparisons:
        success = comparison.get("success") or {}
        pairs = comparison.get("pairs") if comparison.get("paired") else "independent"
        difference = success.get("difference")
        signed = f"{difference * 100:+.1f} pts" if is_number(difference) else DASH
        low, high = success.get("low"), success.get("high")
        spread = (
            f"[{low * 100:+.1f} – {high * 100:+.1f}]"
            if is_number(low) and is_number(high)
            else DASH
        )
        cells = [
            comparison.get("a"),
            comparison.get("b"),
            DASH if pairs is None else pairs,
            percent(success.get("a_rate")),
            percent(success.get("b_rate")),
            signed,
            spread,
            success.get("test") or DASH,
            p_text(success.get("p_value")),
            p_text(success.get("p_holm")),
        ]
        marked = _significant(success.get("p_holm"), alpha)
        rows.append(f"<tr{marked}>{_cells(cells, text=(0, 1, 7))}</tr>")
    return _table(
        f"Success, arm A against arm B (bold: Holm-adjusted p below {alpha:.2g})",
        head,
        rows,
        "comparisons",
        text=(0, 1, 7),
    )


def metric_comparisons_table(
    comparisons: Sequence[Mapping[str, Any]], metrics: Sequence[str], confidence: float
) -> str:
    """Each measurement: rank test, p, Holm p, Hodges–Lehmann shift and Cliff's delta."""
    alpha = 1 - confidence
    head = ["A vs B", "Measurement", "Test", "n A / n B", "p", "Holm p", "Shift A − B", "Cliff's δ"]
    rows = []
    for comparison in comparisons:
        found = comparison.get("metrics") or {}
        names = [m for m in metrics if m in found]
        for index, metric in enumerate(names):
            test = found[metric] or {}
            first = ""
            if index == 0:
                pair = f"{esc(comparison.get('a'))} <i>vs</i> {esc(comparison.get('b'))}"
                first = f'<th scope="rowgroup" rowspan="{len(names)}">{pair}</th>'
            delta = test.get("cliffs_delta")
            cells = [
                title_of(metric),
                test.get("test") or DASH,
                f"{test.get('n_a', DASH)} / {test.get('n_b', DASH)}",
                p_text(test.get("p_value")),
                p_text(test.get("p_holm")),
                number(test.get("shift"), metric),
                f"{delta:+.2f}" if is_number(delta) else DASH,
            ]
            marked = _significant(test.get("p_holm"), alpha)
            rows.append(f"<tr{marked}>{first}{_cells(cells, text=(0, 1))}</tr>")
    return _table(
        "Measurements, arm A against arm B (rank tests; shift is the Hodges–Lehmann estimate)",
        head,
        rows,
        "metric-comparisons",
        text=(0, 1, 2),
    )
