// The model page's importance (gain or SHAP) and its name's aliases: move one to a version,
// roll one back, and every move so far.

import { $, api, el, number, when } from "./api.js";

export async function registry(modelId, model) {
  importance(modelId);
  if (model.version) await aliases(model);
}

function importance(modelId) {
  const select = $("#importance-type");
  const show = async () => {
    const note = $("#importance-note");
    note.textContent = "";
    try {
      const body = await api(`/models/${modelId}/importance?type=${encodeURIComponent(select.value)}`);
      const top = Math.max(...body.importance.map((i) => i.value), 0) || 1;
      $("#importance tbody").replaceChildren(...body.importance.map((i) => {
        const bar = el("div", { class: "progress small" }, el("div"));
        bar.firstChild.style.width = `${(100 * i.value) / top}%`;
        return el("tr", {}, el("td", {}, i.feature), el("td", {}, number(i.value)), el("td", {}, bar));
      }));
    } catch (error) {
      $("#importance tbody").replaceChildren();
      note.textContent = error.message;
    }
  };
  select.addEventListener("change", show);
  show();
}

async function aliases(model) {
  const name = encodeURIComponent(model.name);
  const card = $("#aliases-card");
  card.hidden = false;
  const versionSelect = $("#alias-version");
  const problem = $("#alias-error");
  const render = async () => {
    const r = await api(`/registered-models/${name}`);
    versionSelect.replaceChildren(...r.versions.map((v) => el("option",
      { value: String(v.version) }, `v${v.version}${v.model_id === model.model_id ? " (this model)" : ""}`)));
    versionSelect.value = String(model.version);
    $("#aliases tbody").replaceChildren(...Object.entries(r.aliases).map(([alias, version]) => {
      const back = el("button", { type: "button", class: "quiet", "data-rollback": alias },
                      `Roll back ${alias}`);
      back.addEventListener("click", () => act(`/registered-models/${name}/aliases/${encodeURIComponent(alias)}/rollback`, "POST"));
      return el("tr", { "data-alias": alias }, el("td", {}, `${model.name}@${alias}`),
                el("td", {}, `v${version}`), el("td", {}, back));
    }));
    $("#aliases-empty").hidden = Object.keys(r.aliases).length > 0;
    $("#alias-history").replaceChildren(...r.history.map((m) => el("li", {},
      el("time", { datetime: m.at }, when(m.at)), " ",
      el("strong", {}, m.alias), `: ${m.from_version ? `v${m.from_version}` : "none"} → ` +
      `${m.to_version ? `v${m.to_version}` : "none"} by ${m.actor}`)));
  };
  const act = async (path, method, body) => {
    problem.textContent = "";
    try {
      await api(path, { method, body });
      await render();
    } catch (error) {
      problem.textContent = error.message;
    }
  };
  $("#alias-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const alias = $("#alias-name").value.trim();
    if (!alias) return;
    act(`/registered-models/${name}/aliases/${encodeURIComponent(alias)}`, "PUT",
        { version: Number(versionSelect.value) });
  });
  await render();
}
