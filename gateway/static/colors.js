// The maze colours: CSS custom properties (--maze-KEY), overridable from the settings panel.

export const STORAGE_COLORS = "oriole.viewer.colors";

export const COLOR_KEYS = [
  ["empty", "Empty tile"],
  ["wall", "Wall"],
  ["goal", "Goal"],
  ["start", "Start"],
  ["agent", "Agent"],
  ["path", "Path history"],
  ["inherited", "Inherited path (fork)"],
  ["fork", "Fork point"],
  ["vision", "Seen this step"],
  ["seen", "Seen so far"],
  ["fog", "Unseen (fog)"],
  ["hover", "Hover"],
];

/** How opaque each overlay is drawn over the maze (the renderer and the legend both use it). */
export const LAYER_ALPHA = { seen: 0.3, path: 0.6, inherited: 0.45, vision: 0.45, fog: 0.85 };

/** The colours only a fork shows: the legend lists them while a fork is open. */
export const FORK_KEYS = new Set(["inherited", "fork"]);

/** The colours the legend explains (the hover outline explains itself). */
export const LEGEND_KEYS = COLOR_KEYS.filter(([key]) => key !== "hover" && !FORK_KEYS.has(key));

/** The fork's colours, in the legend after the path. */
export const FORK_LEGEND_KEYS = COLOR_KEYS.filter(([key]) => FORK_KEYS.has(key));

const colorProbe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });

/** Any CSS colour -> [r, g, b, a] (0-255), through the canvas' own parser. */
export function rgba(color) {
  colorProbe.clearRect(0, 0, 1, 1);
  colorProbe.fillStyle = "#000";
  colorProbe.fillStyle = color;
  colorProbe.fillRect(0, 0, 1, 1);
  return Array.from(colorProbe.getImageData(0, 0, 1, 1).data);
}

export function hex(color) {
  const [r, g, b] = rgba(color);
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

export function applyCustomColors(custom) {
  const root = document.documentElement.style;
  for (const [key] of COLOR_KEYS) {
    const value = custom[key];
    if (typeof value === "string" && /^#[0-9a-fA-F]{6}$/.test(value)) {
      root.setProperty(`--maze-${key}`, value);
    } else {
      root.removeProperty(`--maze-${key}`);
    }
  }
}

export function currentColors() {
  const style = getComputedStyle(document.documentElement);
  const colors = {};
  for (const [key] of COLOR_KEYS) {
    colors[key] = style.getPropertyValue(`--maze-${key}`).trim() || "#888888";
  }
  return colors;
}
