// The websocket feeds, with reconnection: one run's events, and the all-runs list feed.

import { backoff, probeAuth, wsUrl } from "./api.js";
import { CLOSE } from "./close_codes.js";

// Closes after which reconnecting cannot help. A refused token never opens the socket at
// all (the gateway answers the handshake with 401/403): probeAuth() explains that case.
const FATAL_CLOSE = {
  [CLOSE.UNKNOWN_RUN]: "unknown run",
  [CLOSE.BAD_QUERY]: "bad request",
};

/** `/ws/runs/{run_id}`: every event of one run; resumes from the last seq after a drop. */
export class RunFeed {
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
    const url = wsUrl(`/ws/runs/${encodeURIComponent(this.model.runId)}`, { after_seq: from });
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
      if (this.done || (this.model.finished && event.code === CLOSE.NORMAL)) {
        this.done = true;
        this.handlers.state("finished", "run finished");
        return;
      }
      if (FATAL_CLOSE[event.code]) {
        this.handlers.state("error", errorDetail || FATAL_CLOSE[event.code]);
        return;
      }
      if (lagging || event.code === CLOSE.LAGGING) {
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
export class ListFeed {
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
      const delay = event.code === CLOSE.LAGGING ? 50 : backoff(this.attempt++);
      this.handlers.state("reconnecting", "list feed lost, retrying…");
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
