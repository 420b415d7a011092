// The experiment list: the archive (GET /api/experiments) merged with the all-runs feed.
// Each row: status, run id, model and steps, maze and start time, labels. The batch filter
// shows only the runs labelled `batch_id=ID` (the API's `label=batch_id:ID`); labels are
// user input, only ever inserted as text.

import { HttpError, TOKEN, apiGet } from "./api.js";
import { ListFeed } from "./feeds.js";
import { $, h, setText, shortTime } from "./format.js";
import { OUTCOMES, statusOfFinish } from "./run_model.js";

const LIST_LIMIT = 100;

export class ExperimentList {
  constructor(app) {
    this.app = app;
    this.items = new Map(); // run_id -> { data, li }
    this.listNode = $("experiment-list");
    this.message = $("list-message");
    this.filter = "";
    this.batch = ""; // only the runs of this batch (label batch_id), or every run
    this.generation = 0; // a load answered after the batch filter changed is dropped
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
    const batch = $("list-batch");
    batch.addEventListener("change", () => this.setBatchFilter(batch.value));
    batch.addEventListener("focus", () => this.loadBatchOptions());
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

  /** The API query for the list's filters (and `extra`, e.g. paging). */
  query(extra = {}) {
    const query = new URLSearchParams({ limit: String(LIST_LIMIT), ...extra });
    if (this.batch) query.append("label", `batch_id:${this.batch}`);
    return `/api/experiments?${query}`;
  }

  /** Show only the runs of batch `batchId` ("" or null: every run), reloaded from the API. */
  setBatchFilter(batchId) {
    const batch = (batchId || "").trim();
    $("list-batch").value = batch;
    if (batch === this.batch) return;
    this.batch = batch;
    this.generation += 1;
    this.items = new Map();
    this.oldest = null;
    this.listNode.replaceChildren();
    $("list-more").hidden = true;
    this.showMessage("Loading…");
    this.load();
  }

  async loadBatchOptions() {
    try {
      const body = await apiGet("/api/batches?limit=100");
      const options = (body.batches || []).map((batch) => {
        const option = h("option", {}, String(batch.name || batch.batch_id));
        option.value = String(batch.batch_id);
        return option;
      });
      $("list-batch-options").replaceChildren(...options);
    } catch {
      // only suggestions: typing a batch id works without them
    }
  }

  async load() {
    const generation = this.generation;
    try {
      const body = await apiGet(this.query());
      if (generation !== this.generation) return;
      const experiments = body.experiments || [];
      for (const experiment of experiments) this.merge(experiment);
      if (this.oldest === null || experiments.length) {
        this.trackOldest(experiments);
        $("list-more").hidden = experiments.length < LIST_LIMIT;
      }
      const none = this.batch ? `No experiments in batch ${this.batch}.` : "No experiments yet.";
      this.showMessage(this.items.size ? "" : none);
      this.render();
    } catch (error) {
      if (generation !== this.generation) return;
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
    const generation = this.generation;
    try {
      const body = await apiGet(this.query({ before: this.oldest }));
      if (generation !== this.generation) return;
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
    this.app.lineage.onFrame(frame); // a new fork of the open run, or the end of one
    let item = this.items.get(runId);
    // Batch run ids start with the batch id (docs/batches.md): others are not in the batch.
    if (!item && this.batch && !runId.startsWith(`${this.batch}:`)) return;
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
    const labels = Object.entries(data.labels || {}).map(([key, value]) => `${key}=${value}`);
    const haystack = [data.run_id, data.model_name, data.provider, data.comment, data.maze_name, data.status, ...labels]
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
      h("span", { class: "exp-where" }, h("span", { class: "exp-maze" }), h("span", { class: "exp-time" })),
      h("span", { class: "exp-labels" }),
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
    const [marker, id, meta, where, labels] = li.firstChild.children;
    setText(marker.firstChild, outcome.marker);
    marker.title = outcome.label;
    setText(id, data.run_id);
    const model = data.model_name ? `${data.provider ? `${data.provider}:` : ""}${data.model_name}` : "…";
    const steps = data.actions === undefined || data.actions === null ? "" : ` · ${data.actions} steps`;
    setText(meta, `${model}${steps} · ${outcome.label}`);
    setText(where.firstChild, data.maze_name || "…");
    setText(where.lastChild, data.started_at ? shortTime(data.started_at) : "…");
    showLabels(labels, data.labels);
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

/** Labels as "key=value" chips by key (text only), rebuilt only when they change. */
function showLabels(node, labels) {
  const pairs = Object.entries(labels && typeof labels === "object" ? labels : {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`);
  const key = JSON.stringify(pairs);
  if (node.dataset.labels === key) return;
  node.dataset.labels = key;
  node.replaceChildren(...pairs.map((pair) => h("span", { class: "label-chip" }, pair)));
}
