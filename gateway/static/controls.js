// Playback controls: buttons, scrub bar, options, canvas hover, resizing and the keyboard
// (the view's own keys, + − 0 a, go to navigation.js).

import { $, setText } from "./format.js";
import { bindNavigation, viewKey } from "./navigation.js";

/** Wire the page's controls to `viewer` (once, at start-up). */
export function bindControls(viewer) {
  $("play").addEventListener("click", () => viewer.togglePlay());
  $("step-back").addEventListener("click", () => viewer.stepBy(-1));
  $("step-forward").addEventListener("click", () => viewer.stepBy(1));
  $("step-first").addEventListener("click", () => viewer.jump(0));
  $("step-last").addEventListener("click", () => viewer.jump(Infinity));
  $("scrub").addEventListener("input", (event) => {
    viewer.setPlaying(false);
    viewer.setShown(Number(event.target.value), true);
  });
  $("follow-live").addEventListener("change", (event) => viewer.setFollow(event.target.checked));

  const speed = $("speed");
  speed.value = viewer.speed;
  if (speed.value !== viewer.speed) speed.value = viewer.speed = "10";
  speed.addEventListener("change", () => {
    viewer.speed = speed.value;
    viewer.playClock = viewer.timeAt(viewer.shown);
    viewer.savePrefs();
  });
  for (const [id, key] of [
    ["show-path", "showPath"],
    ["show-seen", "showSeen"],
    ["show-fog", "showFog"],
  ]) {
    const box = $(id);
    box.checked = viewer[key];
    box.addEventListener("change", () => {
      viewer[key] = box.checked;
      viewer.legend.showToggles(viewer);
      viewer.savePrefs();
      viewer.invalidate();
    });
  }

  viewer.legend.showToggles(viewer);
  bindNavigation(viewer);

  const canvas = $("maze-canvas");
  const coord = $("hover-coord");
  canvas.addEventListener("mousemove", (event) => {
    const tile = viewer.renderer.tileAt(event.clientX, event.clientY);
    const same = tile && viewer.hover && tile.x === viewer.hover.x && tile.y === viewer.hover.y;
    if (same || (!tile && !viewer.hover)) return;
    viewer.hover = tile;
    if (tile) {
      const code = viewer.model.grid[tile.y * viewer.model.width + tile.x];
      const kind = ["empty", "wall", "goal"][code] || `code ${code}`;
      setText(coord, `(${tile.x}, ${tile.y}) ${kind}`);
    }
    coord.hidden = !tile;
    viewer.invalidate();
  });
  canvas.addEventListener("mouseleave", () => {
    viewer.hover = null;
    coord.hidden = true;
    viewer.invalidate();
  });

  new ResizeObserver(() => {
    viewer.renderer.layout();
    viewer.invalidate();
  }).observe($("canvas-wrap"));
  window.matchMedia?.(`(resolution: ${window.devicePixelRatio || 1}dppx)`)?.addEventListener?.("change", () => {
    viewer.renderer.layout();
    viewer.invalidate();
  });

  document.addEventListener("keydown", (event) => onKey(viewer, event));
}

function onKey(viewer, event) {
  if (event.ctrlKey || event.metaKey || event.altKey || viewer.page !== "runs") return;
  const target = event.target;
  const tag = target && target.tagName;
  const typing =
    (tag === "INPUT" && !["range", "checkbox", "button"].includes(target.type)) ||
    tag === "SELECT" ||
    tag === "TEXTAREA" ||
    (target && target.isContentEditable);
  if (typing) return;
  if (tag === "BUTTON" && (event.key === " " || event.key === "Enter")) return; // the button's own
  const big = event.shiftKey ? 10 : 1;
  let handled = true;
  switch (event.key) {
    case " ":
      viewer.togglePlay();
      break;
    case "ArrowLeft":
      viewer.stepBy(-big);
      break;
    case "ArrowRight":
      viewer.stepBy(big);
      break;
    case "Home":
      viewer.jump(0);
      break;
    case "End":
      viewer.jump(Infinity);
      break;
    case "f":
      viewer.setFollow(!viewer.follow);
      break;
    case "p":
      $("show-path").click();
      break;
    case "s":
      $("show-seen").click();
      break;
    default:
      handled = viewKey(viewer, event.key);
  }
  if (handled) event.preventDefault();
}
