"""``report.md`` and the self-contained ``report.html`` (inline CSS, figures as base64 PNGs)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from actlab._html import esc, fields, page, table
from actlab.compare.analysis import effect_sentences, factor_label
from actlab.compare.config import FACTORS
from actlab.compare.report import figures, rows
from actlab.compare.results import Results
from actlab.compare.stats import fmt
from actlab.errors import writing


def reproduce_command(res: Results) -> str:
    """The stored command with ``--out NEW_DIR``: run verbatim with the old folder it would only
    be refused (the folder already holds this run)."""
    out = shlex.quote(str(res.directory))
    command = str(res.command)
    if command.endswith(f"--out {out}"):
        return command[: -len(out)] + "NEW_DIR"
    return re.sub(r"--out\s+\S+", "--out NEW_DIR", command) if "--out" in command else command


def resume_command(res: Results) -> str:

    return f"actlab compare --out {shlex.quote(str(res.directory))} --resume"


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # only these can open an HTML tag or comment


def _md_cell(value: Any) -> str:
    # quotes stay quotes and "p < 0.001" stays readable (a plain-text viewer showed '&lt; 0.001'):
    # only a '<' that could open a tag, and '&', are escaped, so that user-given names still
    # cannot inject HTML into a rendered report
    text = str(value).replace("&", "&amp;")
    return _TAG_START.sub("&lt;", text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    return [
        "| " + " | ".join(_md_cell(k) for k in rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(_md_cell(v) for v in row.values()) + " |" for row in rows),
    ]


def _scope(res: Results) -> str:
    c = res.config
    grid = [f"{len(c.study.activations)} activations"]
    for f in ("depth", "width", "batch_size", "lr", "weight_decay"):
        values = getattr(c.model, f)
        if len(values) > 1:
            grid.append(f"{len(values)} {f.replace('_', ' ')}s")
    return (
        f"{' × '.join(grid)} × {c.study.seeds} seeds = {len(res.models)} models; {res.metric} "
        + (rows._at_epoch(res) if res.analysis.best_epoch else
           f"at epoch {res.final_epoch} of {c.model.epochs}")
    )


def markdown(res: Results) -> str:
    d = res.data
    lines = [
        f"# actlab compare: {_md_cell(d['name'])}",
        "",
        f"**{_md_cell(res.headline)}**",
        "",
    ]
    notes = [*res.notes, *(n for c in res.studies for n in c.summary.notes)]
    lines += [f"> {_md_cell(n)}" for n in notes]
    lines += [f"> **Warning:** {_md_cell(w)}" for w in res.analysis.warnings]
    lines += ["", _md_cell(_scope(res)) + ".", "", _md_cell(res.analysis.selection), ""]
    for cell in res.studies:
        if cell.label:
            lines += [f"## {_md_cell(cell.label)}", ""]
        lines += [*_md_table(rows.summary_rows(res, cell)), ""]
    if res.analysis.tuned:
        lines += ["## Chosen on validation data", "", *_md_table(rows.chosen_rows(res)), ""]
    if res.analysis.effects:
        lines += ["## Studied factors", "", *_md_table(rows.effect_rows(res)), ""]
    if res.analysis.baselines:
        lines += [rows.BASELINE_NOTE, ""]
    lines += [
        f"Method: {_md_cell(res.stats.method)}. Seeds needed: for 80% power from the observed "
        "paired effect size (a rough estimate).",
        "",
        "## Data",
        "",
        f"- dataset: {_md_cell(d['name'])} ({_md_cell(d['task'])}, target {_md_cell(d['target'])})",
        f"- rows: {_rows_text(res)}",
        f"- features ({d['n_features']}): {_md_cell(_names(d))}",
    ]
    if d.get("class_names"):
        lines.append(f"- classes: {_md_cell(', '.join(map(str, d['class_names'])))}")
    lines += [f"- note: {_md_cell(note)}" for note in rows.data_notes(d)]
    lines += [
        "",
        "## Reproduce",
        "",
        "A new run with the same settings (NEW_DIR: a folder that does not exist yet):",
        "",
        "```",
        reproduce_command(res),
        "```",
        "",
        "Finish or extend this run where it is:",
        "",
        "```",
        resume_command(res),
        "```",
        "",
        f"Data fingerprint: `{res.fingerprint}`. Versions: "
        + ", ".join(f"{k} {v}" for k, v in res.versions.items())
        + ".",
        "",
        *[
            f"- session {i}: {s['versions'].get('device', 'cpu')}, "
            f"{s['versions'].get('backend', 'this process')}, {s['outcome'] or 'running or killed'}"
            for i, s in enumerate(res.sessions, 1)
        ],
        "",
        "The figures are in report.html. Every model and epoch: "
        "`actlab report DIR --csv rows.csv`.",
        "",
    ]
    if res.analysis.next_steps:
        lines += ["## Next steps", ""]
        for cmd, reason in res.analysis.next_steps:
            lines += [f"- {_md_cell(reason)}:", "", "  ```", f"  {cmd}", "  ```", ""]
    return "\n".join(lines)


def _rows_text(res: Results) -> str:
    d = res.data
    text = f"{d['n_train']} training, {d['n_val']} validation, {d.get('n_test', 0)} test"
    if res.config.data.resample_split:
        text += f" (a new split for every seed: split seed {res.config.data.split_seed} + seed)"
    return text


# ------------------------------------------------------------------------------------------ html


def _img(draw: Callable[[Any], Figure | None], res: Results, alt: str) -> str:
    """The figure ``draw(res)`` as an embedded PNG; a figure that cannot be drawn says why instead
    of stopping the report (the numbers are stored; the report must render whatever they are)."""
    try:
        with figures.no_gc():
            fig = draw(res)
            if fig is None:
                return f"<p class='muted'>({esc(alt)}: nothing to draw)</p>"
            return f"<img alt='{esc(alt)}' src='data:image/png;base64,{figures._png(fig)}'>"
    except Exception as err:  # a figure must never cost the report
        return (
            f"<p class='muted'>({esc(alt)}: could not be drawn from these numbers: "
            f"{esc(type(err).__name__)}: {esc(err)})</p>"
        )


def _model_rows(res: Results) -> list[dict[str, Any]]:
    factors = [f for f in FACTORS if len(getattr(res.config.model, f)) > 1]
    keys = ["activation", "seed", *factors, "status", "epochs", "train_loss", "val_loss"]
    extra = sorted({k for r in res.table for k in r
                    if k.startswith(("val_", "test_")) and k != "val_loss"})  # fmt: skip
    out = []
    for r in res.table:
        row = {}
        for k in keys + extra:
            v = r.get(k)
            row[k] = fmt(v) if isinstance(v, float) else ("–" if v is None else v)
        out.append(row)
    return out


def _names(d: dict[str, Any]) -> str:
    names = [str(n) for n in d.get("feature_names", [])]
    more = f" … and {len(names) - rows.MAX_NAMES} more" if len(names) > rows.MAX_NAMES else ""
    return ", ".join(names[:rows.MAX_NAMES]) + more


def _headline_html(res: Results, tie: str) -> str:
    """The headline; with studied factors one line per value and one per factor's effect."""
    a = res.analysis
    if len(a.cells) == 1 and not a.effects:
        return f"<div class='headline{tie}'>{esc(res.headline)}</div>"
    lines = [f"<p><b>{esc(c.label)}:</b> {esc(c.summary.headline)}</p>" for c in a.cells]
    lines += [f"<p><b>{esc(s)}</b></p>" for s in effect_sentences(a.effects, a.metric)]
    return f"<div class='headline{tie}'>{''.join(lines)}</div>"


def html_page(res: Results) -> str:

    d = res.data
    shown = _names(d)
    classes = ", ".join(map(str, d.get("class_names", [])))
    config_rows = [
        {
            "setting": f"{section}.{k}",
            "value": json.dumps(v) if isinstance(v, (list, dict)) else ("–" if v is None else v),
        }
        for section, values in res.config.to_dict().items()
        for k, v in values.items()
    ]
    sessions = [
        {
            "started": datetime.fromtimestamp(s["started"]).strftime("%Y-%m-%d %H:%M:%S"),
            "outcome": s["outcome"] or "running or killed",
            "seconds": fmt((s["finished"] or s["started"]) - s["started"], 1),
            "device": s["versions"].get("device", "cpu"),
            "backend": s["versions"].get("backend", "this process"),
        }
        for s in res.sessions
    ]
    tie = "" if res.winner else " tie"
    all_notes = [*res.notes, *(n for c in res.studies for n in c.summary.notes)]
    notes = "".join(f"<div class='note'>{esc(n)}</div>" for n in all_notes)
    notes += "".join(f"<div class='note'><b>Warning:</b> {esc(w)}</div>"
                     for w in res.analysis.warnings)  # fmt: skip
    a = res.analysis
    parts = [
        f"<h1>actlab compare: {esc(d['name'])}</h1>",
        f"<p class='muted'>{esc(d['task'])}, {esc(_scope(res))}</p>",
        _headline_html(res, tie),
        notes,
        f"<p class='selection'>{esc(a.selection)}</p>",
        "<h2>Results</h2>",
    ]
    for cell in res.studies:
        if cell.label:
            parts.append(f"<h3>{esc(cell.label)}</h3>")
        parts += [
            table(rows.summary_rows(res, cell), best_key="vs best"),
            _img(figures.fig_per_seed, figures.View(res, cell), "final metric per seed"),
        ]
    parts.append(
        (f"<p class='muted'>{esc(rows.BASELINE_NOTE)}</p>" if a.baselines else "")
        + f"<p class='muted'>{esc(res.stats.method)}. “Seeds needed”: seeds for 80% power to "
        "separate that activation from the best, from the observed paired effect size (a rough "
        "estimate). A diverged model (loss NaN/inf) counts as a failure.</p>"
    )
    for factor in a.studied:
        parts += [
            f"<h2>Studied factor: {esc(factor_label(factor))}</h2>",
            "<p class='muted'>Each cell: the mean test score over seeds of the activation at its "
            "chosen setting, with its 95% CI; (best) and (worse): the paired verdict against the "
            "best activation at that value. The table pairs every value with the first by seed "
            "(same data order and split), within each activation, Holm-corrected.</p>",
            _img(lambda r, f=factor: figures.fig_heatmap(r, f), res, f"heat map of {factor}"),
            table([r for r in rows.effect_rows(res)
                   if r["change"].startswith(factor_label(factor) + " ")]),
        ]
    if a.tuned:
        parts += [
            "<h2>Tuned on validation data</h2>",
            "<p class='muted'>The value of each tuned factor that each activation got, chosen by "
            "its mean validation score over seeds "
            + ("at each model's best epoch" if a.best_epoch else "at the final epoch")
            + "; in brackets that score.</p>",
            table(rows.chosen_rows(res)),
        ]
        for factor in a.tuned:
            parts.append(
                _img(lambda r, f=factor: figures.fig_sensitivity(r, f), res,
                     f"sensitivity to {factor}")
            )
        parts.append(
            "<p class='muted'>Sensitivity: the validation metric against each tuned factor, the "
            "other tuned factors held at the chosen values; band: ± sd over seeds; star: the "
            "chosen value. A steep line is an activation that is fragile to that factor.</p>"
        )
    for cell in res.studies:
        v = figures.View(res, cell)
        at = f" — {esc(cell.label)}" if cell.label else ""
        parts += [
            f"<h2>Learning curves{at}</h2>",
            _img(figures.fig_learning_curves, v, "learning curves"),
            f"<h2>Gradient flow{at}</h2>",
            "<p class='muted'>Gradient norm per weight layer at the first and the last epoch, "
            "log scale: a line falling towards the input is a vanishing gradient.</p>",
            _img(figures.fig_grad_norms, v, "gradient norms per layer"),
            f"<h2>Dead and saturated units{at}</h2>",
            _img(figures.fig_unit_health, v, "dead and saturated fractions"),
        ]
    parts += [
        "<h2>The activation functions</h2>",
        _img(figures.fig_activations, res, "activation functions"),
        "<h2>Data</h2>",
        fields(
            (k, esc(v))
            for k, v in [
                ("dataset", d["name"]),
                ("task", d["task"]),
                ("target", d["target"]),
                ("rows", _rows_text(res)),
                ("features", f"{d['n_features']}: {shown}"),
                ("classes", classes),
                *(("note", note) for note in rows.data_notes(d)),
            ]
        ),
        "<h2>Reproduce</h2>",
        "<p>A new run with the same settings (NEW_DIR: a folder that does not exist yet):</p>",
        f"<pre>{esc(reproduce_command(res))}</pre>",
        "<p>Finish or extend this run where it is:</p>",
        f"<pre>{esc(resume_command(res))}</pre>",
        table(config_rows),
        f"<p class='muted'>Data fingerprint (sha256 of the split): <code>{esc(res.fingerprint)}"
        "</code></p>",
        table([{"library": k, "version": v} for k, v in res.versions.items()]),
        "<h3>Sessions</h3>",
        table(sessions),
        "<details><summary>Every model at the compared epoch</summary>",
        table(_model_rows(res)),
        "</details>",
    ]
    if a.next_steps:
        parts.append("<h2>Next steps</h2>")
        parts += [f"<p>{esc(reason)}:</p><pre>{esc(cmd)}</pre>" for cmd, reason in a.next_steps]
    return page(f"actlab compare: {d['name']}", parts)


def write(res: Results) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` into the run directory; returns their paths."""
    directory = Path(res.directory)
    md = directory / "report.md"
    page = directory / "report.html"
    hint = (
        "the results in results.sqlite are intact; copy the run folder somewhere writable "
        f"(cp -r {directory} NEW) and run 'actlab report NEW'"
    )
    for path, text in ((md, markdown(res)), (page, html_page(res))):
        with writing(path, hint):
            path.write_text(text, encoding="utf-8")
    return {"markdown": md, "html": page}
