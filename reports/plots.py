"""The report's charts, drawn with matplotlib `Figure` objects (no pyplot, no global figure
state) and returned as inline SVG fragments ready to sit in the HTML page.

Text stays text in the SVG (``svg.fonttype: none``), so the page stays small and arm names
are XML-escaped by matplotlib; math parsing is off, so a ``$`` in a name is just a dollar.
Every SVG's ids get a per-figure prefix: several figures share one HTML document.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

#: Keeps arm names on the charts readable; the tables carry the full names.
LABEL_LIMIT = 42
ACCENT = "#3b6ea5"
MUTED = "#8a94a6"

_BOX_ORIENTATION: dict[str, Any] = (
    {"orientation": "horizontal"}
    if "orientation" in inspect.signature(Axes.boxplot).parameters
    else {"vert": False}
)
_ROOT_SIZE = re.compile(r'(<svg\b[^>]*?)\s(?:width|height)="[^"]*"')
#: The RDF block (creator, type: links to vocabularies) and namespace declarations, which
#: HTML does not need: the page then names no URL at all.
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_TAGS = re.compile(r"<[^>]+>")
_IDS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


#: rcParams are process-wide: two reports drawn at once (threads of a server) would undo
#: each other's settings, so drawing is one report at a time.
_DRAWING = threading.Lock()


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """The report's matplotlib settings, for one rendering only (restored afterwards)."""
    with (
        _DRAWING,
        mpl.rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "oriole-report",
                "text.parse_math": False,
                "font.size": 9.5,
                "font.family": "sans-serif",
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.edgecolor": "#9aa3b2",
                "axes.labelcolor": "#27303f",
                "xtick.color": "#4a5468",
                "ytick.color": "#27303f",
                "axes.grid": True,
                "grid.color": "#e3e7ee",
                "grid.linewidth": 0.8,
                "axes.axisbelow": True,
            }
        ),
    ):
        yield


def short(text: str, limit: int = LABEL_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_svg(figure: Figure, prefix: str, label: str) -> str:
    """``figure`` as an inline ``<svg>`` that scales to its container, with ids unique to
    ``prefix`` and an accessible name."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    while _ROOT_SIZE.match(text):
        text = _ROOT_SIZE.sub(r"\1", text, count=1)
    text = _METADATA.sub("", text, count=1)
    root_end = text.index(">")
    text = _NAMESPACES.sub("", text[:root_end]) + text[root_end:]
    # Inside tags only: a quote in chart text (an arm name) is not an attribute.
    text = _TAGS.sub(
        lambda tag: _IDS.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", tag.group(0)), text
    )
    name = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace("<svg", f'<svg role="img" aria-label="{name}"', 1)


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with its interval, any part of which may be undefined."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    note: str = ""


def _errors(points: Sequence[Interval], scale: float) -> np.ndarray[Any, Any]:
    below = [
        (p.value - p.low) * scale if p.value is not None and p.low is not None else 0.0
        for p in points
    ]
    above = [
        (p.high - p.value) * scale if p.value is not None and p.high is not None else 0.0
        for p in points
    ]
    return np.array([np.maximum(below, 0.0), np.maximum(above, 0.0)])


def success_chart(points: Sequence[Interval], confidence: float) -> Figure:
    """Success rate per arm as a dot with its Wilson interval, best arm on top."""
    figure = Figure(figsize=(8.0, 0.9 + 0.42 * max(len(points), 1)))
    axes = figure.add_subplot()
    ys = np.arange(len(points))[::-1]
    defined = [i for i, p in enumerate(points) if p.value is not None]
    values = np.array([(points[i].value or 0.0) * 100 for i in defined])
    axes.errorbar(
        values,
        ys[defined],
        xerr=_errors([points[i] for i in defined], 100.0),
        fmt="o",
        color=ACCENT,
        ecolor=ACCENT,
        elinewidth=2.2,
        capsize=4,
        markersize=7,
    )
    for y, point in zip(ys, points, strict=True):
        axes.annotate(
            point.note,
            (100, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            color="#4a5468",
            annotation_clip=False,
        )
    axes.set_yticks(ys, [short(p.label) for p in points])
    axes.set_xlim(-1.5, 101.5)
    axes.set_xticks(range(0, 101, 20))
    axes.set_ylim(-0.6, len(points) - 0.4)
    axes.set_xlabel(f"success rate, % (dots) with {confidence:.0%} Wilson interval (bars)")
    axes.grid(axis="y", visible=False)
    return figure


def distribution_chart(
    label: str, groups: Sequence[tuple[str, Sequence[float]]], *, log: bool, seed: int
) -> Figure:
    """One metric's values per arm: a box (quartiles, median, 1.5 IQR whiskers) with every
    run as a jittered dot on top, so small arms are not hidden behind a box."""
    figure = Figure(figsize=(5.6, 0.9 + 0.42 * max(len(groups), 1)))
    axes = figure.add_subplot()
    ys = np.arange(len(groups))[::-1].astype(float)
    filled = [(y, values) for y, (_, values) in zip(ys, groups, strict=True) if values]
    if filled:
        axes.boxplot(
            [np.asarray(values, dtype=float) for _, values in filled],
            positions=[y for y, _ in filled],
            widths=0.55,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "#dbe6f3", "edgecolor": ACCENT},
            medianprops={"color": "#c2410c", "linewidth": 2},
            whiskerprops={"color": ACCENT},
            capprops={"color": ACCENT},
            **_BOX_ORIENTATION,
        )
        rng = np.random.default_rng(seed)
        for y, values in filled:
            jitter = rng.uniform(-0.18, 0.18, len(values))
            axes.scatter(values, y + jitter, s=11, color="#1f2937", alpha=0.45, linewidths=0)
    for y, (_, values) in zip(ys, groups, strict=True):
        if not values:
            axes.annotate("no values", (0.01, y), xycoords=("axes fraction", "data"), va="center")
    if log and filled:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: nice_number(value)))
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_yticks(ys, [short(name, 28) for name, _ in groups])
    axes.set_ylim(-0.6, len(groups) - 0.4)
    axes.set_xlabel(label + (" (log scale)" if log and filled else ""))
    axes.grid(axis="y", visible=False)
    return figure


def wants_log(values: Sequence[float]) -> bool:
    """Log scale when every value is positive and they span more than two decades."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100


def cost_success_chart(points: Sequence[tuple[Interval, Interval]], confidence: float) -> Figure:
    """Mean cost per run (x, bootstrap interval) against success rate (y, Wilson interval),
    one labelled point per arm: up and to the left is better."""
    figure = Figure(figsize=(7.0, 4.4))
    axes = figure.add_subplot()
    colours = mpl.colormaps["tab10"]
    highest = 0.0
    for index, (cost, success) in enumerate(points):
        x, y = cost.value or 0.0, (success.value or 0.0) * 100
        highest = max(highest, x, cost.high or 0.0)
        axes.errorbar(
            [x],
            [y],
            xerr=_errors([cost], 1.0),
            yerr=_errors([success], 100.0),
            fmt="o",
            color=colours(index % 10),
            elinewidth=1.6,
            capsize=3,
            markersize=7,
        )
        offset = 10 + 9 * (index % 3)
        axes.annotate(
            short(cost.label, 30),
            (x, y),
            xytext=(7, offset if index % 2 else -offset),
            textcoords="offset points",
            fontsize=8.5,
            color=colours(index % 10),
            arrowprops={"arrowstyle": "-", "color": "#9aa3b2", "linewidth": 0.7},
        )
    axes.set_ylim(-4, 104)
    axes.set_xlim(0, highest * 1.15 if highest > 0 else 1)
    axes.set_xlabel(f"mean cost per run, USD ({confidence:.0%} bootstrap interval)")
    axes.set_ylabel(f"success rate, % ({confidence:.0%} Wilson)")
    return figure


def nice_number(value: float) -> str:
    """A compact axis-style number: 1.2k, 0.034, 12."""
    if value == 0 or not math.isfinite(value):
        return "0"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
