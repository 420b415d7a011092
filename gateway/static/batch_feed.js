// `/ws/batches/{batch_id}`: one batch's event log (archive, then live), folded into its
// progress, with reconnection from the last seq received (docs/gateway.md).

import { wsUrl } from "./api.js";
import { ResumingFeed } from "./resuming_feed.js";

/** What the batch's events say so far: the counts, the end, and how many runs ended. */
export class BatchProgress {
  constructor(batchId) {
    this.batchId = batchId;
    this.lastSeq = 0;
    this.name = null;
    this.labels = {};
    this.counts = null; // planned, launched, finished, succeeded, failed, in_flight, spent_usd, spent_tokens
    this.planned = 0;
    this.runsEnded = 0; // attempts ended (retries included)
    this.status = "running";
    this.stopReason = null;
    this.detail = null;
    this.problems = [];
    this.warnings = [];
  }

  /** Fold one event; "dup" for a seq already seen, else its type. */
  apply(event) {
    if (!event || typeof event.seq !== "number" || event.seq <= this.lastSeq) return "dup";
    this.lastSeq = event.seq;
    const payload = event.payload || {};
    switch (event.type) {
      case "batch.started":
        this.name = payload.name || null;
        this.labels = payload.labels || {};
        this.planned = Array.isArray(payload.runs) ? payload.runs.length : 0;
        this.warnings = payload.warnings || [];
        break;
      case "batch.rejected":
        this.status = "rejected";
        this.problems = payload.problems || [];
        break;
      case "batch.run_ended":
        this.runsEnded += 1;
        break;
      case "batch.progress":
        this.counts = { ...payload };
        break;
      case "batch.finished":
        this.status = "finished";
        this.stopReason = payload.stop_reason || null;
        this.detail = payload.detail || null;
        if (payload.counts) this.counts = { ...payload.counts };
        break;
      default:
        break;
    }
    return event.type;
  }
}

/** The feed of one batch; handlers: { event(event, result, live), state(state, text) }. */
export class BatchFeed extends ResumingFeed {
  constructor(progress, handlers) {
    super(handlers);
    this.progress = progress;
    this.noun = "batch";
  }

  url(from) {
    return wsUrl(`/ws/batches/${encodeURIComponent(this.progress.batchId)}`, { after_seq: from });
  }

  lastSeq() {
    return this.progress.lastSeq;
  }

  onEvent(frame) {
    if (frame.kind !== "batch_event") return;
    const result = this.progress.apply(frame.event);
    if (result !== "dup") this.handlers.event(frame.event, result, this.caughtUp);
  }
}
