// The websocket feeds, with reconnection: one run's events, and the all-runs list feed.

import { backoff, probeAuth, wsUrl } from "./api.js";
import { CLOSE } from "./close_codes.js";
import { ResumingFeed } from "./resuming_feed.js";

/** `/ws/runs/{run_id}`: every event of one run; resumes after the last seq after a drop. */
export class RunFeed extends ResumingFeed {
  constructor(model, handlers) {
    super(handlers); // { event(event) -> result, state(state, text) }
    this.model = model;
    this.noun = "run";
  }

  url(from) {
    return wsUrl(`/ws/runs/${encodeURIComponent(this.model.runId)}`, { after_seq: from });
  }

  lastSeq() {
    return this.model.lastSeq;
  }

  connectingText(from) {
    return from ? `resuming after event ${from}…` : "connecting…";
  }

  endedCleanly(event) {
    return this.model.finished && event.code === CLOSE.NORMAL;
  }

  onEvent(frame, ws, opened) {
    if (frame.kind !== "event") return;
    if (this.handlers.event(frame.event) === "gap") {
      // Cannot happen with a correct gateway; resume from what we have.
      this.handlers.state("reconnecting", "missing events, resuming…");
      this.drop(ws);
      this.connect();
    } else if (opened && !this.caughtUp && this.model.lastSeq % 250 === 0) {
      this.handlers.state("archive", `loading… (${this.model.lastSeq} events)`);
    }
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
