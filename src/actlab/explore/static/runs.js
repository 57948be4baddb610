// actlab explore: the Runs view (compare runs under --runs and their reports).
"use strict";

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
