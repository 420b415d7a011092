// A run's lineage in the run panel: the run it was forked from (its run.started's
// `spec.fork_of`) and its own forks (`GET /api/experiments?forked_from=ID`, kept current by
// the all-runs feed, whose run.started summaries name a fork's parent).
//
// Run ids, models and statuses come from the server: they are only ever inserted as text.

import { apiGet } from "./api.js";
import { $, h, setText } from "./format.js";
import { OUTCOMES } from "./run_model.js";

/** Forks listed at most (the API's `forked_from` filter pages through more). */
const CHILDREN_LIMIT = 200;

const runLink = (runId) => h("a", { href: `#run=${encodeURIComponent(runId)}`, "data-run-id": runId }, runId);

export class Lineage {
  constructor() {
    this.runId = null;
    this.children = new Map(); // run_id -> { run_id, fork_step, provider, model_name, status, success }
    this.generation = 0; // an answer for a run no longer open is dropped
    this.state = "idle"; // loading | loaded | error
    this.error = "";
    this.more = false;
    this.parentShown = undefined;
  }

  /** A run was opened: no parent known until its run.started, its forks read again. */
  open(runId) {
    this.runId = runId;
    this.children = new Map();
    this.generation += 1;
    this.state = "loading";
    this.showParent(null);
    this.render();
    this.load();
  }

  async load() {
    const generation = this.generation;
    const query = new URLSearchParams({ forked_from: this.runId, limit: String(CHILDREN_LIMIT) });
    try {
      const body = await apiGet(`/api/experiments?${query}`);
      if (generation !== this.generation) return;
      const experiments = body.experiments || [];
      // Newest first from the API; listed oldest first, as forks are added by the feed.
      for (const experiment of [...experiments].reverse()) this.merge(experiment.run_id, experiment);
      this.more = experiments.length >= CHILDREN_LIMIT;
      this.state = "loaded";
    } catch (error) {
      if (generation !== this.generation) return;
      this.state = "error";
      this.error = error.message;
    }
    this.render();
  }

  merge(runId, fields) {
    if (!runId) return;
    const known = this.children.get(runId) || { run_id: runId };
    for (const key of ["fork_step", "provider", "model_name", "status", "success"]) {
      const value = fields[key];
      // The archive may lag behind the feed: a finished fork never shows as running again.
      if (key === "status" && value === "running" && known.status && known.status !== "running") continue;
      if (value !== undefined && value !== null) known[key] = value;
    }
    this.children.set(runId, known);
  }

  /** A frame of the all-runs feed: a new fork of the open run, or the end of one. */
  onFrame(frame) {
    if (!this.runId || !frame || !frame.run_id) return;
    const summary = frame.summary && typeof frame.summary === "object" ? frame.summary : {};
    const isNewChild = frame.type === "run.started" && summary.forked_from === this.runId;
    if (isNewChild || (frame.type === "run.finished" && this.children.has(frame.run_id))) {
      this.merge(frame.run_id, summary);
      this.render();
    }
  }

  /** "forked from PARENT at step K" for a fork (from the run's own run.started). */
  showParent(model) {
    const forkOf = model ? model.forkOf : null;
    const started = Boolean(model && model.spec);
    const key = forkOf ? `fork ${forkOf.run_id}@${forkOf.after_step}` : started ? "plain" : "unknown";
    if (key === this.parentShown) return;
    this.parentShown = key;
    const node = $("run-lineage");
    if (!forkOf) {
      node.replaceChildren();
      setText(node, started ? "not a fork" : null);
      return;
    }
    node.replaceChildren("forked from ", runLink(String(forkOf.run_id)), ` at step ${forkOf.after_step}`);
  }

  render() {
    const node = $("run-children");
    if (this.state === "error" && !this.children.size) {
      node.replaceChildren();
      setText(node, `could not be read: ${this.error}`);
      return;
    }
    if (!this.children.size) {
      node.replaceChildren();
      setText(node, this.state === "loading" ? "…" : "none");
      return;
    }
    const items = [...this.children.values()].map((child) => {
      const outcome = OUTCOMES[child.status] || { marker: "?", label: child.status || "?" };
      const agent = child.model_name ? `${child.provider ? `${child.provider}:` : ""}${child.model_name}` : "…";
      const step = child.fork_step === undefined ? "" : `at step ${child.fork_step} · `;
      const facts = h("span", { class: "lineage-facts" }, `${step}${agent} · ${outcome.marker} ${outcome.label}`);
      const item = h("li", { "data-run-id": child.run_id }, runLink(String(child.run_id)), facts);
      item.dataset.status = child.status || "";
      return item;
    });
    if (this.more) items.push(h("li", { class: "lineage-facts" }, `(the newest ${CHILDREN_LIMIT} only)`));
    node.replaceChildren(h("ul", { class: "lineage-list" }, ...items));
  }
}
