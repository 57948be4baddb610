// actlab explore: the page's state in its URL fragment (encodeState / applyURL).
"use strict";

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
  encodeTwins(q);  // twins.js
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
  if (!text.includes("=")) return ["playground", "twins", "runs"].includes(text) ? text : "functions";
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
  applyTwins(q);  // twins.js
  return ["functions", "playground", "twins", "runs"].includes(q.get("view")) ? q.get("view") : "functions";
}
