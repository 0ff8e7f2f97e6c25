// Jobs side by side: their curves on one chart, metrics, parameters and settings in one
// table, the rows that differ marked.

import { $, api, el, number } from "./api.js";
import { drawRuns, metricNames } from "./chart.js";

const SECTIONS = ["metric", "param", "setting"];

// The ids come from the server, checked one by one (ui/routes.py).
export async function compare(ids) {
  const jobIds = decodeURIComponent(ids).split(",");
  const runs = await Promise.all(jobIds.map(async (id) => {
    const path = `/jobs/${encodeURIComponent(id)}`;
    const job = await api(path);
    const model = job.model_id ? await api(`/models/${encodeURIComponent(job.model_id)}`) : null;
    const history = await api(`${path}/history?max_points=600`);
    return { job, model, points: history.points, name: job.model_name || job.job_type };
  }));
  $("#compare-meta").textContent = `${runs.length} jobs`;
  curves(runs);
  table(runs);
}

function curves(runs) {
  const select = $("#metric");
  const names = metricNames(runs.flatMap((r) => r.points));
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  const draw = () => drawRuns($("#curve"), runs, select.value);
  select.addEventListener("change", draw);
  window.addEventListener("resize", draw);
  draw();
  $("#compare-legend").replaceChildren(...runs.map((r, i) => el("li", {},
    el("span", { class: `key run-${i}` }), ` ${r.name} (${r.job.job_id.slice(0, 8)})`)));
}

// {section: {name: [value per run]}}, the same rows as `xgenerator jobs compare`.
export function comparison(runs) {
  const rows = Object.fromEntries(SECTIONS.map((s) => [s, new Map()]));
  const put = (section, name, i, value) => {
    if (!rows[section].has(name)) rows[section].set(name, runs.map(() => null));
    rows[section].get(name)[i] = value === undefined ? null : value;
  };
  runs.forEach(({ job, model }, i) => {
    const metrics = model ? model.metrics : (job.result || {}).metrics || {};
    for (const [k, v] of Object.entries(metrics || {})) put("metric", k, i, v);
    for (const [k, v] of Object.entries((model && model.params) || {})) put("param", k, i, v);
    put("setting", "status", i, job.status);
    put("setting", "job_type", i, job.job_type);
    if (model) {
      for (const k of ["task_type", "target", "num_boost_round", "dataset_id"]) {
        put("setting", k, i, model[k]);
      }
    }
  });
  return rows;
}

function cell(value) {
  if (value === null) return "—";
  if (typeof value === "number") return number(value);
  return typeof value === "string" ? value : JSON.stringify(value);
}

function table(runs) {
  $("#compare-table thead").replaceChildren(el("tr", {}, el("th", {}, ""), el("th", {}, ""),
    ...runs.map((r, i) => el("th", { scope: "col" },
      el("span", { class: `key run-${i}` }), " ",
      el("a", { href: `/ui/jobs/${encodeURIComponent(r.job.job_id)}` }, r.name)))));
  const rows = comparison(runs);
  const body = [];
  for (const section of SECTIONS) {
    for (const [name, values] of [...rows[section]].sort(([a], [b]) => a.localeCompare(b))) {
      const differs = new Set(values.map((v) => JSON.stringify(v))).size > 1;
      body.push(el("tr", { class: differs ? "differs" : null, "data-row": `${section}:${name}` },
        el("td", { class: "muted small" }, section),
        el("th", { scope: "row" }, differs ? el("span", { class: "differs", title: "differs" }, "≠ ") : null, name),
        ...values.map((v) => el("td", {}, cell(v)))));
    }
  }
  $("#compare-table tbody").replaceChildren(...body);
}
