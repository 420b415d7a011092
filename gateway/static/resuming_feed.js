// One keyed event log over a websocket (a run's, a batch's): the archive, then live, with
// reconnection after the last seq received. The run and batch feeds differ only in their URL,
// their event frames and their words; the connection's life is this one piece of code.

import { backoff, probeAuth } from "./api.js";
import { CLOSE } from "./close_codes.js";

/**
 * Subclasses give: `url(afterSeq)`, `lastSeq()`, `onEvent(frame, ws)` (an event frame; the
 * base handles caught_up, finished, lagging and error), `noun` ("run", "batch") and
 * optionally `connectingText(afterSeq)` and `endedCleanly(closeEvent)`.
 * handlers: { state(state, text), ... whatever the subclass calls }.
 */
export class ResumingFeed {
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.timer = null;
    this.attempt = 0;
    this.closed = false;
    this.done = false;
    this.caughtUp = false;
  }

  start() {
    this.connect();
  }

  connectingText() {
    return "connecting…";
  }

  /** Whether a close without a `finished` frame still ends the feed (nothing to resume). */
  endedCleanly() {
    return false;
  }

  connect() {
    this.timer = null;
    if (this.closed) return;
    const from = this.lastSeq();
    this.handlers.state("connecting", this.connectingText(from));
    const ws = new WebSocket(this.url(from));
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
        case "caught_up":
          this.attempt = 0;
          this.caughtUp = true;
          this.handlers.state("live", "live");
          break;
        case "finished":
          this.done = true;
          this.handlers.state("finished", `${this.noun} finished`);
          break;
        case "lagging":
          lagging = true;
          this.handlers.state("reconnecting", "fell behind, resuming…");
          break;
        case "error":
          errorDetail = frame.detail || null;
          break;
        default:
          this.onEvent(frame, ws, opened);
      }
    };
    ws.onclose = async (event) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      this.caughtUp = false;
      if (this.done) return; // the `finished` frame said so already
      if (this.endedCleanly(event)) {
        this.done = true;
        this.handlers.state("finished", `${this.noun} finished`);
        return;
      }
      if (event.code === CLOSE.UNKNOWN_RUN) {
        this.handlers.state("error", errorDetail || `unknown ${this.noun}`);
        return;
      }
      if (event.code === CLOSE.BAD_QUERY) {
        this.handlers.state("error", errorDetail || "bad request");
        return;
      }
      if (lagging || event.code === CLOSE.LAGGING) {
        this.timer = setTimeout(() => this.connect(), 50);
        return;
      }
      // A refused token never opens the socket (the handshake answers 401/403).
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

  /** Forget ``ws`` and close it without reconnecting (a gap, or the feed closed). */
  drop(ws) {
    if (this.ws === ws) this.ws = null;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(CLOSE.NORMAL);
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
