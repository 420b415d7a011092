"""The HTML comparison report: one self-contained page (nothing loaded, no script), every
chart present with its caption, user input escaped, undefined values shown as "–", big
mazes shrunk and heat maps capped; and in a real headless Chromium, at desktop and phone
widths, no console error and every figure visible."""

from __future__ import annotations

import struct
import time
from base64 import b64decode
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from reports.html import render_html
from tests.chromium_support import artifact_dir, chromium, needs_chromium
from tests.report_fixture_support import HOSTILE_LABEL, HOSTILE_MAZE, HOSTILE_PROMPT, make_report

PLOTS = {
    "success",
    "arm-maze",
    "dist-footsteps",
    "dist-tokens",
    "dist-cost_usd",
    "dist-duration_s",
    "cost-success",
    "heatmap",
}


class Elements(HTMLParser):
    """Every start tag with its attributes, and for each figure whether it has a caption."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figures: list[dict[str, str | None]] = []
        self.captioned: list[bool] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "figure":
            self.figures.append(dict(attrs))
            self.captioned.append(False)
        elif tag == "figcaption":
            self.captioned[-1] = True

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def png_size(src: str | None) -> tuple[int, int]:
    assert src is not None and src.startswith("data:image/png;base64,")
    data = b64decode(src.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return make_report(arms=3, mazes=4, runs=3, seed=5)


@pytest.fixture(scope="module")
def page(report: dict[str, Any]) -> str:
    return render_html(report, title="Arms <compared>")


def test_the_page_loads_nothing_and_runs_nothing(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered and "<link" not in lowered and "@import" not in lowered
    elements = Elements(page)
    for tag, attrs in elements.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if "src" in attrs:
            assert (attrs["src"] or "").startswith("data:image/png;base64,"), (tag, attrs)
        for name in ("href", "xlink:href"):
            if name in attrs:
                assert (attrs[name] or "").startswith("#"), (tag, attrs)


def test_every_plot_is_a_captioned_figure(page: str, report: dict[str, Any]) -> None:
    elements = Elements(page)
    plots = [figure.get("data-plot") for figure in elements.figures]
    assert set(plots) == PLOTS
    assert all(elements.captioned)
    heatmaps = {
        (figure["data-maze"], figure["data-arm"])
        for figure in elements.figures
        if figure.get("data-plot") == "heatmap"
    }
    expected = {(entry["maze"], arm) for entry in report["visits"] for arm in entry["arms"]}
    assert heatmaps == expected
    assert plots.count("heatmap") == len(expected)
    tables = {attrs.get("data-table") for tag, attrs in elements.tags if tag == "table"}
    assert tables == {"arm-maze", "arms", "all-metrics", "comparisons", "metric-comparisons"}


def test_user_input_is_escaped(page: str) -> None:
    assert HOSTILE_LABEL not in page
    assert "note = &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in page
    assert "maze &lt;b&gt;&amp;amp;&lt;/b&gt; $x$" in page
    assert "<title>Arms &lt;compared&gt;</title>" in page
    text = "".join(Elements(page).text)
    assert HOSTILE_LABEL in text and HOSTILE_PROMPT in text and HOSTILE_MAZE in text
    # The only images are the heat maps; the only bold text is ours, not the maze name's.
    images = [attrs for tag, attrs in Elements(page).tags if tag == "img"]
    assert all((attrs.get("src") or "").startswith("data:") for attrs in images)


def test_the_header_states_what_was_compared(page: str, report: dict[str, Any]) -> None:
    text = " ".join(" ".join(Elements(page).text).split())
    assert "Batch b-20261130-ab12" in text
    assert "team = maze-lab" in text
    assert "Arms by agent, prompt" in text
    assert "Confidence 95.0%" in text
    assert "Bootstrap seed 0" in text
    assert f"Finished runs {report['runs']}" in text
    assert "Still running 2" in text and "still running and are left out" in text


def test_undefined_values_are_dashes_never_none_or_nan() -> None:
    changed = make_report(arms=3, mazes=2, runs=2, seed=5)
    last = changed["arms"][-1]
    last["success"] = {"rate": None, "low": None, "high": None}
    last["metrics"]["footsteps"] = {"n": 0, "mean": None, "median": None, "low": None, "high": None}
    changed["comparisons"][0]["success"].update(difference=None, low=None, p_value=None)
    changed["mazes"][0]["arms"].pop(last["arm"])
    page = render_html(changed)
    words = " ".join(Elements(page).text).split()
    assert "None" not in words and "nan" not in words and "NaN" not in words
    rows = page.split("<tr>")
    last_row = next(row for row in rows if row.startswith(f'<th scope="row">{last["arm"]}'))
    assert "<td>–</td>" in last_row  # its undefined interval and cost per success
    assert '<td class="none">–</td>' in page  # the maze it has no run on


def test_a_report_without_visits_or_comparisons_still_renders() -> None:
    report = make_report(arms=1, mazes=1, runs=2, visits=False)
    report["comparisons"] = []
    page = render_html(report)
    plots = {figure.get("data-plot") for figure in Elements(page).figures}
    assert plots == PLOTS - {"heatmap"}  # the one arm is builtin: "no cost" in its figure
    assert "No arm has a cost" in page
    assert "built without visits" in page
    assert "nothing to compare" in page


def test_big_mazes_are_shrunk_and_heat_maps_capped() -> None:
    report = make_report(arms=2, mazes=3, runs=1, maze_size=501, seed=2)
    page = render_html(report, max_heatmaps=4)
    figures = [f for f in Elements(page).figures if f.get("data-plot") == "heatmap"]
    assert len(figures) == 4
    assert {figure["data-maze"] for figure in figures} == {m["maze"] for m in report["mazes"][:2]}
    assert 'data-testid="heatmap-cap"' in page
    assert "shown for the first 2 of 3 mazes" in page
    assert "shown in blocks of 2 × 2" in page
    sizes = [png_size(attrs.get("src")) for tag, attrs in Elements(page).tags if tag == "img"]
    assert sizes and all(max(size) <= 320 for size in sizes)
    assert len(page) < 1_500_000


def test_a_200_run_report_renders_fast_and_small() -> None:
    report = make_report(arms=4, mazes=12, runs=4, seed=9)  # 192 runs, 48 heat maps
    started = time.perf_counter()
    page = render_html(report)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert len(page.encode()) < 2_000_000
    assert sum(f.get("data-plot") == "heatmap" for f in Elements(page).figures) == 48
    assert "heatmap-cap" not in page


FIGURES_VISIBLE = """
(() => [...document.querySelectorAll('figure[data-plot]')].map(f => {
  const r = f.getBoundingClientRect();
  const s = getComputedStyle(f);
  const body = f.firstElementChild.getBoundingClientRect();
  return {plot: f.dataset.plot, width: r.width, height: r.height, bodyWidth: body.width,
          bodyHeight: body.height, shown: s.display !== 'none' && s.visibility === 'visible'};
}))()
"""
IMAGES_DECODED = (
    "[...document.images].every(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)"
)


@pytest.mark.slow
@pytest.mark.asyncio
@needs_chromium
async def test_the_page_in_chromium_has_no_errors_and_shows_every_figure(
    page: str, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    async with chromium(tmp_path) as browser:
        for name, width, height, mobile in (
            ("desktop", 1200, 900, False),
            ("phone", 390, 844, True),
        ):
            await browser.command(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            )
            await browser.navigate(path.as_uri())
            await browser.wait_for(IMAGES_DECODED, f"the heat maps to decode ({name})")
            figures = await browser.evaluate(FIGURES_VISIBLE)
            assert {figure["plot"] for figure in figures} == PLOTS
            for figure in figures:
                assert figure["shown"], (name, figure)
                assert min(figure["width"], figure["height"]) > 0, (name, figure)
                assert min(figure["bodyWidth"], figure["bodyHeight"]) > 10, (name, figure)
            # Wide tables scroll inside their box: the page itself never scrolls sideways.
            overflow = await browser.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, (name, overflow)
            assert await browser.evaluate("performance.getEntriesByType('resource').length") == 0
            assert await browser.evaluate("document.scripts.length") == 0
            assert await browser.evaluate("typeof window.__pwned") == "undefined"
            await browser.screenshot(artifact_dir() / f"report-{name}.png")
        assert browser.console == []
