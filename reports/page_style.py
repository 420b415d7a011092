"""The report page's stylesheet (inline in the page): readable at 1200 px and on a phone,
system fonts only (nothing to download), wide tables scroll inside their own box."""

from __future__ import annotations

CSS = """
:root { --ink: #1f2937; --muted: #5b6576; --line: #e2e6ee; --soft: #f5f7fa;
  --accent: #3b6ea5; --warn-bg: #fff6e0; --warn: #8a5a00; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 1.6rem; margin: 0 0 12px; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 36px 0 12px; padding-bottom: 6px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 1.02rem; margin: 22px 0 8px; overflow-wrap: anywhere; }
h3 small { color: var(--muted); font-weight: normal; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 14px; padding: 0;
  margin: 8px 0 0; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr));
  gap: 8px 18px; margin: 0; }
.facts div { background: var(--soft); border-radius: 8px; padding: 8px 12px; min-width: 0; }
.facts dt { font-size: .78rem; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.facts dd { margin: 2px 0 0; overflow-wrap: anywhere; }
.chip { display: inline-block; background: #e7edf6; border-radius: 999px; padding: 0 8px;
  margin: 2px 4px 2px 0; font-size: .88rem; overflow-wrap: anywhere; max-width: 100%; }
.warning { background: var(--warn-bg); color: var(--warn); border-radius: 8px;
  padding: 8px 12px; }
.note { color: var(--muted); font-size: .9rem; max-width: 80ch; }
.empty { color: var(--muted); font-style: italic; padding: 16px; background: var(--soft);
  border-radius: 8px; }
figure { margin: 0 0 18px; min-width: 0; }
figure.plot > svg { display: block; width: 100%; height: auto; max-width: 860px; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: 6px; max-width: 90ch; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr));
  gap: 10px 24px; }
.scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: .88rem; margin: 6px 0 8px; }
caption { text-align: left; color: var(--muted); padding: 4px 0 6px; caption-side: top; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right;
  vertical-align: top; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
tbody th, td:first-child, td.text { text-align: left; }
td.text { white-space: normal; min-width: 7em; overflow-wrap: break-word; }
tbody th { background: none; white-space: normal; min-width: 9em; max-width: 22em;
  overflow-wrap: break-word; }
thead th { white-space: normal; max-width: 14em; overflow-wrap: break-word; }
thead th:first-child, thead th.text { text-align: left; }
tr.significant td { font-weight: 700; }
tr.total th, tr.total td { border-top: 2px solid #c7cdd8; }
td.rate { text-align: center; min-width: 5.5em; }
td.none { text-align: center; color: var(--muted); }
.main { display: block; font-weight: 600; }
.sub { display: block; color: inherit; opacity: .75; font-size: .8rem; font-weight: normal; }
details { margin: 10px 0; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; padding: 4px 0; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 20px; align-items: center;
  font-size: .86rem; color: var(--muted); margin: 8px 0; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend i { display: inline-block; width: 16px; height: 16px; border-radius: 3px;
  border: 1px solid #c7cdd8; }
.legend .scale i { width: 120px; }
.legend i.goal { background: transparent; border-width: 3px; border-style: solid; }
.heat { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr));
  gap: 12px; }
.heat figure { margin: 0; }
.heat img { display: block; width: 100%; max-width: 320px; height: auto;
  image-rendering: pixelated; border-radius: 4px; }
.heat figcaption { overflow-wrap: anywhere; }
footer { margin-top: 40px; color: var(--muted); font-size: .82rem; }
@media (max-width: 640px) {
  main { padding: 12px 12px 28px; }
  body { font-size: 14px; }
  h1 { font-size: 1.3rem; }
  .heat { grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); }
  th, td { padding: 5px 7px; }
}
"""
