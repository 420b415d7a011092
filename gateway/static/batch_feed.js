// `/ws/batches/{batch_id}`: one batch's event log (archive, then live), folded into its
// progress, with reconnection from the last seq received (docs/gateway.md).

import { backoff, probeAuth, wsUrl } from "./api.js";
import { CLOSE } from "./close_codes.js";

const FATAL_CLOSE = {
  [CLOSE.UNKNOWN_RUN]: "unknown batch",
  [CLOSE.BAD_QUERY]: "bad request",
};

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
export class BatchFeed {
  constructor(progress, handlers) {
    this.progress = progress;
    this.handlers = handlers;
    this.ws = null;
    this.timer = null;
    this.attempt = 0;
    this.closed = false;
    this.done = false;
    this.caughtUp = false;
  }

  connect() {
    this.timer = null;
    if (this.closed) return;
    const from = this.progress.lastSeq;
    const url = wsUrl(`/ws/batches/${encodeURIComponent(this.progress.batchId)}`, { after_seq: from });
    this.handlers.state("connecting", "connecting…");
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
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
      if (frame.kind === "batch_event") {
        const result = this.progress.apply(frame.event);
        if (result !== "dup") this.handlers.event(frame.event, result, this.caughtUp);
      } else if (frame.kind === "caught_up") {
        this.attempt = 0;
        this.caughtUp = true;
        this.handlers.state("live", "live");
      } else if (frame.kind === "finished") {
        this.done = true;
        this.handlers.state("finished", "batch ended");
      } else if (frame.kind === "error") {
        errorDetail = frame.detail || null;
      }
    };
    ws.onclose = async (event) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      this.caughtUp = false;
      if (this.done) return;
      if (FATAL_CLOSE[event.code]) {
        this.handlers.state("error", errorDetail || FATAL_CLOSE[event.code]);
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
      const delay = event.code === CLOSE.LAGGING ? 50 : backoff(this.attempt++);
      this.handlers.state("reconnecting", "connection lost, retrying…");
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  close() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        ws.close(CLOSE.NORMAL);
      } catch {
        // already closed
      }
    }
  }
}
