"""Compare activations honestly: a grid of activations x factor values x seeds, a fair study.

>>> from actlab import compare
>>> res = compare.run("iris", activations=["relu", "tanh"], seeds=3, epochs=5)  # doctest: +SKIP
>>> res = compare.run("spirals", lr=[1e-3, 1e-2], depth=[2, 8])  # a grid  # doctest: +SKIP
>>> res.headline, res.winner  # doctest: +SKIP
>>> res.rows()[0]  # one tidy row per model and epoch  # doctest: +SKIP

``run`` trains (:mod:`actlab.compare.training`; models that share every factor value train in
one batched call, a :class:`Group`), stores every epoch in ``DIR/results.sqlite`` as it is
produced, selects each activation's tuned factors on validation data, scores the chosen settings on
the held-out test part (:mod:`~actlab.compare.analysis`, :mod:`~actlab.compare.stats`) and writes
``DIR/report.md`` and ``DIR/report.html``. ``load(DIR)`` gives the same results object back from the
store alone. The settings are declared once, in :mod:`actlab.compare.config`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from actlab.compare import objective
from actlab.compare.config import (
    DEFAULT_ACTIVATIONS,
    FACTORS,
    INITS,
    OPTIMIZERS,
    CompareConfig,
    flat_from_stored,
)
from actlab.errors import ActlabError

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "FACTORS",
    "INITS",
    "OPTIMIZERS",
    "CompareConfig",
    "Group",
    "GroupRun",
    "Results",
    "load",
    "run",
]


def _positive(name: str, value: Any) -> float:
    try:
        x = float(value)
        if isinstance(value, bool):
            raise ValueError
    except (TypeError, ValueError):
        raise ActlabError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ActlabError(f"{name} must be a finite number > 0 (seconds), got {value}")
    return x


# ------------------------------------------------------------------------------------------ data


def _dataset(c: CompareConfig, obj: Any = None) -> Any:
    from actlab import data

    d = c.data
    if d.data is not None:  # your own data in any form (a file, or ``obj`` given in Python)
        from actlab import dataforms

        if d.data.startswith("python:") and obj is None:
            raise ActlabError(
                f"this run's data were given in Python ({d.data}); resume it from Python with "
                "compare.run(out=..., resume=True, data=...)"
            )
        ds = dataforms.load(d.data if obj is None else obj, target=d.target, task=d.task,
                            drop_missing=d.drop_missing)  # fmt: skip
        # images keep their shape for the user's network; the built-in MLP takes rows of numbers
        mine = c.model.model is not None or c.model.objective is not None
        return ds if mine else dataforms.flatten(ds)
    if d.csv is not None:
        ds = data.load_csv(d.csv, d.target, task=d.task, drop_missing=d.drop_missing,
                           drop_columns=d.drop_columns or ())
    else:
        ds = data.load(d.dataset or "digits", noise=d.noise)
        if d.task is not None and d.task != ds.task:
            raise ActlabError(
                f"dataset '{ds.name}' is a {ds.task} dataset; task {d.task!r} does not apply "
                "(drop --task)"
            )
    return ds


def _shape(ds: Any) -> tuple[int, int]:
    """(inputs, outputs) of the networks a dataset needs."""
    n_out = ds.n_classes if ds.task == "classification" else 1
    return int(ds.X.shape[1]), max(int(n_out), 1)


def _splits(c: CompareConfig, ds: Any) -> dict[int, Any]:
    """Split seed -> Split: one for the run, or one per seed with ``resample_split``."""
    from actlab import data

    seeds = sorted({c.data.split_seed_for(s) for s in range(c.study.seeds)})
    return {
        ss: data.split(
            ds, val_fraction=c.data.val_fraction, seed=ss, test_fraction=c.data.test_fraction
        )
        for ss in seeds
    }


def _fingerprint(splits: dict[int, Any]) -> str:
    """The data's fingerprint: the split's own, or a digest of every seed's split."""
    if len(splits) == 1:
        return next(iter(splits.values())).fingerprint
    import hashlib

    text = "|".join(f"{k}:{v.fingerprint}" for k, v in sorted(splits.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _data_info(split: Any, dataset: Any) -> dict[str, Any]:
    n_test = 0 if split.y_test is None else len(split.y_test)
    return {
        "name": split.name,
        "task": split.task,
        "target": split.target,
        "n_train": len(split.y_train),
        "n_val": len(split.y_val),
        "n_test": n_test,
        "n_features": int(split.X_train.shape[1]),
        "feature_names": list(split.feature_names),
        "class_names": list(split.class_names),
        "n_classes": int(split.n_classes),
        "target_mean": float(split.target_mean),
        "target_scale": float(split.target_scale),
        "task_note": dataset.task_note,  # why this task, when it was inferred from a CSV
        "dropped_rows": dataset.dropped_rows,  # --drop-missing
        "column_note": dataset.column_note,  # --drop-columns, constant columns
    }


# ------------------------------------------------------------------------------------------ grid


@dataclass(frozen=True)
class Group:
    """One engine call: models sharing every factor value (and split) train in one batch.

    ``key`` names the group in the store (its checkpoint row); ``jobs`` are engine ``Job``s, in
    the order of ``model_ids`` (their store ids); ``config`` is the engine's ``TrainConfig``;
    ``split_seed`` selects the split its models use; :func:`train_groups` trains groups.
    """

    key: str
    jobs: tuple[Any, ...]
    config: Any  # training.TrainConfig
    split_seed: int
    model_ids: tuple[int, ...]
    cell: dict[str, Any] = field(default_factory=dict, compare=False)


def _grid(c: CompareConfig) -> list[tuple[str, int, dict[str, Any], str]]:
    """Every model of the run, in store order: (activation, seed, cell, group key).

    Order: factor cells (declaration order), then (with ``resample_split``) seeds, then
    activations x seeds, so the models of one group are contiguous.
    """
    out = []
    for cell in c.model.cells():
        key = json.dumps(cell, sort_keys=True)
        if c.data.resample_split:
            for s in range(c.study.seeds):
                grp = json.dumps({**cell, "split_seed": c.data.split_seed_for(s)}, sort_keys=True)
                out += [(a, s, cell, grp) for a in c.study.activations]
        else:
            out += [(a, s, cell, key) for a in c.study.activations for s in range(c.study.seeds)]
    return out


def groups(
    c: CompareConfig, models: Sequence[dict[str, Any]], *, objective_timeout: float | None = None
) -> list[Group]:
    """The run's groups from its stored models (in store order); with ``--objective`` each group
    is trained by the user's function (:mod:`actlab.compare.objective`)."""
    from actlab.compare import objective, training

    by_group: dict[str, list[dict[str, Any]]] = {}
    for m in models:
        by_group.setdefault(m["group"], []).append(m)
    out = []
    for key, ms in by_group.items():
        cell = ms[0]["cell"]
        if c.model.objective is not None:
            cfg: Any = objective.task_config(c, cell, objective_timeout)
        else:
            cfg = training.TrainConfig.of(c, cell)
        out.append(
            Group(
                key=key,
                jobs=tuple(training.Job(m["activation"], int(m["seed"])) for m in ms),
                config=cfg,
                split_seed=c.data.split_seed_for(int(ms[0]["seed"])),
                model_ids=tuple(int(m["id"]) for m in ms),
                cell=dict(cell),
            )
        )
    return out


CHECKPOINT_S = 30.0  # training seconds a crash may cost at most (plus the epoch in flight)
CHECKPOINT_SHARE = 0.05  # ... or more, so that writing checkpoints takes at most 5% of the time


class GroupRun:
    """One group's bookkeeping around an engine call (or a backend's task for it).

    ``jobs`` / ``resume_from``: what to train and from which checkpoint: with ``--objective``, the
    models not yet done (each is its own call of ``fit``); otherwise every model of an
    unfinished group trains again together, from the group's stored checkpoint or, without one,
    from scratch (the same batch as an uninterrupted run, so the same numbers). Stored records
    are never deleted first: each retrained epoch replaces its stored one in the transaction that
    commits it, so the committed epochs never decrease, however often a resume is interrupted.
    ``on_epoch(epoch, records, checkpoint)`` commits one epoch's records (indexed by ``jobs``);
    ``finished``: whether every model of the group is done or diverged.

    Checkpoints follow a time interval: one with an epoch's records once ``CHECKPOINT_S`` seconds
    of training are unsaved (or 1/``CHECKPOINT_SHARE`` x the last write's cost), and one by
    :meth:`flush` at a stop before the end (``--time-budget``). A crash keeps every committed
    record and loses at most that much training: a resume retrains the epochs after the
    checkpoint, bit-identical on the same device (the engine is deterministic; tested), and their
    records replace the stored ones (elsewhere they differ in the last bits, and replacing keeps
    the records consistent with the weights that go on). ``ACTLAB_CHECKPOINT_S`` (0: every
    epoch) sets the interval, for tests.
    """

    def __init__(self, group: Group, store: Any) -> None:
        self.group, self.store = group, store
        by_id = {m["id"]: m for m in store.models() if m["group"] == group.key}
        todo = [i for i in group.model_ids if by_id[i]["status"] == "running"]
        self.running = set(todo)
        self.ids: list[int] = []
        self.resume_from: bytes | None = None
        if isinstance(group.config, objective.ObjectiveConfig):  # each model its own fit(trial):
            self.ids = todo  # the finished ones are kept, the others run again from the start
        elif todo:  # the whole group: a checkpoint holds every model of it
            ckpt = store.checkpoint(group.key)
            self.ids = list(group.model_ids)
            self.resume_from = None if ckpt is None else ckpt[1]
        position = {i: k for k, i in enumerate(group.model_ids)}
        self.jobs = [group.jobs[position[i]] for i in self.ids]
        self.every = float(os.environ.get("ACTLAB_CHECKPOINT_S", CHECKPOINT_S))
        self.unsaved = 0.0  # training seconds since the group's last checkpoint
        self.pending: tuple[int, Callable[[], bytes | None]] | None = None  # not yet written

    @property
    def finished(self) -> bool:
        return not self.running

    def on_epoch(self, epoch: int, records: list, checkpoint: Callable[[], bytes | None]) -> None:
        start = time.perf_counter()
        total = self.group.config.epochs
        for r in records:
            if r.diverged or r.epoch >= total or getattr(r, "stopped", False):
                self.running.discard(self.ids[r.job])
            else:  # (a model stored as diverged that, retrained elsewhere, does not)
                self.running.add(self.ids[r.job])
        self.unsaved += sum(r.seconds for r in records)  # (seconds: the epoch's wall / models)
        # once every model has finished there is nothing left to resume: the checkpoint goes
        self.pending = (epoch, checkpoint) if self.running else None
        due = self.running and self.unsaved >= self.every
        blob = checkpoint() if due else None
        self.store.save_epoch(epoch, records, self.ids, total, blob, group=self.group.key,
                              finished=not self.running)  # fmt: skip
        self._took(start, due)

    def flush(self) -> None:
        """Write the newest epoch's checkpoint if it is not stored (the group stopped early)."""
        if self.pending is not None:
            start = time.perf_counter()
            epoch, checkpoint = self.pending
            blob = checkpoint()
            if blob is not None:  # (--objective: nothing to checkpoint, resume is per model)
                self.store.save_checkpoint(self.group.key, epoch, blob)
            self._took(start, True)

    def _took(self, start: float, saved: bool) -> None:
        seconds = time.perf_counter() - start
        self.store.write_s += seconds
        if saved:
            self.unsaved, self.pending = 0.0, None
            if self.every:  # (0: every epoch, a test's choice)
                self.every = max(self.every, seconds / CHECKPOINT_SHARE)


def train_groups(
    todo: Sequence[Group],
    splits: dict[int, Any],
    store: Any,
    *,
    backend: Any = None,
    device: str = "auto",
    deadline: float | None = None,
    progress: Callable[[dict], None] | None = None,
) -> bool:
    """Train what is missing of each group through ``backend`` (default: this process, one group
    after another), committing every epoch to ``store`` in the caller's thread: whatever the
    backend, this process is the store's only writer. Returns whether every group is finished.

    ``splits`` maps ``Group.split_seed`` to its split. Finished models are not retrained; a group
    with a checkpoint continues from it (bit-identical to an uninterrupted run on one device).
    """
    from actlab.compare import backends

    runs = [r for r in (GroupRun(g, store) for g in todo) if not r.finished]
    tasks = [backends.GroupTask(tuple(r.jobs), r.group.config, r.resume_from,
                                split=r.group.split_seed) for r in runs]  # fmt: skip
    used: dict[str, None] = {}  # the devices the epochs came from (Ray workers may differ)

    def on_epoch(update: backends.GroupEpoch) -> None:
        if update.device not in used:
            used[update.device] = None
            store.update_session({"device": "; ".join(used)})
        runs[update.group].on_epoch(update.epoch, update.records, update.checkpoint)

    if tasks:
        (backend or backends.LocalBackend()).train(
            tasks, splits, on_epoch=on_epoch, device=device, deadline=deadline, progress=progress
        )
    for r in runs:  # stopped by the deadline: keep where it got (after an error the state is
        r.flush()  # mid-epoch, so only a normal return may write it)
    return all(r.finished for r in runs)


# ------------------------------------------------------------------------------------------ results


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
    analysis: Any  # analysis.Analysis
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
    def stats(self) -> Any:
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
    def studies(self) -> list[Any]:
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
        from actlab import _notebook as nb

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
        from actlab.compare import export

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


def _check_evidence(result: Any, config: CompareConfig, table: list[dict[str, Any]],
                    baselines: list[dict[str, Any]], complete: bool) -> None:  # fmt: skip
    """Baselines in the headline, convergence and edge-of-grid warnings, next steps
    (:mod:`actlab.compare.checks`)."""
    from actlab.compare import checks
    from actlab.compare.analysis import factor_label as _factor_name

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
            f"Edge of the grid: {', '.join(acts)} chose the {side} {_factor_name(factor)} "
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
    from actlab.compare import analysis
    from actlab.compare.store import Store

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


# ------------------------------------------------------------------------------------------ run


def _default_out(c: CompareConfig) -> Path:
    name = c.data.dataset or Path(c.data.csv or "data").stem
    if c.data.data is not None and not c.data.data.startswith("python:"):
        name = Path(c.data.data.split(",")[0]).stem
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "data"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("actlab-runs") / f"{safe}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("actlab-runs") / f"{safe}-{stamp}-{n}"
    return out


def resolve(
    settings: dict[str, Any], out: str | Path | None, resume: bool
) -> tuple[CompareConfig, Path, bool]:
    """Validated configuration, output directory and whether it is a new run.

    On ``resume``, settings left as ``None`` come from the stored run; given ones must match it.
    Refuses to mix results: a stored run with another configuration, or an existing run without
    resume.
    """
    from actlab.compare.config import differences
    from actlab.compare.store import Store

    given = {k: v for k, v in settings.items() if v is not None}
    directory = Path(out).expanduser() if out is not None else None
    if directory is not None and directory.exists() and not directory.is_dir():
        raise ActlabError(f"--out '{directory}' is a file, not a folder; choose a folder name")
    if directory is None or not Store.exists(directory):
        if resume:
            where = f"'{directory}'" if directory is not None else "(no --out given)"
            raise ActlabError(
                f"nothing to resume in {where}: no {Store.path('.').name} there; "
                "give the --out folder of the run to finish"
            )
        c = CompareConfig.from_settings(given)
        if directory is None:
            directory = _default_out(c)
        elif directory.is_dir() and any(p.name != ".lock" for p in directory.iterdir()):
            # (a lone .lock: a run being created right now, which the lock itself reports)
            raise ActlabError(
                f"--out '{directory}' exists and is not an actlab run folder; "
                "choose a new or empty folder"
            )
        return c, directory, True
    with Store.open(directory) as store:
        stored_flat = flat_from_stored(store.config)
        models = store.models()
        version = store.version
    finished = all(m["status"] in ("done", "diverged") for m in models)
    if not resume:
        if finished:
            raise ActlabError(
                f"'{directory}' already holds a finished comparison; use --resume to re-use it "
                "(nothing is retrained) or choose a new --out"
            )
        done = sum(m["epochs_done"] for m in models)
        total = len(models) * int(stored_flat["epochs"])
        raise ActlabError(
            f"'{directory}' holds an unfinished comparison ({done} of {total} model-epochs done); "
            "add --resume to finish it, or choose a new --out"
        )
    if version < 2:
        raise ActlabError(
            f"'{directory}' was written by actlab 0.1.0 (store schema {version}): 'actlab report' "
            "reads it, but resuming it needs actlab 0.1.0; or start a new run with a new --out"
        )
    base = {**stored_flat, **given}
    if "data" in given:
        base["dataset"] = base["csv"] = None
    if "csv" in given and "dataset" not in given:
        base["dataset"] = base["data"] = None
    if given.get("csv") is None and "dataset" in given:
        base["csv"] = base["data"] = None
        base["target"] = given.get("target")
    c = CompareConfig.from_settings(base)
    diff = differences(CompareConfig.from_settings(stored_flat), c)
    if diff:
        raise ActlabError(
            f"'{directory}' holds a comparison with other settings; refusing to mix results. "
            f"Differences: {'; '.join(diff)}. Choose a new --out, or resume with the stored "
            "settings (give only --out and --resume)"
        )
    return c, directory, False


def _create_locked(directory: Path, **create: Any) -> Any:
    """Make the run folder, take its lock, then create the store (in that order).

    Of two runs started at once into one new folder, the second finds the lock held (or, if the
    first already finished, its results) and stops with a message naming it, having written
    nothing. A failure while creating (disk full, unwritable place) removes only what this call
    made, so the same --out can be used again.
    """
    from actlab.compare.store import Store, release_lock, take_lock

    made = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ActlabError(
            f"cannot create the run folder '{directory}': {err.strerror}; choose an --out in a "
            "place you may write to"
        ) from None
    lock = None
    try:
        lock = take_lock(directory)
        if Store.exists(directory):
            raise ActlabError(
                f"another 'actlab compare' created a run in '{directory}' while this one was "
                "starting; choose another --out (or add --resume to continue that run)"
            )
        return Store.create(directory, lock=lock, **create)
    except BaseException as err:
        release_lock(lock)
        if not isinstance(err, ActlabError) or "another 'actlab compare'" not in str(err):
            _remove_made(directory, made)
        if isinstance(err, (OSError, sqlite3.Error)):
            raise ActlabError(
                f"cannot create the run's database in '{directory}': {err}; free some space or "
                "choose an --out in a place you may write to"
            ) from None
        raise


def _remove_made(directory: Path, made: list[Path]) -> None:
    """Remove a run folder this process made (and the parents it made), nothing else."""
    import shutil

    if directory in made:
        shutil.rmtree(directory, ignore_errors=True)
        for parent in made[1:]:
            with contextlib.suppress(OSError):
                parent.rmdir()
    else:  # an empty folder the user gave: leave the folder, remove the files this call made
        for name in (".lock", "results.sqlite", "results.sqlite-wal", "results.sqlite-shm"):
            with contextlib.suppress(OSError):
                (directory / name).unlink()


def _storage_failed(directory: Path, err: BaseException) -> ActlabError:
    """The one line for a write that failed mid-run: what, and that committed epochs are safe.

    Each epoch is committed in one transaction, so a failed write loses only the epoch in flight.
    """
    from actlab.compare.store import Store, is_locked, locked_error

    if is_locked(err):  # another program holds SQLite's write lock: not a full disk
        return locked_error(Store.path(directory))
    done = ""
    with contextlib.suppress(Exception), Store.open(directory) as store:
        models = store.models()
        done = f" ({sum(m['epochs_done'] for m in models)} model-epochs are stored)"
    return ActlabError(
        f"could not save to '{directory}': {err}; every epoch finished before it is saved"
        f"{done}. Free some space (or make the folder writable) and finish the run with: "
        f"actlab compare --out {directory} --resume"
    )


def _check_model_unchanged(store: Any, signature: dict[str, Any]) -> None:
    """Refuse to resume when the user's --model builds another network than the stored run's."""
    from actlab.compare import training

    try:
        stored = store.meta("model_signature")
    except KeyError:  # a run made before signatures were stored
        return
    change = training.model_changes(stored, signature)
    what = "--objective" if store.config.get("model", {}).get("objective") else "--model"
    if change:
        directory = store.directory
        store.close()
        raise ActlabError(
            f"cannot resume '{directory}': its {what} changed since the run started ({change}); "
            "restore the code, or start a new run with a new --out"
        )


def _check_api_args(*, dataset: Any, out: Any, resume: Any) -> None:
    """The Python caller's own arguments of :func:`run` (the settings check themselves)."""
    if dataset is not None and not isinstance(dataset, str):
        raise ActlabError(f"dataset must be a name such as 'moons', got {dataset!r}")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ActlabError(f"out must be a folder path (str or Path), got {out!r}")
    if not isinstance(resume, bool):
        raise ActlabError(f"resume must be True or False, got {resume!r}")


def _printing(
    on_start: Callable[[Path, bool], None] | None,
) -> tuple[Callable[[dict], None], Callable[[Path, bool], None]]:
    """``progress=True``: plain progress lines to stderr, and the folder named before training."""
    import sys

    from actlab.compare.progress import PlainProgress

    def start(directory: Path, new: bool) -> None:
        verb = "Writing results to" if new else "Resuming the run in"
        print(f"actlab compare: {verb} {Path(directory).resolve()}", file=sys.stderr, flush=True)
        if on_start is not None:
            on_start(directory, new)

    return PlainProgress(), start


def run(
    dataset: str | None = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    time_budget: float | None = None,
    progress: Callable[[dict], None] | bool | None = None,
    on_start: Callable[[Path, bool], None] | None = None,
    report: bool = True,
    device: str = "auto",
    backend: str | Any = "local",
    max_models: int | None = None,
    max_memory: float | None = None,
    objective_timeout: float | None = None,
    data: Any = None,
    track: str | Sequence[str] | None = None,
    **settings: Any,
) -> Results:
    """Train the grid activations x factor values x seeds, store everything, compute the
    statistics, write reports.

    ``settings`` are the fields of :class:`~actlab.compare.config.CompareConfig` (``csv``,
    ``activations``, ``seeds``, ``lr=[1e-3, 1e-2]``, ``depth=[2, 8]``, ``tune``, ...; the factors
    take one value or a list). Settings left as ``None`` take the defaults or, with
    ``resume=True``, the stored run's. ``out`` defaults to a fresh
    ``actlab-runs/<dataset>-<timestamp>``. ``time_budget`` (seconds) stops cleanly at an epoch
    boundary; the run can be finished later with ``resume=True``. ``objective`` (a setting) may be
    a function ``fit(trial)`` (:mod:`actlab.compare.objective`); ``objective_timeout`` (seconds)
    bounds one call of it. ``data`` is your own data in any form (``(X, y)`` arrays or tensors,
    a DataFrame or Arrow table with ``target="column"``, a torch ``Dataset``:
    :mod:`actlab.dataforms`). ``track`` ("mlflow", "tensorboard", "wandb" or a list) logs every
    model as it trains and the summary (:mod:`actlab.compare.trackers`). ``progress`` receives
    the engine's progress dicts plus ``group`` / ``groups``; ``progress=True`` prints where the
    run writes and a plain progress line to stderr every few seconds
    (:class:`~actlab.compare.progress.PlainProgress`); ``on_start(directory, new)`` is called
    before training.
    ``device`` ("auto": CUDA, then MPS, then the CPU; "cpu", "cuda", "cuda:N", "mps") and
    ``backend`` ("local", "ray" or a :mod:`~actlab.compare.backends` object such as
    ``RayBackend(address)``) say where to train; they are not part of the stored configuration (a
    run may be resumed elsewhere; the report says so). ``max_models`` (default 20000) and
    ``max_memory`` (GB; default: what is available) bound the run, checked before anything is made
    (:mod:`~actlab.compare.limits`).
    """
    from actlab.compare import backends, limits, training
    from actlab.compare.config import ComputeConfig, command
    from actlab.compare.store import Store

    clock = time.perf_counter()
    ComputeConfig(max_models=max_models, max_memory=max_memory)  # checks them
    _check_api_args(dataset=dataset, out=out, resume=resume)
    if progress is True:
        progress, on_start = _printing(on_start)
    elif progress is False:
        progress = None
    if dataset is not None:
        settings["dataset"] = dataset
    if settings.get("csv") is not None:
        settings["csv"] = str(settings["csv"])
    if data is not None:
        from actlab import dataforms

        settings["data"] = dataforms.describe(data)
        data = None if isinstance(data, (str, Path)) else data
    if callable(settings.get("objective")):
        settings["objective"] = objective.remember(settings["objective"])
    if objective_timeout is not None:
        objective_timeout = _positive("objective_timeout", objective_timeout)
    if track is not None:
        from actlab.compare import trackers

        trackers.check(track)  # a missing package: one line, before any folder is made
    bar = None
    if progress is None:  # in a notebook: a progress bar in the output cell
        from actlab import _notebook

        if _notebook.in_notebook():
            progress = bar = _notebook.NotebookBar()
    deadline = None
    if time_budget is not None:
        deadline = time.monotonic() + _positive("time_budget", time_budget)
    c, directory, new = resolve(settings, out, resume)
    limits.check_models(c, max_models)  # before any list of the models is built
    dataset = _dataset(c, data)
    limits.check_memory(c, *_shape(dataset), max_memory)
    splits = _splits(c, dataset)
    from actlab.compare.config import check_metric

    check_metric(c.study.metric, dataset.task, int(next(iter(splits.values())).n_classes))
    fingerprint = _fingerprint(splits)
    grid = _grid(c)
    # the engine's own checks first: a refused job must not leave a half-made run folder behind
    training.check_jobs([training.Job(a, s) for a, s in dict.fromkeys((a, s) for a, s, *_ in grid)])
    # a missing device or an unreachable cluster must not leave a run folder behind either
    trainer = backends.make(backend) if isinstance(backend, str) else backend
    where = trainer.prepare(device)
    # builds the user's --model once per activation: a rejected model stops here, before any folder
    planned = groups(
        c,
        [{"id": i, "activation": a, "seed": s, "cell": cell, "group": key}
         for i, (a, s, cell, key) in enumerate(grid)],
    )  # fmt: skip
    first = planned[0]
    if c.model.objective is not None:
        signature = objective.signature(first.config)
    else:
        signature = training.model_signature(list(first.jobs), splits[first.split_seed],
                                           first.config)  # fmt: skip
    if new:
        from actlab.compare import baselines

        extra = {"baselines": baselines.fit_all(list(splits.values()))}
        if signature:
            extra["model_signature"] = signature
        store = _create_locked(
            directory,
            config=c.to_dict(),
            fingerprint=fingerprint,
            data=_data_info(splits[min(splits)], dataset),
            jobs=grid,
            command=command(c, directory),
            extra=extra,
        )
    else:
        store = Store.open(directory)
        _check_model_unchanged(store, signature)
        stored_fingerprint = store.meta("fingerprint")
        if stored_fingerprint != fingerprint:
            store.close()  # (read before closing: the message quotes it)
            raise ActlabError(
                f"the data differ from those of the run in '{directory}' (fingerprint "
                f"{fingerprint[:12]} vs stored {stored_fingerprint[:12]}): the data file, "
                "the data given in Python or the library that loads them changed; start a new "
                "run with a new --out"
            )
    phases = {"prepare_s": time.perf_counter() - clock}
    outcome = "failed"
    tracking = None
    try:
        store.lock()
        if on_start is not None:
            on_start(directory, new)
        models = store.models()
        todo = [g for g in groups(c, models, objective_timeout=objective_timeout) if any(
            m["status"] == "running" for m in models if m["group"] == g.key)]  # fmt: skip
        if todo:
            store.begin_session({"backend": where, "device": str(device)})
            clock = time.perf_counter()
            writer = store
            if track is not None:  # each committed epoch also goes to the trackers
                from actlab.compare import trackers

                varying = [f for f in c.model.factors if len(getattr(c.model, f)) > 1]
                tracking = trackers.make(track, directory, models, varying)
                writer = trackers.StoreTee(store, tracking) if tracking else store
            train_groups(todo, splits, writer, backend=trainer, device=device,
                         deadline=deadline, progress=progress)  # fmt: skip
            phases["train_s"] = time.perf_counter() - clock  # store_s of it: the store's
            finished = all(m["status"] != "running" for m in store.models())
            if finished:
                store.drop_checkpoint()
            outcome = "complete" if finished else "stopped"
        else:
            outcome = "complete"
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    except sqlite3.OperationalError as err:  # disk full, folder gone read-only, I/O error...
        raise _storage_failed(directory, err) from None
    finally:
        store.end_session(outcome)
        store.close()
        if tracking is not None and outcome != "complete":
            tracking.close()
    phases.update(store_s=store.write_s, checkpoint_bytes=store.checkpoint_bytes)
    clock = time.perf_counter()
    results = load(directory)
    phases["analysis_s"] = time.perf_counter() - clock
    if report:
        clock = time.perf_counter()
        from actlab.compare import report as rep  # (matplotlib: part of the report's time)

        results.report_files = rep.write(results)
        phases["report_s"] = time.perf_counter() - clock
    if tracking is not None:
        tracking.summary(results)
        tracking.close()
    if bar is not None:
        bar.done(f"done: {len(results.models)} models")
    results.phases = phases
    return results
