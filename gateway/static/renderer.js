// Drawing one run's maze, path, vision and agent on the canvas.

import { currentColors, rgba } from "./colors.js";

function layerCanvas(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, height);
  return canvas;
}

/**
 * The maze canvas. Layers are kept at one pixel per tile and scaled up with smoothing off:
 * the static maze is drawn once per run (or colour change); what was seen and the path are
 * painted incrementally as the shown step advances (rebuilt only when it moves backwards).
 * A frame is a handful of drawImage calls plus the current step's overlay and the agent.
 */
export class MazeRenderer {
  constructor(canvas, wrap) {
    this.canvas = canvas;
    this.wrap = wrap;
    this.ctx = canvas.getContext("2d");
    this.model = null;
    this.cell = 1; // device pixels per tile
    this.dpr = 1;
    this.colors = currentColors();
    this.staticLayer = null;
    this.seenLayer = null;
    this.pathLayer = null;
    this.fogLayer = null;
    this.seenMask = null;
    this.layersAt = -1; // the step the seen/path/fog layers show
  }

  setModel(model) {
    this.model = model;
    this.staticLayer = null;
    this.layersAt = -1;
    this.layout();
  }

  setColors(colors) {
    this.colors = colors;
    this.staticLayer = null;
    this.layersAt = -1;
  }

  ready() {
    return Boolean(this.model && this.model.grid && this.model.width && this.model.height);
  }

  /** Fit the canvas to its container (HiDPI aware); returns true if its size changed. */
  layout() {
    const canvas = this.canvas;
    if (!this.ready()) {
      if (canvas.width !== 0) {
        canvas.width = 0;
        canvas.height = 0;
        canvas.style.width = "0px";
        canvas.style.height = "0px";
      }
      return false;
    }
    const { width, height } = this.model;
    const dpr = window.devicePixelRatio || 1;
    const availableWidth = Math.max(1, this.wrap.clientWidth);
    const availableHeight = Math.max(1, this.wrap.clientHeight);
    const fit = Math.floor(Math.min((availableWidth * dpr) / width, (availableHeight * dpr) / height));
    const cell = Math.max(1, Math.min(Math.round(64 * dpr), fit));
    let cssWidth = (width * cell) / dpr;
    let cssHeight = (height * cell) / dpr;
    if (cssWidth > availableWidth || cssHeight > availableHeight) {
      // Not even one device pixel per tile: let the browser scale the canvas down.
      const shrink = Math.min(availableWidth / cssWidth, availableHeight / cssHeight);
      cssWidth *= shrink;
      cssHeight *= shrink;
    }
    const changed = cell !== this.cell || dpr !== this.dpr || canvas.width !== width * cell;
    this.cell = cell;
    this.dpr = dpr;
    if (canvas.width !== width * cell) canvas.width = width * cell;
    if (canvas.height !== height * cell) canvas.height = height * cell;
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${cssHeight}px`;
    return changed;
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
      this.fogLayer = layerCanvas(model.width, model.height);
      this.seenMask = new Uint8Array(model.width * model.height);
      const fog = this.fogLayer.getContext("2d");
      fog.fillStyle = this.colors.fog;
      fog.fillRect(0, 0, model.width, model.height);
      if (model.start) {
        const path = this.pathLayer.getContext("2d");
        path.fillStyle = this.colors.path;
        path.fillRect(model.start.x, model.start.y, 1, 1);
        fog.clearRect(model.start.x, model.start.y, 1, 1);
      }
      this.layersAt = 0;
    }
    if (step === this.layersAt) return;
    const seen = this.seenLayer.getContext("2d");
    const path = this.pathLayer.getContext("2d");
    const fog = this.fogLayer.getContext("2d");
    seen.fillStyle = this.colors.seen;
    path.fillStyle = this.colors.path;
    for (let k = this.layersAt + 1; k <= step; k++) {
      const s = model.steps[k - 1];
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
    const ctx = this.ctx;
    if (!this.ready()) return;
    if (!this.staticLayer) this.buildStatic();
    this.syncLayers(view.step);
    const model = this.model;
    const c = this.cell;
    const w = model.width * c;
    const h = model.height * c;
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 1;
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(this.staticLayer, 0, 0, w, h);
    if (view.showSeen) {
      ctx.globalAlpha = 0.3;
      ctx.drawImage(this.seenLayer, 0, 0, w, h);
    }
    if (view.showPath) {
      ctx.globalAlpha = 0.6;
      ctx.drawImage(this.pathLayer, 0, 0, w, h);
    }
    if (view.showFog) {
      ctx.globalAlpha = 0.85;
      ctx.drawImage(this.fogLayer, 0, 0, w, h);
    }
    const current = view.step > 0 ? model.steps[view.step - 1] : null;
    if (current && current.tiles_seen && current.tiles_seen.length) {
      ctx.globalAlpha = 0.45;
      ctx.fillStyle = this.colors.vision;
      for (const tile of current.tiles_seen) ctx.fillRect(tile[0] * c, tile[1] * c, c, c);
    }
    ctx.globalAlpha = 1;
    ctx.fillStyle = this.colors.goal;
    for (const goal of model.goals.slice(0, 64)) {
      if (!view.showFog || this.seenMask[goal.y * model.width + goal.x]) {
        ctx.fillRect(goal.x * c, goal.y * c, c, c);
      }
    }
    const small = c < 6 * this.dpr;
    const line = Math.max(1, Math.round(this.dpr));
    // Markers stay visible on big mazes where a tile is a pixel or two.
    if (small) {
      ctx.lineWidth = 2 * line;
      ctx.strokeStyle = this.colors.goal;
      for (const goal of model.goals.slice(0, 16)) this.ring(goal, 5 * this.dpr);
      if (model.start) {
        ctx.strokeStyle = this.colors.start;
        this.ring(model.start, 4 * this.dpr);
      }
    } else if (model.start) {
      ctx.lineWidth = Math.max(line, Math.round(c / 8));
      ctx.strokeStyle = this.colors.start;
      const inset = ctx.lineWidth / 2;
      ctx.strokeRect(model.start.x * c + inset, model.start.y * c + inset, c - 2 * inset, c - 2 * inset);
    }
    const agent = model.positionAt(view.step);
    if (agent) {
      const radius = Math.max(c * 0.4, 3.5 * this.dpr);
      ctx.beginPath();
      ctx.arc((agent.x + 0.5) * c, (agent.y + 0.5) * c, radius, 0, Math.PI * 2);
      ctx.fillStyle = this.colors.agent;
      ctx.fill();
      ctx.lineWidth = line;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
      ctx.stroke();
    }
    if (view.hover) {
      ctx.lineWidth = Math.max(line, Math.round(c / 10));
      ctx.strokeStyle = this.colors.hover;
      const size = Math.max(c, 4 * this.dpr);
      const offset = (size - c) / 2;
      ctx.strokeRect(view.hover.x * c - offset, view.hover.y * c - offset, size, size);
    }
    ctx.restore();
  }

  ring(p, radius) {
    const c = this.cell;
    const ctx = this.ctx;
    ctx.beginPath();
    ctx.arc((p.x + 0.5) * c, (p.y + 0.5) * c, Math.max(radius, c), 0, Math.PI * 2);
    ctx.stroke();
  }

  /** The tile under a mouse position, or null. */
  tileAt(clientX, clientY) {
    if (!this.ready()) return null;
    const rect = this.canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return null;
    const x = Math.floor(((clientX - rect.left) / rect.width) * this.model.width);
    const y = Math.floor(((clientY - rect.top) / rect.height) * this.model.height);
    if (x < 0 || y < 0 || x >= this.model.width || y >= this.model.height) return null;
    return { x, y };
  }
}
