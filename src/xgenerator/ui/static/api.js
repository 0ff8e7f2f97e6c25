// Talking to the API: the key (this tab's sessionStorage), JSON requests, the SSE stream,
// and small DOM helpers. Everything from the server goes into the page as text, never HTML.

const KEY = "xgenerator.apiKey";

export const auth = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401) {
    auth.clear();
    window.dispatchEvent(new Event("xg:signed-out"));
  }
  return new ApiError(response.status, body);
}

// JSON in and out; `raw: true` returns the response itself (for non-JSON bodies).
export async function api(path, { method = "GET", key = auth.get(), body, raw = false } = {}) {
  const headers = { "X-API-Key": key || "", Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export async function download(path, filename) {
  const response = await fetch(path, { headers: { "X-API-Key": auth.get() || "" } });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// EventSource cannot send the X-API-Key header, so the stream is read with fetch. When the
// connection drops, or the server closes it, reconnect with the last id: nothing is missed.
// `lastId` may start as "0-R": every event, but only the rounds after R.
export async function follow(path, onMessage, signal, lastId = null) {
  let failures = 0;
  while (!signal.aborted) {
    let done = false;
    try {
      const headers = { "X-API-Key": auth.get() || "", Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers, signal });
      if (!response.ok) throw await failure(response);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done: ended } = await reader.read();
        if (ended) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const message = parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!message) continue;
          failures = 0;
          if (message.id) lastId = message.id;
          onMessage(message);
          if (message.event === "status" && FINAL.has(message.data.status)) done = true;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) throw error;
      failures += 1;
    }
    if (done) return;
    await sleep(Math.min(500 * (failures + 1), 5000));
  }
}

function parse(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return data.length ? { event, id, data: JSON.parse(data.join("\n")) } : null;
}

export const FINAL = new Set(["succeeded", "failed", "cancelled"]);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function $(selector) {
  return document.querySelector(selector);
}

// el("a", {href: "/x", class: "y"}, "text", child...): attributes and text, never innerHTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function number(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "" : String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(4);
}

export function badge(status) {
  return el("span", { class: `badge ${status}` }, status);
}

export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
