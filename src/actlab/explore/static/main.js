// actlab explore: start-up, view switching, export buttons (loaded last).
"use strict";

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.classList.toggle("active", view.id === `view-${name}`);
  if (name === "playground" && !state.pg.id) restart();
  if (name === "twins" && !state.tw.runs.length) twinsRestart();
  if (name === "runs") loadRuns();
  // "test this properly": beside the twins (their activations) there, under the Playground elsewhere
  if (window.actlabStudy) window.actlabStudy.mount(name === "twins" ? $("tw-study") : null, name === "twins" ? twinsStudySource : null);
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
  buildTwins();
  const initial = applyURL();
  buildLayers(); showValues(); buildTwinCards();
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
window.addEventListener("pagehide", () => { closeStream(); twinsClose(); });
window.addEventListener("pageshow", (ev) => {
  if (ev.persisted && document.getElementById("view-playground").classList.contains("active")) restart();
  if (ev.persisted && document.getElementById("view-twins").classList.contains("active")) twinsRestart();
});

main();
