// Datasets: upload with a progress bar (XMLHttpRequest reports upload progress, fetch does
// not), the schema with how training will use each column, and the train form.

import { $, ApiError, api, auth, el } from "./api.js";

export function uploader() {
  const input = $("#upload-file");
  const zone = $("#drop-zone");
  const status = $("#upload-status");
  let chosen = null;
  const choose = (file) => {
    chosen = file || null;
    status.textContent = chosen ? `Ready: ${chosen.name} (${chosen.size.toLocaleString()} bytes)` : "";
  };
  input.addEventListener("change", () => choose(input.files[0]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  $("#upload-button").addEventListener("click", () => {
    if (!chosen) {
      status.textContent = "Choose a file first.";
      return;
    }
    send(chosen, $("#upload-name").value.trim());
  });
}

function send(file, name) {
  const bar = $("#upload-progress");
  const status = $("#upload-status");
  const button = $("#upload-button");
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("dataset_name", name || file.name.replace(/\.[^.]+$/, ""));
  const request = new XMLHttpRequest();
  request.open("POST", "/datasets");
  request.setRequestHeader("X-API-Key", auth.get() || "");
  request.setRequestHeader("Accept", "application/json");
  request.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable) return;
    bar.value = Math.round((100 * event.loaded) / event.total);
    status.textContent = `Uploading… ${bar.value}%`;
  });
  request.upload.addEventListener("load", () => { status.textContent = "Reading the file on the server…"; });
  request.addEventListener("load", () => {
    button.disabled = false;
    let body = null;
    try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
    if (request.status >= 200 && request.status < 300 && body) {
      location.href = `/ui/datasets/${encodeURIComponent(body.dataset_id)}?uploaded=1`;
      return;
    }
    status.textContent = `Upload refused: ${new ApiError(request.status, body).message}`;
  });
  request.addEventListener("error", () => {
    button.disabled = false;
    status.textContent = "Upload failed: the server could not be reached.";
  });
  bar.hidden = false;
  bar.value = 0;
  button.disabled = true;
  request.send(form);
}

const USE = {
  numeric: "numeric feature",
  boolean: "numeric feature (0/1)",
  categorical: "categorical feature",
  datetime: "date parts (year, month, day, …) as numeric features",
};

// The task a target suggests: numbers are regressed, anything else is classified.
export function inferredTask(column) {
  return column.kind === "numeric" ? "regression" : "classification";
}

export function schemaRows(columns, target) {
  return columns.map((c) => el("tr", { "data-column": c.name },
    el("td", {}, c.name), el("td", {}, c.kind),
    el("td", {}, c.name === target ? "target" : USE[c.kind] || c.kind),
    el("td", { class: "opt mono small" }, c.dtype),
    el("td", {}, String(c.null_count))));
}

export function trainForm(d) {
  const target = $("#train-target");
  const task = $("#train-task");
  const name = $("#train-name");
  const columns = d.columns;
  target.replaceChildren(...columns.map((c) => el("option", { value: c.name }, c.name)));
  target.value = columns[columns.length - 1].name; // the last column is a common convention
  const changed = () => {
    const column = columns.find((c) => c.name === target.value);
    task.value = inferredTask(column);
    $("#train-task-hint").textContent =
      `Inferred from “${column.name}” (${column.kind}); change it if that is wrong.`;
    name.value = `${d.dataset_name}-${column.name}`.slice(0, 200);
    $("#dataset-schema tbody").replaceChildren(...schemaRows(columns, column.name));
  };
  target.addEventListener("change", changed);
  changed();
  $("#train-params").addEventListener("input", () => { $("#train-error").textContent = ""; });
  $("#train-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = $("#train-error");
    problem.textContent = "";
    let body;
    try {
      body = trainRequest(d);
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    const button = $("#train-submit");
    button.disabled = true;
    try {
      const accepted = await api("/train", { method: "POST", body });
      location.href = `/ui/jobs/${encodeURIComponent(accepted.job_id)}`;
    } catch (error) {
      problem.textContent = error.message;
      button.disabled = false;
    }
  });
}

// The /train request the train form describes (the search form starts from it too); an
// Error with the reason when the advanced parameters are not a JSON object, or set what a
// field above sets (`reserved`: more names that must not be there).
export function trainRequest(d, reserved = []) {
  let extra = {};
  const text = $("#train-params").value.trim();
  if (text) {
    try { extra = JSON.parse(text); } catch (error) {
      throw new Error(`Advanced parameters are not valid JSON: ${error.message}`);
    }
    if (extra === null || typeof extra !== "object" || Array.isArray(extra)) {
      throw new Error("Advanced parameters must be a JSON object.");
    }
    const clash = ["max_depth", "eta", "learning_rate", ...reserved].filter((k) => k in extra);
    if (clash.length) throw new Error(`Set ${clash.join(", ")} in the fields above, not in the JSON.`);
  }
  return {
    dataset_id: d.dataset_id, target: $("#train-target").value, model_name: $("#train-name").value.trim(),
    task_type: $("#train-task").value, num_boost_round: Number($("#train-rounds").value),
    xgb_params: { ...extra, max_depth: Number($("#train-depth").value),
                  eta: Number($("#train-eta").value) },
  };
}
