// actlab explore: shared constants, the page's state object and small helpers (loaded first).
// Plain JavaScript over the server's JSON API; charts are plotly (served from the installed Python
// package). Every number drawn comes from the server (actlab's kernels and a PyTorch session); these
// files only build controls, fetch and draw. Classic scripts: their top-level names are shared.
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
