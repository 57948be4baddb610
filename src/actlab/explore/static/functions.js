// actlab explore: the Functions view (curves, zones, softmax panel).
"use strict";

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
