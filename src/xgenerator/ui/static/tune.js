// The search form of a dataset's page: the train form's request, the ticked parameters'
// bounds as the search space, and the search's own settings; POST /tune, then its page.

import { $, api, el } from "./api.js";
import { trainRequest } from "./upload.js";

// Metrics a trial can be scored on whatever the number of classes; choosing one also makes it
// the trials' eval_metric, so that their histories have it. "" is the task's own loss.
const METRICS = {
  classification: [["", "the loss (logloss, or mlogloss for 3+ classes)"], ["auc", "auc"]],
  regression: [["", "the loss (rmse)"], ["mae", "mae"]],
};

export function tuneForm(d) {
  const metric = $("#tune-metric");
  const task = $("#train-task");
  const choices = () => {
    const kept = metric.value;
    metric.replaceChildren(...(METRICS[task.value] || METRICS.regression).map(([value, text]) =>
      el("option", { value }, text)));
    if ([...metric.options].some((o) => o.value === kept)) metric.value = kept;
  };
  task.addEventListener("change", choices);
  $("#train-target").addEventListener("change", choices); // it infers the task again
  choices();
  $("#tune-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = $("#tune-error");
    problem.textContent = "";
    let body;
    try {
      body = tuneRequest(d);
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    const button = $("#tune-submit");
    button.disabled = true;
    try {
      const accepted = await api("/tune", { method: "POST", body });
      location.href = `/ui/searches/${encodeURIComponent(accepted.job_id)}`;
    } catch (error) {
      problem.textContent = error.message;
      button.disabled = false;
    }
  });
}

function tuneRequest(d) {
  const space = {};
  for (const row of document.querySelectorAll("#tune-form .space-row")) {
    const name = row.dataset.param;
    if (!$(`#tune-on-${name}`).checked) continue;
    const [low, high] = ["low", "high"].map((end) => $(`#tune-${end}-${name}`));
    if (!low.checkValidity() || !high.checkValidity() || low.value === "" || high.value === "") {
      throw new Error(`${name}: both bounds must be numbers in [${low.min}, ${low.max}].`);
    }
    if (Number(low.value) > Number(high.value)) throw new Error(`${name}: “from” is above “to”.`);
    space[name] = { type: row.dataset.type, low: Number(low.value), high: Number(high.value),
                    log: row.dataset.log === "true" };
  }
  const names = Object.keys(space);
  if (!names.length) throw new Error("Tick at least one parameter to search.");
  const metric = $("#tune-metric").value;
  const body = trainRequest(d, [...names, ...(metric ? ["eval_metric"] : [])]);
  // a searched parameter is not also sent fixed: each trial gets only its sampled value
  for (const name of names) delete body.xgb_params[name];
  if (metric) body.xgb_params.eval_metric = metric;
  return {
    ...body,
    search_space: space,
    max_trials: Number($("#tune-trials").value),
    max_parallel: Number($("#tune-parallel").value),
    strategy: $("#tune-strategy").value,
    metric: metric || null,
    direction: $("#tune-direction").value || null,
  };
}
