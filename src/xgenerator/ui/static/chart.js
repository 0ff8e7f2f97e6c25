// The charts, drawn as inline SVG: training curves (one job's, or several jobs' overlaid) and
// the waterfall of a prediction's contributions.

const NS = "http://www.w3.org/2000/svg";
const MARGIN = { left: 58, right: 14, top: 12, bottom: 30 };
const MAX_DRAWN = 600; // more points than pixels only slows the browser down

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// "validation-logloss" -> "logloss"; the metrics a curve can show, in first-seen order.
export function metricNames(points) {
  const names = new Set();
  for (const point of points) {
    for (const key of Object.keys(point)) {
      const at = key.indexOf("-");
      if (key !== "round" && at > 0) names.add(key.slice(at + 1));
    }
  }
  return [...names];
}

function thin(points) {
  if (points.length <= MAX_DRAWN) return points;
  const step = (points.length - 1) / (MAX_DRAWN - 1);
  return Array.from({ length: MAX_DRAWN }, (_, i) => points[Math.round(i * step)]);
}

function label(value) {
  const size = Math.abs(value);
  if (size !== 0 && (size < 0.001 || size >= 100000)) return value.toExponential(2);
  return value.toFixed(size >= 100 ? 0 : size >= 1 ? 2 : 4);
}

// Drawn at the element's own pixel width, so that text keeps its size on a phone.
export function drawCurve(root, points, metric) {
  const series = ["train", "validation"].map((name) => ({
    name,
    // filtered first: the training metric may come only every k rounds
    values: thin(points.filter((p) => typeof p[`${name}-${metric}`] === "number"))
      .map((p) => [p.round, p[`${name}-${metric}`]]),
  }));
  drawSeries(root, series);
}

// Several jobs' curves on one chart: `runs` is [{name, points, colour?, id?, best?}], each
// drawn as its validation metric (or train, when it has no validation), classes run-0 to
// run-9 (its `colour`, else its place, modulo 10), `best` drawn thicker.
export function drawRuns(root, runs, metric) {
  drawSeries(root, runs.map((run, i) => {
    const key = run.points.some((p) => typeof p[`validation-${metric}`] === "number")
      ? `validation-${metric}` : `train-${metric}`;
    return {
      name: `run run-${(run.colour ?? i) % 10}${run.best ? " best" : ""}`,
      id: run.id,
      values: thin(run.points.filter((p) => typeof p[key] === "number"))
        .map((p) => [p.round, p[key]]),
    };
  }));
}

// Draws series [{name (its CSS classes), values: [[round, value]]}] at the element's width.
function drawSeries(root, series) {
  root.replaceChildren();
  const width = Math.max(280, Math.round(root.getBoundingClientRect().width) || 640);
  const height = width < 500 ? 220 : 300;
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const all = series.flatMap((s) => s.values);
  const { left, right, top, bottom } = MARGIN;
  if (!all.length) {
    root.append(svg("text", { x: width / 2, y: height / 2, class: "empty",
                              "text-anchor": "middle" }, "waiting for the first round…"));
    return;
  }
  const xs = all.map((v) => v[0]);
  const ys = all.map((v) => v[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05;
  y0 = y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad; // a loss never dips below zero
  y1 += pad;
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);

  for (let i = 0; i <= 4; i += 1) {
    const y = y0 + ((y1 - y0) * i) / 4;
    root.append(svg("line", { x1: left, x2: width - right, y1: py(y), y2: py(y), class: "grid" }));
    root.append(svg("text", { x: left - 6, y: py(y) + 4, "text-anchor": "end", class: "tick" },
                    label(y)));
  }
  for (const x of [x0, Math.round((x0 + x1) / 2), x1]) {
    root.append(svg("text", { x: px(x), y: height - 10, "text-anchor": "middle", class: "tick" },
                    String(Math.round(x))));
  }
  root.append(svg("text", { x: left - 6, y: height - 10, "text-anchor": "end",
                            class: "tick axis" }, "round"));
  for (const { name, values, id } of series) {
    if (!values.length) continue;
    const d = values.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    const attributes = { d: d.join(" "), class: `series ${name}`, "data-points": String(values.length),
                         "data-last-round": String(values[values.length - 1][0]) };
    if (id !== undefined) attributes["data-run"] = String(id);
    root.append(svg("path", attributes));
  }
}

// A waterfall of one prediction's contributions: `steps` is [{name, value}] (the bias first,
// then the features), each bar starting where the previous one ended; a last bar from 0 shows
// the total, the margin. One row per step, drawn at the element's own width.
export function drawWaterfall(root, steps, totalName) {
  root.replaceChildren();
  const width = Math.max(280, Math.round(root.getBoundingClientRect().width) || 640);
  const row = 24;
  const labelWidth = Math.min(150, Math.round(width * 0.32));
  const valueWidth = 64;
  const height = (steps.length + 1) * row + 26;
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  let end = 0;
  const bars = steps.map((step) => {
    const start = end;
    end += step.value;
    return { ...step, start, end };
  });
  const total = end;
  const edges = [0, ...bars.flatMap((b) => [b.start, b.end])];
  let [x0, x1] = [Math.min(...edges), Math.max(...edges)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  const left = labelWidth + 8;
  const right = width - valueWidth;
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (right - left);
  const chars = Math.max(6, Math.floor(labelWidth / 7));
  root.append(svg("line", { x1: px(0), x2: px(0), y1: 4, y2: height - 22, class: "grid" }));
  const put = (bar, i, kind) => {
    const y = 6 + i * row;
    const [a, b] = [px(Math.min(bar.start, bar.end)), px(Math.max(bar.start, bar.end))];
    const group = svg("g", { class: `step ${kind}`, "data-name": bar.name,
                             "data-value": String(bar.value), "data-start": String(bar.start),
                             "data-end": String(bar.end) });
    if (kind === "total") group.setAttribute("data-total", String(bar.end));
    const shown = bar.name.length > chars ? `${bar.name.slice(0, chars - 1)}…` : bar.name;
    group.append(svg("title", {}, `${bar.name}: ${signed(bar.value)}`));
    group.append(svg("text", { x: labelWidth, y: y + 15, "text-anchor": "end", class: "tick label" }, shown));
    group.append(svg("rect", { x: a, y: y + 3, width: Math.max(1, b - a), height: row - 8 }));
    group.append(svg("text", { x: right + 4, y: y + 15, class: "tick" },
                     kind === "total" ? label(bar.value) : signed(bar.value)));
    root.append(group);
  };
  bars.forEach((bar, i) => put(bar, i, i === 0 ? "bias" : bar.value >= 0 ? "up" : "down"));
  put({ name: totalName, value: total, start: 0, end: total }, bars.length, "total");
  for (const x of [x0, 0, x1]) {
    if (x !== 0 && Math.abs(px(x) - px(0)) < 40) continue;
    root.append(svg("text", { x: px(x), y: height - 6, "text-anchor": "middle", class: "tick" },
                    x === 0 ? "0" : label(x)));
  }
}

function signed(value) {
  return `${value >= 0 ? "+" : "−"}${label(Math.abs(value))}`;
}
