// The Batches page (`#batches`, `#batch=ID`): the list of batches, and for one batch its
// live progress (`/ws/batches/{id}`), the arm table and the pairwise comparisons from its
// comparison report (`GET /api/batches/{id}/report`), re-read as runs end (at most about
// once a second), and the runs of an arm, which open in the run viewer.
//
// Batch names, labels and arm names are user input: only ever inserted as text.

import { apiGet } from "./api.js";
import { BatchFeed, BatchProgress } from "./batch_feed.js";
import {
  renderArmRuns,
  renderArms,
  renderBatchList,
  renderComparisons,
  renderProgress,
  statusText,
} from "./batch_view.js";
import { $, h, num, setText, shortTime } from "./format.js";

const LIST_LIMIT = 100;
/** The list of batches is re-read this often while the page is shown. */
const LIST_POLL_MS = 5000;
/** At most one report request per this many ms. */
const REPORT_INTERVAL_MS = 1000;
/** Re-reads while the report has fewer runs than the feed says ended (the projections lag). */
const REPORT_CHASES = 10;

export class BatchesPage {
  constructor(app) {
    this.app = app;
    this.visible = false;
    this.batches = [];
    this.batchId = null;
    this.batch = null; // the batch's row (GET /api/batches/{id}), merged with the feed's counts
    this.listTimer = null;
    this.feed = null;
    this.progress = null;
    this.report = null;
    this.arm = null;
    this.generation = 0;
    this.batchLoading = false;
    this.showQueued = false;
    this.reportTimer = null;
    this.reportBusy = false;
    this.reportWanted = false;
    this.lastReportAt = 0;
    this.chases = 0;
    this.progressNodes = { bar: $("batch-progress-bar"), text: $("batch-progress"), status: $("batch-status") };
    this.runNodes = { section: $("arm-runs"), title: $("arm-runs-title"), list: $("arm-runs-list") };
    $("batches-refresh").addEventListener("click", () => this.loadList());
    $("batch-baseline").addEventListener("change", () => {
      this.chases = 0;
      this.requestReport();
    });
  }

  // --- showing and hiding (the viewer routes by URL hash)

  show(batchId) {
    $("batches-page").hidden = false;
    if (!this.visible) {
      this.visible = true;
      this.loadList();
      this.listTimer = setInterval(() => this.loadList(), LIST_POLL_MS);
    }
    if (batchId !== this.batchId) this.select(batchId);
  }

  hide() {
    $("batches-page").hidden = true;
    if (!this.visible) return;
    this.visible = false;
    clearInterval(this.listTimer);
    this.listTimer = null;
    this.select(null);
  }

  // --- the list of batches

  async loadList() {
    try {
      const body = await apiGet(`/api/batches?limit=${LIST_LIMIT}`);
      this.batches = Array.isArray(body.batches) ? body.batches : [];
      this.showListMessage(this.batches.length ? "" : "No batches yet.");
    } catch (error) {
      this.showListMessage(`Could not load batches: ${error.message}`, true);
    }
    this.renderList();
  }

  showListMessage(text, isError = false) {
    const node = $("batches-message");
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  renderList() {
    renderBatchList($("batch-list"), this.batches, this.batchId, this.batch);
  }

  // --- one batch

  select(batchId) {
    this.generation += 1;
    if (this.feed) this.feed.close();
    if (this.reportTimer) clearTimeout(this.reportTimer);
    Object.assign(this, { feed: null, progress: null, report: null, arm: null, batch: null });
    Object.assign(this, { reportTimer: null, reportBusy: false, reportWanted: false, chases: 0 });
    Object.assign(this, { batchLoading: false, showQueued: false });
    this.batchId = batchId;
    $("batch-detail").hidden = !batchId;
    $("batch-none").hidden = Boolean(batchId);
    for (const id of ["arm-table-body", "arm-table-foot", "comparison-table-body", "arm-runs-list"]) {
      $(id).replaceChildren();
    }
    $("arm-runs").hidden = true;
    $("batch-baseline").replaceChildren(h("option", { value: "" }, "every pair"));
    this.showReportMessage("");
    this.renderList();
    if (!batchId) return;
    setText("batch-title", batchId);
    setText("batch-meta", null);
    renderProgress(this.progressNodes, null, "…");
    this.loadBatch(batchId, this.generation);
    this.progress = new BatchProgress(batchId);
    this.feed = new BatchFeed(this.progress, {
      event: (event, type) => this.onEvent(type),
      state: (state, text) => {
        const node = $("batch-feed-status");
        node.dataset.state = state;
        setText(node, text);
        if (state === "finished") this.loadBatch(batchId, this.generation);
      },
    });
    this.feed.connect();
    this.requestReport();
  }

  async loadBatch(batchId, generation) {
    this.batchLoading = true;
    try {
      const body = await apiGet(`/api/batches/${encodeURIComponent(batchId)}`);
      if (generation !== this.generation) return;
      this.batch = { ...body.batch };
      this.mergeProgress();
      this.showBatch();
    } catch (error) {
      if (generation !== this.generation) return;
      setText("batch-meta", `Could not load the batch: ${error.message}`);
    } finally {
      if (generation === this.generation) this.batchLoading = false;
    }
  }

  /** Show the batch at the next animation frame (a feed may bring many events at once). */
  scheduleShow() {
    if (this.showQueued) return;
    this.showQueued = true;
    const generation = this.generation;
    const show = () => {
      this.showQueued = false;
      if (generation === this.generation) this.showBatch();
    };
    if (document.hidden) setTimeout(show, 250); // no animation frames in a hidden tab
    else requestAnimationFrame(show);
  }

  showBatch() {
    const batch = this.batch || {};
    const progress = this.progress;
    setText("batch-title", batch.name || (progress && progress.name) || this.batchId);
    const labels = Object.entries(batch.labels || (progress && progress.labels) || {})
      .map(([key, value]) => `${key}=${value}`)
      .join(", ");
    const meta = [
      this.batchId,
      batch.started_at ? `started ${shortTime(batch.started_at)}` : "",
      batch.requested_by ? `by ${batch.requested_by}` : "",
      labels ? `labels ${labels}` : "",
    ].filter(Boolean);
    setText("batch-meta", meta.join(" · "));
    let status = this.batch ? statusText(batch) : progress && progress.lastSeq ? progress.status : "…";
    if (progress && progress.status !== "running") {
      status = progress.stopReason ? `${progress.status} (${progress.stopReason})` : progress.status;
    }
    renderProgress(this.progressNodes, (progress && progress.counts) || batch, status);
    const problems = (progress && progress.problems.length ? progress.problems : batch.problems) || [];
    if (problems.length) {
      const text = problems.map((p) => `${p.field}: ${p.reason}`).join("; ");
      this.showReportMessage(`Rejected: ${text}`, true);
    }
    this.renderList();
  }

  /** The feed is fresher than the batch's row (the projector may lag): its counts and end win. */
  mergeProgress() {
    const progress = this.progress;
    if (!progress || !this.batch) return;
    if (progress.counts) Object.assign(this.batch, progress.counts);
    if (progress.status !== "running") {
      this.batch.status = progress.status;
      this.batch.stop_reason = progress.stopReason;
    }
  }

  onEvent(type) {
    this.mergeProgress();
    // A batch requested a moment ago may not have been readable when it was opened.
    if (!this.batch && !this.batchLoading) this.loadBatch(this.batchId, this.generation);
    if (type !== "batch.run_launched") this.scheduleShow();
    if (type === "batch.run_ended" || type === "batch.finished") {
      this.chases = 0;
      this.requestReport();
    }
  }

  // --- the comparison report: re-read as runs end, at most once per REPORT_INTERVAL_MS

  requestReport() {
    this.reportWanted = true;
    if (this.reportTimer || this.reportBusy || !this.batchId) return;
    const wait = Math.max(0, this.lastReportAt + REPORT_INTERVAL_MS - Date.now());
    this.reportTimer = setTimeout(() => this.fetchReport(), wait);
  }

  async fetchReport() {
    this.reportTimer = null;
    const { batchId, generation } = this;
    if (!batchId || !this.reportWanted) return;
    this.reportWanted = false;
    this.reportBusy = true;
    this.lastReportAt = Date.now();
    try {
      const baseline = $("batch-baseline").value;
      const query = baseline ? `?${new URLSearchParams({ baseline })}` : "";
      const report = await apiGet(`/api/batches/${encodeURIComponent(batchId)}/report${query}`);
      if (generation !== this.generation) return;
      this.showReport(report);
      this.showReportMessage("");
      // A run's end reaches the feed before its row is projected: read again shortly.
      const ended = this.progress ? this.progress.runsEnded : 0;
      if ((report.runs || 0) < ended && this.chases < REPORT_CHASES) {
        this.chases += 1;
        this.reportWanted = true;
      }
    } catch (error) {
      if (generation !== this.generation) return;
      this.showReportMessage(`Could not load the comparison report: ${error.message}`, true);
    } finally {
      if (generation === this.generation) {
        this.reportBusy = false;
        if (this.reportWanted) this.requestReport();
      }
    }
  }

  showReportMessage(text, isError = false) {
    const node = $("report-message");
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  showReport(report) {
    this.report = report;
    const factors = (report.factors || []).join(", ");
    const summary = [
      `${num(report.runs || 0)} finished runs`,
      report.running ? `${num(report.running)} running` : "",
      factors ? `arms by ${factors}` : "",
      report.confidence ? `${Math.round(report.confidence * 100)}% intervals` : "",
    ].filter(Boolean);
    setText("report-summary", summary.join(" · "));
    renderArms($("arm-table-body"), $("arm-table-foot"), report, this.arm, (arm) => this.selectArm(arm));
    renderComparisons($("comparison-table-body"), report);
    this.updateBaselines(report);
    if (this.arm) renderArmRuns(this.runNodes, report, this.arm, (runId) => this.openRun(runId));
  }

  updateBaselines(report) {
    const select = $("batch-baseline");
    const wanted = ["", ...(report.arms || []).map((arm) => String(arm.arm))];
    const current = [...select.options].map((option) => option.value);
    if (wanted.length === current.length && wanted.every((value, i) => value === current[i])) return;
    const chosen = select.value;
    const options = wanted.map((value) => {
      const option = h("option", {}, value ? `vs ${value}` : "every pair");
      option.value = value;
      return option;
    });
    select.replaceChildren(...options);
    select.value = wanted.includes(chosen) ? chosen : "";
  }

  selectArm(arm) {
    this.arm = arm;
    if (!this.report) return;
    for (const row of $("arm-table-body").children) {
      row.classList.toggle("selected", row.dataset.arm === arm);
    }
    renderArmRuns(this.runNodes, this.report, arm, (runId) => this.openRun(runId));
    $("arm-runs").scrollIntoView({ block: "nearest" });
  }

  /** Open a run of the batch in the run viewer, its list showing the batch's runs. */
  openRun(runId) {
    this.app.list.setBatchFilter(this.batchId);
    this.app.navigate(runId);
  }
}
