// One function per page; each fills the shell its template rendered.

import { $, FINAL, api, badge, bytes, download, el, follow, number, sleep, when } from "./api.js";
import { drawCurve, metricNames } from "./chart.js";
import { batchPrediction, explainForm } from "./predict.js";
import { registry } from "./registry.js";
import { tuneForm } from "./tune.js";
import { schemaRows, trainForm, uploader } from "./upload.js";

export { compare } from "./compare.js";
export { search } from "./search.js";

const REFRESH_MS = 3000;

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (empty) empty.hidden = rows.length > 0;
}

function metricRows(metrics) {
  return Object.entries(metrics || {})
    .filter(([, value]) => typeof value === "number")
    .map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, number(value))));
}

function keyMetrics(metrics) {
  const preferred = ["roc_auc", "accuracy", "f1", "rmse", "r2", "mae"];
  const names = preferred.filter((n) => typeof (metrics || {})[n] === "number").slice(0, 3);
  return names.map((n) => `${n} ${number(metrics[n])}`).join(" · ");
}

// --- jobs --------------------------------------------------------------------------------

export async function jobs() {
  const filter = $("#status-filter");
  const tbody = $("#jobs-table tbody");
  filter.value = new URLSearchParams(location.search).get("status") || "";
  const compare = $("#compare-selected");
  const selected = new Set(); // kept across refreshes, which redraw the rows
  const pick = (jobId, on) => {
    if (on) selected.add(jobId); else selected.delete(jobId);
    compare.textContent = `Compare selected (${selected.size})`;
    compare.disabled = selected.size < 2 || selected.size > 10;
  };
  compare.addEventListener("click", () => {
    location.href = `/ui/compare?ids=${[...selected].map(encodeURIComponent).join(",")}`;
  });
  let generation = 0;
  async function refresh() {
    const mine = ++generation;
    const query = filter.value ? `?status=${encodeURIComponent(filter.value)}` : "";
    const body = await api(`/jobs${query}`);
    if (mine !== generation) return; // the filter changed while this was in flight
    fill(tbody, body.jobs.map((job) => {
      const bar = el("div", { class: "progress small" }, el("div"));
      bar.firstChild.style.width = `${job.progress.percent || 0}%`;
      const box = el("input", { type: "checkbox", "aria-label": `Compare ${job.model_name || job.job_type} (${job.job_id})`,
                                checked: selected.has(job.job_id) });
      box.addEventListener("change", () => pick(job.job_id, box.checked));
      return el("tr", { "data-job-id": job.job_id },
        el("td", {}, box),
        el("td", {}, el("a", { href: jobPage(job) }, job.model_name || job.job_type),
           job.job_type === "tune" ? el("span", { class: "small muted" }, " (search)") : null),
        el("td", {}, badge(job.status)),
        el("td", {}, bar, el("span", { class: "small" }, ` ${Math.round(job.progress.percent || 0)}%`)),
        el("td", { class: "opt" }, job.parent_job_id ? `${job.job_type} (trial)` : job.job_type),
        el("td", { class: "opt" }, when(job.created_at)),
        el("td", { class: "opt mono small" }, job.job_id));
    }), $("#jobs-empty"));
  }
  filter.addEventListener("change", () => {
    const url = filter.value ? `?status=${encodeURIComponent(filter.value)}` : location.pathname;
    history.replaceState(null, "", url);
    refresh();
  });
  for (;;) {
    if (!document.hidden) await refresh();
    await sleep(REFRESH_MS);
  }
}

// A search's page is its leaderboard; any other job's page follows it.
function jobPage(job) {
  const id = encodeURIComponent(job.job_id);
  return job.job_type === "tune" ? `/ui/searches/${id}` : `/ui/jobs/${id}`;
}

// --- one job -----------------------------------------------------------------------------

class CurveView {
  constructor() {
    this.points = [];
    this.metric = null;
    this.select = $("#metric");
    this.select.addEventListener("change", () => { this.metric = this.select.value; this.draw(); });
    window.addEventListener("resize", () => this.schedule());
    this.pending = false;
  }

  add(point) {
    this.points.push(point);
    this.schedule();
  }

  reset(points) {
    this.points = points;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const names = metricNames(this.points);
    if (names.length !== this.select.options.length) {
      this.select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    }
    if (!this.metric || !names.includes(this.metric)) this.metric = names[0] || null;
    if (this.metric) this.select.value = this.metric;
    drawCurve($("#curve"), this.points, this.metric);
  }
}

export async function job(jobId) {
  const curve = new CurveView();
  const timeline = $("#events");
  const cancel = $("#cancel");
  let info = await api(`/jobs/${jobId}`);
  showJob(info);

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
    try {
      await api(`/jobs/${jobId}/cancel`, { method: "POST" });
    } catch (error) {
      cancel.textContent = error.message;
    }
  });

  const addEvent = (e) => timeline.append(el("li", { class: e.status },
    el("time", { datetime: e.at }, when(e.at)), " ", el("strong", {}, e.event), " ",
    el("span", { class: "muted" }, e.message || "")));

  // The curve so far, downsampled by the server; the stream then brings every event and
  // only the rounds after it ("0-R": the stream's id format, last event id - last round).
  const history = await api(`/jobs/${jobId}/history?max_points=600`);
  curve.reset(history.points);
  curve.draw();
  if (FINAL.has(info.status)) {
    (await api(`/jobs/${jobId}/events`)).events.forEach(addEvent);
    return;
  }
  const last = history.points.length ? history.points[history.points.length - 1].round : 0;
  const stop = new AbortController();
  window.addEventListener("pagehide", () => stop.abort());
  await follow(`/jobs/${jobId}/stream`, async (message) => {
    const data = message.data;
    if (message.event === "event") addEvent(data);
    else if (message.event === "progress") {
      if (data.round) curve.add({ round: data.round, ...data.metrics });
      showProgress(data);
    } else if (message.event === "status") {
      info = { ...info, status: data.status, error: data.error, model_id: data.model_id };
      if (FINAL.has(data.status)) info = await api(`/jobs/${jobId}`);
      showJob(info);
    }
  }, stop.signal, last ? `0-${last}` : null);
}

function showJob(info) {
  document.title = `${info.model_name || info.job_type} · XGenerator`;
  $("#job-title").textContent = info.model_name || info.job_type;
  $("#job-status").replaceWith(Object.assign(badge(info.status), { id: "job-status" }));
  $("#job-meta").textContent = `${info.job_type} job ${info.job_id} · created ${when(info.created_at)}`;
  const search = info.job_type === "tune" ? info.job_id : info.parent_job_id;
  $("#search-link").hidden = !search;
  if (search) {
    $("#search-link").replaceChildren(info.job_type === "tune"
      ? "A hyper-parameter search: " : "A trial of a hyper-parameter search: ",
      el("a", { href: `/ui/searches/${encodeURIComponent(search)}` }, "leaderboard and trials"));
  }
  const active = !FINAL.has(info.status);
  $("#cancel").hidden = !active;
  showProgress(info.progress || {});
  if (info.status === "succeeded") showProgress({ ...info.progress, percent: 100 });
  $("#error-box").hidden = !info.error;
  if (info.error) {
    $("#error-type").textContent = info.error.error_type;
    $("#error-message").textContent = info.error.message;
  }
  $("#result-box").hidden = !info.model_id;
  if (info.model_id) {
    const link = $("#model-link");
    link.href = `/ui/models/${info.model_id}`;
    link.textContent = info.model_id;
    $("#result-metrics tbody").replaceChildren(...metricRows((info.result || {}).metrics));
  }
}

function showProgress(p) {
  if (p.percent === null || p.percent === undefined) return;
  $("#progress-fill").style.width = `${Math.min(100, p.percent)}%`;
  const parts = [`${Math.round(p.percent)}%`];
  if (p.round && p.total_rounds) parts.push(`round ${p.round} of ${p.total_rounds}`);
  const metrics = p.metrics || {};
  const shown = Object.keys(metrics).find((k) => k.startsWith("validation")) || Object.keys(metrics)[0];
  if (shown && typeof metrics[shown] === "number") parts.push(`${shown} ${number(metrics[shown])}`);
  if (p.message && !p.round) parts.push(p.message);
  $("#progress-text").textContent = parts.join(" · ");
}

// --- models ------------------------------------------------------------------------------

export async function models() {
  const body = await api("/models");
  fill($("#models-table tbody"), body.models.map((m) => el("tr", {},
    el("td", {}, el("a", { href: `/ui/models/${m.model_id}` }, m.name)),
    el("td", {}, m.task_type),
    el("td", { class: "small" }, keyMetrics(m.metrics)),
    el("td", { class: "opt" }, m.target),
    el("td", { class: "opt" }, when(m.created_at)))), $("#models-empty"));
}

export async function model(modelId) {
  const m = await api(`/models/${modelId}`);
  document.title = `${m.name} · XGenerator`;
  $("#model-title").textContent = m.name;
  const meta = $("#model-meta");
  meta.replaceChildren(`${m.task_type} of “${m.target}” · ${m.num_boost_round} rounds · ` +
    `XGBoost ${m.xgboost_version} · trained by job `,
    el("a", { href: `/ui/jobs/${m.job_id}` }, m.job_id));
  $("#model-metrics tbody").replaceChildren(...metricRows(m.metrics));
  // a date-time shows the model columns it became; a column training left out, its reason
  $("#model-features tbody").replaceChildren(...m.features.map((f) =>
    el("tr", {}, el("td", {}, f.name),
       el("td", {}, f.columns ? `${f.kind}: ${f.columns.join(", ")}` : f.kind || ""))),
    ...(m.excluded_features || []).map((e) =>
      el("tr", {}, el("td", {}, e.name), el("td", {}, `not used (${e.reason}): ${e.detail}`))));
  $("#model-params").textContent = JSON.stringify(m.params, null, 2);
  $("#download").addEventListener("click", () => download(`/models/${modelId}/download`,
                                                          `${modelId}.ubj`));
  const curve = new CurveView();
  curve.reset(m.history || []);
  curve.draw();
  showReport(modelId);
  explainForm(modelId).catch((error) => { $("#explain-error").textContent = error.message; });
  batchPrediction(modelId, m).catch((error) => { $("#batch-error").textContent = error.message; });
  await registry(modelId, m);
}

// The report is HTML with its own styles: it is downloaded, not shown inside the dashboard
// (whose Content-Security-Policy would strip its styles).
async function showReport(modelId) {
  const box = $("#report");
  let found = false;
  try {
    await api(`/models/${modelId}/report`, { raw: true });
    found = true;
  } catch (error) {
    if (error.status !== 404) return;
  }
  const button = el("button", { type: "button", class: "quiet" },
                    found ? "Download report (HTML)" : "Create a report");
  button.addEventListener("click", async () => {
    if (found) {
      await download(`/models/${modelId}/report`, `report-${modelId}.html`);
      return;
    }
    const job = await api(`/models/${modelId}/report`, { method: "POST" });
    location.href = `/ui/jobs/${job.job_id}`;
  });
  box.replaceChildren(button);
  box.hidden = false;
}

// --- datasets ----------------------------------------------------------------------------

export async function datasets() {
  uploader();
  const body = await api("/datasets");
  fill($("#datasets-table tbody"), body.datasets.map((d) => el("tr", {},
    el("td", {}, el("a", { href: `/ui/datasets/${d.dataset_id}` }, d.dataset_name)),
    el("td", {}, d.row_count.toLocaleString()),
    el("td", {}, String(d.column_count)),
    el("td", { class: "opt" }, bytes(d.size_bytes)),
    el("td", { class: "opt" }, when(d.created_at)))), $("#datasets-empty"));
}

export async function dataset(datasetId) {
  const d = await api(`/datasets/${datasetId}`);
  document.title = `${d.dataset_name} · XGenerator`;
  $("#dataset-title").textContent = d.dataset_name;
  $("#dataset-meta").textContent = `${d.row_count.toLocaleString()} rows · ${d.column_count} ` +
    `columns · ${d.original_format} · ${bytes(d.size_bytes)} · uploaded ${when(d.created_at)}`;
  $("#dataset-schema tbody").replaceChildren(...schemaRows(d.columns, null));
  if (d.columns.length) {
    trainForm(d);
    tuneForm(d);
  }
}
