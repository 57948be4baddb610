// actlab explore, Playground extras (issue 23, item 5): initialisation, learning-rate schedule,
// weight decay and dropout (changed while training, through the session's control channel), the
// multiclass decision surface (colour per class, shade = its probability), digits without a
// surface, and each layer's pre-activations at initialisation. app.js calls the hooks of
// window.actlabExtras (build, config, encode, apply, draw); every number drawn comes from the server.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const CLASS_BASE = ["#e8710a", "#1a73e8", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
  const FONT = { family: "system-ui, DejaVu Sans, sans-serif", size: 13 };
  const CONFIG = { displayModeBar: false, responsive: true };
  // URL key -> [control id, setting name, kind]
  const KEYS = [["init", "pg-init", "init", "text"], ["sched", "pg-schedule", "schedule", "text"],
                ["sched_n", "pg-schedule-epochs", "schedule_epochs", "int"],
                ["sched_g", "pg-schedule-gamma", "schedule_gamma", "float"],
                ["wd", "pg-weight-decay", "weight_decay", "float"], ["drop", "pg-dropout", "dropout", "float"]];
  const LIVE = ["weight_decay", "dropout"];
  const ui = { app: null, drawnData: null, liveTimer: null, caption: "" };

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function mix(hex, white) {  // `hex` moved towards white by the share `white`
    const n = parseInt(hex.slice(1), 16);
    const ch = [n >> 16, (n >> 8) & 255, n & 255].map((c) => Math.round(c + (255 - c) * white));
    return `rgb(${ch.join(",")})`;
  }

  function slider(id, label, limits, step, value, title) {
    const input = el("input", { id, type: "range", min: limits[0], max: limits[1], step, value, title });
    const out = el("output", { id: `${id}-value`, text: value });
    return el("div", { class: "row", title }, [el("label", { for: id, text: label }), input, out]);
  }

  function select(id, label, options, value, title) {
    const s = el("select", { id, title });
    for (const [v, text] of options) s.append(el("option", { value: v, text }));
    s.value = value;
    return el("div", { class: "row", title }, [el("label", { for: id, text: label }), s]);
  }

  // The controls under Training, from the catalog's choices and limits (the server's bounds).
  function build(app) {
    ui.app = app;
    const cat = app.catalog, d = cat.defaults, lim = cat.limits;
    const box = $("pg-extras");
    const names = { auto: "auto (per activation)", he: "He", glorot: "Glorot", lecun: "LeCun", torch: "PyTorch default" };
    box.append(
      select("pg-init", "init", cat.choices.init.map((v) => [v, names[v] || v]), d.init,
             "how the hidden weights start: auto = He for ReLU-like, Glorot for sigmoid/tanh, LeCun for SELU"),
      select("pg-schedule", "lr schedule", cat.choices.schedule.map((v) => [v, v]), d.schedule,
             "constant; step: times γ every N epochs; cosine: from the learning rate to 0 over N epochs"),
      slider("pg-schedule-epochs", "N epochs", lim.schedule_epochs, 1, d.schedule_epochs, "step: epochs per step; cosine: epochs to reach 0"),
      slider("pg-schedule-gamma", "step γ", lim.schedule_gamma, 0.01, d.schedule_gamma, "step: the factor at each step"),
      slider("pg-weight-decay", "weight decay", lim.weight_decay, 0.001, d.weight_decay, "L2 penalty on every weight; changes while training, from the next step"),
      slider("pg-dropout", "dropout", lim.dropout, 0.05, d.dropout, "share of hidden units dropped in each training step; changes while training"),
      el("p", { class: "hint", text: "Weight decay and dropout apply from the next step while it trains (no reset); the other settings start a new network." }),
    );
    $("pg-schedule-epochs").max = Math.min(lim.schedule_epochs[1], 300);  // a slider of 1000 steps is unusable
    for (const id of ["pg-init", "pg-schedule"]) $(id).addEventListener("change", () => { syncSchedule(); window.restartSoon(); });
    for (const id of ["pg-schedule-epochs", "pg-schedule-gamma"]) $(id).addEventListener("input", () => { show(); window.restartSoon(); });
    for (const id of ["pg-weight-decay", "pg-dropout"]) $(id).addEventListener("input", () => { show(); window.writeURL(); sendLive(); });
    $("pg-dataset").addEventListener("change", syncData);
    // The article's presets use the defaults here too (captured before app.js's own handlers,
    // which read the settings at once): a dropout left at 0.5 would spoil the claim.
    document.querySelector(".presets").addEventListener("click", () => {
      for (const [, id, name] of KEYS) $(id).value = d[name];
      syncSchedule();
    }, true);
    buildCharts();
    syncSchedule();
  }

  function buildCharts() {
    const extra = $("pg-extras-charts");
    const surface = $("plot-surface").closest("figure");
    ui.caption = surface.querySelector("figcaption").textContent;
    surface.after(el("figure", { class: "chart", id: "pg-class-figure", hidden: "" }, [
      el("p", { id: "pg-surface-note", class: "hint surface-note" }),
      el("div", { id: "plot-classes", class: "plot square" }),
      el("figcaption", { text: "Share of each class's validation rows the network gets right after each epoch (there is no decision surface for data with more than two features). Hover for the value." }),
    ]));
    extra.append(
      el("div", { class: "grid2" }, [
        el("figure", { class: "chart" }, [
          el("div", { id: "plot-lr", class: "plot half" }),
          el("figcaption", { text: "The learning rate of each epoch under the chosen schedule (dotted line, from the server), and the one the last epoch trained with (dot). Hover for values." }),
        ]),
        el("figure", { class: "chart" }, [
          el("div", { id: "pg-init-plots", class: "init-plots" }),
          el("figcaption", { text: "Each hidden layer's pre-activations z = Wx + b on the training rows at initialisation, before any step: a spread shrinking layer by layer is a vanishing signal; |z| beyond ~3 saturates sigmoid and tanh. Change init to compare. Hover a bar for its count." }),
        ]),
      ]),
    );
    document.head.append(el("style", { text: ".init-plots { display: flex; flex-wrap: wrap; gap: 2px; } .init-plots .plot { width: 140px; height: 130px; } #plot-classes { height: 420px; } .surface-note { font-size: 13.5px; color: #1d2430; margin: 6px 8px 0 60px; } #pg-class-figure[hidden] { display: none; }" }));
  }

  function show() {
    for (const [, id] of KEYS.slice(2)) $(`${id}-value`).textContent = $(id).value;
  }

  function syncSchedule() {
    const s = $("pg-schedule").value;
    $("pg-schedule-epochs").closest(".row").style.display = s === "constant" ? "none" : "";
    $("pg-schedule-gamma").closest(".row").style.display = s !== "step" ? "none" : "";
    show();
  }

  function syncData() {  // digits: no noise to set
    const digits = $("pg-dataset").value === "digits";
    $("pg-noise").disabled = digits;
    $("pg-noise").title = digits ? "digits are scanned images: no noise is added" : "";
  }

  function config() {
    const out = {};
    for (const [, id, name, kind] of KEYS) {
      const v = $(id).value;
      out[name] = kind === "int" ? parseInt(v, 10) : kind === "float" ? parseFloat(v) : v;
    }
    return out;
  }

  // Weight decay / dropout to the running session (at most one request per 150 ms of dragging).
  function sendLive() {
    clearTimeout(ui.liveTimer);
    ui.liveTimer = setTimeout(async () => {
      const id = ui.app && ui.app.pg.id;
      if (!id) return;
      const c = config(), body = { action: "set" };
      for (const k of LIVE) body[k] = c[k];
      const r = await fetch(`/api/sessions/${id}/control`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) $("pg-error").textContent = (await r.json()).error;
    }, 150);
  }

  function encode(q) {
    for (const [key, id] of KEYS) q.set(key, $(id).value);
  }

  function apply(q) {
    for (const [key, id, , kind] of KEYS) {
      const v = q.get(key);
      if (v === null) continue;
      if (kind === "text") { if ([...$(id).options].some((o) => o.value === v)) $(id).value = v; }
      else if (Number.isFinite(parseFloat(v))) $(id).value = v;
    }
    syncSchedule(); syncData();
  }

  // Called by app.js on every frame drawn; true when the surface was handled here (multiclass or
  // no surface), false for two classes (app.js draws P(class 1)).
  function draw(f, data) {
    if (ui.drawnData !== data) { ui.drawnData = data; drawInit(data); }
    drawLr(f, data);
    $("pg-status").textContent += ` · lr ${+f.lr.toPrecision(3)} · wd ${f.weight_decay} · dropout ${f.dropout}`;
    const surfaceFigure = $("plot-surface").closest("figure");
    surfaceFigure.hidden = !data.planar;
    surfaceFigure.style.display = data.planar ? "" : "none";
    $("pg-class-figure").hidden = data.planar;
    if (!data.planar) {
      $("pg-surface-note").textContent = `No decision surface: ${data.note}.`;
      drawClasses(f, data);
      return true;
    }
    if (data.classes === 2) {
      surfaceFigure.querySelector("figcaption").textContent = ui.caption;
      return false;
    }
    drawSurface(f, data);
    return true;
  }

  function drawSurface(f, data) {
    const k = data.classes;
    // z = class + how sure (0 at chance, 1 certain): one colour band per class, light to strong
    const z = f.surface_class.map((row, i) => row.map((c, j) => c + Math.max(0, Math.min(0.999, (f.surface_confidence[i][j] - 1 / k) / (1 - 1 / k)))));
    const text = f.surface_class.map((row, i) => row.map((c, j) => `class ${c}, p = ${f.surface_confidence[i][j].toFixed(3)}`));
    const scale = [];
    for (let c = 0; c < k; c++) {
      scale.push([c / k, mix(CLASS_BASE[c], 0.9)], [c === k - 1 ? 1 : (c + 1) / k - 1e-6, mix(CLASS_BASE[c], 0.45)]);
    }
    const traces = [{ x: data.grid_x, y: data.grid_y, z, text, type: "heatmap", zmin: 0, zmax: k, zsmooth: false, colorscale: scale,
                      showscale: false, hovertemplate: "x₁ = %{x:.2f}<br>x₂ = %{y:.2f}<br>%{text}<extra></extra>" }];
    for (const [part, symbol, size] of [["train", "circle", 5], ["val", "diamond", 7]]) {
      for (let c = 0; c < k; c++) {
        const xs = [], ys = [];
        data[part].x.forEach((p, i) => { if (data[part].y[i] === c) { xs.push(p[0]); ys.push(p[1]); } });
        traces.push({ x: xs, y: ys, type: "scatter", mode: "markers", name: `class ${c}`, hoverinfo: "skip", legendgroup: `c${c}`,
                      showlegend: part === "train", marker: { color: CLASS_BASE[c], size, symbol, line: { color: part === "train" ? "white" : "black", width: part === "train" ? 0.6 : 1 } } });
      }
    }
    Plotly.react("plot-surface", traces, {
      title: { text: `predicted class after ${f.epoch} epochs (${data.name}, ${k} classes)`, font: { size: 14 } },
      font: FONT, margin: { l: 56, r: 10, t: 36, b: 90 },
      xaxis: { title: { text: "x₁ (standardised)" }, range: [data.grid_x[0], data.grid_x[data.grid_x.length - 1]] },
      yaxis: { title: { text: "x₂ (standardised)" }, range: [data.grid_y[0], data.grid_y[data.grid_y.length - 1]] },
      legend: { orientation: "h", x: 0, y: -0.2 }, uirevision: "surface",
    }, CONFIG);
    const caption = $("plot-surface").closest("figure").querySelector("figcaption");
    caption.textContent = "Each pixel: the class the network predicts there (softmax over the classes), its colour stronger the surer it is (pale: near chance); dots: training rows, diamonds: validation rows. Hover for the class and its probability.";
  }

  function drawClasses(f, data) {
    const acc = f.class_accuracy;
    Plotly.react("plot-classes", [{
      x: acc.map((_, c) => `${c}`), y: acc.map((v) => 100 * v), type: "bar",
      marker: { color: acc.map((_, c) => CLASS_BASE[c % CLASS_BASE.length]) },
      text: acc.map((v) => `${(100 * v).toFixed(0)}%`), textposition: "outside", cliponaxis: false,
      hovertemplate: "class %{x}: %{y:.1f}% right<extra></extra>",
    }], {
      title: { text: `validation accuracy per class, epoch ${f.epoch} (all: ${(100 * f.val_accuracy).toFixed(1)}%)`, font: { size: 13 } },
      font: FONT, margin: { l: 60, r: 10, t: 36, b: 40 },
      xaxis: { title: { text: "class" }, type: "category" }, yaxis: { title: { text: "% right" }, range: [0, 110] },
    }, CONFIG);
  }

  function drawLr(f, data) {
    const plan = data.lr_plan || [];
    Plotly.react("plot-lr", [
      { x: plan.map((_, e) => e + 1), y: plan, type: "scatter", mode: "lines", name: "schedule", line: { color: "#7f7f7f", dash: "dot" },
        hovertemplate: "epoch %{x}: lr %{y:.3g}<extra>schedule</extra>" },
      { x: [Math.max(f.epoch, 1)], y: [f.lr], type: "scatter", mode: "markers", name: "now",
        marker: { color: "#1f77b4", size: 9 }, hovertemplate: "epoch %{x}: lr %{y:.3g}<extra>now</extra>" },
    ], {
      title: { text: `learning rate per epoch (${$("pg-schedule").value}); now ${+f.lr.toPrecision(3)}`, font: { size: 13 } },
      font: FONT, margin: { l: 60, r: 10, t: 36, b: 40 }, showlegend: false,
      xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "learning rate" }, rangemode: "tozero" },
    }, CONFIG);
  }

  function drawInit(data) {
    const box = $("pg-init-plots");
    box.replaceChildren();
    (data.preactivations || []).forEach((h, i) => {
      const div = el("div", { class: "plot", id: `plot-init-${i}` });
      box.append(div);
      const centres = h.counts.map((_, b) => (h.edges[b] + h.edges[b + 1]) / 2);
      Plotly.newPlot(div, [{ x: centres, y: h.counts, type: "bar", marker: { color: "#9467bd" },
                            hovertemplate: "z ≈ %{x:.2f}: %{y} values<extra></extra>" }], {
        title: { text: `${i + 1}: ${h.activation}, sd ${h.std}`, font: { size: 11 } },
        font: { ...FONT, size: 10 }, margin: { l: 8, r: 4, t: 22, b: 20 }, bargap: 0,
        xaxis: { tickfont: { size: 9 } }, yaxis: { visible: false },
      }, { ...CONFIG, responsive: false });
    });
  }

  window.actlabExtras = { build, config, encode, apply, draw };
})();
