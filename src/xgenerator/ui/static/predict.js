// The model page's predictions: explain a row the user types (a waterfall of its SHAP
// contributions, from the bias to the margin), and predict a whole dataset in a batch job
// followed to its downloadable file.

import { $, FINAL, api, bytes, download, el, follow, number } from "./api.js";
import { drawWaterfall } from "./chart.js";

const MAX_BARS = 12; // features drawn one by one; the rest are summed into one bar

// --- explain a row -----------------------------------------------------------------------

export async function explainForm(modelId) {
  const sig = await api(`/models/${modelId}/signature`);
  const fields = sig.inputs.map(field);
  const form = $("#explain-form");
  form.prepend(...fields.map((f) => f.node));
  const names = new Set(sig.inputs.map((i) => i.name));
  const classSelect = $("#explain-class");
  let shown = null;
  const draw = () => { if (shown) showExplanation(shown, names, sig.outputs, classSelect.value); };
  classSelect.addEventListener("change", draw);
  window.addEventListener("resize", draw);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = $("#explain-error");
    problem.textContent = "";
    let row;
    try {
      row = Object.fromEntries(fields.map((f) => [f.name, f.read()]));
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    const path = `/models/${modelId}/predict`;
    try {
      // the margin is asked for on its own: the waterfall's total is checked against it
      const [explained, margin] = await Promise.all([
        api(path, { method: "POST", body: { rows: [row], explain: true } }),
        api(path, { method: "POST", body: { rows: [row], output: "margin" } }),
      ]);
      shown = {
        row,
        prediction: explained.predictions[0],
        probabilities: explained.probabilities ? explained.probabilities[0] : null,
        contributions: explained.contributions[0],
        margin: margin.predictions[0],
      };
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    const multi = Object.values(shown.contributions).every((v) => v !== null && typeof v === "object");
    $("#explain-class-label").hidden = !multi;
    if (multi) {
      const classes = Object.keys(shown.contributions);
      classSelect.replaceChildren(...classes.map((c) => el("option", { value: c }, c)));
      classSelect.value = classes.includes(String(shown.prediction)) ? String(shown.prediction) : classes[0];
    }
    $("#explain-result").hidden = false;
    draw();
  });
}

// One input per column the model reads, read back as the JSON value the API expects.
function field(input, i) {
  const id = `explain-${i}`;
  let control;
  let extra = null;
  const categories = input.categories || [];
  if (input.kind === "categorical" && input.category_count <= categories.length) {
    control = el("select", { id },
      el("option", { value: "" }, "(missing)"),
      ...categories.map((c) => el("option", { value: String(c) }, String(c))));
  } else if (input.kind === "categorical") { // more categories than listed: typed, suggested
    control = el("input", { id, type: "text", list: `${id}-list`, autocomplete: "off" });
    extra = el("datalist", { id: `${id}-list` }, ...categories.map((c) => el("option", { value: String(c) })));
  } else if (input.kind === "numeric") {
    control = el("input", { id, type: "number", step: "any", inputmode: "decimal" });
  } else {
    control = el("input", { id, type: "text", autocomplete: "off",
                            placeholder: "2024-01-31T12:00:00 or epoch seconds" });
  }
  const node = el("div", {}, el("label", { for: id }, input.name,
    el("span", { class: "muted small" }, ` (${input.kind})`)), control, extra);
  const read = () => {
    const value = control.value.trim();
    if (input.kind === "numeric" && !control.checkValidity()) {
      throw new Error(`${input.name}: not a number.`);
    }
    if (value === "") return null;
    if (input.kind === "numeric") return Number(value);
    if (input.kind === "datetime" && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
    return value;
  };
  return { name: input.name, node, read };
}

function showExplanation(shown, names, outputs, chosenClass) {
  const multi = $("#explain-class-label").hidden === false;
  const contributions = multi ? shown.contributions[chosenClass] : shown.contributions;
  const margin = multi ? shown.margin[chosenClass] : shown.margin;
  const biasKey = Object.keys(contributions).find((k) => !names.has(k));
  const features = Object.entries(contributions).filter(([k]) => k !== biasKey)
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const steps = [{ name: "bias", value: contributions[biasKey] },
    ...features.slice(0, MAX_BARS).map(([name, value]) => ({ name, value }))];
  const rest = features.slice(MAX_BARS);
  if (rest.length) {
    steps.push({ name: `${rest.length} other features`, value: rest.reduce((s, [, v]) => s + v, 0) });
  }
  drawWaterfall($("#waterfall"), steps, "margin");
  const total = steps.reduce((s, step) => s + step.value, 0);

  const parts = [`Prediction: ${typeof shown.prediction === "object" ? JSON.stringify(shown.prediction) : shown.prediction}`];
  if (shown.probabilities && String(shown.prediction) in shown.probabilities) {
    parts.push(`probability ${number(shown.probabilities[String(shown.prediction)])}`);
  }
  const classes = outputs.classes || [];
  const of = multi ? ` of “${chosenClass}”` : classes.length === 2 ? ` (log-odds of “${classes[1]}”)` : "";
  parts.push(`margin${of} ${number(margin)}`);
  $("#explain-prediction").textContent = parts.join(" · ");
  const check = $("#explain-check");
  check.dataset.total = String(total);
  check.dataset.margin = String(margin);
  const agree = Math.abs(total - margin) <= 1e-4 * Math.max(1, Math.abs(margin));
  check.className = agree ? "small muted" : "small error";
  check.textContent = agree
    ? `The bias and the contributions add up to ${number(total)}, the model's margin.`
    : `The contributions add up to ${number(total)}, not the model's margin ${number(margin)}.`;
  const typed = (name) => {
    const value = shown.row[name];
    return value === null || value === undefined ? "missing" : String(value);
  };
  $("#explain-table tbody").replaceChildren(
    ...steps.map((step, i) => el("tr", { "data-feature": step.name },
      el("th", { scope: "row" }, step.name),
      el("td", {}, i === 0 || !names.has(step.name) ? "" : typed(step.name)),
      el("td", {}, `${step.value >= 0 ? "+" : ""}${number(step.value)}`))),
    el("tr", { "data-feature": "margin" }, el("th", { scope: "row" }, "margin"), el("td", {}, ""),
       el("td", {}, number(total))));
}

// --- batch prediction --------------------------------------------------------------------

export async function batchPrediction(modelId, model) {
  const select = $("#batch-dataset");
  const button = $("#batch-submit");
  const problem = $("#batch-error");
  const listed = (await api("/datasets?limit=100")).datasets;
  select.replaceChildren(...listed.map((d) => el("option", { value: d.dataset_id },
    `${d.dataset_name} (${d.row_count.toLocaleString()} rows)`)));
  if (listed.some((d) => d.dataset_id === model.dataset_id)) select.value = model.dataset_id;
  if (!listed.length) {
    problem.textContent = "No datasets yet: upload one on the Datasets page.";
    button.disabled = true;
  }
  $("#batch-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    button.disabled = true;
    try {
      const job = await api(`/models/${modelId}/predict-batch`, {
        method: "POST", body: { dataset_id: select.value, explain: $("#batch-explain").checked },
      });
      await followBatch(job.job_id);
    } catch (error) {
      problem.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
}

async function followBatch(jobId) {
  const id = encodeURIComponent(jobId);
  const fill = $("#batch-progress-fill");
  const text = $("#batch-progress");
  const line = $("#batch-download-line");
  $("#batch-job").hidden = false;
  fill.style.width = "0%";
  text.textContent = "queued";
  line.replaceChildren("Job ", el("a", { href: `/ui/jobs/${id}` }, jobId), ".");
  const stop = new AbortController();
  window.addEventListener("pagehide", () => stop.abort());
  await follow(`/jobs/${id}/stream`, (message) => {
    const data = message.data;
    if (message.event === "progress" && typeof data.percent === "number") {
      fill.style.width = `${Math.min(100, data.percent)}%`;
      text.textContent = `${Math.round(data.percent)}%${data.message ? ` · ${data.message}` : ""}`;
    } else if (message.event === "status" && !FINAL.has(data.status)) {
      text.textContent = data.status;
    }
  }, stop.signal);
  const result = await api(`/jobs/${id}/result`);
  if (result.status !== "succeeded") {
    text.textContent = `${result.status}${result.error ? `: ${result.error.message}` : ""}`;
    return;
  }
  fill.style.width = "100%";
  const rows = result.result.rows;
  text.textContent = `succeeded · ${rows.toLocaleString()} rows predicted`;
  const file = result.artifacts.find((a) => a.name === "predictions.parquet") || result.artifacts[0];
  const href = `/jobs/${id}/artifacts/${encodeURIComponent(file.name)}`;
  // the API needs the key header, which a plain link cannot send: the click fetches it
  const link = el("a", { href, id: "batch-download", download: file.name, "data-rows": String(rows) },
    `Download ${file.name} (${rows.toLocaleString()} rows, ${bytes(file.size)})`);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    download(href, file.name).catch((error) => { $("#batch-error").textContent = error.message; });
  });
  const parts = [link, " · ", el("a", { href: `/ui/jobs/${id}` }, "job")];
  if (result.result.dataset_id) {
    parts.push(" · ", el("a", { href: `/ui/datasets/${encodeURIComponent(result.result.dataset_id)}` },
                         "as a dataset"));
  }
  line.replaceChildren(...parts);
}
