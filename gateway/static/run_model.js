// The state of one run, folded from its events (the viewer's side of oriole/run_state.py).
//
// No DOM and no imports: tests/test_viewer_model.py loads this module in Node and checks it
// against the Python fold on the same events.

// --- outcome of a run ---------------------------------------------------------------------

export const OUTCOMES = {
  succeeded: { marker: "✓", label: "goal found", css: "ok" },
  stopped: { marker: "✗", label: "goal not found", css: "bad" },
  cancelled: { marker: "✗", label: "cancelled", css: "bad" },
  failed: { marker: "⚠", label: "failed", css: "warn" },
  running: { marker: "⟳", label: "running", css: "" },
};

export function statusOfFinish(payload) {
  if (!payload) return "running";
  if (payload.status) return payload.status;
  if (payload.stop_reason === "failed") return "failed";
  if (payload.stop_reason === "cancelled") return "cancelled";
  if (payload.success === true) return "succeeded";
  if (payload.success === false || payload.stop_reason) return "stopped";
  return "running";
}

// --- the state of one run, folded from its events ------------------------------------------

export class RunModel {
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
