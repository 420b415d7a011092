// Oriole viewer: the experiment list, and one run replayed or followed live on a canvas.
//
// Plain ES modules, no build step, no external resources. The gateway contract is
// docs/gateway.md: `GET /api/experiments`, the `/ws/runs` feed (list updates) and
// `/ws/runs/{run_id}?after_seq=N` (every event of one run, archive then live).
//
// Security: run data (reasoning, messages, comments, ids...) is only ever inserted as text
// (textContent / text nodes), never parsed as HTML.
//
// Modules: api.js, feeds.js (websockets), run_model.js (the fold), renderer.js, viewport.js,
// colors.js, legend.js (the canvas), navigation.js (zoom, pan), list.js, panels.js, controls.js,
// settings.js, lineage.js (parent and forks), fork_form.js ("Fork from here"); the Batches page
// (`#batches`, `#batch=ID`): batches.js, batch_feed.js, batch_view.js.

import { BatchesPage } from "./batches.js";
import { STORAGE_COLORS, applyCustomColors } from "./colors.js";
import { bindControls } from "./controls.js";
import { RunFeed } from "./feeds.js";
import { ForkForm } from "./fork_form.js";
import { $, loadJson, saveJson, setText } from "./format.js";
import { buildLegend } from "./legend.js";
import { Lineage } from "./lineage.js";
import { ExperimentList } from "./list.js";
import { showView } from "./navigation.js";
import { showRun, showStep } from "./panels.js";
import { MazeRenderer } from "./renderer.js";
import { RunModel } from "./run_model.js";
import { buildSettings } from "./settings.js";

const STORAGE_PREFS = "oriole.viewer.prefs";
/** A recorded pause longer than this (in wall-clock ms at the chosen speed) is shortened. */
const MAX_PLAYBACK_GAP_MS = 2000;
/** "max" speed plays a whole run in about this many animation frames. */
const MAX_SPEED_FRAMES = 600;
/**
 * A run this page has just started (a fork) is retried this long while the gateway does not
 * know it yet: it waits a few seconds for a run's first event, a busy worker may take longer.
 */
const EXPECTED_RUN_MS = 60000;

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
    this.page = "runs";
    this.expected = null; // { runId, until }: a run this page started, not yet seen
    this.retryTimer = null;

    const prefs = loadJson(STORAGE_PREFS);
    this.speed = prefs.speed || "10";
    this.showPath = prefs.showPath !== false;
    this.showSeen = prefs.showSeen !== false;
    this.showFog = prefs.showFog === true;

    applyCustomColors(loadJson(STORAGE_COLORS));
    this.renderer = new MazeRenderer($("maze-canvas"), $("canvas-wrap"));
    this.legend = buildLegend();
    this.lineage = new Lineage();
    this.list = new ExperimentList(this);
    this.forkForm = new ForkForm(this);
    this.batches = new BatchesPage(this);
    bindControls(this);
    buildSettings(this);
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
    const hash = window.location.hash;
    const match = /^#(run|batch)=(.+)$/.exec(hash);
    let id = null;
    if (match) {
      try {
        id = decodeURIComponent(match[2]);
      } catch {
        return;
      }
    }
    if (hash === "#batches" || (match && match[1] === "batch")) {
      this.showPage("batches");
      this.batches.show(id);
      return;
    }
    this.showPage("runs");
    if (!match) return;
    const runId = id;
    if (!this.model || this.model.runId !== runId || (this.runState && this.runState[0] === "error")) {
      this.openRun(runId);
    }
  }

  /** "runs" (the experiment list and the run viewer) or "batches". */
  showPage(page) {
    this.page = page;
    document.body.dataset.page = page;
    $("runs-page").hidden = page !== "runs";
    if (page !== "batches") this.batches.hide();
    for (const [id, name] of [
      ["tab-runs", "runs"],
      ["tab-batches", "batches"],
    ]) {
      if (page === name) $(id).setAttribute("aria-current", "page");
      else $(id).removeAttribute("aria-current");
    }
  }

  openRun(runId) {
    if (this.feed) this.feed.close();
    $("tab-runs").setAttribute("href", `#run=${encodeURIComponent(runId)}`);
    this.model = new RunModel(runId);
    this.shown = 0;
    this.setPlaying(false);
    this.setFollow(true);
    this.panelStep = -1;
    this.panelSteps = -1;
    this.panelVersion = -1;
    this.renderer.setModel(this.model);
    this.legend.showFork(false);
    this.lineage.open(runId);
    this.forkForm.close();
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
      this.legend.showFork(Boolean(model.forkOf));
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

  /** The run this page has just started and is about to open (see EXPECTED_RUN_MS). */
  expectRun(runId) {
    this.expected = { runId, until: Date.now() + EXPECTED_RUN_MS };
  }

  /** Whether an error of the open run's feed is the wait for a run this page started. */
  retryExpected(state, text) {
    const expected = this.expected;
    const model = this.model;
    if (state !== "error" || !expected || !model || model.runId !== expected.runId) return false;
    // A start the worker rejected is final (docs/gateway.md: "its start was rejected").
    if (model.lastSeq > 0 || Date.now() > expected.until || /start was rejected/.test(text)) return false;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.model === model) this.openRun(expected.runId);
    }, 1000);
    return true;
  }

  setRunState(state, text) {
    if (this.retryExpected(state, text)) {
      this.runState = ["connecting", "waiting for the new run to start…"];
      this.showConnection();
      return;
    }
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
      this.renderer.draw(this.viewState());
      showView(this);
      this.updateControls();
      this.updatePanels();
    }
    if (this.playing) this.requestFrame();
  }

  /** What the renderer draws: the shown step and the overlays switched on. */
  viewState() {
    const { showPath, showSeen, showFog, hover } = this;
    return { step: this.shown, showPath, showSeen, showFog, hover };
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
      showStep(model, this.shown);
    }
    if (stepChanged || this.panelVersion !== model.version) {
      this.panelVersion = model.version;
      showRun(model);
      this.lineage.showParent(model);
      this.forkForm.update();
    }
  }

  // --- controls (wired in controls.js)

  savePrefs() {
    saveJson(STORAGE_PREFS, {
      speed: this.speed,
      showPath: this.showPath,
      showSeen: this.showSeen,
      showFog: this.showFog,
    });
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
}

const viewer = new Viewer();
window.orioleViewer = viewer; // for debugging from the console
viewer.start();
