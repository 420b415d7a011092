// The settings panel: one colour input per maze colour, kept in localStorage.

import { COLOR_KEYS, STORAGE_COLORS, applyCustomColors, currentColors, hex } from "./colors.js";
import { $, h, loadJson, saveJson } from "./format.js";

/** Build the colour inputs and the panel's toggle (once, at start-up). */
export function buildSettings(viewer) {
  const toggle = $("settings-toggle");
  const panel = $("settings");
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
    viewer.renderer.layout();
    viewer.invalidate();
  });
  const form = $("settings-form");
  const inputs = {};
  const refresh = () => {
    const colors = currentColors();
    for (const [key] of COLOR_KEYS) inputs[key].value = hex(colors[key]);
    viewer.renderer.setColors(colors);
    viewer.legend.show(colors);
    viewer.invalidate();
  };
  for (const [key, label] of COLOR_KEYS) {
    const input = h("input", { type: "color", id: `color-${key}`, "data-color": key });
    inputs[key] = input;
    input.addEventListener("input", () => {
      const custom = loadJson(STORAGE_COLORS);
      custom[key] = input.value;
      saveJson(STORAGE_COLORS, custom);
      applyCustomColors(custom);
      refresh();
    });
    form.append(h("label", { for: `color-${key}` }, label), input);
  }
  $("settings-reset").addEventListener("click", () => {
    saveJson(STORAGE_COLORS, {});
    applyCustomColors({});
    refresh();
  });
  refresh();
}
