// The state of one run, folded from its events (the viewer's side of oriole/run_state.py).
//
// No DOM and no imports: tests/test_viewer_run_model.py loads this module in Node and checks
// it against the Python fold on the same events.
//
// A fork (spec.fork_of) carries its parent's first outcomes in its run.started
// (`inherited`): they are folded as the fork's own first steps, marked `inherited`, exactly
// as RunState._start folds them.

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
    this.turn = 0;
    this.visits = new Map(); // "x,y" -> times the agent arrived there (the start counts once)
    this.goalSeen = false; // in some step's view (the view from the start is in no event)
    this.goalReached = false;
    this.forkOf = null; // a fork's {run_id, after_step}
    this.inheritedSteps = 0; // steps 1..inheritedSteps were lived by the fork's parent(s)
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
        if (typeof payload.turn === "number") this.turn = payload.turn;
        return "other";
      case "action.completed": {
        const decision = this.pending;
        this.pending = null;
        const call = decision && decision.call_id ? this.calls.get(decision.call_id) : undefined;
        this.record({
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
        // The run's own tally: it also knows a goal seen from the start tile.
        this.goalSeen = this.goalSeen || Boolean(payload.goal_seen);
        this.goalReached = this.goalReached || Boolean(payload.goal_reached);
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
    if (this.start) this.visits.set(`${this.start.x},${this.start.y}`, 1);
    this.goalReached = Boolean(this.start && this.goals.some((g) => g.x === this.start.x && g.y === this.start.y));
    const inherited = payload.inherited;
    if (spec.fork_of && inherited) this.inherit(spec.fork_of, inherited);
  }

  /** A fork's inherited outcomes, as if it had lived them, and its parent's model usage. */
  inherit(forkOf, inherited) {
    this.forkOf = forkOf;
    for (const outcome of inherited.outcomes || []) {
      this.record({
        ...outcome,
        seq: null,
        time: null,
        t: this.startTime,
        decision: null,
        call: undefined,
        inherited: true,
        inputTokens: null,
        outputTokens: null,
      });
      this.turn = outcome.turn;
    }
    this.inheritedSteps = this.steps.length;
    this.modelCalls = inherited.model_calls || 0;
    this.inputTokens = inherited.input_tokens || 0;
    this.outputTokens = inherited.output_tokens || 0;
    this.costUsd = inherited.cost_usd || 0;
  }

  /** One outcome: the history, the tiles the agent arrived on, the goal flags. */
  record(step) {
    this.steps.push(step);
    const { from, to } = step;
    if (to && (!from || from.x !== to.x || from.y !== to.y)) {
      const key = `${to.x},${to.y}`;
      this.visits.set(key, (this.visits.get(key) || 0) + 1);
    }
    this.goalSeen = this.goalSeen || Boolean(step.goal_seen);
    this.goalReached = this.goalReached || Boolean(step.goal_reached);
  }

  /** Where the agent stands after `step` actions (0: the start). */
  positionAt(step) {
    return step > 0 ? this.steps[step - 1].to : this.start;
  }

  status() {
    return this.finished ? statusOfFinish(this.finished) : "running";
  }
}
