// The step and run panels: what the shown step did, and what the run is.

import { $, ms, num, point, seconds, setText, usd } from "./format.js";
import { OUTCOMES } from "./run_model.js";

/** The step panel for step `shown` of `model` (0: the start). */
export function showStep(model, shown) {
  const step = shown > 0 ? model.steps[shown - 1] : null;
  setText("agent-position", point(model.positionAt(shown)));
  if (!step) {
    setText("step-number", model.spec ? "0 (start)" : "–");
    for (const id of ["step-turn", "step-action", "step-move", "step-success", "step-message"]) {
      setText(id, null);
    }
    setText("step-footsteps", model.spec ? 0 : null);
    setText("step-vision", null);
    setText("step-tokens", null);
    setText("step-timings", null);
    setText("step-time", model.startTime ? new Date(model.startTime).toISOString() : null);
    setText("reasoning", null);
    setText("assistant-message", null);
    $("step-success").className = "";
    return;
  }
  const decision = step.decision || {};
  const inherited = step.inherited ? ` (inherited from ${model.forkOf.run_id})` : "";
  setText("step-number", `${step.step} of ${model.steps.length}${inherited}`);
  setText("step-turn", step.turn);
  setText("step-action", decision.problem ? `${step.action} (${decision.problem})` : step.action);
  setText("step-move", `${point(step.from)} → ${point(step.to)}`);
  setText("step-success", step.success ? "yes" : "no");
  $("step-success").className = step.success ? "ok" : "bad";
  setText("step-footsteps", step.footsteps);
  const tiles = (step.tiles_seen || []).length;
  const vision = [`${tiles} tiles`];
  if (step.goal_seen) vision.push("goal in view");
  if (step.goal_reached) vision.push("on the goal");
  setText("step-vision", vision.join(", "));
  setText("step-message", step.message);
  if (step.inherited) {
    showInherited(model);
    return;
  }
  setText("reasoning", decision.reasoning === null || decision.reasoning === undefined ? "(none)" : decision.reasoning);
  setText(
    "assistant-message",
    decision.assistant_message === null || decision.assistant_message === undefined
      ? "(none)"
      : decision.assistant_message,
  );
  const call = step.call;
  const runTokens = `run so far ${num(step.inputTokens)} in / ${num(step.outputTokens)} out`;
  if (call) {
    setText("step-tokens", `${num(call.input_tokens)} in / ${num(call.output_tokens)} out (${runTokens})`);
    const timings = [
      ms(call.duration_ms) && `call ${ms(call.duration_ms)}`,
      ms(call.prompt_eval_ms) && `prompt ${ms(call.prompt_eval_ms)}`,
      ms(call.eval_ms) && `generation ${ms(call.eval_ms)}`,
      call.tokens_per_second ? `${call.tokens_per_second.toFixed(1)} tok/s` : null,
      call.attempts > 1 ? `${call.attempts} attempts` : null,
    ].filter(Boolean);
    setText("step-timings", timings.join(" · "));
  } else {
    setText("step-tokens", decision.call_id ? runTokens : `no model call (${runTokens})`);
    setText("step-timings", null);
  }
  const since = model.startTime ? ` (+${seconds((step.t - model.startTime) / 1000)})` : "";
  setText("step-time", `${step.time}${since}`);
}

/** What the step panel says of a fork's inherited step: its parent lived it. */
function showInherited(model) {
  const parent = model.forkOf.run_id;
  const note = `(inherited from run ${parent}: the reasoning is in the log of the run that lived this step)`;
  setText("reasoning", note);
  setText("assistant-message", note);
  setText("step-tokens", "counted in the inherited totals");
  setText("step-timings", null);
  setText("step-time", `before this run started (inherited from run ${parent})`);
}

/** The run panel: spec, limits, status and totals. */
export function showRun(model) {
  const spec = model.spec;
  setText("run-id", model.runId);
  if (!spec) {
    for (const id of ["run-agent", "run-prompt", "run-maze", "run-start", "run-goal", "run-limits"]) {
      setText(id, null);
    }
    setText("run-status", null);
    setText("run-totals", null);
    setText("run-comment", null);
    setText("run-labels", null);
    setText("run-warnings", null);
    return;
  }
  const agent = spec.agent || {};
  const options = agent.options || {};
  const extras = [];
  if (agent.seed !== null && agent.seed !== undefined) extras.push(`seed ${agent.seed}`);
  if (options.temperature !== null && options.temperature !== undefined) {
    extras.push(`temperature ${options.temperature}`);
  }
  if (options.num_ctx) extras.push(`num_ctx ${options.num_ctx}`);
  setText("run-agent", `${agent.provider}:${agent.model}${extras.length ? ` (${extras.join(", ")})` : ""}`);
  setText("run-prompt", spec.prompt ? spec.prompt.version : null);
  const maze = spec.maze || {};
  const rules = spec.rules || {};
  const seeThrough = rules.see_through_walls ?? maze.see_through_walls;
  setText(
    "run-maze",
    `${maze.name || "?"} ${model.width}×${model.height}, vision ${rules.vision_range ?? "?"}${
      seeThrough ? ", sees through walls" : ""
    }`,
  );
  setText("run-start", point(model.start));
  setText("run-goal", model.goals.length ? model.goals.slice(0, 4).map(point).join(" ") : "none");
  const limits = spec.limits || {};
  const parts = [];
  if (limits.max_footsteps) parts.push(`${limits.max_footsteps} footsteps`);
  if (limits.max_actions) parts.push(`${limits.max_actions} actions`);
  if (limits.max_duration_seconds) parts.push(seconds(limits.max_duration_seconds));
  if (limits.max_tokens) parts.push(`${num(limits.max_tokens)} tokens`);
  if (limits.max_cost_usd) parts.push(usd(limits.max_cost_usd));
  if (limits.loop_revisit_limit) parts.push(`loop ${limits.loop_revisit_limit}`);
  parts.push(`goal ${limits.goal_rule || "seen"}`);
  setText("run-limits", parts.join(", "));
  setText("run-comment", spec.comment);
  const labels = Object.entries(spec.labels || {}).map(([k, v]) => `${k}=${v}`);
  setText("run-labels", labels.join(", "));
  setText("run-warnings", model.warnings.join("; "));

  const status = model.status();
  const outcome = OUTCOMES[status] || { marker: "?", label: status, css: "" };
  const finished = model.finished;
  const last = model.steps[model.steps.length - 1];
  if (finished) {
    setText("run-status", `${outcome.marker} ${finished.stop_reason}: ${finishDetail(finished)}`);
    setText(
      "run-totals",
      `${num(finished.footsteps)} footsteps, ${num(finished.actions)} actions, ${num(finished.turns)} turns, ` +
        `${num(finished.model_calls)} model calls, ${num(finished.input_tokens)} in / ` +
        `${num(finished.output_tokens)} out tokens, ${usd(finished.cost_usd)}, ${seconds(finished.duration_seconds)}`,
    );
  } else {
    setText("run-status", model.cancel ? "running (cancel requested)" : "running");
    setText(
      "run-totals",
      `${num(last ? last.footsteps : 0)} footsteps, ${num(model.steps.length)} actions, ` +
        `${num(model.modelCalls)} model calls, ${num(model.inputTokens)} in / ${num(model.outputTokens)} out tokens`,
    );
  }
  $("run-status").className = outcome.css || "";
  const heading = $("run-outcome");
  setText(heading, `${outcome.marker} ${outcome.label}`);
  heading.className = `run-outcome ${outcome.css || ""}`;
}

/** The finish detail, with the error once: a failure's detail already says "Class: message". */
function finishDetail(finished) {
  const detail = finished.detail || "";
  const error = finished.error;
  if (!error) return detail;
  const text = `${error.error_class}: ${error.message}`;
  if (detail.includes(error.message)) return detail;
  return detail ? `${detail} — ${text}` : text;
}
