"""The comparison report as one self-contained HTML page: inline CSS, charts as inline SVG,
heat maps as inline PNG; nothing loads from anywhere, so the file works offline and can be
mailed or archived as is. No JavaScript.

Every chart sits in a ``<figure data-plot="...">`` with a plain-words caption; every string
from the report is escaped (names, labels and mazes are user input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from reports import heatmaps, plots
from reports.html_tables import (
    DASH,
    all_metrics_table,
    arm_maze_table,
    arms_table,
    comparisons_table,
    esc,
    is_number,
    metric_comparisons_table,
    percent,
)
from reports.page_style import CSS
from reports.tables import metric_names

#: At most this many heat maps (maze × arm images) on one page; the page says when it cuts.
MAX_HEATMAPS = 60
#: The distributions drawn, as (plot name, title, run-row fields summed).
DISTRIBUTIONS = (
    ("footsteps", "Footsteps per run", ("footsteps",)),
    ("tokens", "Tokens per run (input + output)", ("input_tokens", "output_tokens")),
    ("cost_usd", "Cost per run, USD", ("cost_usd",)),
    ("duration_s", "Duration per run, seconds", ("duration_s",)),
)


def render_html(
    report: Mapping[str, Any], *, title: str | None = None, max_heatmaps: int = MAX_HEATMAPS
) -> str:
    """The whole page as a string (write it with ``encoding="utf-8"``)."""
    selection = report.get("selection") or {}
    heading = title or f"Comparison of {selection.get('batch_id') or 'selected runs'}"
    arms = list(report.get("arms") or [])
    confidence = float(report.get("confidence") or 0.95)
    ranked = sorted(arms, key=_rank)
    with plots.plot_style():
        sections = [
            _section("success", "Success per arm", _success(ranked, confidence)),
            _section("arm-maze", "Success per maze", _arm_maze(report, arms)),
            _section("arms", "Arms", _arm_tables(report, arms, confidence)),
            _section("comparisons", "Comparisons", _comparisons(report, confidence)),
            _section("distributions", "Distributions", _distributions(report, ranked)),
            _section("cost-success", "Cost against success", _cost_success(ranked, confidence)),
            _section("heatmaps", "Where the agents went", _heatmaps(report, arms, max_heatmaps)),
        ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(heading)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{esc(heading)}</h1>{_header(report)}</header>"
        f"{_contents()}{''.join(sections)}"
        "<footer>Oriole comparison report · self-contained: no scripts, nothing loaded from the "
        "network.</footer></main></body></html>\n"
    )


def _rank(arm: Mapping[str, Any]) -> tuple[float, str]:
    """Best success rate first; arms without a rate last; ties by name."""
    rate = (arm.get("success") or {}).get("rate")
    return (-rate if is_number(rate) else 1.0, str(arm.get("arm")))


_SECTIONS = (
    ("success", "Success"),
    ("arm-maze", "Per maze"),
    ("arms", "Arms"),
    ("comparisons", "Comparisons"),
    ("distributions", "Distributions"),
    ("cost-success", "Cost"),
    ("heatmaps", "Heat maps"),
)


def _contents() -> str:
    links = "".join(f'<li><a href="#{key}">{name}</a></li>' for key, name in _SECTIONS)
    return f'<nav aria-label="Sections"><ul>{links}</ul></nav>'


def _section(key: str, heading: str, body: str) -> str:
    return f'<section id="{key}"><h2>{esc(heading)}</h2>{body}</section>'


def _figure(plot: str, body: str, caption: str, extra: str = "") -> str:
    return (
        f'<figure class="plot" data-plot="{esc(plot)}"{extra}>{body}'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _header(report: Mapping[str, Any]) -> str:
    """What was compared: the selection, the factors, the statistics' settings, the runs."""
    selection = report.get("selection") or {}
    labels = selection.get("labels") or {}
    chips = "".join(
        f'<span class="chip">{esc(key)} = {esc(value)}</span>' for key, value in labels.items()
    )
    factors = report.get("factors") or selection.get("by") or []
    running = report.get("running") or 0
    items = [
        ("Batch", esc(selection.get("batch_id") or DASH)),
        ("Labels", chips or DASH),
        ("Arms by", esc(", ".join(map(str, factors)) or DASH)),
        ("Baseline", esc(selection.get("baseline") or "none: every pair of arms")),
        ("Confidence", esc(percent(report.get("confidence")))),
        ("Bootstrap seed", esc(report.get("seed", DASH))),
        ("Finished runs", esc(report.get("runs", DASH))),
        ("Still running", esc(running)),
    ]
    facts = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in items)
    warning = (
        f'<p class="warning" data-testid="running">{esc(running)} run(s) of the selection '
        "were still running and are left out: the numbers may move.</p>"
        if running
        else ""
    )
    return f'<dl class="facts">{facts}</dl>{warning}'


def _svg(figure: Figure, plot: str, label: str) -> str:
    return plots.to_svg(figure, plot, label)


def _success(ranked: Sequence[Mapping[str, Any]], confidence: float) -> str:
    if not ranked:
        return _figure("success", '<p class="empty">No arms.</p>', "The report has no arms.")
    points = [
        plots.Interval(
            str(arm.get("arm")),
            (arm.get("success") or {}).get("rate"),
            (arm.get("success") or {}).get("low"),
            (arm.get("success") or {}).get("high"),
            f"{arm.get('successes', 0)}/{arm.get('runs', 0)}",
        )
        for arm in ranked
    ]
    svg = _svg(plots.success_chart(points, confidence), "success", "Success rate per arm")
    caption = (
        "Share of runs in which the agent saw the goal, best arm on top. The bar is the "
        f"{confidence:.0%} Wilson interval: the range of true rates these runs are consistent "
        "with; overlapping bars mean the runs do not tell the arms apart. Right: successes/runs."
    )
    return _figure("success", svg, caption)


def _arm_maze(report: Mapping[str, Any], arms: Sequence[Mapping[str, Any]]) -> str:
    table = arm_maze_table(report.get("mazes") or [], arms)
    caption = (
        "Successes out of runs for each maze and arm; darker cells succeed more often (hover "
        "for the rate and its interval). A maze one arm finds hard is visible as a pale row "
        "or cell; a “–” means the arm has no run on that maze."
    )
    return _figure("arm-maze", table, caption)


def _arm_tables(
    report: Mapping[str, Any], arms: Sequence[Mapping[str, Any]], confidence: float
) -> str:
    every = all_metrics_table(arms, metric_names(report))
    return (
        arms_table(arms, confidence)
        + '<p class="note">Cost per success is the arms’ total cost divided by its successes '
        "(“–” without a success). Intervals of measurements are seeded bootstrap intervals "
        f"of the mean (bootstrap seed {esc(report.get('seed', DASH))}).</p>"
        f"<details><summary>Every measurement</summary>{every}</details>"
    )


def _comparisons(report: Mapping[str, Any], confidence: float) -> str:
    comparisons = report.get("comparisons") or []
    if not comparisons:
        return '<p class="empty">One arm only: nothing to compare.</p>'
    metrics = metric_names(report)
    return (
        comparisons_table(comparisons, confidence)
        + '<p class="note">Paired comparisons match runs on maze, start and seed (McNemar’s '
        "exact test, Wilcoxon signed-rank); independent ones use Fisher’s exact test and "
        "Mann–Whitney. Holm’s adjustment corrects the p-values for the number of tests. Cliff’s "
        "δ runs from −1 (A always lower) to +1 (A always higher).</p>"
        f"<details><summary>Measurements</summary>"
        f"{metric_comparisons_table(comparisons, metrics, confidence)}</details>"
    )


def _run_values(
    report: Mapping[str, Any], fields: Sequence[str], arms: Sequence[str]
) -> list[tuple[str, list[float]]]:
    """Per arm, the runs' values of ``fields`` summed (runs missing any field left out)."""
    groups: dict[str, list[float]] = {name: [] for name in arms}
    for row in report.get("run_rows") or []:
        values = [row.get(field) for field in fields]
        if all(is_number(value) for value in values):
            groups.setdefault(str(row.get("arm")), []).append(float(sum(values)))
    return list(groups.items())


def _distributions(report: Mapping[str, Any], ranked: Sequence[Mapping[str, Any]]) -> str:
    names = [str(arm.get("arm")) for arm in ranked]
    figures = []
    for index, (plot, label, fields) in enumerate(DISTRIBUTIONS):
        groups = _run_values(report, fields, names)
        values = [value for _, group in groups for value in group]
        log = plots.wants_log(values)
        chart = plots.distribution_chart(label, groups, log=log, seed=index)
        empty = [name for name, group in groups if not group]
        caption = (
            f"{esc(label)}, per arm: each dot is a run."
            + (" Logarithmic axis: the values span several orders." if log else "")
            + (f" No value for: {esc(', '.join(empty))}." if empty else "")
        )
        figures.append(_figure(f"dist-{plot}", _svg(chart, f"dist-{plot}", label), caption))
    return (
        '<p class="note">One dot per finished run (jittered vertically so they do not hide '
        "each other); the box spans the middle half of an arm’s runs, the orange line is the "
        "median, the whiskers reach the furthest run within 1.5 box lengths. Runs without the "
        "value (builtin agents have no tokens or cost) are left out.</p>"
        '<div class="grid">' + "".join(figures) + "</div>"
    )


def _cost_success(ranked: Sequence[Mapping[str, Any]], confidence: float) -> str:
    points = []
    missing = []
    for arm in ranked:
        cost = ((arm.get("metrics") or {}).get("cost_usd")) or {}
        success = arm.get("success") or {}
        name = str(arm.get("arm"))
        if is_number(cost.get("mean")) and is_number(success.get("rate")):
            points.append(
                (
                    plots.Interval(name, cost.get("mean"), cost.get("low"), cost.get("high")),
                    plots.Interval(name, success["rate"], success.get("low"), success.get("high")),
                )
            )
        else:
            missing.append(name)
    left_out = (
        f" Left out (no cost or no runs): {esc(', '.join(missing))}." if missing and points else ""
    )
    if not points:
        body = '<p class="empty">No arm has a cost: nothing to plot.</p>'
    else:
        chart = plots.cost_success_chart(points, confidence)
        body = _svg(chart, "cost-success", "Mean cost per run against success rate")
    caption = (
        "Each arm’s mean cost per run (horizontal, with its bootstrap interval) against its "
        "success rate (vertical, with its Wilson interval). Up and to the left is better: "
        "more successes for less money." + left_out
    )
    return _figure("cost-success", body, caption)


def _heatmaps(report: Mapping[str, Any], arms: Sequence[Mapping[str, Any]], cap: int) -> str:
    entries = list(report.get("visits") or [])
    if not entries:
        return '<p class="empty">This report was built without visits: no heat maps.</p>'
    names = [str(arm.get("arm")) for arm in arms]
    legend = (
        '<div class="legend" aria-hidden="true">'
        f'<span><i style="background:{heatmaps.rgb(heatmaps.WALL)}"></i>wall</span>'
        f'<span><i style="background:{heatmaps.rgb(heatmaps.OPEN)}"></i>never stood on</span>'
        f'<span class="scale"><b>1</b><i style="background:{heatmaps.legend_gradient()}"></i>'
        "<b>most visits</b></span>"
        f'<span><i class="goal" style="border-color:{heatmaps.rgb(heatmaps.GOAL)}"></i>goal</span>'
        "</div>"
    )
    parts = [
        '<p class="note">How often the runs of each arm stood on each tile, summed over the '
        "arm’s runs on that maze. Colours are on a log scale shared by the arms of one maze, "
        "so a maze’s maps compare; big mazes are shrunk (blocks of tiles summed).</p>",
        legend,
    ]
    shown = 0
    for entry in entries:
        visits = entry.get("arms") or {}
        here = [name for name in names if name in visits] + sorted(set(visits) - set(names))
        if shown + len(here) > cap:
            break
        grid = heatmaps.maze_grid(entry)
        counts = {name: heatmaps.visit_counts(grid, visits[name]) for name in here}
        highest = max((float(c.max()) for c in counts.values()), default=0.0)
        figures = []
        for name in here:
            total = int(sum(count for *_, count in visits[name]))
            png = heatmaps.heatmap_png(grid, counts[name], highest)
            alt = f"Visits of {name} on {entry.get('maze')}"
            caption = f"<b>{esc(name)}</b>: {total:,} steps on {len(visits[name]):,} tiles" + (
                f"; busiest cell {float(counts[name].max()):,.0f}" if total else ""
            )
            extra = f' data-maze="{esc(entry.get("maze"))}" data-arm="{esc(name)}"'
            image = f'<img src="{heatmaps.data_uri(png)}" alt="{esc(alt)}">'
            figures.append(_figure("heatmap", image, caption, extra))
        shown += len(here)
        size = f"{entry.get('width', DASH)} × {entry.get('height', DASH)}"
        shrunk = f", shown in blocks of {grid.block} × {grid.block}" if grid.block > 1 else ""
        parts.append(
            f"<h3>{esc(entry.get('maze'))} <small>{esc(size)}{esc(shrunk)}</small></h3>"
            f'<div class="heat">{"".join(figures)}</div>'
        )
    if shown < sum(len(entry.get("arms") or {}) for entry in entries):
        done = len(parts) - 2
        parts.append(
            f'<p class="warning" data-testid="heatmap-cap">Heat maps are capped at {cap} '
            f"images to keep the page small: shown for the first {done} of {len(entries)} "
            "mazes. The CSV/Parquet exports have every run.</p>"
        )
    return "".join(parts)
