// actlab explore: plain JavaScript over the server's JSON API; charts are plotly (served from the
// installed Python package). Every number drawn comes from the server (actlab's kernels and a
// PyTorch session); this file only builds controls, fetches and draws.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const SAT_COLOR = "#f6c85f", DEAD_COLOR = "#d9534f";
const CLASS_COLORS = ["#e8710a", "#1a73e8"];
const LRS = [0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3];
const BATCHES = [4, 8, 16, 32, 64, 128, 800];
const HISTORY = 3000;  // loss points kept per session (older ones are dropped)
const PLOT_CONFIG = { displayModeBar: false, responsive: true };  // the toolbar hid the titles
const FONT = { family: "system-ui, DejaVu Sans, sans-serif", size: 13 };

const state = {
  catalog: null, byName: {}, selected: [], params: {}, shade: null,
  lastCurves: null, lastSoftmax: null, curvesBusy: false, curvesDirty: false, view: "functions",
  pg: { id: null, es: null, data: null, frame: null, history: [], playing: false, layers: [],
        drawPending: false, frameTimes: [], restartTimer: null, generation: 0 },
};
window.explore = state;  // for the browser test and the curious

const $ = (id) => document.getElementById(id);

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "n/a";
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : (+v.toPrecision(digits)).toString();
}

// ------------------------------------------------------------------ parameter controls (shared)

// One control per parameter: a slider for numbers (range from the catalog, via the server), a
// select for choices. `values` is updated in place; `onChange` fires on every move.
function paramControls(act, values, onChange, idPrefix) {
  const box = el("div");
  for (const p of act.params) {
    if (!(p.name in values)) values[p.name] = p.default;
    const id = `${idPrefix}-${p.name}`;
    const row = el("div", { class: "row", title: `${p.description} (${p.allowed})` });
    row.append(el("label", { for: id, text: p.name }));
    if (p.choices.length) {
      const select = el("select", { id });
      for (const c of p.choices) select.append(el("option", { value: c, text: c }));
      select.value = values[p.name];
      select.addEventListener("change", () => { values[p.name] = select.value; onChange(); });
      row.append(select);
    } else if (p.slider) {
      const input = el("input", { id, type: "range", min: p.slider.min, max: p.slider.max, step: p.slider.step });
      input.value = values[p.name];
      const out = el("output", { text: fmt(+values[p.name]) });
      input.addEventListener("input", () => {
        values[p.name] = p.kind === "int" ? parseInt(input.value, 10) : parseFloat(input.value);
        out.textContent = fmt(values[p.name]);
        onChange();
      });
      row.append(input, out);
    }
    box.append(row);
  }
  return box;
}

function specString(act, values) {
  const parts = [act.name];
  for (const p of act.params) {
    const v = values[p.name];
    if (v !== undefined && v !== p.default) parts.push(`${p.name}=${typeof v === "number" ? +v.toPrecision(6) : v}`);
  }
  return parts.join(":");
}

// ------------------------------------------------------------------ the page's state in its URL

// Everything a view shows is kept in the URL's fragment (#view=..&fn=..&layer=..), rewritten on
// every change (replaceState: no history entry per slider move), so a copied link opens the same
// page. Values are only suggestions to the controls: the server checks them as any request.

// "name:k=v:k2=v2" with every parameter written (also those at their default: a link must not
// depend on which value a control starts from).
function fullSpec(name, values) {
  return [name, ...Object.entries(values || {}).map(([k, v]) => `${k}=${v}`)].join(":");
}

// {name, params} from "name:k=v", keeping only activations and parameters the catalog has.
function readSpec(text) {
  const [name, ...rest] = String(text).split(":");
  const act = state.byName[name];
  if (!act) return null;
  const params = {};
  for (const part of rest) {
    const [k, v] = part.split("=");
    const p = act.params.find((q) => q.name === k);
    if (!p || v === undefined) continue;
    if (p.kind === "int" || p.kind === "float") {
      if (Number.isFinite(Number(v))) params[k] = Number(v);
    } else if (p.choices.length ? p.choices.map(String).includes(v) : true) {
      params[k] = v;
    }
  }
  return { name, params };
}

function encodeState() {
  const q = new URLSearchParams();
  q.set("view", state.view);
  if (state.run) q.set("run", state.run);
  for (const name of state.selected) q.append("fn", fullSpec(name, state.params[name]));
  if (state.shade) q.set("shade", state.shade);
  q.set("x", `${$("xmin").value},${$("xmax").value}`);
  q.set("logits", $("logits").value.trim().split(/[\s,]+/).join(","));
  q.set("t", $("temperature").value);
  q.set("data", $("pg-dataset").value);
  q.set("noise", $("pg-noise").value);
  for (const layer of state.pg.layers) q.append("layer", fullSpec(layer.name, layer.params));
  for (const [key, id] of [["width", "pg-width"], ["lr", "pg-lr"], ["opt", "pg-optimizer"], ["batch", "pg-batch"]]) {
    q.set(key, $(id).value);
  }
  if (window.actlabExtras) window.actlabExtras.encode(q);
  return q.toString();
}

// At most one rewrite per 150 ms: a dragged slider fires ~60 input events a second, and Chrome
// ignores (and warns about) more than ~100 history changes in 10 s.
function writeURL() {
  clearTimeout(state.urlTimer);
  state.urlTimer = setTimeout(writeURLNow, 150);
}

function writeURLNow() {
  clearTimeout(state.urlTimer);
  if (!state.restored) return;  // not before the link's own state is applied
  history.replaceState(null, "", `#${encodeState()}`);
}

// A select set to `value`, adding the option when a link names one the list lacks (lr 0.05).
function setSelect(id, value) {
  const select = $(id);
  if (![...select.options].some((o) => o.value === String(value))) {
    select.append(el("option", { value, text: value }));
  }
  select.value = value;
}

// The state in location.hash, applied to the controls (before the views draw). A bare
// "#playground" (older links) names only the view.
function applyURL() {
  const text = location.hash.slice(1);
  if (!text.includes("=")) return ["playground", "runs"].includes(text) ? text : "functions";
  const q = new URLSearchParams(text);
  state.run = q.get("run");
  const fns = q.getAll("fn").map(readSpec).filter((f) => f && state.byName[f.name].elementwise);
  if (q.has("fn")) {
    state.selected = [...new Set(fns.map((f) => f.name))].slice(0, state.catalog.max_curves);
    for (const f of fns) state.params[f.name] = { ...state.byName[f.name].article_params, ...f.params };
    state.shade = state.selected.includes(q.get("shade")) ? q.get("shade") : state.selected[0] || null;
  }
  const x = (q.get("x") || "").split(",").map(Number);
  if (x.length === 2 && x.every(Number.isFinite)) { $("xmin").value = x[0]; $("xmax").value = x[1]; }
  if (q.has("logits")) $("logits").value = q.get("logits").split(",").join(" ");
  if (Number.isFinite(parseFloat(q.get("t")))) $("temperature").value = q.get("t");
  if (state.catalog.datasets.includes(q.get("data"))) $("pg-dataset").value = q.get("data");
  if (Number.isFinite(parseFloat(q.get("noise")))) $("pg-noise").value = q.get("noise");
  const layers = q.getAll("layer").map(readSpec).filter((f) => f && state.byName[f.name].elementwise);
  if (layers.length) {
    state.pg.layers = layers.slice(0, state.catalog.limits.layers[1]);
    $("pg-layers").value = state.pg.layers.length;
  }
  if (Number.isFinite(parseInt(q.get("width"), 10))) $("pg-width").value = q.get("width");
  if (Number.isFinite(parseFloat(q.get("lr")))) setSelect("pg-lr", q.get("lr"));
  if (state.catalog.optimizers.includes(q.get("opt"))) $("pg-optimizer").value = q.get("opt");
  if (Number.isFinite(parseInt(q.get("batch"), 10))) setSelect("pg-batch", q.get("batch"));
  if (window.actlabExtras) window.actlabExtras.apply(q);
  return ["functions", "playground", "runs"].includes(q.get("view")) ? q.get("view") : "functions";
}

// "copy link": the URL (already up to date) to the clipboard, and shown for copying by hand
// where the clipboard is not available (plain http on another host, a headless browser).
async function copyText(text, button, label, what) {
  $("copy-box").value = text;
  $("copy-what").textContent = what;
  $("copy-panel").hidden = false;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "copied ✓";
  } catch (err) {
    $("copy-box").select();
    button.textContent = "select + Ctrl-C";
  }
  setTimeout(() => { button.textContent = label; }, 1500);
}

// ------------------------------------------------------------------ Functions view

function buildFunctions() {
  const list = $("act-list");
  for (const act of state.catalog.activations.filter((a) => a.elementwise)) {
    const box = el("input", { type: "checkbox", id: `pick-${act.name}`, value: act.name });
    box.checked = state.selected.includes(act.name);
    box.addEventListener("change", () => {
      if (box.checked) {
        if (state.selected.length >= state.catalog.max_curves) {
          box.checked = false;
          $("functions-error").textContent = `at most ${state.catalog.max_curves} at once: untick one first`;
          return;
        }
        state.selected.push(act.name);
      } else {
        state.selected = state.selected.filter((n) => n !== act.name);
        if (state.shade === act.name) state.shade = state.selected[0] || null;
      }
      buildCards();
      requestCurves();
    });
    list.append(el("label", { title: act.formula }, [box, ` ${act.display_name}`]));
  }
  for (const id of ["xmin", "xmax"]) $(id).addEventListener("change", requestCurves);
  buildCards();
  requestCurves();
}

function buildCards() {
  const cards = $("cards");
  cards.replaceChildren();
  state.selected.forEach((name, i) => {
    const act = state.byName[name];
    const values = state.params[name] || (state.params[name] = { ...act.article_params });
    const radio = el("input", { type: "radio", name: "shade", id: `shade-${name}` });
    radio.checked = state.shade === name;
    radio.addEventListener("change", () => { state.shade = name; drawCurves(); writeURL(); });
    const card = el("div", { class: "card", style: `--c: ${COLORS[i % COLORS.length]}` }, [
      el("h3", {}, [act.display_name, el("label", {}, [radio, " shade"])]),
      el("div", { class: "formula", text: act.formula }),
      el("div", { class: "formula", text: act.derivative_formula }),
      paramControls(act, values, requestCurves, `param-${name}`),
    ]);
    cards.append(card);
  });
}

// Latest-wins fetching: while a request is in flight, further moves only mark the curves dirty.
async function requestCurves() {
  writeURL();
  if (state.curvesBusy) { state.curvesDirty = true; return; }
  if (!state.selected.length) { state.lastCurves = []; drawCurves(); return; }
  const xmin = parseFloat($("xmin").value), xmax = parseFloat($("xmax").value);
  if (!(xmin < xmax) || Math.abs(xmin) > 1000 || Math.abs(xmax) > 1000) {
    $("functions-error").textContent = "the window needs -1000 ≤ x from < to ≤ 1000";
    return;
  }
  $("functions-error").textContent = "";
  const q = new URLSearchParams({ xmin, xmax, n: 801 });
  for (const name of state.selected) q.append("spec", specString(state.byName[name], state.params[name]));
  state.curvesBusy = true;
  try {
    const body = await getJSON(`/api/curves?${q}`);
    state.lastCurves = body.curves;
    drawCurves();
  } finally {
    state.curvesBusy = false;
    if (state.curvesDirty) { state.curvesDirty = false; requestCurves(); }
  }
}

function zoneShapes(curve) {
  const shapes = [];
  if (!curve) return shapes;
  for (const [a, b] of curve.regions.saturation) {
    shapes.push({ type: "rect", xref: "x", yref: "paper", x0: a, x1: b, y0: 0, y1: 1, fillcolor: SAT_COLOR,
                  opacity: 0.35, line: { width: 0 }, layer: "below" });
  }
  for (const [a, b] of curve.regions.dead) {
    shapes.push({ type: "rect", xref: "x", yref: "paper", x0: a, x1: b, y0: 0, y1: 1, fillcolor: DEAD_COLOR,
                  opacity: 0.18, line: { width: 0 }, layer: "below" });
  }
  return shapes;
}

function zoneLegend() {
  const dummy = (name, color, opacity) => ({ x: [null], y: [null], type: "scatter", mode: "markers", name,
    marker: { symbol: "square", size: 14, color, opacity }, hoverinfo: "skip" });
  return [dummy(`saturation: |f′| < ${state.catalog.saturation_threshold}`, SAT_COLOR, 0.6),
          dummy("dead zone: f′ = 0", DEAD_COLOR, 0.4)];
}

function drawCurves() {
  const curves = state.lastCurves || [];
  const shaded = curves[state.selected.indexOf(state.shade)];
  const xmin = parseFloat($("xmin").value), xmax = parseFloat($("xmax").value);
  const fTraces = curves.map((c, i) => ({
    x: c.f.x, y: c.f.y, customdata: c.f.other, name: c.label, type: "scatter", mode: "lines",
    line: { color: COLORS[i % COLORS.length], width: 2.5 },
    hovertemplate: `${c.label}<br>x = %{x:.3f}<br>f(x) = %{y:.4g}<br>f′(x) = %{customdata:.4g}<extra></extra>`,
  }));
  const dfTraces = curves.map((c, i) => ({
    x: c.df.x, y: c.df.y, customdata: c.df.other, name: c.label, type: "scatter", mode: "lines",
    line: { color: COLORS[i % COLORS.length], width: 2.5, dash: "dash" },
    hovertemplate: `${c.label}<br>x = %{x:.3f}<br>f(x) = %{customdata:.4g}<br>f′(x) = %{y:.4g}<extra></extra>`,
  }));
  const title = shaded ? ` — zones shaded for ${shaded.label}` : "";
  const base = (t, ytitle) => ({
    title: { text: t, font: { size: 14 } }, font: FONT, margin: { l: 60, r: 20, t: 36, b: 44 },
    xaxis: { title: { text: "x" }, range: [xmin, xmax], zeroline: true },
    yaxis: { title: { text: ytitle }, zeroline: true }, hovermode: "closest",
    legend: { orientation: "v", x: 0.01, xanchor: "left", y: 0.99, bgcolor: "rgba(255,255,255,0.85)" },
    shapes: zoneShapes(shaded),
  });
  Plotly.react("plot-f", [...fTraces, ...zoneLegend()], base(`activation f(x)${title}`, "f(x)"), PLOT_CONFIG);
  const dfLayout = base(`derivative f′(x) (dotted: ${state.catalog.saturation_threshold}, the saturation threshold)`, "f′(x)");
  dfLayout.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: state.catalog.saturation_threshold,
                         y1: state.catalog.saturation_threshold, line: { dash: "dot", color: "#555", width: 1 } });
  Plotly.react("plot-df", dfTraces, dfLayout, PLOT_CONFIG);
}

// Softmax panel: logits typed by the user, temperature on a log slider (0.01 .. 100).
async function requestSoftmax() {
  writeURL();
  const text = $("logits").value.trim();
  const numbers = text.split(/[\s,]+/).filter(Boolean).map(Number);
  const t = Math.pow(10, parseFloat($("temperature").value));
  $("temperature-value").textContent = fmt(t);
  if (!numbers.length || numbers.length > 64 || numbers.some((v) => !Number.isFinite(v) || Math.abs(v) > 1e6)) {
    $("softmax-error").textContent = "logits: 1 to 64 numbers separated by spaces or commas, e.g. 1 2 3 4 1 2 3";
    return;
  }
  $("softmax-error").textContent = "";
  const q = new URLSearchParams({ logits: numbers.join(","), temperature: t.toPrecision(6) });
  const body = await getJSON(`/api/softmax?${q}`);
  state.lastSoftmax = body;
  const labels = body.logits.map((z, i) => `${i + 1}: z=${fmt(z)}`);
  Plotly.react("plot-softmax", [{
    x: labels, y: body.probabilities, type: "bar", marker: { color: COLORS[0] },
    text: body.probabilities.map((p) => p.toFixed(3)), textposition: "outside",
    hovertemplate: "%{x}<br>p = %{y:.5f}<extra></extra>",
  }], {
    title: { text: `softmax(z / T) with T = ${fmt(t)} (sum = ${body.sum.toFixed(6)})`, font: { size: 14 } },
    font: FONT, margin: { l: 60, r: 20, t: 36, b: 48 },
    xaxis: { title: { text: "component i (logit z)" }, type: "category" },
    yaxis: { title: { text: "probability" }, range: [0, 1.1] },
  }, PLOT_CONFIG);
}

// ------------------------------------------------------------------ Playground view

function elementwiseOptions(select, value) {
  for (const act of state.catalog.activations.filter((a) => a.elementwise)) {
    select.append(el("option", { value: act.name, text: act.display_name }));
  }
  select.value = value;
}

function buildPlayground() {
  const d = state.catalog.defaults;
  const ds = $("pg-dataset");
  for (const name of state.catalog.datasets) ds.append(el("option", { value: name, text: name }));
  ds.value = d.dataset;
  for (const v of LRS) $("pg-lr").append(el("option", { value: v, text: v }));
  $("pg-lr").value = d.lr;
  for (const v of state.catalog.optimizers) $("pg-optimizer").append(el("option", { value: v, text: v === "sgd" ? "SGD" : "Adam" }));
  $("pg-optimizer").value = d.optimizer;
  for (const v of BATCHES) $("pg-batch").append(el("option", { value: v, text: v }));
  $("pg-batch").value = d.batch_size;
  $("pg-noise").value = d.noise;
  $("pg-layers").max = state.catalog.limits.layers[1];
  $("pg-width").max = state.catalog.limits.width[1];
  $("pg-layers").value = d.layers.length;
  $("pg-width").value = d.width;
  state.pg.layers = d.layers.map((spec) => ({ name: spec.split(":")[0], params: {} }));
  for (const id of ["pg-dataset", "pg-lr", "pg-optimizer", "pg-batch"]) $(id).addEventListener("change", restartSoon);
  for (const id of ["pg-noise", "pg-width"]) $(id).addEventListener("input", () => { showValues(); restartSoon(); });
  $("pg-layers").addEventListener("input", () => { syncLayers(); showValues(); restartSoon(); });
  $("pg-play").addEventListener("click", togglePlay);
  $("pg-step").addEventListener("click", () => control("step"));
  $("pg-reset").addEventListener("click", restart);
  $("preset-sigmoid").addEventListener("click", () => preset("sigmoid"));
  $("preset-relu").addEventListener("click", () => preset("relu"));
  showValues();
  buildLayers();
  if (window.actlabExtras) window.actlabExtras.build(state);  // playground-extras.js
}

function showValues() {
  $("pg-noise-value").textContent = $("pg-noise").value;
  $("pg-layers-value").textContent = $("pg-layers").value;
  $("pg-width-value").textContent = $("pg-width").value;
}

function syncLayers() {
  const n = parseInt($("pg-layers").value, 10);
  const layers = state.pg.layers;
  while (layers.length < n) {
    const last = layers[layers.length - 1];
    layers.push({ name: last.name, params: { ...last.params } });
  }
  layers.length = n;
  buildLayers();
}

function buildLayers() {
  const list = $("pg-layer-list");
  list.replaceChildren();
  state.pg.layers.forEach((layer, i) => {
    const select = el("select", { id: `pg-act-${i}` });
    elementwiseOptions(select, layer.name);
    select.addEventListener("change", () => {
      layer.name = select.value; layer.params = {};
      buildLayers(); restartSoon();
    });
    const all = el("button", { title: "use this activation in every layer", text: "all" });
    all.addEventListener("click", () => {
      for (const other of state.pg.layers) { other.name = layer.name; other.params = { ...layer.params }; }
      buildLayers(); restartSoon();
    });
    const row = el("div", { class: "row" }, [el("label", { for: `pg-act-${i}`, text: `layer ${i + 1}` }), select, all]);
    list.append(el("div", { class: "layer" }, [row, paramControls(state.byName[layer.name], layer.params, restartSoon, `pg-param-${i}`)]));
  });
}

function preset(name) {
  $("pg-dataset").value = "spirals";
  $("pg-noise").value = 0.1;
  $("pg-layers").value = 8;
  $("pg-width").value = 16;
  $("pg-lr").value = 0.03;
  $("pg-optimizer").value = "sgd";
  $("pg-batch").value = 16;
  state.pg.layers = Array.from({ length: 8 }, () => ({ name, params: {} }));
  buildLayers(); showValues();
  state.pg.playing = true;
  restart();
}

function playgroundConfig() {
  return {
    dataset: $("pg-dataset").value,
    noise: parseFloat($("pg-noise").value),
    layers: state.pg.layers.map((l) => specString(state.byName[l.name], l.params)),
    width: parseInt($("pg-width").value, 10),
    lr: parseFloat($("pg-lr").value),
    optimizer: $("pg-optimizer").value,
    batch_size: parseInt($("pg-batch").value, 10),
    ...(window.actlabExtras ? window.actlabExtras.config() : {}),
  };
}

function restartSoon() {
  clearTimeout(state.pg.restartTimer);
  state.pg.restartTimer = setTimeout(restart, 200);
}

function closeStream() {
  if (state.pg.es) { state.pg.es.close(); state.pg.es = null; }  // the server ends the session
  state.pg.id = null;
}

// A new session for the current settings: closing the old stream stops its training on the server.
async function restart() {
  writeURL();
  const generation = ++state.pg.generation;
  closeStream();
  $("pg-error").textContent = "";
  let body;
  try {
    body = await getJSON("/api/sessions", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify(playgroundConfig()) });
  } catch (err) {
    $("pg-error").textContent = err.message;
    return;
  }
  if (generation !== state.pg.generation) {  // settings changed meanwhile: this one is stale
    fetch(`/api/sessions/${body.id}`, { method: "DELETE" });
    return;
  }
  Object.assign(state.pg, { id: body.id, data: body.data, frame: null, history: [], frameTimes: [] });
  const es = new EventSource(`/api/sessions/${body.id}/stream`);
  state.pg.es = es;
  es.addEventListener("frame", (ev) => onFrame(JSON.parse(ev.data)));
  es.addEventListener("end", () => { if (state.pg.es === es) closeStream(); });
  // "error": the server's event (data: the one-line reason a layer failed) or a lost connection
  es.addEventListener("error", (ev) => {
    if (state.pg.es !== es) return;
    const reason = ev.data ? JSON.parse(ev.data).error : "the training stream closed; press reset";
    closeStream();
    state.pg.playing = false;
    updatePlayButton();
    $("pg-error").textContent = reason;
  });
  if (state.pg.playing) control("play");
  updatePlayButton();
}

async function control(action) {
  if (!state.pg.id) return;
  try {
    await getJSON(`/api/sessions/${state.pg.id}/control`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                            body: JSON.stringify({ action }) });
  } catch (err) {
    $("pg-error").textContent = err.message;
  }
}

function togglePlay() {
  state.pg.playing = !state.pg.playing;
  if (!state.pg.id) restart(); else control(state.pg.playing ? "play" : "pause");
  updatePlayButton();
}

function updatePlayButton() {
  $("pg-play").textContent = state.pg.playing ? "❚❚ pause" : "▶ play";
}

function onFrame(frame) {
  const pg = state.pg;
  pg.frame = frame;
  if (frame.epoch > 0 && (!pg.history.length || frame.epoch > pg.history[pg.history.length - 1].epoch)) {
    pg.history.push({ epoch: frame.epoch, train: frame.train_loss, val: frame.val_loss });
    if (pg.history.length > HISTORY) pg.history.shift();
  } else if (frame.epoch === 0) {
    pg.history = [];
  }
  const now = performance.now();
  pg.frameTimes.push(now);
  while (pg.frameTimes.length && now - pg.frameTimes[0] > 2000) pg.frameTimes.shift();
  if (frame.diverged) {
    pg.playing = false; updatePlayButton();
    $("pg-error").textContent = "the loss became NaN/inf (diverged): lower the learning rate and press reset";
  }
  if (!pg.drawPending) { pg.drawPending = true; requestAnimationFrame(drawPlayground); }
}

function drawPlayground() {
  const pg = state.pg;
  pg.drawPending = false;
  const f = pg.frame, data = pg.data;
  if (!f || !data) return;
  const fps = pg.frameTimes.length > 1 ? (pg.frameTimes.length - 1) / ((pg.frameTimes[pg.frameTimes.length - 1] - pg.frameTimes[0]) / 1000) : 0;
  $("pg-status").textContent = `epoch ${f.epoch} · train loss ${fmt(f.train_loss, 4)} · val loss ${fmt(f.val_loss, 4)}`
    + ` · val accuracy ${(100 * f.val_accuracy).toFixed(1)}% · ${pg.playing ? fps.toFixed(1) : "0"} frames/s`;
  const points = (part, cls, name, symbol) => {
    const xs = [], ys = [];
    data[part].x.forEach((p, i) => { if (data[part].y[i] === cls) { xs.push(p[0]); ys.push(p[1]); } });
    return { x: xs, y: ys, type: "scatter", mode: "markers", name, hoverinfo: "skip",
             marker: { color: CLASS_COLORS[cls], size: part === "train" ? 5 : 7, symbol,
                       line: { color: part === "train" ? "white" : "black", width: part === "train" ? 0.6 : 1 } } };
  };
  const drawn = window.actlabExtras ? window.actlabExtras.draw(f, data) : false;  // multiclass, digits
  if (!drawn) Plotly.react("plot-surface", [
    { x: data.grid_x, y: data.grid_y, z: f.surface, type: "heatmap", zmin: 0, zmax: 1, zsmooth: "best",
      colorscale: [[0, "#f5a35c"], [0.5, "#f7f7f7"], [1, "#6aa8f0"]],
      colorbar: { title: { text: "P(class 1)", side: "right" }, thickness: 12 },
      hovertemplate: "x₁ = %{x:.2f}<br>x₂ = %{y:.2f}<br>P(class 1) = %{z:.3f}<extra></extra>" },
    points("train", 0, "train, class 0", "circle"), points("train", 1, "train, class 1", "circle"),
    points("val", 0, "validation, class 0", "diamond"), points("val", 1, "validation, class 1", "diamond"),
  ], {
    title: { text: `decision surface after ${f.epoch} epochs (${data.name || $("pg-dataset").value})`, font: { size: 14 } },
    font: FONT, margin: { l: 56, r: 10, t: 36, b: 90 },
    xaxis: { title: { text: "x₁ (standardised)" }, range: [data.grid_x[0], data.grid_x[data.grid_x.length - 1]] },
    yaxis: { title: { text: "x₂ (standardised)" }, range: [data.grid_y[0], data.grid_y[data.grid_y.length - 1]] },
    legend: { orientation: "h", x: 0, y: -0.2 }, uirevision: "surface",
  }, PLOT_CONFIG);
  const epochs = pg.history.map((h) => h.epoch);
  // Log axis reaching at least 0.1 .. 1: a stalled loss (0.69 for ever) then shows as the flat
  // line it is instead of being stretched over the whole height.
  const losses = pg.history.flatMap((h) => [h.train, h.val]).filter((v) => v > 0);
  const lossRange = losses.length ? [Math.log10(Math.min(0.1, 0.8 * Math.min(...losses))),
                                     Math.log10(Math.max(1, 1.2 * Math.max(...losses)))] : [-1, 0];
  Plotly.react("plot-loss", [
    { x: epochs, y: pg.history.map((h) => h.train), name: "train", type: "scatter", mode: "lines", line: { color: COLORS[0] },
      hovertemplate: "train loss %{y:.4g}<extra></extra>" },
    { x: epochs, y: pg.history.map((h) => h.val), name: "validation", type: "scatter", mode: "lines", line: { color: COLORS[1] },
      hovertemplate: "validation loss %{y:.4g}<extra></extra>" },
  ], {
    hovermode: "x unified",
    title: { text: "loss (cross-entropy)", font: { size: 14 } }, font: FONT, margin: { l: 60, r: 10, t: 36, b: 40 },
    xaxis: { title: { text: "epoch" }, rangemode: "tozero" }, yaxis: { title: { text: "loss (log scale)" }, type: "log", dtick: "D2", tickformat: ".2~g", range: lossRange },
    legend: { x: 1, xanchor: "right", y: 1 },
  }, PLOT_CONFIG);
  const layerNames = f.dead.map((_, i) => `${i + 1}: ${state.pg.layers[i] ? state.pg.layers[i].name : ""}`);
  // Zero-height bars still carry their value as text, so "0%" and "not measured" stay visible.
  const bars = (arr, name, color) => ({
    x: layerNames, y: arr.map((v) => (v === null ? 0 : 100 * v)), name, type: "bar", marker: { color },
    text: arr.map((v) => (v === null ? "n/a" : `${(100 * v).toFixed(0)}%`)), textposition: "outside", cliponaxis: false,
    hovertemplate: `${name}<br>layer %{x}: %{text}<extra></extra>`,
  });
  Plotly.react("plot-health", [
    bars(f.dead, "dead (f′ = 0 on every row)", DEAD_COLOR),
    bars(f.saturated, "saturated (|f′| < 0.01 on most rows)", SAT_COLOR),
  ], {
    title: { text: "dead and saturated units per hidden layer (validation rows)", font: { size: 13 } },
    font: FONT, margin: { l: 60, r: 10, t: 36, b: 40 }, barmode: "group",
    xaxis: { title: { text: "hidden layer: activation" }, type: "category" },
    yaxis: { title: { text: "% of units" }, range: [0, 105] }, legend: { x: 1, xanchor: "right", y: 1 },
  }, PLOT_CONFIG);
  const grads = f.grad_norm;
  Plotly.react("plot-grad", [{
    x: grads.map((_, i) => (i === grads.length - 1 ? "output" : `${i + 1}`)), y: grads.map((v) => (v === 0 ? null : v)),
    type: "bar", marker: { color: COLORS[2] }, text: grads.map((v) => fmt(v)), textposition: "outside",
    hovertemplate: "weight layer %{x}<br>‖∂loss/∂W‖ = %{y:.3g}<extra></extra>",
  }], {
    title: { text: "weight-gradient norm per layer (first ≪ last: vanishing gradients)", font: { size: 13 } },
    font: FONT, margin: { l: 60, r: 10, t: 36, b: 40 },
    xaxis: { title: { text: "weight layer (input → output)" }, type: "category" },
    yaxis: { title: { text: "‖∂loss/∂W‖ (log scale)" }, type: "log", exponentformat: "e", dtick: 1 },
  }, PLOT_CONFIG);
}

// ------------------------------------------------------------------ Runs view

function showReport(run) {
  $("run-report").src = `/${run.report}`;
  $("run-report").classList.add("open");
}

async function loadRuns() {
  const body = await getJSON("/api/runs");
  $("runs-folder").textContent = body.folder;
  const tbody = document.querySelector("#runs-table tbody");
  tbody.replaceChildren();
  $("runs-empty").textContent = body.runs.length ? "" :
    "No runs here yet. Make one with: actlab compare --dataset moons --epochs 5 --out actlab-runs/moons";
  for (const run of body.runs) {
    const cell = el("td");
    if (run.report) {
      const view = el("a", { href: "#", text: "show" });
      view.addEventListener("click", (ev) => { ev.preventDefault(); showReport(run); state.run = run.name; writeURL(); });
      cell.append(view, " · ", el("a", { href: `/${run.report}`, target: "_blank", rel: "noopener", text: "new tab" }));
    } else {
      cell.textContent = run.error || "no report yet";
    }
    if (run.report && run.name === state.run) showReport(run);  // the report a link names
    const when = new Date(run.modified * 1000).toLocaleString();
    tbody.append(el("tr", {}, [
      el("td", { text: run.name }), el("td", { text: run.dataset || "" }),
      el("td", { text: (run.activations || []).join(", ") }), el("td", { text: run.seeds ?? "" }),
      el("td", { text: run.epochs ?? "" }),
      el("td", { text: run.models === undefined ? "" : `${run.finished} / ${run.models}` }),
      el("td", { text: when }), cell,
    ]));
  }
}

// ------------------------------------------------------------------ start

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.classList.toggle("active", view.id === `view-${name}`);
  if (name === "playground" && !state.pg.id) restart();
  if (name === "runs") loadRuns();
  window.dispatchEvent(new Event("resize"));  // plotly sizes hidden plots at 0: redo on show
  state.view = name;
  writeURL();
}

async function main() {
  state.catalog = await getJSON("/api/catalog");
  for (const act of state.catalog.activations) state.byName[act.name] = act;
  $("sat-threshold").textContent = state.catalog.saturation_threshold;
  state.selected = ["sigmoid", "relu", "leaky_relu"];
  state.shade = "sigmoid";
  $("logits").value = state.catalog.softmax_default.join(" ");
  buildPlayground();  // the controls with the defaults, then the link's state over them
  const initial = applyURL();
  buildLayers(); showValues();
  state.restored = true;
  buildFunctions();
  $("logits").addEventListener("input", requestSoftmax);
  $("temperature").addEventListener("input", requestSoftmax);
  requestSoftmax();
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  if (initial !== "functions") showView(initial); else writeURL();
  $("copy-link").addEventListener("click", (ev) => { writeURLNow(); copyText(location.href, ev.target, "copy link", "link to this page"); });
  $("copy-close").addEventListener("click", () => { $("copy-panel").hidden = true; });
  $("pg-export-py").addEventListener("click", (ev) => exportAs("python", ev.target));
  $("pg-export-cmd").addEventListener("click", (ev) => exportAs("command", ev.target));
}

// "copy as PyTorch" / "copy as actlab command": the server writes the text from these settings.
async function exportAs(format, button) {
  const label = button.textContent;
  try {
    const response = await fetch(`/api/export?format=${format}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(playgroundConfig()) });
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const text = await response.text();
    state.pg.exported = text;
    await copyText(text, button, label, format === "python" ? "PyTorch script (run: python script.py --epochs 100)" : "actlab compare command");
  } catch (err) {
    $("pg-error").textContent = err.message;
  }
}

// A link pasted into the address bar of an open page changes only the fragment: load it afresh.
window.addEventListener("hashchange", () => location.reload());

// Leaving the page closes its stream, which ends the training session on the server (Chrome may
// otherwise keep the connection of a page it holds in its back/forward cache).
window.addEventListener("pagehide", closeStream);
window.addEventListener("pageshow", (ev) => {
  if (ev.persisted && document.getElementById("view-playground").classList.contains("active")) restart();
});

main();
