// The colour legend under the maze: one swatch per maze colour, from the same definitions
// (colors.js) and with the same opacity as the renderer draws them.

import { FORK_LEGEND_KEYS, LAYER_ALPHA, LEGEND_KEYS } from "./colors.js";
import { $, h } from "./format.js";

/** The overlays a checkbox can hide: their legend entries are dimmed while hidden. */
const TOGGLED = { path: "showPath", inherited: "showPath", seen: "showSeen", fog: "showFog" };

export class Legend {
  constructor(node) {
    this.node = node;
    this.items = {};
    this.forkShown = false;
    for (const [key, label] of [...LEGEND_KEYS, ...FORK_LEGEND_KEYS]) {
      const fill = h("span", { class: "swatch-fill", "data-testid": `legend-${key}` });
      const swatch = h("span", { class: `swatch swatch-${key}`, "aria-hidden": "true" }, fill);
      const item = h("li", { "data-color": key }, swatch, h("span", { class: "legend-label" }, label));
      if (LAYER_ALPHA[key] !== undefined) {
        fill.style.opacity = String(LAYER_ALPHA[key]);
        item.title = `${label}: drawn at ${Math.round(LAYER_ALPHA[key] * 100)} % over the maze`;
      }
      this.items[key] = { item, swatch, fill };
    }
    node.append(...LEGEND_KEYS.map(([key]) => this.items[key].item));
  }

  /** A fork's colours (inherited path, fork point) are listed, after the path, for forks only. */
  showFork(isFork) {
    if (isFork === this.forkShown) return;
    this.forkShown = isFork;
    const entries = FORK_LEGEND_KEYS.map(([key]) => this.items[key].item);
    if (isFork) this.items.path.item.after(...entries);
    else for (const entry of entries) entry.remove();
  }

  /** The colours in use (the renderer's). */
  show(colors) {
    for (const [key, { swatch, fill }] of Object.entries(this.items)) {
      fill.style.backgroundColor = colors[key];
      // Overlays are shown over an open tile, as on the maze.
      swatch.style.backgroundColor = LAYER_ALPHA[key] !== undefined ? colors.empty : "";
    }
  }

  /** Dim the entries of overlays switched off (path, seen, fog). */
  showToggles(viewer) {
    for (const [key, flag] of Object.entries(TOGGLED)) {
      const entry = this.items[key];
      if (entry) entry.item.classList.toggle("off", !viewer[flag]);
    }
  }
}

export function buildLegend() {
  return new Legend($("maze-legend"));
}
