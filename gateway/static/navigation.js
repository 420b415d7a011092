// Zoom and pan of the maze view: the mouse wheel (a trackpad pinch arrives as ctrl+wheel), a
// drag, a two-finger touch pinch and the zoom buttons; the keys (+ − 0 a) are routed here by
// controls.js. Every change only marks the canvas dirty: drawing waits for the next animation
// frame, so a burst of wheel or pointer events costs one redraw.

import { $, setText } from "./format.js";
import { ZOOM_STEP } from "./viewport.js";

/** A drag shorter than this (CSS pixels) is a click, not a pan. */
const DRAG_THRESHOLD = 4;

/** A point of the page in the view's device pixels ([undefined, undefined] without one). */
function viewPoint(renderer, clientX, clientY) {
  if (clientX === undefined) return [undefined, undefined];
  const rect = renderer.wrap.getBoundingClientRect();
  return [
    (clientX - rect.left - renderer.wrap.clientLeft) * renderer.dpr,
    (clientY - rect.top - renderer.wrap.clientTop) * renderer.dpr,
  ];
}

/** Zoom by `factor` around a point of the page (the view's centre without one). */
export function zoom(viewer, factor, clientX, clientY, snap = false) {
  const renderer = viewer.renderer;
  if (!renderer.ready()) return;
  if (renderer.viewport.zoomBy(factor, ...viewPoint(renderer, clientX, clientY), snap)) viewer.invalidate();
}

/** "fit", "follow" (the agent) or "free". */
export function setViewMode(viewer, mode) {
  viewer.renderer.viewport.setMode(mode);
  viewer.invalidate();
}

export function toggleFollowAgent(viewer) {
  setViewMode(viewer, viewer.renderer.viewport.mode === "follow" ? "free" : "follow");
}

/** The keys of the view (controls.js asks first); returns true when the key was ours. */
export function viewKey(viewer, key) {
  switch (key) {
    case "+":
    case "=":
      zoom(viewer, ZOOM_STEP, undefined, undefined, true);
      return true;
    case "-":
    case "_":
      zoom(viewer, 1 / ZOOM_STEP, undefined, undefined, true);
      return true;
    case "0":
      setViewMode(viewer, "fit");
      return true;
    case "a":
      toggleFollowAgent(viewer);
      return true;
    default:
      return false;
  }
}

/** The toolbar's state after a frame: the zoom level and the pressed mode. */
export function showView(viewer) {
  const vp = viewer.renderer.viewport;
  const ready = viewer.renderer.ready();
  const perTile = vp.scale / viewer.renderer.dpr;
  const digits = perTile >= 10 ? 0 : perTile >= 1 ? 1 : 2;
  setText("zoom-level", ready ? `${perTile.toFixed(digits)} px/tile` : null);
  for (const [id, mode] of [
    ["zoom-fit", "fit"],
    ["zoom-follow", "follow"],
  ]) {
    const pressed = String(vp.mode === mode);
    if ($(id).getAttribute("aria-pressed") !== pressed) $(id).setAttribute("aria-pressed", pressed);
  }
}

/** Wire the wheel, pointers and buttons (once, at start-up). */
export function bindNavigation(viewer) {
  const wrap = $("canvas-wrap");
  $("zoom-in").addEventListener("click", () => zoom(viewer, ZOOM_STEP, undefined, undefined, true));
  $("zoom-out").addEventListener("click", () => zoom(viewer, 1 / ZOOM_STEP, undefined, undefined, true));
  $("zoom-fit").addEventListener("click", () => setViewMode(viewer, "fit"));
  $("zoom-follow").addEventListener("click", () => toggleFollowAgent(viewer));

  wrap.addEventListener(
    "wheel",
    (event) => {
      if (!viewer.renderer.ready()) return;
      event.preventDefault(); // the page must not scroll (or zoom, for ctrl+wheel) instead
      const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
      const delta = event.deltaY * unit * (event.ctrlKey ? 0.01 : 0.002);
      zoom(viewer, Math.min(2, Math.max(0.5, Math.exp(-delta))), event.clientX, event.clientY);
    },
    { passive: false },
  );

  // Pointers: one drags the view, two (touch) pinch-zoom around their midpoint.
  const pointers = new Map();
  let gesture = null; // {x, y, distance, moved}
  const measure = () => {
    const [a, b] = [...pointers.values()];
    if (!b) return { x: a.x, y: a.y, distance: 0 };
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, distance: Math.hypot(a.x - b.x, a.y - b.y) };
  };
  const release = (event) => {
    if (!pointers.delete(event.pointerId)) return;
    gesture = pointers.size ? { ...measure(), moved: true } : null;
    if (!pointers.size) wrap.classList.remove("dragging");
  };
  wrap.addEventListener("pointerdown", (event) => {
    if (!viewer.renderer.ready() || event.button !== 0 || event.target.closest("button, .view-tools")) return;
    wrap.setPointerCapture?.(event.pointerId);
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    gesture = { ...measure(), moved: pointers.size > 1 };
  });
  wrap.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId) || !gesture) return;
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    const now = measure();
    const dx = now.x - gesture.x;
    const dy = now.y - gesture.y;
    if (!gesture.moved && Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
    wrap.classList.add("dragging");
    let changed = viewer.renderer.viewport.panBy(dx, dy);
    if (now.distance && gesture.distance) {
      const [px, py] = viewPoint(viewer.renderer, now.x, now.y);
      changed = viewer.renderer.viewport.zoomBy(now.distance / gesture.distance, px, py) || changed;
    }
    gesture = { ...now, moved: true };
    if (changed) viewer.invalidate();
  });
  wrap.addEventListener("pointerup", release);
  wrap.addEventListener("pointercancel", release);
}
