// actlab explore: the Twins view — 2 to 4 Playground networks trained in lockstep.
"use strict";

// Each twin is an ordinary Playground session (POST /api/sessions) with the same data, seed,
// network size and bias, and its own activation (in every hidden layer), learning rate and
// optimiser. Lockstep is kept here: a twin is sent "step" only while it is at most TWIN_LEAD
// epochs ahead of the slowest, and the charts show epoch E only once every twin has sent its
// frame for E, so what is drawn side by side is always the same epoch.
const MAX_TWINS = 4, MIN_TWINS = 2;
const TWIN_LEAD = 2;  // epochs a twin may run ahead (hides a request's round trip)
const TWIN_NAMES = ["A", "B", "C", "D"];
const TWIN_PRESETS = {
  // the article's vanishing gradients: deep sigmoid stalls at 0.693, deep ReLU learns
  "sigmoid-relu": { shared: { data: "spirals", noise: 0.1, layers: 8, width: 16, batch: 16, bias: 0 },
                    twins: [{ name: "sigmoid" }, { name: "relu" }] },
  // dying units: hidden biases start at -1, most ReLU units are off on every row and never
  // recover; Leaky ReLU's slope keeps a gradient through them
  "relu-leaky": { shared: { data: "moons", noise: 0.1, layers: 4, width: 8, batch: 16, bias: -1 },
                  twins: [{ name: "relu" }, { name: "leaky_relu", params: { negative_slope: 0.1 } }] },
};

Object.assign(state, {
  tw: { twins: [], runs: [], playing: false, generation: 0, shown: -1, drawPending: false,
        shownLog: [], startedAt: 0, framesShown: 0 },
});

// ------------------------------------------------------------------ controls

function buildTwins() {
  const d = state.catalog.defaults;
  const ds = $("tw-dataset");
  for (const name of state.catalog.datasets) ds.append(el("option", { value: name, text: name }));
  ds.value = d.dataset;
  for (const v of BATCHES) $("tw-batch").append(el("option", { value: v, text: v }));
  $("tw-batch").value = d.batch_size;
  $("tw-noise").value = d.noise;
  $("tw-layers").max = state.catalog.limits.layers[1];
  $("tw-width").max = state.catalog.limits.width[1];
  $("tw-layers").value = d.layers.length;
  $("tw-width").value = d.width;
  $("tw-bias").value = 0;
  const inits = { auto: "each its own", he: "He", glorot: "Glorot", lecun: "LeCun", torch: "PyTorch default" };
  for (const v of state.catalog.choices.init) $("tw-init").append(el("option", { value: v, text: inits[v] || v }));
  $("tw-init").addEventListener("change", () => { state.tw.initChosen = true; twinsRestartSoon(); });
  const base = { lr: d.lr, optimizer: d.optimizer, params: {} };
  state.tw.twins = [{ ...base, name: "relu" }, { ...base, name: "tanh", params: {} }];
  twinsDefaultInit();
  for (const id of ["tw-dataset", "tw-batch"]) $(id).addEventListener("change", twinsRestartSoon);
  for (const id of ["tw-noise", "tw-layers", "tw-width", "tw-bias"]) {
    $(id).addEventListener("input", () => { showTwinValues(); twinsRestartSoon(); });
  }
  $("tw-add").addEventListener("click", () => {
    if (state.tw.twins.length >= MAX_TWINS) return;
    const last = state.tw.twins[state.tw.twins.length - 1];
    state.tw.twins.push({ ...last, params: { ...last.params } });
    buildTwinCards(); twinsRestartSoon();
  });
  $("tw-play").addEventListener("click", twinsTogglePlay);
  $("tw-step").addEventListener("click", () => twinsStep(1));
  $("tw-reset").addEventListener("click", twinsRestart);
  for (const [key, button] of [["sigmoid-relu", "tw-preset-depth"], ["relu-leaky", "tw-preset-dying"]]) {
    $(button).addEventListener("click", () => twinsPreset(key));
  }
  showTwinValues();
}

// The shared scheme, until the person picks one: twin A's activation's (He when it has none).
function twinsDefaultInit() {
  if (state.tw.initChosen) return;
  const a = state.tw.twins[0], act = a && state.byName[a.name];
  $("tw-init").value = (act && act.init) || "he";
}

function showTwinValues() {
  for (const id of ["tw-noise", "tw-layers", "tw-width", "tw-bias"]) $(`${id}-value`).textContent = $(id).value;
}

// One card per twin: its activation (every hidden layer), parameters, learning rate, optimiser.
function buildTwinCards() {
  const box = $("tw-cards");
  box.replaceChildren();
  state.tw.twins.forEach((twin, i) => {
    const select = el("select", { id: `tw-act-${i}` });
    elementwiseOptions(select, twin.name);
    select.addEventListener("change", () => {
      twin.name = select.value; twin.params = {}; twinsDefaultInit(); buildTwinCards(); twinsRestartSoon();
    });
    const lr = el("select", { id: `tw-lr-${i}` });
    for (const v of LRS) lr.append(el("option", { value: v, text: v }));
    if (!LRS.includes(+twin.lr)) lr.append(el("option", { value: twin.lr, text: twin.lr }));
    lr.value = twin.lr;
    lr.addEventListener("change", () => { twin.lr = parseFloat(lr.value); twinsRestartSoon(); });
    const opt = el("select", { id: `tw-opt-${i}` });
    for (const v of state.catalog.optimizers) opt.append(el("option", { value: v, text: v === "sgd" ? "SGD" : "Adam" }));
    opt.value = twin.optimizer;
    opt.addEventListener("change", () => { twin.optimizer = opt.value; twinsRestartSoon(); });
    const remove = el("button", { title: "remove this twin", text: "×", id: `tw-remove-${i}` });
    remove.disabled = state.tw.twins.length <= MIN_TWINS;
    remove.addEventListener("click", () => { state.tw.twins.splice(i, 1); buildTwinCards(); twinsRestartSoon(); });
    box.append(el("div", { class: "card twin", style: `--c: ${COLORS[i]}` }, [
      el("h3", {}, [`twin ${TWIN_NAMES[i]}`, remove]),
      el("div", { class: "row" }, [el("label", { for: `tw-act-${i}`, text: "activation" }), select]),
      paramControls(state.byName[twin.name], twin.params, twinsRestartSoon, `tw-param-${i}`),
      el("div", { class: "row" }, [el("label", { for: `tw-lr-${i}`, text: "learning rate" }), lr]),
      el("div", { class: "row" }, [el("label", { for: `tw-opt-${i}`, text: "optimizer" }), opt]),
    ]));
  });
  $("tw-add").disabled = state.tw.twins.length >= MAX_TWINS;
  $("tw-differ").textContent = twinsDiffer();
  twinsStudyNote();
}

function twinsPreset(key) {
  const p = TWIN_PRESETS[key], s = p.shared;
  $("tw-dataset").value = s.data; $("tw-noise").value = s.noise; $("tw-layers").value = s.layers;
  $("tw-width").value = s.width; $("tw-batch").value = s.batch; $("tw-bias").value = s.bias;
  state.tw.twins = p.twins.map((t) => ({ name: t.name, params: { ...(t.params || {}) }, lr: 0.03, optimizer: "sgd" }));
  state.tw.initChosen = false; twinsDefaultInit();
  showTwinValues(); buildTwinCards();
  state.tw.playing = true;
  twinsRestart();
}

// The settings of every twin, as POST /api/sessions takes them: all equal but what a card sets.
function twinConfigs() {
  const shared = {
    dataset: $("tw-dataset").value, noise: parseFloat($("tw-noise").value),
    width: parseInt($("tw-width").value, 10), batch_size: parseInt($("tw-batch").value, 10),
    bias: parseFloat($("tw-bias").value), init: $("tw-init").value, seed: 0,
  };
  const depth = parseInt($("tw-layers").value, 10);
  return state.tw.twins.map((t) => ({
    ...shared, layers: Array(depth).fill(specString(state.byName[t.name], t.params)), lr: +t.lr, optimizer: t.optimizer,
  }));
}

const TWIN_KEYS = { layers: "activation", lr: "learning rate", optimizer: "optimizer" };

// The settings (of TWIN_KEYS) in which the configs differ.
function differKeys(configs) {
  return Object.keys(TWIN_KEYS).filter((k) => new Set(configs.map((c) => JSON.stringify(c[k]))).size > 1);
}

// "the twins differ only in: activation, learning rate" (what the page compares, in words).
function twinsDiffer() {
  const differ = differKeys(twinConfigs()), keys = TWIN_KEYS;
  return differ.length ? `The twins differ only in: ${differ.map((k) => keys[k]).join(", ")}.`
    : "The twins are identical: change a card's activation, learning rate or optimizer.";
}

// "Test this properly" beside the twins (study.js's box, mounted here by showView): the twins'
// activations (each twin's layer spec) compared over many seeds, with twin A's other settings.
function twinsStudySource() {
  const configs = twinConfigs();
  return { activations: [...new Set(configs.map((c) => c.layers[0]))], config: configs[0] };
}

// What a run of the twins tests, when it is not exactly what they show.
function twinsStudyNote() {
  const configs = twinConfigs(), notes = [];
  const others = differKeys(configs).filter((k) => k !== "layers").map((k) => TWIN_KEYS[k]);
  if (others.length) {
    notes.push(`The twins also differ in ${others.join(" and ")}: "test this properly" compares only their activations, ` +
               `and the settings they share in the run are twin A's (learning rate ${configs[0].lr}, ${configs[0].optimizer}).`);
  }
  if (configs[0].bias) {
    notes.push(`A compare run starts every bias at 0, so it cannot test a starting bias of ${configs[0].bias}: set it to 0 to test these activations.`);
  }
  $("tw-study-note").textContent = notes.join(" ");
  if (window.actlabStudy && $("view-twins").classList.contains("active")) window.actlabStudy.refresh();
}

// ------------------------------------------------------------------ sessions in lockstep

function twinsRestartSoon() {
  $("tw-differ").textContent = twinsDiffer();
  twinsStudyNote();
  clearTimeout(state.tw.restartTimer);
  state.tw.restartTimer = setTimeout(twinsRestart, 200);
}

function twinsClose() {
  for (const run of state.tw.runs) {
    if (run.es) run.es.close();  // the server ends the session when its stream closes
    else if (run.id) fetch(`/api/sessions/${run.id}`, { method: "DELETE" });
  }
  state.tw.runs = [];
}

async function twinsRestart() {
  writeURL();
  const tw = state.tw, generation = ++tw.generation;
  twinsClose();
  $("tw-error").textContent = "";
  $("tw-differ").textContent = twinsDiffer();
  const configs = twinConfigs();
  const made = await Promise.allSettled(configs.map((c) => getJSON("/api/sessions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(c) })));
  const ok = made.filter((m) => m.status === "fulfilled").map((m) => m.value);
  const failed = made.findIndex((m) => m.status === "rejected");
  if (failed >= 0 || generation !== tw.generation) {  // one failed, or the settings changed meanwhile
    for (const body of ok) fetch(`/api/sessions/${body.id}`, { method: "DELETE" });
    if (failed >= 0 && generation === tw.generation) {
      $("tw-error").textContent = `twin ${TWIN_NAMES[failed]}: ${made[failed].reason.message}`;
      tw.playing = false; twinsUpdatePlay();
    }
    return;
  }
  Object.assign(tw, { shown: -1, shownLog: [], framesShown: 0, startedAt: performance.now() });
  tw.runs = ok.map((body, i) => ({ id: body.id, config: configs[i], data: body.data, frames: new Map(),
                                   latest: -1, requested: 0, history: [], frame: null, es: null }));
  tw.runs.forEach((run) => twinsOpen(run, generation));
  twinsUpdatePlay();
}

function twinsOpen(run, generation) {
  const es = new EventSource(`/api/sessions/${run.id}/stream`);
  run.es = es;
  es.addEventListener("frame", (ev) => {
    if (generation !== state.tw.generation) return;
    const frame = JSON.parse(ev.data);
    if (frame.epoch === 0 && run.latest > 0) { run.frames.clear(); run.history = []; }
    run.frames.set(frame.epoch, frame);
    run.latest = frame.epoch;
    if (frame.diverged) run.diverged = true;
    twinsAdvance();
  });
  es.addEventListener("end", () => { if (run.es === es) run.es = null; });
  es.addEventListener("error", (ev) => {
    if (run.es !== es) return;
    const reason = ev.data ? JSON.parse(ev.data).error : "a twin's training stream closed; press reset";
    es.close(); run.es = null;
    state.tw.playing = false; twinsUpdatePlay();
    $("tw-error").textContent = reason;
  });
}

// The epoch every twin has reached (a diverged twin stops training and no longer holds the rest).
function twinsCommonEpoch() {
  const live = state.tw.runs.filter((r) => !r.diverged);
  const runs = live.length ? live : state.tw.runs;
  return runs.length ? Math.min(...runs.map((r) => r.latest)) : -1;
}

function twinsAdvance() {
  const tw = state.tw, common = twinsCommonEpoch();
  if (common > tw.shown) {
    for (let e = tw.shown + 1; e <= common; e++) {
      for (const run of tw.runs) {
        const frame = run.frames.get(Math.min(e, run.latest));
        if (!frame) continue;
        run.frame = frame;
        if (e > 0 && frame.epoch === e) run.history.push({ epoch: e, train: frame.train_loss, val: frame.val_loss, acc: frame.val_accuracy });
        if (run.history.length > HISTORY) run.history.shift();
      }
    }
    for (const run of tw.runs) for (const e of run.frames.keys()) if (e < Math.min(common, run.latest)) run.frames.delete(e);
    tw.shown = common;
    tw.framesShown += 1;
    tw.shownLog.push(tw.runs.map((r) => r.frame && r.frame.epoch));
    if (tw.shownLog.length > 500) tw.shownLog.shift();
    if (tw.runs.every((r) => r.diverged)) { tw.playing = false; twinsUpdatePlay(); }
    if (!tw.drawPending) { tw.drawPending = true; requestAnimationFrame(drawTwins); }
  }
  if (tw.playing) twinsPump();
}

// Ask each twin for its next epoch while it is at most TWIN_LEAD ahead of what is shown.
function twinsPump() {
  const tw = state.tw;
  for (const run of tw.runs) {
    while (!run.diverged && run.es && run.requested < tw.shown + TWIN_LEAD) {
      run.requested = Math.max(run.requested, run.latest) + 1;
      twinsControl(run, "step");
    }
  }
}

function twinsStep(n) {
  const tw = state.tw;
  if (tw.playing) { tw.playing = false; twinsUpdatePlay(); }
  for (const run of tw.runs) {
    if (run.diverged || !run.es) continue;
    run.requested = Math.max(run.requested, run.latest) + n;
    for (let k = 0; k < n; k++) twinsControl(run, "step");
  }
}

async function twinsControl(run, action) {
  try {
    await getJSON(`/api/sessions/${run.id}/control`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                       body: JSON.stringify({ action }) });
  } catch (err) {
    $("tw-error").textContent = err.message;
  }
}

function twinsTogglePlay() {
  const tw = state.tw;
  tw.playing = !tw.playing;
  twinsUpdatePlay();
  if (!tw.runs.length) twinsRestart();
  else if (tw.playing) { tw.startedAt = performance.now(); tw.framesShown = 0; twinsPump(); }
}

function twinsUpdatePlay() {
  $("tw-play").textContent = state.tw.playing ? "❚❚ pause" : "▶ play";
}

// ------------------------------------------------------------------ URL state

function encodeTwins(q) {
  q.set("tdata", $("tw-dataset").value);
  for (const [key, id] of [["tnoise", "tw-noise"], ["tlayers", "tw-layers"], ["twidth", "tw-width"], ["tbatch", "tw-batch"], ["tbias", "tw-bias"]]) {
    q.set(key, $(id).value);
  }
  if (state.tw.initChosen) q.set("tinit", $("tw-init").value);
  for (const t of state.tw.twins) q.append("twin", `${fullSpec(t.name, t.params)},lr=${t.lr},opt=${t.optimizer}`);
}

function applyTwins(q) {
  if (state.catalog.datasets.includes(q.get("tdata"))) $("tw-dataset").value = q.get("tdata");
  for (const [key, id] of [["tnoise", "tw-noise"], ["tlayers", "tw-layers"], ["twidth", "tw-width"], ["tbias", "tw-bias"]]) {
    if (Number.isFinite(parseFloat(q.get(key)))) $(id).value = q.get(key);
  }
  if (Number.isFinite(parseInt(q.get("tbatch"), 10))) setSelect("tw-batch", q.get("tbatch"));
  const twins = [];
  for (const text of q.getAll("twin").slice(0, MAX_TWINS)) {
    const [spec, ...rest] = text.split(",");
    const f = readSpec(spec);
    if (!f || !state.byName[f.name].elementwise) continue;
    const extra = Object.fromEntries(rest.map((part) => part.split("=")));
    const lr = parseFloat(extra.lr);
    twins.push({ name: f.name, params: f.params, lr: Number.isFinite(lr) ? lr : state.catalog.defaults.lr,
                 optimizer: state.catalog.optimizers.includes(extra.opt) ? extra.opt : state.catalog.defaults.optimizer });
  }
  if (twins.length >= MIN_TWINS) state.tw.twins = twins;
  if (state.catalog.choices.init.includes(q.get("tinit"))) { $("tw-init").value = q.get("tinit"); state.tw.initChosen = true; }
  else twinsDefaultInit();
  showTwinValues();
}

// ------------------------------------------------------------------ charts

function drawTwins() {
  const tw = state.tw;
  tw.drawPending = false;
  const runs = tw.runs.filter((r) => r.frame && r.data);
  if (runs.length !== tw.runs.length || !runs.length) return;
  const seconds = (performance.now() - tw.startedAt) / 1000;
  $("tw-status").textContent = `epoch ${tw.shown} (every twin)` + (tw.playing && seconds > 1 ? ` · ${(tw.framesShown / seconds).toFixed(1)} frames/s per twin` : "");
  const differ = differKeys(runs.map((r) => r.config));
  const label = (i) => `${TWIN_NAMES[i]}: ${runs[i].config.layers[0]}` + (differ.includes("lr") ? ` lr ${runs[i].config.lr}` : "")
    + (differ.includes("optimizer") ? ` ${runs[i].config.optimizer}` : "");
  const holder = $("tw-surfaces");
  if (holder.children.length !== runs.length) {
    holder.replaceChildren(...runs.map((_, i) => el("div", { id: `tw-surface-${i}`, class: "plot twin-surface" })));
  }
  runs.forEach((run, i) => drawTwinSurface(`tw-surface-${i}`, run, label(i), i));
  const line = (i, y, name, dash) => ({ x: runs[i].history.map((h) => h.epoch), y, name, type: "scatter", mode: "lines",
    line: { color: COLORS[i], dash }, hovertemplate: `${name} %{y:.4g}<extra></extra>` });
  const losses = runs.flatMap((r) => r.history.flatMap((h) => [h.train, h.val])).filter((v) => v > 0);
  const lossRange = losses.length ? [Math.log10(Math.min(0.1, 0.8 * Math.min(...losses))), Math.log10(Math.max(1, 1.2 * Math.max(...losses)))] : [-1, 0];
  // legends under the plot: inside, they hid the lines they name
  const small = { font: FONT, margin: { l: 56, r: 10, t: 32, b: 40 }, legend: { orientation: "h", x: 0, y: -0.28, yanchor: "top" } };
  Plotly.react("tw-plot-loss", runs.flatMap((r, i) => [
    line(i, r.history.map((h) => h.train), `${label(i)} train`, "solid"),
    line(i, r.history.map((h) => h.val), `${label(i)} validation`, "dot"),
  ]), { ...small, hovermode: "x unified", title: { text: "loss (cross-entropy): solid train, dotted validation", font: { size: 13 } },
        xaxis: { title: { text: "epoch" }, rangemode: "tozero" },
        yaxis: { title: { text: "loss (log scale)" }, type: "log", dtick: "D2", tickformat: ".2~g", range: lossRange } }, PLOT_CONFIG);
  Plotly.react("tw-plot-acc", runs.map((r, i) => line(i, r.history.map((h) => 100 * h.acc), label(i), "solid")), {
    ...small, hovermode: "x unified", title: { text: "validation accuracy", font: { size: 13 } },
    xaxis: { title: { text: "epoch" }, rangemode: "tozero" }, yaxis: { title: { text: "% correct" }, range: [0, 102] } }, PLOT_CONFIG);
  const layers = runs[0].frame.dead.map((_, k) => `${k + 1}`);
  const bars = (i, arr, what, pattern) => ({
    x: layers, y: arr.map((v) => (v === null ? 0 : 100 * v)), name: `${label(i)} ${what}`, type: "bar",
    marker: { color: COLORS[i], pattern: { shape: pattern, fgcolor: "white", solidity: 0.5 } },
    text: arr.map((v) => (v === null || v < 0.01 ? "" : `${(100 * v).toFixed(0)}%`)), textposition: "outside", cliponaxis: false,
    hovertemplate: `${label(i)}<br>layer %{x}: %{y:.0f}% ${what}<extra></extra>` });
  Plotly.react("tw-plot-health", runs.flatMap((r, i) => {
    const out = [bars(i, r.frame.dead, "dead", "")];
    if (r.frame.saturated.some((v) => v !== null)) out.push(bars(i, r.frame.saturated, "saturated", "/"));
    return out;
  }), { ...small, barmode: "group", title: { text: "unit health per hidden layer: dead (solid), saturated (hatched)", font: { size: 13 } },
        xaxis: { title: { text: "hidden layer" }, type: "category" }, yaxis: { title: { text: "% of units" }, range: [0, 110] } }, PLOT_CONFIG);
  // a twin whose gradients are all 0 (every unit dead) has nothing to draw on a log axis: say so
  const zero = (r) => r.frame.grad_norm.every((v) => v === 0);
  const norms = runs.flatMap((r) => r.frame.grad_norm).filter((v) => v > 0);
  const decades = norms.length ? Math.log10(Math.max(...norms) / Math.min(...norms)) : 0;
  Plotly.react("tw-plot-grad", runs.map((r, i) => ({
    x: r.frame.grad_norm.map((_, k) => (k === r.frame.grad_norm.length - 1 ? "output" : `${k + 1}`)),
    y: r.frame.grad_norm.map((v) => (v === 0 ? null : v)), name: label(i) + (zero(r) ? " (all 0)" : ""), type: "scatter", mode: "lines+markers",
    line: { color: COLORS[i] }, hovertemplate: `${label(i)}<br>layer %{x}: ‖∂loss/∂W‖ = %{y:.3g}<extra></extra>` })),
  { ...small, title: { text: "weight-gradient norm per layer (falling to the left: vanishing)", font: { size: 13 } },
    xaxis: { title: { text: "weight layer (input → output)" }, type: "category" },
    yaxis: { title: { text: "‖∂loss/∂W‖ (log scale)" }, type: "log", exponentformat: "e", dtick: decades < 2 ? undefined : 1 } }, PLOT_CONFIG);
}

function drawTwinSurface(id, run, label, i) {
  const data = run.data, f = run.frame;
  const points = (part, cls) => {
    const xs = [], ys = [];
    data[part].x.forEach((p, k) => { if (data[part].y[k] === cls) { xs.push(p[0]); ys.push(p[1]); } });
    return { x: xs, y: ys, type: "scatter", mode: "markers", hoverinfo: "skip", showlegend: false,
             marker: { color: CLASS_COLORS[cls], size: part === "train" ? 4 : 6, symbol: part === "train" ? "circle" : "diamond",
                       line: { color: part === "train" ? "white" : "black", width: 0.6 } } };
  };
  Plotly.react(id, [
    { x: data.grid_x, y: data.grid_y, z: f.surface, type: "heatmap", zmin: 0, zmax: 1, zsmooth: "best", showscale: false,
      colorscale: [[0, "#f5a35c"], [0.5, "#f7f7f7"], [1, "#6aa8f0"]],
      hovertemplate: "x₁ = %{x:.2f}<br>x₂ = %{y:.2f}<br>P(class 1) = %{z:.3f}<extra></extra>" },
    points("train", 0), points("train", 1), points("val", 0), points("val", 1),
  ], {
    title: { text: `${label}<br><span style="font-size:12px">epoch ${f.epoch} · loss ${fmt(f.train_loss, 3)} · val acc ${(100 * f.val_accuracy).toFixed(0)}%${f.diverged ? " · diverged" : ""}</span>`,
             font: { size: 13, color: COLORS[i] } },
    font: FONT, margin: { l: 30, r: 8, t: 48, b: 24 },
    xaxis: { range: [data.grid_x[0], data.grid_x[data.grid_x.length - 1]], zeroline: false, constrain: "domain" },
    yaxis: { range: [data.grid_y[0], data.grid_y[data.grid_y.length - 1]], zeroline: false, scaleanchor: "x", constrain: "domain" },
    uirevision: "surface",
  }, PLOT_CONFIG);
}
