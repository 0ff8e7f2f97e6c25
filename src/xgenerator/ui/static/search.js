// A hyper-parameter search (a `tune` job): its leaderboard, its trials' curves on one chart and
// the best parameters, polled while it runs. The search itself only changes when a trial ends,
// while a running trial's curve grows every round: both are read again every REFRESH_MS.

import { $, FINAL, api, badge, el, number, when } from "./api.js";
import { drawRuns, metricNames } from "./chart.js";

const REFRESH_MS = 2000;
const MAX_POINTS = 300; // per trial: a chart of many trials needs no more

export async function search(jobId) {
  let info = await api(`/jobs/${jobId}`);
  if (info.job_type !== "tune") {
    $("#search-title").textContent = "Not a search";
    $("#search-meta").replaceChildren(`This is a ${info.job_type} job: `,
      el("a", { href: `/ui/jobs/${encodeURIComponent(info.job_id)}` }, "see its page"), ".");
    return;
  }
  const curves = new Curves();
  const cancel = $("#search-cancel");
  let wake = () => {};
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api(`/jobs/${jobId}/cancel`, { method: "POST" });
      cancel.textContent = "Cancelling…";
      wake(); // show the cancelled trials now, not at the next refresh
    } catch (error) {
      cancel.textContent = error.message;
    }
  });
  for (;;) {
    if (!document.hidden) {
      info = await api(`/jobs/${jobId}`);
      const board = await api(`/jobs/${jobId}/trials`);
      showSearch(info, board);
      await curves.update(board);
      // a cancelled search ends at once, its running trials a round later
      if (FINAL.has(board.status) && board.trials.every((t) => FINAL.has(t.status))) return;
    }
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, REFRESH_MS);
    });
  }
}

function showSearch(info, board) {
  const cfg = (info.config || {}).search || {};
  document.title = `Search ${info.model_name || ""} · XGenerator`;
  $("#search-title").textContent = `Search: ${info.model_name || info.job_id}`;
  $("#search-status").replaceWith(Object.assign(badge(info.status), { id: "search-status" }));
  $("#search-cancel").hidden = FINAL.has(info.status);
  const space = Object.entries(cfg.search_space || {}).map(([name, spec]) => describe(name, spec));
  $("#search-meta").replaceChildren(
    `${board.strategy} search of ${space.join("; ")} · ${board.metric} (${board.direction}) · ` +
    `at most ${board.max_trials} trials, ${cfg.max_parallel || 1} at once · created ` +
    `${when(info.created_at)} · `,
    el("a", { href: `/ui/jobs/${encodeURIComponent(info.job_id)}` }, "job page"));
  const progress = info.progress || {};
  const percent = info.status === "succeeded" ? 100 : progress.percent || 0;
  $("#search-progress-fill").style.width = `${Math.min(100, percent)}%`;
  $("#search-progress").textContent = [progress.message, info.error && info.error.message]
    .filter(Boolean).join(" · ");
  // what the service changed in the request (a grid smaller than max_trials) is said here
  $("#search-notes").replaceChildren(...(cfg.notes || []).map((n) => el("li", {}, n)));
  showBest(board);
  showLeaderboard(board, Object.keys(cfg.search_space || {}));
}

function describe(name, spec) {
  if (spec.type === "categorical") return `${name} in {${(spec.choices || []).join(", ")}}`;
  return `${name} ${spec.type} [${spec.low}, ${spec.high}]${spec.log ? " log" : ""}`;
}

function showBest(board) {
  const best = board.best;
  const summary = $("#best-summary");
  if (!best) {
    summary.textContent = FINAL.has(board.status) ? "No trial succeeded." : "No trial has finished yet.";
    $("#best-params tbody").replaceChildren();
    return;
  }
  const parts = [`Trial ${best.number}: ${board.metric} = ${number(best.value)} · ${best.rounds} rounds · `,
    el("a", { href: `/ui/jobs/${encodeURIComponent(best.job_id)}` }, "trial job")];
  if (best.model_id) {
    parts.push(" · ", el("a", { href: `/ui/models/${encodeURIComponent(best.model_id)}` }, "model"));
  }
  summary.replaceChildren(...parts);
  $("#best-params tbody").replaceChildren(...Object.entries(best.params).map(([name, value]) =>
    el("tr", { "data-param": name }, el("th", { scope: "row" }, name), el("td", {}, number(value)))));
}

function showLeaderboard(board, params) {
  const c = board.counts || {};
  $("#leaderboard-meta").textContent = Object.entries(c).filter(([, n]) => n)
    .map(([state, n]) => `${n} ${state}`).join(" · ");
  $("#leaderboard thead").replaceChildren(el("tr", {},
    el("th", { scope: "col" }, "Rank"), el("th", { scope: "col" }, "Trial"),
    el("th", { scope: "col" }, "State"), el("th", { scope: "col" }, board.metric),
    el("th", { scope: "col" }, "Rounds"),
    ...params.map((p) => el("th", { scope: "col" }, p))));
  const bestNumber = board.best ? board.best.number : null;
  $("#leaderboard tbody").replaceChildren(...board.trials.map((t, i) => el("tr",
    { "data-trial": String(t.number), class: t.number === bestNumber ? "best" : null },
    el("td", {}, t.value === null ? "—" : String(i + 1)),
    el("td", {}, el("span", { class: `key run-${t.number % 10}` }), " ",
       el("a", { href: `/ui/jobs/${encodeURIComponent(t.job_id)}` }, `#${t.number}`)),
    el("td", {}, badge(t.state),
       t.pruned_at_round ? el("span", { class: "small muted" }, ` at round ${t.pruned_at_round}`) : null),
    el("td", {}, t.value === null ? "—" : number(t.value)),
    el("td", {}, String(t.rounds)),
    ...params.map((p) => el("td", {}, number(t.params[p]))))));
}

// The trials' validation curves; a finished trial's history is read once.
class Curves {
  constructor() {
    this.histories = new Map(); // trial job id -> {final, points}
    this.runs = [];
    this.metric = null;
    this.select = $("#metric");
    this.select.addEventListener("change", () => { this.metric = this.select.value; this.draw(); });
    window.addEventListener("resize", () => this.draw());
  }

  async update(board) {
    await Promise.all(board.trials.map(async (t) => {
      const known = this.histories.get(t.job_id);
      if ((known && known.final) || t.status === "queued") return;
      const history = await api(`/jobs/${encodeURIComponent(t.job_id)}/history?max_points=${MAX_POINTS}`);
      this.histories.set(t.job_id, { final: FINAL.has(t.status), points: history.points });
    }));
    const bestNumber = board.best ? board.best.number : null;
    this.runs = [...board.trials].sort((a, b) => a.number - b.number)
      .filter((t) => this.histories.has(t.job_id))
      .map((t) => ({ name: `#${t.number}`, id: t.number, colour: t.number,
                     best: t.number === bestNumber, points: this.histories.get(t.job_id).points }));
    const names = metricNames(this.runs.flatMap((r) => r.points));
    if (names.length !== this.select.options.length) {
      this.select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    }
    const preferred = board.metric.replace(/^validation-/, "");
    if (!this.metric || !names.includes(this.metric)) {
      this.metric = names.includes(preferred) ? preferred : names[0] || null;
    }
    if (this.metric) this.select.value = this.metric;
    $("#trial-legend").replaceChildren(...this.runs.map((r) => el("li", {},
      el("span", { class: `key run-${r.colour % 10}` }), ` trial ${r.name}${r.best ? " (best)" : ""}`)));
    this.draw();
  }

  draw() {
    drawRuns($("#curve"), this.metric ? this.runs : [], this.metric);
  }
}
