// The view of the maze: the zoom (device pixels per tile), the tile at the view's centre and
// the mode — "fit" (the whole maze in view), "follow" (the agent kept centred at the current
// zoom) or "free" (zoomed or panned by hand). No drawing here: the renderer asks the viewport
// where tile (0, 0) goes and which tiles are in view, and draws only those.

/** The largest zoom, in CSS pixels per tile (a small maze may fit at more). */
const MAX_CSS_PER_TILE = 96;
/** The zoom step of the buttons and keys. */
export const ZOOM_STEP = 1.5;

export class Viewport {
  constructor() {
    this.mode = "fit";
    this.scale = 1; // device pixels per tile
    this.cx = 0; // the tile coordinates (fractional) at the centre of the view
    this.cy = 0;
    this.width = 0; // the maze, in tiles
    this.height = 0;
    this.viewWidth = 1; // the space for the canvas, in device pixels
    this.viewHeight = 1;
    this.dpr = 1;
    // Computed by place(): the canvas size and where tile (0, 0) is on it (device pixels).
    this.canvasWidth = 0;
    this.canvasHeight = 0;
    this.originX = 0;
    this.originY = 0;
  }

  /** A maze to show (the renderer makes a hand-made view "fit" for a new run). */
  setMaze(width, height) {
    this.width = width;
    this.height = height;
    this.cx = width / 2;
    this.cy = height / 2;
    this.scale = this.mode === "fit" ? this.fitScale() : this.clampScale(this.scale);
  }

  /** The space available (CSS pixels) and the device pixel ratio. */
  setView(cssWidth, cssHeight, dpr) {
    this.dpr = dpr;
    this.viewWidth = Math.max(1, Math.round(cssWidth * dpr));
    this.viewHeight = Math.max(1, Math.round(cssHeight * dpr));
    this.scale = this.mode === "fit" ? this.fitScale() : this.clampScale(this.scale);
  }

  /** The whole maze in view: whole device pixels per tile when there is room for one or more. */
  fitScale() {
    if (!this.width || !this.height) return 1;
    const fit = Math.min(this.viewWidth / this.width, this.viewHeight / this.height);
    if (fit < 1) return fit;
    return Math.max(1, Math.min(Math.floor(fit), Math.round(64 * this.dpr)));
  }

  minScale() {
    return Math.min(this.fitScale(), 1);
  }

  maxScale() {
    return Math.max(this.fitScale(), MAX_CSS_PER_TILE * this.dpr);
  }

  clampScale(scale) {
    return Math.min(this.maxScale(), Math.max(this.minScale(), scale));
  }

  setMode(mode) {
    this.mode = mode;
    if (mode === "fit") {
      this.scale = this.fitScale();
      this.cx = this.width / 2;
      this.cy = this.height / 2;
    }
  }

  /**
   * Zoom by `factor` keeping the tile under device point (px, py) of the view in place (the
   * view's centre when omitted). `snap`: whole device pixels per tile from 2 up (buttons, keys).
   */
  zoomBy(factor, px, py, snap = false) {
    let scale = this.scale * factor;
    if (snap && scale >= 2) {
      const up = Math.max(Math.round(scale), Math.floor(this.scale) + 1);
      scale = factor > 1 ? up : Math.min(Math.round(scale), Math.ceil(this.scale) - 1);
    }
    scale = this.clampScale(scale);
    if (scale === this.scale) return false;
    if (this.mode === "follow" || px === undefined) {
      px = this.viewWidth / 2;
      py = this.viewHeight / 2;
    }
    // The tile under the point before and after: the same.
    const before = this.place();
    const tileX = (px - (this.viewWidth - before.canvasWidth) / 2 - before.originX) / this.scale;
    const tileY = (py - (this.viewHeight - before.canvasHeight) / 2 - before.originY) / this.scale;
    const dx = (px - this.viewWidth / 2) / scale;
    const dy = (py - this.viewHeight / 2) / scale;
    this.scale = scale;
    if (this.mode === "fit") this.mode = "free";
    if (this.mode !== "follow") {
      this.cx = tileX - dx;
      this.cy = tileY - dy;
      this.clampCentre();
    }
    return true;
  }

  /** Move the view by (dx, dy) CSS pixels (a drag): leaves "fit" and "follow". */
  panBy(dx, dy) {
    const fits = this.width * this.scale <= this.viewWidth && this.height * this.scale <= this.viewHeight;
    if ((!dx && !dy) || fits) return false; // nothing out of view: nothing to pan to
    this.cx -= (dx * this.dpr) / this.scale;
    this.cy -= (dy * this.dpr) / this.scale;
    this.mode = "free";
    this.clampCentre();
    return true;
  }

  /** Follow mode: centre the view on `point` (tile coordinates). */
  follow(point) {
    if (this.mode !== "follow" || !point) return;
    this.cx = point.x + 0.5;
    this.cy = point.y + 0.5;
    this.clampCentre();
  }

  /** The centre may go as far as the maze's edge, never beyond. */
  clampCentre() {
    this.cx = Math.min(this.width, Math.max(0, this.cx));
    this.cy = Math.min(this.height, Math.max(0, this.cy));
  }

  /**
   * The canvas size and the origin: along an axis where the whole maze fits, the canvas is
   * just the maze (centred by CSS); where it does not, the canvas fills the view.
   */
  place() {
    const extentX = this.width * this.scale;
    const extentY = this.height * this.scale;
    if (extentX <= this.viewWidth) {
      this.canvasWidth = Math.max(1, Math.round(extentX));
      this.originX = 0;
    } else {
      this.canvasWidth = this.viewWidth;
      this.originX = Math.round(this.viewWidth / 2 - this.cx * this.scale);
    }
    if (extentY <= this.viewHeight) {
      this.canvasHeight = Math.max(1, Math.round(extentY));
      this.originY = 0;
    } else {
      this.canvasHeight = this.viewHeight;
      this.originY = Math.round(this.viewHeight / 2 - this.cy * this.scale);
    }
    return this;
  }

  /** The tiles in view, end-exclusive: {x0, y0, x1, y1}. */
  visible() {
    const s = this.scale;
    return {
      x0: Math.max(0, Math.floor(-this.originX / s)),
      y0: Math.max(0, Math.floor(-this.originY / s)),
      x1: Math.min(this.width, Math.ceil((this.canvasWidth - this.originX) / s)),
      y1: Math.min(this.height, Math.ceil((this.canvasHeight - this.originY) / s)),
    };
  }

  /** Device pixel rectangle [x, y, w, h] of tile (x, y) on the canvas, snapped to pixels. */
  tileRect(x, y) {
    const s = this.scale;
    const left = Math.round(this.originX + x * s);
    const top = Math.round(this.originY + y * s);
    const right = Math.round(this.originX + (x + 1) * s);
    const bottom = Math.round(this.originY + (y + 1) * s);
    return [left, top, Math.max(1, right - left), Math.max(1, bottom - top)];
  }

  /** The tile at device point (px, py) of the canvas (may be outside the maze). */
  tileAtCanvas(px, py) {
    return { x: Math.floor((px - this.originX) / this.scale), y: Math.floor((py - this.originY) / this.scale) };
  }
}
