// actlab explore: the Playground view (controls, a training session's stream, its charts).
"use strict";

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
