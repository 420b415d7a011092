// Oriole viewer: the experiment list, and one run replayed or followed live on a canvas.
//
// Plain ES module, no build step, no external resources. The gateway contract is
// docs/gateway.md: `GET /api/experiments`, the `/ws/runs` feed (list updates) and
// `/ws/runs/{run_id}?from_seq=N` (every event of one run, archive then live).
//
// Security: run data (reasoning, messages, comments, ids...) is only ever inserted as text
// (textContent / text nodes), never parsed as HTML.

const TOKEN = new URLSearchParams(window.location.search).get("token") || "";
const STORAGE_COLORS = "oriole.viewer.colors";
const STORAGE_PREFS = "oriole.viewer.prefs";
const LIST_LIMIT = 100;
/** A recorded pause longer than this (in wall-clock ms at the chosen speed) is shortened. */
const MAX_PLAYBACK_GAP_MS = 2000;
/** "max" speed plays a whole run in about this many animation frames. */
const MAX_SPEED_FRAMES = 600;

const $ = (id) => document.getElementById(id);

// --- small helpers ------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function apiGet(path) {
  const headers = { Accept: "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.detail || body.error || detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new HttpError(response.status, `${response.status} ${detail}`);
  }
  return response.json();
}

/** ws(s):// URL of a gateway path; the token goes in the query (browsers cannot set headers). */
function wsUrl(path, query = {}) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
  if (TOKEN) url.searchParams.set("token", TOKEN);
  return url.toString();
}

/** Set an element's text (only ever as text); empty values show a dash. */
function setText(node, value) {
  const element = typeof node === "string" ? $(node) : node;
  const text = value === null || value === undefined || value === "" ? "–" : String(value);
  if (element.textContent !== text) element.textContent = text;
}

/** A new element with text content and attributes; children are nodes or strings (as text). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else element.setAttribute(key, value);
  }
  for (const child of children) {
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const point = (p) => (p ? `(${p.x}, ${p.y})` : "–");
const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

function ms(value) {
  if (value === null || value === undefined) return null;
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return `${value.toFixed(1)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

function usd(value) {
  if (value === null || value === undefined) return "–";
  return `$${Number(value).toFixed(Number(value) < 1 ? 4 : 2)}`;
}

function loadJson(key) {
  try {
    const value = JSON.parse(window.localStorage.getItem(key) || "null");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function saveJson(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: settings just do not persist
  }
}

// --- outcome of a run ---------------------------------------------------------------------

const OUTCOMES = {
  succeeded: { marker: "✓", label: "goal found", css: "ok" },
  stopped: { marker: "✗", label: "goal not found", css: "bad" },
  cancelled: { marker: "✗", label: "cancelled", css: "bad" },
  failed: { marker: "⚠", label: "failed", css: "warn" },
  running: { marker: "⟳", label: "running", css: "" },
};

function statusOfFinish(payload) {
  if (!payload) return "running";
  if (payload.status) return payload.status;
  if (payload.stop_reason === "failed") return "failed";
  if (payload.stop_reason === "cancelled") return "cancelled";
  if (payload.success === true) return "succeeded";
  if (payload.success === false || payload.stop_reason) return "stopped";
  return "running";
}

// --- colours ------------------------------------------------------------------------------

const COLOR_KEYS = [
  ["empty", "Empty tile"],
  ["wall", "Wall"],
  ["goal", "Goal"],
  ["start", "Start"],
  ["agent", "Agent"],
  ["path", "Path history"],
  ["vision", "Seen this step"],
  ["seen", "Seen so far"],
  ["fog", "Unseen (fog)"],
  ["hover", "Hover"],
];

const colorProbe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });

/** Any CSS colour -> [r, g, b, a] (0-255), through the canvas' own parser. */
function rgba(color) {
  colorProbe.clearRect(0, 0, 1, 1);
  colorProbe.fillStyle = "#000";
  colorProbe.fillStyle = color;
  colorProbe.fillRect(0, 0, 1, 1);
  return Array.from(colorProbe.getImageData(0, 0, 1, 1).data);
}

function hex(color) {
  const [r, g, b] = rgba(color);
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

function applyCustomColors(custom) {
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

function currentColors() {
  const style = getComputedStyle(document.documentElement);
  const colors = {};
  for (const [key] of COLOR_KEYS) {
    colors[key] = style.getPropertyValue(`--maze-${key}`).trim() || "#888888";
  }
  return colors;
}

// --- the state of one run, folded from its events ------------------------------------------

class RunModel {
  constructor(runId) {
    this.runId = runId;
    this.lastSeq = 0;
    this.spec = null;
    this.warnings = [];
    this.width = 0;
    this.height = 0;
    this.grid = null; // Uint8Array, row-major: grid[y * width + x]
    this.goals = [];
    this.start = null;
    this.startTime = null;
    this.steps = [];
    this.calls = new Map();
    this.pending = null; // the decision waiting for its outcome
    this.cancel = null;
    this.finished = null;
    this.inputTokens = 0;
    this.outputTokens = 0;
    this.costUsd = 0;
    this.modelCalls = 0;
    this.version = 0; // bumped on run-level changes (start, cancel, finish)
  }

  /**
   * Apply one run event. Returns "dup" (already applied), "gap" (events are missing before
   * it), "start", "step", "finish" or "other".
   */
  apply(event) {
    if (!event || typeof event.seq !== "number") return "other";
    if (event.seq <= this.lastSeq) return "dup";
    if (event.seq !== this.lastSeq + 1) return "gap";
    this.lastSeq = event.seq;
    const payload = event.payload || {};
    switch (event.type) {
      case "run.started":
        this.startRun(payload, event.time);
        this.version++;
        return "start";
      case "model.called":
        this.calls.set(payload.call_id, payload);
        this.modelCalls++;
        this.inputTokens += payload.input_tokens || 0;
        this.outputTokens += payload.output_tokens || 0;
        this.costUsd += payload.cost_usd || 0;
        return "other";
      case "action.requested":
        this.pending = payload;
        return "other";
      case "action.completed": {
        const decision = this.pending;
        this.pending = null;
        const call = decision && decision.call_id ? this.calls.get(decision.call_id) : undefined;
        this.steps.push({
          ...payload,
          seq: event.seq,
          time: event.time,
          t: Date.parse(event.time),
          decision,
          call,
          inputTokens: this.inputTokens,
          outputTokens: this.outputTokens,
        });
        return "step";
      }
      case "run.cancel_requested":
        this.cancel = payload;
        this.version++;
        return "other";
      case "run.finished":
        this.finished = { ...payload, time: event.time };
        this.version++;
        return "finish";
      default:
        return "other";
    }
  }

  startRun(payload, time) {
    const spec = payload.spec || {};
    this.spec = spec;
    this.warnings = payload.warnings || [];
    this.startTime = Date.parse(time);
    const maze = spec.maze || {};
    const rows = maze.grid_data || [];
    this.height = maze.height || rows.length;
    this.width = maze.width || (rows[0] ? rows[0].length : 0);
    this.grid = new Uint8Array(this.width * this.height);
    this.goals = [];
    for (let y = 0; y < this.height; y++) {
      const row = rows[y] || [];
      for (let x = 0; x < this.width; x++) {
        const code = row[x] | 0;
        this.grid[y * this.width + x] = code;
        if (code === 2) this.goals.push({ x, y });
      }
    }
    this.start = spec.start || null;
  }

  /** Where the agent stands after `step` actions (0: the start). */
  positionAt(step) {
    return step > 0 ? this.steps[step - 1].to : this.start;
  }

  status() {
    return this.finished ? statusOfFinish(this.finished) : "running";
  }
}

// --- drawing ------------------------------------------------------------------------------

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
class MazeRenderer {
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

// --- websockets with reconnection ----------------------------------------------------------

const FATAL_CLOSE = {
  4004: "unknown run",
  4400: "bad request",
  4401: "not authorised",
  4403: "forbidden",
};

/** Tell an auth failure (which a browser websocket cannot see) from a network problem. */
async function probeAuth() {
  try {
    await apiGet("/api/experiments?limit=1");
    return null;
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
      return TOKEN
        ? `token refused (HTTP ${error.status})`
        : "not authorised: open the viewer with ?token=YOUR_TOKEN";
    }
    return null;
  }
}

function backoff(attempt) {
  return Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
}

/** `/ws/runs/{run_id}`: every event of one run; resumes from the last seq after a drop. */
class RunFeed {
  constructor(model, handlers) {
    this.model = model;
    this.handlers = handlers; // { event(event) -> result, state(state, text) }
    this.ws = null;
    this.timer = null;
    this.attempt = 0;
    this.closed = false;
    this.done = false;
  }

  start() {
    this.connect();
  }

  connect() {
    this.timer = null;
    if (this.closed) return;
    const from = this.model.lastSeq;
    const url = wsUrl(`/ws/runs/${encodeURIComponent(this.model.runId)}`, { from_seq: from });
    this.handlers.state("connecting", from ? `resuming after event ${from}…` : "connecting…");
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    let lagging = false;
    let errorDetail = null;
    ws.onopen = () => {
      opened = true;
      this.handlers.state("archive", "loading…");
    };
    ws.onmessage = (message) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      switch (frame.kind) {
        case "event":
          if (this.handlers.event(frame.event) === "gap") {
            // Cannot happen with a correct gateway; resume from what we have.
            this.handlers.state("reconnecting", "missing events, resuming…");
            this.drop(ws);
            this.connect();
          } else if (opened && !this.caughtUp && this.model.lastSeq % 250 === 0) {
            this.handlers.state("archive", `loading… (${this.model.lastSeq} events)`);
          }
          break;
        case "caught_up":
          this.attempt = 0;
          this.caughtUp = true;
          this.handlers.state("live", "live");
          break;
        case "finished":
          this.done = true;
          this.handlers.state("finished", "run finished");
          break;
        case "lagging":
          lagging = true;
          this.handlers.state("reconnecting", "fell behind, resuming…");
          break;
        case "error":
          errorDetail = frame.detail || null;
          break;
        default:
          break;
      }
    };
    ws.onclose = async (event) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      this.caughtUp = false;
      if (this.done || (this.model.finished && event.code === 1000)) {
        this.done = true;
        this.handlers.state("finished", "run finished");
        return;
      }
      if (FATAL_CLOSE[event.code]) {
        this.handlers.state("error", errorDetail || FATAL_CLOSE[event.code]);
        return;
      }
      if (lagging || event.code === 4008) {
        this.timer = setTimeout(() => this.connect(), 50);
        return;
      }
      if (!opened) {
        const auth = await probeAuth();
        if (this.closed) return;
        if (auth) {
          this.handlers.state("error", auth);
          return;
        }
      }
      const delay = backoff(this.attempt++);
      this.handlers.state("reconnecting", `connection lost, retrying in ${Math.ceil(delay / 1000)} s…`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  drop(ws) {
    if (this.ws === ws) this.ws = null;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(1000);
    } catch {
      // already closed
    }
  }

  close() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.ws) this.drop(this.ws);
  }
}

/** `/ws/runs`: one frame per run.started / action.completed / run.finished of any run. */
class ListFeed {
  constructor(handlers) {
    this.handlers = handlers; // { frame(frame), opened(), state(state, text) }
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
  }

  connect() {
    this.timer = null;
    const ws = new WebSocket(wsUrl("/ws/runs"));
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.handlers.state("open", "list live");
      this.handlers.opened();
    };
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.kind === "run") this.handlers.frame(frame);
    };
    ws.onclose = async (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!opened) {
        const auth = await probeAuth();
        if (auth) {
          this.handlers.state("error", auth);
          return;
        }
      }
      const delay = event.code === 4008 ? 50 : backoff(this.attempt++);
      this.handlers.state("reconnecting", "list feed lost, retrying…");
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}

// --- the experiment list ------------------------------------------------------------------

class ExperimentList {
  constructor(app) {
    this.app = app;
    this.items = new Map(); // run_id -> { data, li }
    this.listNode = $("experiment-list");
    this.message = $("list-message");
    this.filter = "";
    this.renderQueued = false;
    this.refreshTimer = null;
    this.oldest = null;
    this.feed = new ListFeed({
      frame: (frame) => this.onFrame(frame),
      opened: () => this.load(),
      state: (state, text) => this.app.setListState(state, text),
    });
    $("list-filter").addEventListener("input", (event) => {
      this.filter = event.target.value.trim().toLowerCase();
      this.render();
    });
    $("list-refresh").addEventListener("click", () => this.load());
    $("list-more").addEventListener("click", () => this.loadMore());
  }

  start() {
    this.load();
    this.feed.connect();
  }

  showMessage(text, isError = false) {
    this.message.textContent = text;
    this.message.classList.toggle("error", isError);
  }

  async load() {
    try {
      const body = await apiGet(`/api/experiments?limit=${LIST_LIMIT}`);
      const experiments = body.experiments || [];
      for (const experiment of experiments) this.merge(experiment);
      if (this.oldest === null || experiments.length) {
        this.trackOldest(experiments);
        $("list-more").hidden = experiments.length < LIST_LIMIT;
      }
      this.showMessage(this.items.size ? "" : "No experiments yet.");
      this.render();
    } catch (error) {
      const auth = error instanceof HttpError && (error.status === 401 || error.status === 403);
      this.showMessage(
        auth && !TOKEN
          ? "Not authorised: open the viewer with ?token=YOUR_TOKEN"
          : `Could not load experiments: ${error.message}`,
        true,
      );
    }
  }

  trackOldest(experiments) {
    for (const experiment of experiments) {
      const started = experiment.started_at;
      if (started && (this.oldest === null || Date.parse(started) < Date.parse(this.oldest))) {
        this.oldest = started;
      }
    }
  }

  async loadMore() {
    if (!this.oldest) return;
    try {
      const query = new URLSearchParams({ limit: String(LIST_LIMIT), before: this.oldest });
      const body = await apiGet(`/api/experiments?${query}`);
      const experiments = body.experiments || [];
      for (const experiment of experiments) this.merge(experiment);
      this.trackOldest(experiments);
      $("list-more").hidden = experiments.length < LIST_LIMIT;
      this.render();
    } catch (error) {
      this.showMessage(`Could not load more: ${error.message}`, true);
    }
  }

  merge(experiment) {
    if (!experiment || !experiment.run_id) return;
    const item = this.items.get(experiment.run_id);
    if (!item) {
      this.items.set(experiment.run_id, { data: { ...experiment }, li: null });
      return;
    }
    // The archive may lag behind the live feed: never move a row backwards.
    const known = item.data;
    const update = { ...experiment };
    if (known.status && known.status !== "running" && update.status === "running") {
      for (const key of ["status", "stop_reason", "success", "completed_at"]) delete update[key];
    }
    for (const key of ["actions", "footsteps", "turns"]) {
      if (typeof known[key] === "number" && typeof update[key] === "number" && update[key] < known[key]) {
        delete update[key];
      }
    }
    Object.assign(known, update);
  }

  onFrame(frame) {
    const runId = frame.run_id;
    if (!runId) return;
    let item = this.items.get(runId);
    if (!item) {
      item = { data: { run_id: runId, status: "running", started_at: frame.time }, li: null };
      this.items.set(runId, item);
    }
    const data = item.data;
    // Summaries use the Experiment field names (docs/gateway.md): merge them as they are.
    const summary = frame.summary && typeof frame.summary === "object" ? frame.summary : {};
    for (const [key, value] of Object.entries(summary)) {
      if (key !== "run_id" && value !== undefined && value !== null) data[key] = value;
    }
    if (frame.type === "run.started") {
      if (!data.started_at) data.started_at = frame.time;
    } else if (frame.type === "action.completed") {
      if (!data.last_action_at) data.last_action_at = frame.time;
    } else if (frame.type === "run.finished") {
      if (!data.completed_at) data.completed_at = frame.time;
      if (!summary.status) data.status = statusOfFinish(summary);
    }
    if (!data.model_name) this.scheduleRefresh(); // a run we know nothing else about yet
    this.render();
  }

  scheduleRefresh() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.load();
    }, 1500);
  }

  /** Update the list from the running run's own events (its feed is the freshest source). */
  updateFromModel(model) {
    const item = this.items.get(model.runId);
    if (!item) return;
    const data = item.data;
    const last = model.steps[model.steps.length - 1];
    if (last && (data.actions === undefined || data.actions < last.step)) {
      data.actions = last.step;
      data.footsteps = last.footsteps;
    }
    if (model.finished && data.status === "running") data.status = model.status();
    this.render();
  }

  select(runId) {
    this.selected = runId;
    this.render();
  }

  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderNow();
    });
  }

  renderNow() {
    const time = (item) => Date.parse(item.data.started_at || "") || Number.MAX_SAFE_INTEGER;
    const items = [...this.items.values()].sort(
      (a, b) => time(b) - time(a) || (a.data.run_id < b.data.run_id ? -1 : 1),
    );
    for (const item of items) {
      if (!item.li) item.li = this.createItem(item.data.run_id);
      this.updateItem(item);
      item.li.hidden = Boolean(this.filter) && !this.matches(item.data);
    }
    const current = this.listNode.children;
    const same = current.length === items.length && items.every((item, i) => current[i] === item.li);
    if (!same) this.listNode.replaceChildren(...items.map((item) => item.li));
    if (items.length && !this.message.classList.contains("error")) this.showMessage("");
  }

  matches(data) {
    const haystack = [data.run_id, data.model_name, data.provider, data.comment, data.maze_name, data.status]
      .filter(Boolean)
      .join(" ")
      .toLowerCase();
    return haystack.includes(this.filter);
  }

  createItem(runId) {
    const button = h(
      "button",
      { type: "button" },
      h("span", { class: "exp-marker" }, h("span")),
      h("span", { class: "exp-id" }),
      h("span", { class: "exp-meta" }),
    );
    button.addEventListener("click", () => this.app.navigate(runId));
    const li = h("li", { "data-run-id": runId }, button);
    return li;
  }

  updateItem(item) {
    const data = item.data;
    const status = data.status || "running";
    const outcome = OUTCOMES[status] || { marker: "?", label: status };
    const li = item.li;
    li.className = `status-${status}${this.selected === data.run_id ? " selected" : ""}`;
    li.dataset.status = status;
    const [marker, id, meta] = li.firstChild.children;
    setText(marker.firstChild, outcome.marker);
    marker.title = outcome.label;
    setText(id, data.run_id);
    const model = data.model_name ? `${data.provider ? `${data.provider}:` : ""}${data.model_name}` : "…";
    const steps = data.actions === undefined || data.actions === null ? "" : ` · ${data.actions} steps`;
    setText(meta, `${model}${steps} · ${outcome.label}`);
    const title = [
      data.run_id,
      data.maze_name ? `maze ${data.maze_name}` : "",
      data.stop_reason ? `stop: ${data.stop_reason}` : "",
      data.started_at ? `started ${data.started_at}` : "",
      data.comment || "",
    ].filter(Boolean);
    li.firstChild.title = title.join("\n");
  }
}

// --- the application ----------------------------------------------------------------------

class Viewer {
  constructor() {
    this.model = null;
    this.feed = null;
    this.shown = 0;
    this.playing = false;
    this.playClock = 0;
    this.lastFrame = 0;
    this.hover = null;
    this.frameQueued = false;
    this.canvasDirty = true;
    this.panelStep = -1;
    this.panelSteps = -1;
    this.panelVersion = -1;
    this.runState = null;
    this.listState = ["idle", "idle"];
    this.follow = true;

    const prefs = loadJson(STORAGE_PREFS);
    this.speed = prefs.speed || "10";
    this.showPath = prefs.showPath !== false;
    this.showSeen = prefs.showSeen !== false;
    this.showFog = prefs.showFog === true;

    applyCustomColors(loadJson(STORAGE_COLORS));
    this.renderer = new MazeRenderer($("maze-canvas"), $("canvas-wrap"));
    this.list = new ExperimentList(this);
    this.bindControls();
    this.buildSettings();
  }

  start() {
    this.list.start();
    window.addEventListener("hashchange", () => this.openFromHash());
    this.openFromHash();
    this.requestFrame();
  }

  // --- navigation

  navigate(runId) {
    const hash = `#run=${encodeURIComponent(runId)}`;
    if (window.location.hash === hash) this.openRun(runId);
    else window.location.hash = hash;
  }

  openFromHash() {
    const match = /^#run=(.+)$/.exec(window.location.hash);
    if (!match) return;
    let runId;
    try {
      runId = decodeURIComponent(match[1]);
    } catch {
      return;
    }
    if (!this.model || this.model.runId !== runId || (this.runState && this.runState[0] === "error")) {
      this.openRun(runId);
    }
  }

  openRun(runId) {
    if (this.feed) this.feed.close();
    this.model = new RunModel(runId);
    this.shown = 0;
    this.setPlaying(false);
    this.setFollow(true);
    this.panelStep = -1;
    this.panelSteps = -1;
    this.panelVersion = -1;
    this.renderer.setModel(this.model);
    this.list.select(runId);
    setText("run-title", runId);
    setText("run-outcome", "");
    $("stage-hint").textContent = "Loading…";
    $("stage-hint").hidden = false;
    this.feed = new RunFeed(this.model, {
      event: (event) => this.onEvent(event),
      state: (state, text) => this.setRunState(state, text),
    });
    this.feed.start();
    this.invalidate();
  }

  onEvent(event) {
    const model = this.model;
    const result = model.apply(event);
    if (result === "start") {
      $("stage-hint").hidden = true;
      this.renderer.setModel(model);
    } else if (result === "step") {
      if (this.follow) this.shown = model.steps.length;
      this.list.updateFromModel(model);
    } else if (result === "finish") {
      this.list.updateFromModel(model);
    }
    if (result !== "dup" && result !== "gap") this.invalidate();
    return result;
  }

  // --- connection status

  setRunState(state, text) {
    this.runState = [state, text];
    if (state === "error") {
      $("stage-hint").textContent = `Cannot open ${this.model.runId}: ${text}`;
      $("stage-hint").hidden = this.renderer.ready();
    }
    this.showConnection();
  }

  setListState(state, text) {
    this.listState = [state, text];
    this.showConnection();
  }

  showConnection() {
    const [state, text] = this.runState || this.listState;
    const node = $("connection-status");
    node.dataset.state = state;
    setText(node, text);
    node.title = `experiment list: ${this.listState[1]}`;
  }

  // --- playback

  setShown(step, byUser) {
    if (!this.model) return;
    const total = this.model.steps.length;
    const clamped = Math.max(0, Math.min(total, Math.round(step)));
    if (byUser && clamped < total && this.follow) this.setFollow(false);
    if (clamped !== this.shown) {
      this.shown = clamped;
      this.invalidate();
    }
  }

  setFollow(on) {
    this.follow = on;
    $("follow-live").checked = on;
    if (on && this.model) {
      this.setPlaying(false);
      this.setShown(this.model.steps.length, false);
    }
  }

  setPlaying(on) {
    this.playing = on;
    const button = $("play");
    button.textContent = on ? "⏸ Pause" : "▶ Play";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      this.lastFrame = 0;
      this.playClock = this.timeAt(this.shown);
      this.requestFrame();
    }
  }

  togglePlay() {
    if (!this.model) return;
    if (this.playing) {
      this.setPlaying(false);
      return;
    }
    if (this.follow) this.setFollow(false);
    if (this.shown >= this.model.steps.length && this.model.finished) this.setShown(0, true);
    this.setPlaying(true);
  }

  timeAt(step) {
    const model = this.model;
    if (!model) return 0;
    if (step > 0 && model.steps[step - 1]) return model.steps[step - 1].t;
    return model.startTime || (model.steps[0] ? model.steps[0].t : 0);
  }

  advance(now) {
    const model = this.model;
    const elapsed = this.lastFrame ? Math.min(now - this.lastFrame, 250) : 0;
    this.lastFrame = now;
    const total = model.steps.length;
    if (this.shown >= total) {
      if (model.finished) this.setPlaying(false);
      else this.playClock = this.timeAt(total); // waiting for the live run
      return;
    }
    if (this.speed === "max") {
      this.setShown(this.shown + Math.max(1, Math.ceil(total / MAX_SPEED_FRAMES)), false);
      return;
    }
    const speed = Number(this.speed) || 1;
    this.playClock += elapsed * speed;
    // Long recorded pauses (a slow model) are shortened to MAX_PLAYBACK_GAP_MS of wall time.
    const next = model.steps[this.shown].t;
    this.playClock = Math.max(this.playClock, next - MAX_PLAYBACK_GAP_MS * speed);
    let step = this.shown;
    while (step < total && model.steps[step].t <= this.playClock) step++;
    this.setShown(step, false);
  }

  // --- rendering

  invalidate() {
    this.canvasDirty = true;
    this.requestFrame();
  }

  requestFrame() {
    if (this.frameQueued) return;
    this.frameQueued = true;
    if (document.hidden) {
      // No animation frames in a hidden tab: keep the text current anyway.
      setTimeout(() => this.frame(performance.now()), 250);
    } else {
      requestAnimationFrame((now) => this.frame(now));
    }
  }

  frame(now) {
    this.frameQueued = false;
    if (this.playing && this.model) this.advance(now);
    if (this.canvasDirty) {
      this.canvasDirty = false;
      this.renderer.draw({
        step: this.shown,
        showPath: this.showPath,
        showSeen: this.showSeen,
        showFog: this.showFog,
        hover: this.hover,
      });
      this.updateControls();
      this.updatePanels();
    }
    if (this.playing) this.requestFrame();
  }

  updateControls() {
    const total = this.model ? this.model.steps.length : 0;
    const scrub = $("scrub");
    if (scrub.max !== String(total)) scrub.max = String(total);
    if (scrub.value !== String(this.shown)) scrub.value = String(this.shown);
    setText("step-counter", `Step ${this.shown} / ${total}`);
    $("step-back").disabled = this.shown <= 0;
    $("step-forward").disabled = this.shown >= total;
  }

  updatePanels() {
    const model = this.model;
    if (!model) return;
    const stepChanged = this.panelStep !== this.shown || this.panelSteps !== model.steps.length;
    if (stepChanged) {
      this.panelStep = this.shown;
      this.panelSteps = model.steps.length;
      this.updateStepPanel();
    }
    if (stepChanged || this.panelVersion !== model.version) {
      this.panelVersion = model.version;
      this.updateRunPanel();
    }
  }

  updateStepPanel() {
    const model = this.model;
    const step = this.shown > 0 ? model.steps[this.shown - 1] : null;
    setText("agent-position", point(model.positionAt(this.shown)));
    if (!step) {
      setText("step-number", model.spec ? "0 (start)" : "–");
      for (const id of ["step-turn", "step-action", "step-move", "step-success", "step-message"]) {
        setText(id, null);
      }
      setText("step-footsteps", model.spec ? 0 : null);
      setText("step-vision", null);
      setText("step-tokens", null);
      setText("step-timings", null);
      setText("step-time", model.startTime ? new Date(model.startTime).toISOString() : null);
      setText("reasoning", null);
      setText("assistant-message", null);
      $("step-success").className = "";
      return;
    }
    const decision = step.decision || {};
    setText("step-number", `${step.step} of ${model.steps.length}`);
    setText("step-turn", step.turn);
    setText("step-action", decision.problem ? `${step.action} (${decision.problem})` : step.action);
    setText("step-move", `${point(step.from)} → ${point(step.to)}`);
    setText("step-success", step.success ? "yes" : "no");
    $("step-success").className = step.success ? "ok" : "bad";
    setText("step-footsteps", step.footsteps);
    const tiles = (step.tiles_seen || []).length;
    const vision = [`${tiles} tiles`];
    if (step.goal_seen) vision.push("goal in view");
    if (step.goal_reached) vision.push("on the goal");
    setText("step-vision", vision.join(", "));
    setText("step-message", step.message);
    setText("reasoning", decision.reasoning === null || decision.reasoning === undefined ? "(none)" : decision.reasoning);
    setText(
      "assistant-message",
      decision.assistant_message === null || decision.assistant_message === undefined
        ? "(none)"
        : decision.assistant_message,
    );
    const call = step.call;
    const runTokens = `run so far ${num(step.inputTokens)} in / ${num(step.outputTokens)} out`;
    if (call) {
      setText("step-tokens", `${num(call.input_tokens)} in / ${num(call.output_tokens)} out (${runTokens})`);
      const timings = [
        ms(call.duration_ms) && `call ${ms(call.duration_ms)}`,
        ms(call.prompt_eval_ms) && `prompt ${ms(call.prompt_eval_ms)}`,
        ms(call.eval_ms) && `generation ${ms(call.eval_ms)}`,
        call.tokens_per_second ? `${call.tokens_per_second.toFixed(1)} tok/s` : null,
        call.attempts > 1 ? `${call.attempts} attempts` : null,
      ].filter(Boolean);
      setText("step-timings", timings.join(" · "));
    } else {
      setText("step-tokens", decision.call_id ? runTokens : `no model call (${runTokens})`);
      setText("step-timings", null);
    }
    const since = model.startTime ? ` (+${seconds((step.t - model.startTime) / 1000)})` : "";
    setText("step-time", `${step.time}${since}`);
  }

  updateRunPanel() {
    const model = this.model;
    const spec = model.spec;
    setText("run-id", model.runId);
    if (!spec) {
      for (const id of ["run-agent", "run-prompt", "run-maze", "run-start", "run-goal", "run-limits"]) {
        setText(id, null);
      }
      setText("run-status", null);
      setText("run-totals", null);
      setText("run-comment", null);
      setText("run-labels", null);
      setText("run-warnings", null);
      return;
    }
    const agent = spec.agent || {};
    const options = agent.options || {};
    const extras = [];
    if (agent.seed !== null && agent.seed !== undefined) extras.push(`seed ${agent.seed}`);
    if (options.temperature !== null && options.temperature !== undefined) {
      extras.push(`temperature ${options.temperature}`);
    }
    if (options.num_ctx) extras.push(`num_ctx ${options.num_ctx}`);
    setText("run-agent", `${agent.provider}:${agent.model}${extras.length ? ` (${extras.join(", ")})` : ""}`);
    setText("run-prompt", spec.prompt ? spec.prompt.version : null);
    const maze = spec.maze || {};
    const rules = spec.rules || {};
    const seeThrough = rules.see_through_walls ?? maze.see_through_walls;
    setText(
      "run-maze",
      `${maze.name || "?"} ${model.width}×${model.height}, vision ${rules.vision_range ?? "?"}${
        seeThrough ? ", sees through walls" : ""
      }`,
    );
    setText("run-start", point(model.start));
    setText("run-goal", model.goals.length ? model.goals.slice(0, 4).map(point).join(" ") : "none");
    const limits = spec.limits || {};
    const parts = [];
    if (limits.max_footsteps) parts.push(`${limits.max_footsteps} footsteps`);
    if (limits.max_actions) parts.push(`${limits.max_actions} actions`);
    if (limits.max_duration_seconds) parts.push(seconds(limits.max_duration_seconds));
    if (limits.max_tokens) parts.push(`${num(limits.max_tokens)} tokens`);
    if (limits.max_cost_usd) parts.push(usd(limits.max_cost_usd));
    if (limits.loop_revisit_limit) parts.push(`loop ${limits.loop_revisit_limit}`);
    parts.push(`goal ${limits.goal_rule || "seen"}`);
    setText("run-limits", parts.join(", "));
    setText("run-comment", spec.comment);
    const labels = Object.entries(spec.labels || {}).map(([k, v]) => `${k}=${v}`);
    setText("run-labels", labels.join(", "));
    setText("run-warnings", model.warnings.join("; "));

    const status = model.status();
    const outcome = OUTCOMES[status] || { marker: "?", label: status, css: "" };
    const finished = model.finished;
    const last = model.steps[model.steps.length - 1];
    if (finished) {
      const error = finished.error ? ` — ${finished.error.error_class}: ${finished.error.message}` : "";
      setText("run-status", `${outcome.marker} ${finished.stop_reason}: ${finished.detail}${error}`);
      setText(
        "run-totals",
        `${num(finished.footsteps)} footsteps, ${num(finished.actions)} actions, ${num(finished.turns)} turns, ` +
          `${num(finished.model_calls)} model calls, ${num(finished.input_tokens)} in / ` +
          `${num(finished.output_tokens)} out tokens, ${usd(finished.cost_usd)}, ${seconds(finished.duration_seconds)}`,
      );
    } else {
      setText("run-status", model.cancel ? "running (cancel requested)" : "running");
      setText(
        "run-totals",
        `${num(last ? last.footsteps : 0)} footsteps, ${num(model.steps.length)} actions, ` +
          `${num(model.modelCalls)} model calls, ${num(model.inputTokens)} in / ${num(model.outputTokens)} out tokens`,
      );
    }
    $("run-status").className = outcome.css || "";
    const heading = $("run-outcome");
    setText(heading, `${outcome.marker} ${outcome.label}`);
    heading.className = `run-outcome ${outcome.css || ""}`;
  }

  // --- controls

  savePrefs() {
    saveJson(STORAGE_PREFS, {
      speed: this.speed,
      showPath: this.showPath,
      showSeen: this.showSeen,
      showFog: this.showFog,
    });
  }

  bindControls() {
    $("play").addEventListener("click", () => this.togglePlay());
    $("step-back").addEventListener("click", () => this.stepBy(-1));
    $("step-forward").addEventListener("click", () => this.stepBy(1));
    $("step-first").addEventListener("click", () => this.jump(0));
    $("step-last").addEventListener("click", () => this.jump(Infinity));
    $("scrub").addEventListener("input", (event) => {
      this.setPlaying(false);
      this.setShown(Number(event.target.value), true);
    });
    $("follow-live").addEventListener("change", (event) => this.setFollow(event.target.checked));

    const speed = $("speed");
    speed.value = this.speed;
    if (speed.value !== this.speed) speed.value = this.speed = "10";
    speed.addEventListener("change", () => {
      this.speed = speed.value;
      this.playClock = this.timeAt(this.shown);
      this.savePrefs();
    });
    for (const [id, key] of [
      ["show-path", "showPath"],
      ["show-seen", "showSeen"],
      ["show-fog", "showFog"],
    ]) {
      const box = $(id);
      box.checked = this[key];
      box.addEventListener("change", () => {
        this[key] = box.checked;
        this.savePrefs();
        this.invalidate();
      });
    }

    const canvas = $("maze-canvas");
    const coord = $("hover-coord");
    canvas.addEventListener("mousemove", (event) => {
      const tile = this.renderer.tileAt(event.clientX, event.clientY);
      const same = tile && this.hover && tile.x === this.hover.x && tile.y === this.hover.y;
      if (same || (!tile && !this.hover)) return;
      this.hover = tile;
      if (tile) {
        const code = this.model.grid[tile.y * this.model.width + tile.x];
        const kind = ["empty", "wall", "goal"][code] || `code ${code}`;
        setText(coord, `(${tile.x}, ${tile.y}) ${kind}`);
      }
      coord.hidden = !tile;
      this.invalidate();
    });
    canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      coord.hidden = true;
      this.invalidate();
    });

    new ResizeObserver(() => {
      this.renderer.layout();
      this.invalidate();
    }).observe($("canvas-wrap"));
    window.matchMedia?.(`(resolution: ${window.devicePixelRatio || 1}dppx)`)?.addEventListener?.("change", () => {
      this.renderer.layout();
      this.invalidate();
    });

    document.addEventListener("keydown", (event) => this.onKey(event));
  }

  stepBy(delta) {
    this.setPlaying(false);
    this.setShown(this.shown + delta, true);
  }

  jump(step) {
    if (!this.model) return;
    this.setPlaying(false);
    this.setShown(Math.min(step, this.model.steps.length), true);
  }

  onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
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
        this.togglePlay();
        break;
      case "ArrowLeft":
        this.stepBy(-big);
        break;
      case "ArrowRight":
        this.stepBy(big);
        break;
      case "Home":
        this.jump(0);
        break;
      case "End":
        this.jump(Infinity);
        break;
      case "f":
        this.setFollow(!this.follow);
        break;
      case "p":
        $("show-path").click();
        break;
      case "s":
        $("show-seen").click();
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  }

  // --- settings

  buildSettings() {
    const toggle = $("settings-toggle");
    const panel = $("settings");
    toggle.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      toggle.setAttribute("aria-expanded", panel.hidden ? "false" : "true");
      this.renderer.layout();
      this.invalidate();
    });
    const form = $("settings-form");
    const inputs = {};
    const refresh = () => {
      const colors = currentColors();
      for (const [key] of COLOR_KEYS) inputs[key].value = hex(colors[key]);
      this.renderer.setColors(colors);
      this.invalidate();
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
}

const viewer = new Viewer();
window.orioleViewer = viewer; // for debugging from the console
viewer.start();
