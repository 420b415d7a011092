// The parts of one batch on the Batches page: its progress, the arm table, the pairwise
// comparisons and the runs of one arm, from the batch's feed and its comparison report
// (`GET /api/batches/{id}/report`, docs/gateway.md).
//
// Arm names, factor values and labels are user input: they are only ever inserted as text.

import { h, num, setText, shortTime, usd } from "./format.js";

const finite = (x) => typeof x === "number" && Number.isFinite(x);
const clamp01 = (x) => Math.max(0, Math.min(1, x));

export function percent(rate, digits = 0) {
  return finite(rate) ? `${(rate * 100).toFixed(digits)}%` : "–";
}

export function pValue(p) {
  if (!finite(p)) return "–";
  if (p < 0.001) return "<0.001";
  return p.toFixed(3);
}

/** "[47–91%]" for an interval of rates (or differences, with signs). */
function intervalText(low, high, signed = false) {
  if (!finite(low) || !finite(high)) return "";
  const f = (x) => `${signed && x > 0 ? "+" : ""}${(x * 100).toFixed(0)}`;
  return ` [${f(low)}, ${f(high)}]`;
}

/**
 * A small bar: the interval [low, high] over [from, to], the point estimate as a tick.
 * Positions are numbers from the report, set as inline styles (never markup).
 */
export function intervalBar(value, low, high, { from = 0, to = 1, zero = null } = {}) {
  const bar = h("span", { class: "ci-bar", "aria-hidden": "true" });
  const at = (x) => `${(clamp01((x - from) / (to - from)) * 100).toFixed(2)}%`;
  if (zero !== null) {
    const axis = h("span", { class: "ci-zero" });
    axis.style.left = at(zero);
    bar.append(axis);
  }
  if (finite(low) && finite(high)) {
    const range = h("span", { class: "ci-range" });
    range.style.left = at(low);
    range.style.width = `calc(${at(high)} - ${at(low)})`;
    bar.append(range);
  }
  if (finite(value)) {
    const tick = h("span", { class: "ci-point" });
    tick.style.left = at(value);
    bar.append(tick);
  }
  return bar;
}

export function statusText(batch) {
  if (!batch) return "–";
  return batch.stop_reason ? `${batch.status} (${batch.stop_reason})` : batch.status || "–";
}

/** The list of batches; the selected one's row from `selectedBatch` (fresher: the feed's). */
export function renderBatchList(tbody, batches, selectedId, selectedBatch) {
  const rows = batches.map((listed) => {
    const batch = listed.batch_id === selectedId && selectedBatch ? selectedBatch : listed;
    const link = h("a", { href: `#batch=${encodeURIComponent(batch.batch_id)}` }, String(batch.name || batch.batch_id));
    const inFlight = batch.in_flight ? ` · ${num(batch.in_flight)} in flight` : "";
    const row = h(
      "tr",
      { class: batch.batch_id === selectedId ? "selected" : "" },
      h("td", {}, link, h("span", { class: "batch-id" }, String(batch.batch_id))),
      h("td", { class: `batch-status status-${batch.status}` }, statusText(batch)),
      h("td", { class: "num" }, `${num(batch.finished)} / ${num(batch.planned)}${inFlight}`),
      h("td", { class: "num" }, usd(batch.spent_usd)),
      h("td", { class: "num" }, shortTime(batch.started_at)),
    );
    row.dataset.batchId = String(batch.batch_id);
    return row;
  });
  tbody.replaceChildren(...rows);
}

/** The batch's progress line and bar, from the feed's counts (or the batch row). */
export function renderProgress(nodes, counts, status) {
  const c = counts || {};
  const planned = c.planned || 0;
  const finished = c.finished || 0;
  nodes.bar.max = Math.max(planned, 1);
  nodes.bar.value = Math.min(finished, planned);
  const parts = [
    `${num(finished)} / ${num(planned)} finished`,
    `${num(c.in_flight || 0)} in flight`,
    `${num(c.succeeded || 0)} succeeded`,
    `${num(c.failed || 0)} failed`,
    `spent ${usd(c.spent_usd || 0)}`,
  ];
  setText(nodes.text, parts.join(" · "));
  setText(nodes.status, status);
}

function cell(text, attributes = {}) {
  return h("td", attributes, text === null || text === undefined || text === "" ? "–" : String(text));
}

/** One row per arm; `onArm(arm)` when a row's runs are asked for. */
export function renderArms(tbody, tfoot, report, selected, onArm) {
  const rows = [];
  let total = 0;
  let successes = 0;
  for (const arm of report.arms || []) {
    total += arm.runs || 0;
    successes += arm.successes || 0;
    const success = arm.success || {};
    const goal = arm.goal_reached || {};
    const footsteps = (arm.metrics || {}).footsteps || {};
    const name = h("button", { type: "button", class: "arm-name", title: "Show this arm's runs" }, String(arm.arm));
    name.addEventListener("click", () => onArm(arm.arm));
    const rate = h(
      "td",
      { class: "rate" },
      intervalBar(success.rate, success.low, success.high),
      h("span", {}, `${percent(success.rate)}${intervalText(success.low, success.high)}`),
    );
    rate.title = `${arm.successes ?? 0} of ${arm.runs ?? 0} runs saw the goal (Wilson interval)`;
    const row = h(
      "tr",
      { class: arm.arm === selected ? "selected" : "" },
      h("th", { scope: "row" }, name),
      cell(num(arm.runs), { class: "num arm-runs" }),
      rate,
      cell(`${num(goal.count ?? 0)} (${percent(goal.rate)})`, { class: "num" }),
      cell(finite(footsteps.mean) ? footsteps.mean.toFixed(1) : null, { class: "num" }),
      cell(finite(arm.cost_per_success) ? usd(arm.cost_per_success) : null, { class: "num" }),
      cell(arm.failed ? num(arm.failed) : "0", { class: "num" }),
    );
    row.dataset.arm = String(arm.arm);
    rows.push(row);
  }
  tbody.replaceChildren(...rows);
  const running = report.running ? ` (+${num(report.running)} running)` : "";
  tfoot.replaceChildren(
    h(
      "tr",
      {},
      h("th", { scope: "row" }, "All arms"),
      h("td", { class: "num", "data-testid": "arm-total-runs" }, String(total)),
      h("td", { class: "rate" }, `${num(successes)} succeeded${running}`),
      h("td", { colspan: "4" }),
    ),
  );
}

/** One row per compared pair: the success difference, its interval, the test and p values. */
export function renderComparisons(tbody, report) {
  const rows = (report.comparisons || []).map((pair) => {
    const s = pair.success || {};
    const difference = h(
      "td",
      { class: "rate" },
      intervalBar(s.difference, s.low, s.high, { from: -1, to: 1, zero: 0 }),
      h("span", {}, `${finite(s.difference) ? `${s.difference > 0 ? "+" : ""}${(s.difference * 100).toFixed(0)} pts` : "–"}${intervalText(s.low, s.high, true)}`),
    );
    const footsteps = (pair.metrics || {}).footsteps || {};
    return h(
      "tr",
      {},
      cell(pair.a),
      cell(pair.b),
      cell(pair.paired ? `paired (${num(pair.pairs)})` : "independent"),
      cell(`${percent(s.a_rate)} vs ${percent(s.b_rate)}`, { class: "num" }),
      difference,
      cell(s.test),
      cell(pValue(s.p_value), { class: "num" }),
      cell(pValue(s.p_holm), { class: "num" }),
      cell(finite(footsteps.p_holm) ? `${pValue(footsteps.p_holm)} (${footsteps.test})` : null, { class: "num" }),
    );
  });
  if (!rows.length) {
    const none = (report.arms || []).length < 2 ? "Fewer than two arms so far." : "No comparison.";
    rows.push(h("tr", {}, h("td", { colspan: "9", class: "hint" }, none)));
  }
  tbody.replaceChildren(...rows);
}

/** The runs of one arm (its run_ids), each a link to the run viewer. */
export function renderArmRuns(nodes, report, armName, onRun) {
  const arm = (report.arms || []).find((a) => a.arm === armName);
  if (!arm) {
    nodes.section.hidden = true;
    return;
  }
  nodes.section.hidden = false;
  setText(nodes.title, `Runs of ${arm.arm} (${(arm.run_ids || []).length})`);
  const rows = new Map((report.run_rows || []).map((row) => [row.run_id, row]));
  const items = (arm.run_ids || []).map((runId) => {
    const row = rows.get(runId) || {};
    const link = h("a", { href: `#run=${encodeURIComponent(runId)}` }, String(runId));
    link.addEventListener("click", (event) => {
      event.preventDefault();
      onRun(runId);
    });
    const outcome = row.success ? "goal seen" : row.status || "";
    const facts = [row.maze, outcome, finite(row.footsteps) ? `${row.footsteps} footsteps` : ""]
      .filter(Boolean)
      .join(" · ");
    const li = h("li", { class: row.success ? "ok-run" : "" }, link, h("span", { class: "run-facts" }, facts));
    li.dataset.runId = String(runId);
    return li;
  });
  nodes.list.replaceChildren(...items);
}
