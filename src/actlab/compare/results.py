"""A comparison's results read back from its store: :class:`Results` and :func:`load`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actlab import _notebook as nb
from actlab.compare import analysis, checks, export, stats
from actlab.compare.config import CompareConfig, flat_from_stored
from actlab.compare.store import Store
from actlab.errors import ActlabError


@dataclass
class Results:
    """What a comparison produced, read from its store.

    ``config``: the :class:`CompareConfig`; ``studies``: one :class:`~actlab.compare.analysis.Cell`
    per value of the studied factors (its ranking on test metrics of each activation's chosen
    setting, and those choices); ``stats``: the first (often only) one's statistics; ``table``: one
    dict per model at the compared epoch; ``history``: one dict per model and epoch; ``rows()``:
    tidy export rows.
    """

    directory: Path
    config: CompareConfig
    data: dict[str, Any]
    models: list[dict[str, Any]]
    history: list[dict[str, Any]]
    analysis: analysis.Analysis
    complete: bool
    final_epoch: int
    command: str
    versions: dict[str, str]
    sessions: list[dict[str, Any]]
    fingerprint: str
    schema_version: int = 2
    table: list[dict[str, Any]] = field(default_factory=list)
    report_files: dict[str, Path] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # run(): seconds per phase, bytes

    @property
    def stats(self) -> stats.Summary:
        return self.analysis.cells[0].summary

    def __repr__(self) -> str:
        """A few lines, not kilobytes of rows: where, what, and the answer (issue 20)."""
        state = "complete" if self.complete else "unfinished"
        return (
            f"Results({str(self.directory)!r}, {self.data.get('name')}, {len(self.models)} "
            f"models, {state}, metric {self.metric}, winner {self.winner!r}; "
            ".headline, .summary, .table (one row per model), .rows(), .to_frame())"
        )

    @property
    def studies(self) -> list[analysis.Cell]:
        return self.analysis.cells

    @property
    def metric(self) -> str:
        return self.analysis.metric

    @property
    def headline(self) -> str:
        return self.analysis.headline

    @property
    def winner(self) -> str | None:
        return self.analysis.winner

    @property
    def notes(self) -> list[str]:
        return self.analysis.notes

    @property
    def summary(self) -> list[dict[str, Any]]:
        return [
            {**cell.values, **r.as_dict()}
            for cell in self.analysis.cells
            for r in cell.summary.rows
        ]

    def _repr_html_(self) -> str:
        """A notebook's view: the headline, then per studied cell a compact ranking table."""
        parts = [f"<div><p><strong>{nb.esc(self.headline)}</strong></p>"]
        for cell in self.studies:
            if cell.values:
                parts.append(f"<p>{nb.esc(cell.label)}</p>")
            rows = [{"#": r.rank, "activation": r.activation,
                     "chosen": ", ".join(f"{k} {v}" for k, v in cell.chosen.get(r.activation,
                                                                             {}).items()),
                     "mean": r.mean, "sd": r.std, "95% CI": f"{nb.number(r.ci_low)}–"
                     f"{nb.number(r.ci_high)}", "p (Holm)": r.p_holm, "verdict": r.verdict}
                    for r in cell.summary.rows]  # fmt: skip
            parts.append(nb.table(rows))
        parts.append(f"<p><small>{nb.esc(self.metric)} at epoch {self.final_epoch}; "
                     f"{len(self.models)} models; {nb.esc(self.directory)}</small></p></div>")
        return "".join(parts)

    def rows(self) -> list[dict[str, Any]]:
        """One tidy row per model and epoch: every factor, the seed, the split and the metrics."""
        return export.rows(self)

    def to_pandas(self) -> Any:
        """``rows()`` as a pandas DataFrame (pandas is optional: ``pip install pandas``)."""
        return self.to_frame("rows")

    def to_frame(self, which: str = "models") -> Any:
        """A pandas DataFrame of ``table`` ("models"), ``history``, ``summary`` or ``rows``."""
        rows = {"models": "table", "history": "history", "summary": "summary", "rows": "rows()"}
        if which not in rows:
            raise ActlabError(f"which must be one of {', '.join(rows)}, got {which!r}")
        try:
            import pandas as pd
        except ImportError:
            raise ActlabError(
                "a DataFrame needs pandas, which actlab does not require; pip install pandas, or "
                f"use .{rows[which]} (a list of dicts)"
            ) from None
        return pd.DataFrame(self.rows() if which == "rows" else getattr(self, rows[which]))


def _stored_config(stored: dict[str, Any]) -> CompareConfig:
    return CompareConfig.from_settings(flat_from_stored(stored))


def all_diverged_headline(models: Sequence[dict[str, Any]], config: CompareConfig) -> str:
    """The headline of a run in which every model diverged: when it happened and what to try."""
    when: dict[int, int] = {}
    for m in models:
        epoch = int(m["diverged_epoch"] or m["epochs_done"] or 1)
        when[epoch] = when.get(epoch, 0) + 1
    epochs = ", ".join(f"{n} in epoch {e}" for e, n in sorted(when.items()))
    lr = min(config.model.lr)  # of a list: even the smallest was too high
    return (
        f"Every model diverged (its loss became NaN or infinite): {epochs}. Nothing to compare. "
        f"The learning rate {lr:g} is too high for this network: try --lr {lr / 100:g} "
        "(in a new --out)."
    )


def _check_evidence(result: analysis.Analysis, config: CompareConfig, table: list[dict[str, Any]],
                    baselines: list[dict[str, Any]], complete: bool) -> None:  # fmt: skip
    """Baselines in the headline, convergence and edge-of-grid warnings, next steps
    (:mod:`actlab.compare.checks`)."""
    result.baselines = baselines
    sentence = checks.baseline_sentence(result, baselines)
    if sentence:
        result.headline += " " + sentence
        for cell in result.cells:
            cell.summary.headline += " " + sentence
    if not complete:
        return
    still = checks.convergence(config, result, table)
    edge = checks.edges(config, result)
    if still:
        result.warnings.append(
            f"Still improving: {', '.join(still)} reached their best validation score in the "
            f"last {checks.tail_epochs(config.model.epochs)} of {config.model.epochs} epochs on "
            "at least half of the seeds; more epochs may change the answer."
        )
    for factor, value, side, acts, new in edge:
        beyond = f" (next on the same scale: {new:g})" if new is not None else ""
        result.warnings.append(
            f"Edge of the grid: {', '.join(acts)} chose the {side} {analysis._name(factor)} "
            f"tried, {value:g}; the best value may lie beyond it{beyond}."
        )
    result.next_steps = checks.next_steps(config, result, still, edge)


def _session_devices(sessions: list[dict[str, Any]]) -> list[str]:
    """The distinct devices the sessions trained on, in order of first use."""
    seen: dict[str, None] = {}
    for s in sessions:
        for d in str(s["versions"].get("device") or "").split("; "):
            if d and d != "auto":
                seen.setdefault(d)
    return list(seen)


def _compared(models: list[dict[str, Any]], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model, as compared: its record at its best validation epoch (the engine's
    choice, stored as ``best_epoch`` in the model's last record) with the test metrics of its
    weights there (stored in that last record). An unfinished model: its best epoch so far
    (no test metrics). Runs made before best-epoch selection (no ``best_epoch``): every model at
    the last epoch every still-training model reached, as they were reported then."""
    by_model: dict[int, list[dict[str, Any]]] = {}
    for row in history:
        by_model.setdefault(row["model"], []).append(row)
    best_epoch = any("best_epoch" in (r.get("metrics") or r) for r in history)
    alive = [m for m in models if m["status"] != "diverged" and m["epochs_done"] > 0]
    final_epoch = min((m["epochs_done"] for m in alive), default=0)
    table = []
    for m in models:
        recs = sorted(by_model.get(m["id"], []), key=lambda r: r["epoch"])
        rec = recs[-1] if recs else None
        if m["status"] != "diverged" and recs:
            if best_epoch and m["status"] == "done" and _finite_num(_get(recs[-1], "best_epoch")):
                at = int(_get(recs[-1], "best_epoch"))
                best = next((r for r in recs if r["epoch"] == at), recs[-1])
                test = {k: v for k, v in _flat(recs[-1]).items() if k.startswith("test_")}
                rec = {**_flat(best), **test, "best_epoch": at}
            else:  # unfinished (or an older run): at the epoch every running model reached
                rec = next((r for r in recs if r["epoch"] == final_epoch), None)
        row = {
            "model": m["id"],
            "activation": m["activation"],
            "seed": m["seed"],
            **m["cell"],
            "status": m["status"],
            "epochs": m["epochs_done"],
            "diverged_epoch": m["diverged_epoch"],
        }
        if rec is not None:
            for k, v in _flat(rec).items():
                if k not in row and k not in (
                    "cell", "group", "grad_norms", "dead_fraction", "saturated_fraction",
                ):  # fmt: skip
                    row[k] = v
        table.append(row)
    return table


def _flat(rec: dict[str, Any]) -> dict[str, Any]:
    """A history record with its metrics at the top level (as the table has them)."""
    return {**{k: v for k, v in rec.items() if k != "metrics"}, **(rec.get("metrics") or {})}


def _get(rec: dict[str, Any], key: str) -> Any:
    return _flat(rec).get(key)


def _finite_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def load(directory: str | Path) -> Results:
    """Read a run directory's stored results (finished or not) and compute the statistics.

    Reads stores of this version and of actlab 0.1.0 (store schema 1: one cell, no test part).
    """
    with Store.open(directory) as store:
        config = _stored_config(store.config)
        data = store.meta("data")
        models = store.models()
        history = store.epochs()
        command = store.meta("command")
        versions = store.meta("versions")
        sessions = store.sessions()
        fingerprint = store.meta("fingerprint")
        version = store.version
        try:
            baselines = store.meta("baselines")
        except KeyError:  # runs made before baselines
            baselines = []
    for m in models + history:  # 0.1.0 stores: the one cell is the configuration's
        if not m["cell"]:
            m["cell"] = config.model.cells()[0]
    table = _compared(models, history)
    alive = [m for m in models if m["status"] != "diverged" and m["epochs_done"] > 0]
    final_epoch = min((m["epochs_done"] for m in alive), default=0)
    complete = all(m["status"] in ("done", "diverged") for m in models)
    result = analysis.analyse(config, data["task"], table, complete=complete,
                              target_scale=float(data.get("target_scale") or 1.0))
    if models and all(m["status"] == "diverged" for m in models):
        result.headline = all_diverged_headline(models, config)
        for cell in result.cells:
            cell.summary.headline = result.headline
    _check_evidence(result, config, table, baselines, complete)
    if not complete:
        result.notes.append(
            f"The run is unfinished: models are compared at epoch {final_epoch} of "
            f"{config.model.epochs}; finish it with --resume."
        )
    used = _session_devices(sessions)
    if len(used) > 1:
        result.notes.append(
            f"The run was trained on more than one device ({'; '.join(used)}): resumed "
            "elsewhere, or Ray workers of several kinds. Devices differ in the last bits, so a "
            "rerun matches bit for bit only on the same devices."
        )
    if version < 2:
        result.notes.append(
            "This run was made by actlab 0.1.0: it has no test part, so the reported numbers are "
            "validation scores."
        )
    return Results(
        directory=Path(directory),
        config=config,
        data=data,
        models=models,
        history=history,
        analysis=result,
        complete=complete,
        final_epoch=final_epoch,
        command=command,
        versions=versions,
        sessions=sessions,
        fingerprint=fingerprint,
        schema_version=version,
        table=table,
    )

