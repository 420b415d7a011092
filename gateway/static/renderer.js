// Drawing one run's maze, path, vision and agent on the canvas, at the viewport's zoom.

import { LAYER_ALPHA, currentColors, rgba } from "./colors.js";
import { Viewport } from "./viewport.js";

function layerCanvas(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, height);
  return canvas;
}

/**
 * The maze canvas. Layers are kept offscreen at one pixel per tile: the static maze is drawn
 * once per run (or colour change); what was seen and the path are painted incrementally as
 * the shown step advances (rebuilt only when it moves backwards). A frame copies only the
 * tiles in view from each layer (one scaled drawImage of that window, however big the maze),
 * then draws the current step's vision, the goals and the agent where they are in view.
 */
export class MazeRenderer {
  constructor(canvas, wrap) {
    this.canvas = canvas;
    this.wrap = wrap;
    this.ctx = canvas.getContext("2d");
    this.model = null;
    this.viewport = new Viewport();
    this.dpr = 1;
    this.colors = currentColors();
    this.staticLayer = null;
    this.seenLayer = null;
    this.pathLayer = null;
    this.inheritedLayer = null; // a fork's path up to its fork point (its parent's)
    this.fogLayer = null;
    this.seenMask = null;
    this.layersAt = -1; // the step the seen/path/fog layers show
  }

  setModel(model) {
    if (model !== this.model && this.viewport.mode === "free") this.viewport.setMode("fit");
    this.model = model;
    this.staticLayer = null;
    this.layersAt = -1;
    this.layout();
    if (this.ready()) this.viewport.setMaze(model.width, model.height);
  }

  setColors(colors) {
    this.colors = colors;
    this.staticLayer = null;
    this.layersAt = -1;
  }

  ready() {
    return Boolean(this.model && this.model.grid && this.model.width && this.model.height);
  }

  /** The space for the canvas changed (resize, HiDPI): tell the viewport. */
  layout() {
    this.dpr = window.devicePixelRatio || 1;
    this.viewport.setView(this.wrap.clientWidth, this.wrap.clientHeight, this.dpr);
  }

  /** Size the canvas in device pixels (HiDPI aware); nothing is done when it is unchanged. */
  sizeCanvas(width, height) {
    const canvas = this.canvas;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const cssWidth = `${width / this.dpr}px`;
    const cssHeight = `${height / this.dpr}px`;
    if (canvas.style.width !== cssWidth) canvas.style.width = cssWidth;
    if (canvas.style.height !== cssHeight) canvas.style.height = cssHeight;
  }

  buildStatic() {
    const { width, height, grid, start } = this.model;
    const layer = layerCanvas(width, height);
    const ctx = layer.getContext("2d");
    const image = ctx.createImageData(width, height);
    const palette = [this.colors.empty, this.colors.wall, this.colors.goal].map(rgba);
    const data = image.data;
    for (let i = 0; i < grid.length; i++) {
      const colour = palette[grid[i]] || palette[0];
      const o = i * 4;
      data[o] = colour[0];
      data[o + 1] = colour[1];
      data[o + 2] = colour[2];
      data[o + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    if (start) {
      ctx.fillStyle = this.colors.start;
      ctx.fillRect(start.x, start.y, 1, 1);
    }
    this.staticLayer = layer;
  }

  /** Bring the seen/path/fog layers to `step`, painting only what changed. */
  syncLayers(step) {
    const model = this.model;
    if (this.layersAt < 0 || step < this.layersAt || !this.seenLayer) {
      this.seenLayer = layerCanvas(model.width, model.height);
      this.pathLayer = layerCanvas(model.width, model.height);
      this.inheritedLayer = layerCanvas(model.width, model.height);
      this.fogLayer = layerCanvas(model.width, model.height);
      this.seenMask = new Uint8Array(model.width * model.height);
      const fog = this.fogLayer.getContext("2d");
      fog.fillStyle = this.colors.fog;
      fog.fillRect(0, 0, model.width, model.height);
      if (model.start) {
        // A fork's start belongs to the path it inherited.
        const layer = model.inheritedSteps ? this.inheritedLayer : this.pathLayer;
        const path = layer.getContext("2d");
        path.fillStyle = model.inheritedSteps ? this.colors.inherited : this.colors.path;
        path.fillRect(model.start.x, model.start.y, 1, 1);
        fog.clearRect(model.start.x, model.start.y, 1, 1);
      }
      this.layersAt = 0;
    }
    if (step === this.layersAt) return;
    const seen = this.seenLayer.getContext("2d");
    const own = this.pathLayer.getContext("2d");
    const inherited = this.inheritedLayer.getContext("2d");
    const fog = this.fogLayer.getContext("2d");
    seen.fillStyle = this.colors.seen;
    own.fillStyle = this.colors.path;
    inherited.fillStyle = this.colors.inherited;
    for (let k = this.layersAt + 1; k <= step; k++) {
      const s = model.steps[k - 1];
      const path = s.inherited ? inherited : own;
      for (const tile of s.tiles_seen || []) {
        seen.fillRect(tile[0], tile[1], 1, 1);
        fog.clearRect(tile[0], tile[1], 1, 1);
        this.seenMask[tile[1] * model.width + tile[0]] = 1;
      }
      if (s.to) {
        path.fillRect(s.to.x, s.to.y, 1, 1);
        fog.clearRect(s.to.x, s.to.y, 1, 1);
      }
    }
    this.layersAt = step;
  }

  draw(view) {
    if (!this.ready()) {
      this.sizeCanvas(0, 0);
      return;
    }
    const ctx = this.ctx;
    const model = this.model;
    const vp = this.viewport;
    if (!this.staticLayer) this.buildStatic();
    this.syncLayers(view.step);
    const agent = model.positionAt(view.step);
    vp.follow(agent);
    vp.place();
    this.sizeCanvas(vp.canvasWidth, vp.canvasHeight);
    const area = vp.visible();
    const s = vp.scale;
    const dpr = this.dpr;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 1;
    ctx.clearRect(0, 0, vp.canvasWidth, vp.canvasHeight);
    const inView = (x, y) => x >= area.x0 && x < area.x1 && y >= area.y0 && y < area.y1;
    if (area.x1 > area.x0 && area.y1 > area.y0) {
      // Only the window in view: one scaled copy per layer, never a tile at a time.
      const w = area.x1 - area.x0;
      const h = area.y1 - area.y0;
      const blit = (layer, alpha) => {
        ctx.globalAlpha = alpha;
        const [left, top] = [vp.originX + area.x0 * s, vp.originY + area.y0 * s];
        ctx.drawImage(layer, area.x0, area.y0, w, h, left, top, w * s, h * s);
      };
      blit(this.staticLayer, 1);
      if (view.showSeen) blit(this.seenLayer, LAYER_ALPHA.seen);
      if (view.showPath && model.inheritedSteps) blit(this.inheritedLayer, LAYER_ALPHA.inherited);
      if (view.showPath) blit(this.pathLayer, LAYER_ALPHA.path);
      if (view.showFog) blit(this.fogLayer, LAYER_ALPHA.fog);
    }
    const current = view.step > 0 ? model.steps[view.step - 1] : null;
    if (current && current.tiles_seen && current.tiles_seen.length) {
      ctx.globalAlpha = LAYER_ALPHA.vision;
      ctx.fillStyle = this.colors.vision;
      for (const tile of current.tiles_seen) {
        if (inView(tile[0], tile[1])) ctx.fillRect(...vp.tileRect(tile[0], tile[1]));
      }
    }
    ctx.globalAlpha = 1;
    const goals = model.goals.slice(0, 64).filter((g) => !view.showFog || this.seenMask[g.y * model.width + g.x]);
    ctx.fillStyle = this.colors.goal;
    for (const goal of goals) if (inView(goal.x, goal.y)) ctx.fillRect(...vp.tileRect(goal.x, goal.y));
    const line = Math.max(1, Math.round(dpr));
    // Markers stay visible where a tile is a pixel or two.
    if (s < 6 * dpr) {
      ctx.lineWidth = 2 * line;
      ctx.strokeStyle = this.colors.goal;
      for (const goal of model.goals.slice(0, 16)) this.ring(goal, 5 * dpr);
      if (model.start) {
        ctx.strokeStyle = this.colors.start;
        this.ring(model.start, 4 * dpr);
      }
    } else if (model.start && inView(model.start.x, model.start.y)) {
      ctx.lineWidth = Math.max(line, Math.round(s / 8));
      ctx.strokeStyle = this.colors.start;
      const [x, y, w, h] = vp.tileRect(model.start.x, model.start.y);
      const inset = ctx.lineWidth / 2;
      ctx.strokeRect(x + inset, y + inset, w - 2 * inset, h - 2 * inset);
    }
    if (model.forkOf) this.forkMarker(model.positionAt(model.inheritedSteps), inView);
    if (agent) {
      const radius = Math.max(s * 0.4, 3.5 * dpr);
      ctx.beginPath();
      ctx.arc(vp.originX + (agent.x + 0.5) * s, vp.originY + (agent.y + 0.5) * s, radius, 0, Math.PI * 2);
      ctx.fillStyle = this.colors.agent;
      ctx.fill();
      ctx.lineWidth = line;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
      ctx.stroke();
    }
    if (view.hover) {
      ctx.lineWidth = Math.max(line, Math.round(s / 10));
      ctx.strokeStyle = this.colors.hover;
      const [x, y, w] = vp.tileRect(view.hover.x, view.hover.y);
      const size = Math.max(w, 4 * dpr);
      const offset = (size - w) / 2;
      ctx.strokeRect(x - offset, y - offset, size, size);
    }
    ctx.restore();
    this.describe(area);
  }

  /** The view as data- attributes of the canvas (for tests and the curious): read-only. */
  describe(area) {
    const vp = this.viewport;
    const data = this.canvas.dataset;
    const values = {
      viewMode: vp.mode,
      scale: String(Math.round((vp.scale / this.dpr) * 1000) / 1000), // CSS pixels per tile
      visible: `${area.x0} ${area.y0} ${area.x1} ${area.y1}`,
      // The tile coordinates at the middle of the canvas.
      centre: [vp.canvasWidth / 2 - vp.originX, vp.canvasHeight / 2 - vp.originY]
        .map((v) => (v / vp.scale).toFixed(2))
        .join(" "),
    };
    for (const [key, value] of Object.entries(values)) if (data[key] !== value) data[key] = value;
  }

  /** A fork's fork point: a diamond outline (a ring where tiles are tiny). */
  forkMarker(p, inView) {
    if (!p) return;
    const vp = this.viewport;
    const ctx = this.ctx;
    const s = vp.scale;
    const dpr = this.dpr;
    ctx.strokeStyle = this.colors.fork;
    ctx.lineWidth = Math.max(Math.round(dpr), Math.round(s / 8)) * (s < 6 * dpr ? 2 : 1);
    if (s < 6 * dpr) {
      this.ring(p, 6 * dpr);
      return;
    }
    if (!inView(p.x, p.y)) return;
    const [x, y, w, h] = vp.tileRect(p.x, p.y);
    ctx.beginPath();
    ctx.moveTo(x + w / 2, y);
    ctx.lineTo(x + w, y + h / 2);
    ctx.lineTo(x + w / 2, y + h);
    ctx.lineTo(x, y + h / 2);
    ctx.closePath();
    ctx.stroke();
  }

  ring(p, radius) {
    const vp = this.viewport;
    const ctx = this.ctx;
    ctx.beginPath();
    const x = vp.originX + (p.x + 0.5) * vp.scale;
    const y = vp.originY + (p.y + 0.5) * vp.scale;
    ctx.arc(x, y, Math.max(radius, vp.scale), 0, Math.PI * 2);
    ctx.stroke();
  }

  /** The tile under a mouse position, or null. */
  tileAt(clientX, clientY) {
    if (!this.ready()) return null;
    const rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return null;
    const px = ((clientX - rect.left) / rect.width) * this.canvas.width;
    const py = ((clientY - rect.top) / rect.height) * this.canvas.height;
    const { x, y } = this.viewport.tileAtCanvas(px, py);
    if (x < 0 || y < 0 || x >= this.model.width || y >= this.model.height) return null;
    return { x, y };
  }
}
