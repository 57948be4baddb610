// "Test this properly": the Playground's data and network as an `actlab compare` run over many
// seeds, in the server's background (POST /api/compare), its progress polled (GET
// /api/compare/{id}), its headline and ranking shown beside the Playground with a link to its
// report in Runs. Other views start one with window.actlabStudy.start(["relu", "tanh"]) and can
// show the box beside them with window.actlabStudy.mount(element).
// Every text from the server is set as textContent, never as HTML.
"use strict";

(() => {
  const box = document.getElementById("study");
  if (!box) return;
  const POLL_MS = 500;
  const RIVALS = ["relu", "tanh", "leaky_relu"];  // offered when the Playground has one activation
  const st = { id: null, last: null, edited: false, timer: null, source: null };
  const home = box.parentNode;  // the Playground's place, where mount(home) puts it back
  const q = (id) => document.getElementById(id);

  function make(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function number(v, digits = 4) {  // as the report writes them: 0.9467, 0.9200, 1.0000
    if (v === null || v === undefined) return "–";
    return Math.abs(v) < 10 ? v.toFixed(digits) : (+v.toPrecision(digits)).toString();
  }

  function pValue(p) {
    if (p === null || p === undefined) return "–";
    return p < 0.001 ? "< 0.001" : (+p.toPrecision(2)).toString();
  }

  function clock(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  }

  // ---------------------------------------------------------------- the controls

  box.append(
    make("div", { class: "study-row" }, [
      make("button", { id: "study-start", class: "primary", title:
        "run these activations over many seeds as an actlab compare study (held-out test, paired tests), in the background; the run appears in Runs with its report",
        text: "test this properly" }),
      make("label", { for: "study-acts", text: "compare" }),
      make("input", { id: "study-acts", type: "text", size: "26", spellcheck: "false",
        title: "activation specs, separated by commas; each is put in every hidden layer" }),
      make("label", { for: "study-seeds", text: "seeds" }),
      make("input", { id: "study-seeds", type: "number", min: "2", max: "10", step: "1", value: "5" }),
      make("label", { for: "study-epochs", text: "epochs" }),
      make("input", { id: "study-epochs", type: "number", min: "1", max: "200", step: "1", value: "30" }),
      make("button", { id: "study-cancel", text: "cancel", hidden: "" }),
    ]),
    make("p", { id: "study-progress", class: "study-progress" }),
    make("div", { id: "study-result", class: "study-result", hidden: "" }),
  );

  // The Playground's settings as app.js sends them to POST /api/sessions.
  function playground() {
    if (typeof playgroundConfig === "function") return playgroundConfig();  // eslint-disable-line no-undef
    const layers = ((window.explore && window.explore.pg && window.explore.pg.layers) || [])
      .map((l) => [l.name, ...Object.entries(l.params || {}).map(([k, v]) => `${k}=${v}`)].join(":"));
    const value = (id) => (q(id) ? q(id).value : undefined);
    return {
      dataset: value("pg-dataset"), noise: parseFloat(value("pg-noise")), layers,
      width: parseInt(value("pg-width"), 10), lr: parseFloat(value("pg-lr")),
      optimizer: value("pg-optimizer"), batch_size: parseInt(value("pg-batch"), 10),
    };
  }

  // The Playground's distinct activations (or the mounted view's, see mount), and a rival when
  // it has only one.
  function suggestion() {
    if (st.source) return st.source().activations.slice(0, 8);
    let acts = [];
    try { acts = [...new Set(playground().layers || [])]; } catch (err) { acts = []; }
    if (acts.length < 2) {
      const names = acts.map((a) => a.split(":")[0]);
      acts.push(RIVALS.find((r) => !names.includes(r)));
    }
    return acts.slice(0, 8);
  }

  function refreshSuggestion() {
    if (!st.edited) q("study-acts").value = suggestion().join(", ");
  }

  q("study-acts").addEventListener("input", () => { st.edited = q("study-acts").value.trim() !== ""; });
  const panel = document.querySelector("#view-playground .panel");
  if (panel) {
    panel.addEventListener("change", () => setTimeout(refreshSuggestion, 0));
    panel.addEventListener("click", () => setTimeout(refreshSuggestion, 0));  // presets
  }

  // ---------------------------------------------------------------- the run

  async function call(url, options) {
    const response = await fetch(url, options);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function showError(message) {
    const line = q("study-progress");
    line.textContent = message;
    line.classList.add("error");
  }

  // Start a run comparing `activations` (default: the field's) on the Playground's settings
  // (options.config: other settings, as POST /api/sessions takes them; options.seeds, .epochs).
  async function start(activations, options = {}) {
    if (activations) {
      q("study-acts").value = activations.join(", ");
      st.edited = true;
    }
    const acts = q("study-acts").value.split(",").map((s) => s.trim()).filter(Boolean);
    const body = {
      ...(options.config || (st.source ? st.source().config : playground())), activations: acts,
      seeds: options.seeds ?? parseInt(q("study-seeds").value, 10),
      epochs: options.epochs ?? parseInt(q("study-epochs").value, 10),
    };
    delete body.grid; delete body.fps;  // (the surface's settings: not part of a study)
    q("study-start").disabled = true;
    q("study-result").hidden = true;
    q("study-progress").classList.remove("error");
    q("study-progress").textContent = "starting the run…";
    try {
      const state = await call("/api/compare", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      follow(state);
    } catch (err) {
      q("study-start").disabled = false;
      showError(err.message);
    }
  }

  function follow(state) {
    st.id = state.id;
    show(state);
    clearTimeout(st.timer);
    if (["queued", "running"].includes(state.state)) st.timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    try {
      follow(await call(`/api/compare/${encodeURIComponent(st.id)}`));
    } catch (err) {
      q("study-start").disabled = false;
      q("study-cancel").hidden = true;
      showError(err.message);
    }
  }

  async function cancel() {
    if (!st.id) return;
    try { show(await call(`/api/compare/${encodeURIComponent(st.id)}`, { method: "DELETE" })); }
    catch (err) { showError(err.message); }
  }

  function progressText(s) {
    const what = `${s.activations.length} activations × ${s.seeds} seeds = ${s.models.total} models, ` +
      `${s.epochs} epochs, ${s.dataset}, ${s.depth} × ${s.width}`;
    const elapsed = clock(s.elapsed_s);
    if (s.state === "queued") return `starting: ${what}…`;
    if (s.state === "running") {
      if (s.fraction >= 1) return `trained (${what}); the statistics and the report are being written… ${elapsed}`;
      const group = s.groups > 1 ? `group ${s.group}/${s.groups}, ` : "";
      return `running: ${group}epoch ${s.epoch}/${s.epochs} (${Math.round(100 * s.fraction)}%), ` +
        `${elapsed} elapsed — ${what}`;
    }
    if (s.state === "done") {
      const stopped = s.complete ? "" : ` — stopped at the time limit (${s.limit_s} s) at epoch ${s.final_epoch}; ` +
        "finish it with actlab compare --resume --out <its folder>";
      return `done in ${elapsed}: ${what}, run ${s.run}${stopped}`;
    }
    if (s.state === "cancelled") return `cancelled after ${elapsed}; what it stored is in Runs (${s.run})`;
    return `failed: ${s.error || "unknown reason"}`;
  }

  function openInRuns(name) {
    if (typeof showView === "function" && window.explore) {  // eslint-disable-line no-undef
      window.explore.run = name;
      showView("runs");  // eslint-disable-line no-undef
    } else {
      location.hash = `view=runs&run=${encodeURIComponent(name)}`;
    }
  }

  function show(s) {
    st.last = s;
    const running = ["queued", "running"].includes(s.state);
    q("study-start").disabled = running;
    q("study-cancel").hidden = !running;
    const line = q("study-progress");
    line.classList.toggle("error", s.state === "failed");
    line.textContent = progressText(s);
    const out = q("study-result");
    if (s.state !== "done" || !s.headline) { out.hidden = true; return; }
    const metric = s.metric.replace(/^test_/, "test ");
    const verdict = make("div", { class: "study-verdict" }, [
      make("span", { class: s.winner ? "badge win" : "badge none",
        text: s.winner ? `winner: ${s.winner}` : "no clear winner" }),
      make("span", { id: "study-headline", class: "headline", text: s.headline }),
    ]);
    const head = make("tr", {}, ["#", "activation", `mean ${metric}`, "95% CI", "p vs best",
      "p (Holm)", "verdict"].map((t) => make("th", { text: t })));
    const rows = s.rows.map((r) => make("tr", {}, [
      String(r.rank), r.activation, number(r.mean), `${number(r.ci_low)} – ${number(r.ci_high)}`,
      pValue(r.p_value), pValue(r.p_holm), r.verdict + (r.n_failed ? ` (${r.n_failed} diverged)` : ""),
    ].map((t) => make("td", { text: t }))));
    const link = make("a", { href: `#view=runs&run=${encodeURIComponent(s.run)}`, id: "study-report",
      text: "open its report in Runs" });
    link.addEventListener("click", (ev) => { ev.preventDefault(); openInRuns(s.run); });
    const where = make("p", { class: "hint" }, [
      link, " · ", make("a", { href: `/${s.report}`, target: "_blank", rel: "noopener", text: "new tab" }),
      ` · ${s.models.total} models, each scored on held-out test data at its best validation epoch; ` +
      "p: paired t-tests against the best, Holm-adjusted for the number of rivals. The same run from a terminal: ",
      make("code", { text: s.command }),
    ]);
    out.replaceChildren(verdict, make("table", { class: "study-table" }, [make("thead", {}, [head]),
      make("tbody", {}, rows)]), where);
    out.hidden = false;
  }

  q("study-start").addEventListener("click", () => start());
  q("study-cancel").addEventListener("click", cancel);

  // A reloaded page finds this server's latest run (still going, or its result), once app.js
  // has the catalog and the Playground's layers (from the link or the defaults).
  async function resume(tries = 0) {
    const pg = window.explore && window.explore.pg;
    if (!(window.explore && window.explore.restored && pg && pg.layers.length) && tries < 100) {
      setTimeout(() => resume(tries + 1), 100);
      return;
    }
    refreshSuggestion();
    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", refreshSuggestion);
    try {
      const body = await call("/api/compare");
      if (body.studies.length && !st.id) follow(body.studies[0]);
    } catch (err) { /* the Playground works without it */ }
  }
  resume();

  // mount(element, source): show the box (button, progress, verdict) in `element` instead, e.g.
  // beside twins; `source()` then gives {activations, config} (what the field offers and the
  // settings a run takes) in place of the Playground's. mount() puts it back under the Playground.
  function mount(element, source) {
    const place = element || home;
    if (box.parentNode !== place) place.append(box);
    const changed = st.source !== (source || null);
    st.source = source || null;
    if (changed) { st.edited = false; refreshSuggestion(); }
  }

  window.actlabStudy = { start, cancel, mount, refresh: refreshSuggestion, get state() { return st.last; } };
})();
