// "Fork from here": a new run that starts in the open run's state after the step on screen,
// with another agent, seed, limits or comment (`POST /api/experiments` with `fork_of`,
// docs/gateway.md), which the viewer then opens and follows live.
//
// The start document is the open run's spec, as `oriole fork` builds it (oriole/rerun.py):
// the maze and start are left to admission, which takes them from the parent. A refusal's
// problems (field: reason) are shown as text, every one of them.

import { HttpError, apiPost } from "./api.js";
import { $, h, setText } from "./format.js";

/** Spec fields a fork does not carry: the parent's own (maze, start), or its history. */
const NOT_CARRIED = ["requested_at", "maze", "maze_name", "start", "rerun_of", "fork_of"];
/** Labels a batch puts on its runs (BATCH_LABELS, oriole/batch_models.py): a fork of a
 * batch's run is not one of the batch's runs. */
const BATCH_LABELS = ["batch_id", "cell", "repetition"];

export class ForkForm {
  constructor(viewer) {
    this.viewer = viewer;
    this.form = $("fork-form");
    this.button = $("fork-open");
    this.submitButton = $("fork-submit");
    this.busy = false;
    this.button.addEventListener("click", () => (this.form.hidden ? this.open() : this.close()));
    $("fork-cancel").addEventListener("click", () => this.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** The run and step a fork of the shown step continues, or why there is none. */
  target() {
    const model = this.viewer.model;
    if (!model || !model.spec) return { reason: "no run is open" };
    if (!model.finished) return { reason: "a run can be forked once it has finished" };
    const step = this.viewer.shown;
    if (model.forkOf && step < model.inheritedSteps) {
      // This fork only inherited that step: the run that lived it is forked there instead.
      return { runId: String(model.forkOf.run_id), step, inheritedFrom: true };
    }
    return { runId: model.runId, step };
  }

  /** Enable the button for the shown step (after every change of step or run). */
  update() {
    const target = this.target();
    this.button.disabled = Boolean(target.reason);
    this.button.title = target.reason
      ? `Cannot fork: ${target.reason}`
      : `Start a new run in this run's state after step ${target.step}`;
    if (target.reason && !this.form.hidden && !this.busy) this.close();
    else if (!this.form.hidden) this.showTarget(target);
  }

  showTarget(target) {
    const where = `Fork ${target.runId} after step ${target.step}`;
    setText("fork-target", target.inheritedFrom ? `${where} (this run inherited that step from it)` : where);
  }

  /** Open the form with the open run's agent, limits and comment as defaults. */
  open() {
    const target = this.target();
    if (target.reason) return;
    const spec = this.viewer.model.spec;
    const agent = spec.agent || {};
    const limits = spec.limits || {};
    $("fork-provider").value = agent.provider || "builtin";
    $("fork-model").value = agent.model || "";
    $("fork-seed").value = agent.seed === null || agent.seed === undefined ? "" : String(agent.seed);
    $("fork-max-footsteps").value = limits.max_footsteps ? String(limits.max_footsteps) : "";
    $("fork-max-actions").value = limits.max_actions ? String(limits.max_actions) : "";
    $("fork-comment").value = spec.comment || "";
    this.showProblems([]);
    this.showTarget(target);
    this.form.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    $("fork-model").focus();
  }

  close() {
    this.form.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
  }

  /** The start document for the form's values, or the problems found before sending it. */
  startDocument(target) {
    const problems = [];
    const whole = (id, field) => {
      const input = $(id);
      const raw = input.value.trim();
      if (input.validity.badInput || (raw && !/^-?\d+$/.test(raw))) {
        problems.push([field, "must be a whole number (or empty)"]);
        return null;
      }
      return raw ? Number(raw) : null;
    };
    const spec = this.viewer.model.spec;
    const provider = $("fork-provider").value;
    const model = $("fork-model").value.trim();
    if (!model) problems.push(["agent.model", "give the model (for builtin: random, wall-follower or frontier)"]);
    const seed = whole("fork-seed", "agent.seed");
    const maxFootsteps = whole("fork-max-footsteps", "limits.max_footsteps");
    const maxActions = whole("fork-max-actions", "limits.max_actions");
    const start = { ...spec };
    for (const key of NOT_CARRIED) delete start[key];
    start.labels = Object.fromEntries(
      Object.entries(spec.labels || {}).filter(([key]) => !BATCH_LABELS.includes(key)),
    );
    const parentAgent = spec.agent || {};
    // The same agent keeps its endpoint and options; another starts from its defaults.
    const sameAgent = provider === parentAgent.provider && model === parentAgent.model;
    start.agent = sameAgent ? { ...parentAgent, seed } : { provider, model, seed };
    start.limits = { ...(spec.limits || {}), max_footsteps: maxFootsteps, max_actions: maxActions };
    start.comment = $("fork-comment").value.trim() || null;
    start.fork_of = { run_id: target.runId, after_step: target.step };
    return { start, problems };
  }

  async submit() {
    if (this.busy) return;
    const target = this.target();
    if (target.reason) {
      this.showProblems([["fork_of", target.reason]]);
      return;
    }
    const { start, problems } = this.startDocument(target);
    if (problems.length) {
      this.showProblems(problems);
      return;
    }
    this.setBusy(true);
    try {
      const { status, body } = await apiPost("/api/experiments", start);
      if (status === 202 && body.run_id) {
        this.close();
        this.viewer.expectRun(String(body.run_id));
        this.viewer.navigate(String(body.run_id)); // opened with follow-live on
        return;
      }
      const listed = Array.isArray(body.problems) ? body.problems.map((p) => [p.field, p.reason]) : [];
      this.showProblems(listed.length ? listed : [["error", `HTTP ${status}: ${body.error || "refused"}`]]);
    } catch (error) {
      const detail = error instanceof HttpError ? error.message : `the gateway did not answer (${error.message})`;
      this.showProblems([["error", detail]]);
    } finally {
      this.setBusy(false);
    }
  }

  setBusy(on) {
    this.busy = on;
    this.submitButton.disabled = on;
    setText(this.submitButton, on ? "Starting…" : "Start fork");
  }

  /** Every problem as "field: reason", as text. */
  showProblems(problems) {
    const list = $("fork-problems");
    list.replaceChildren(...problems.map(([field, reason]) => h("li", {}, `${field}: ${reason}`)));
    list.hidden = problems.length === 0;
  }
}
