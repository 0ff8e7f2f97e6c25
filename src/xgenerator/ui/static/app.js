// Entry point: sign in (or not), then run the page named by <body data-page>.

import { $, ApiError, api, auth } from "./api.js";
import * as pages from "./pages.js";

const page = document.body.dataset.page;
// The server only renders ids of the right shape; encoding them too keeps any id a single
// path segment of the API URLs built from it.
const objectId = encodeURIComponent(document.body.dataset.id);

function showSignIn() {
  $("#content").hidden = true;
  $("#signin").hidden = false;
  $("#signout").hidden = true;
  $("#who").textContent = "";
  $("#api-key").focus();
}

function showError(error) {
  const box = $("#page-error");
  box.textContent = error instanceof ApiError && error.status === 404
    ? "Not found: it does not exist, or it is not yours."
    : `Something went wrong: ${error.message}`;
  box.hidden = false;
}

async function start() {
  let me;
  try {
    me = await api("/users/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return showSignIn();
    throw error;
  }
  $("#who").textContent = me.username;
  $("#signout").hidden = false;
  $("#signin").hidden = true;
  $("#content").hidden = false;
  await pages[page](objectId);
}

$("#signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  const problem = $("#signin-error");
  problem.textContent = "";
  try {
    await api("/users/me", { key });
  } catch (error) {
    problem.textContent = error.status === 401 ? "That key is not valid." : error.message;
    return;
  }
  auth.set(key);
  $("#api-key").value = "";
  start().catch(showError);
});

$("#signout").addEventListener("click", () => {
  auth.clear();
  location.reload();
});

window.addEventListener("xg:signed-out", showSignIn);

for (const link of document.querySelectorAll("[data-nav]")) {
  if (link.dataset.nav.split(" ").includes(page)) link.setAttribute("aria-current", "page");
}

if (auth.get()) start().catch(showError);
else showSignIn();
