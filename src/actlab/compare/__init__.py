"""Compare activations honestly: the same network, several activations x seeds, one batched run.

>>> from actlab import compare
>>> res = compare.run("iris", activations=["relu", "tanh"], seeds=3, epochs=5)  # doctest: +SKIP
>>> res.headline, res.winner  # doctest: +SKIP
>>> res.table[0]  # one row per model  # doctest: +SKIP

``run`` trains (through :mod:`actlab.compare.engine`), stores every epoch in ``DIR/results.sqlite``
as it is produced, computes the statistics (:mod:`~actlab.compare.stats`) and writes
``DIR/report.md`` and ``DIR/report.html``. ``load(DIR)`` gives the same results object back from the
store alone.
"""

from __future__ import annotations

import contextlib
import math
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from actlab.errors import ActlabError

__all__ = ["DEFAULTS", "DEFAULT_ACTIVATIONS", "Results", "load", "run"]

DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "silu", "gelu")
DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "csv": None,
    "target": None,
    "task": None,
    "drop_missing": False,
    "noise": None,
    "val_fraction": 0.2,
    "split_seed": 0,
    "activations": list(DEFAULT_ACTIVATIONS),
    "seeds": 5,
    "depth": 2,
    "width": 128,
    "epochs": 30,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "init": "auto",
    "model": None,
}
DATA_KEYS = (
    "dataset", "csv", "target", "task", "drop_missing", "noise", "val_fraction", "split_seed",
)
TRAIN_KEYS = (
    "depth",
    "width",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "init",
    "model",
)
OPTIMIZERS = ("adam", "sgd")
INITS = ("auto", "he", "glorot", "lecun", "torch")
CLI_FLAGS = {  # config key -> CLI flag, for the command that reproduces a run
    "dataset": "--dataset", "csv": "--csv", "target": "--target", "task": "--task",
    "drop_missing": "--drop-missing", "noise": "--noise",
    "activations": "--activations", "seeds": "--seeds", "depth": "--depth", "width": "--width",
    "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "optimizer": "--optimizer",
    "weight_decay": "--weight-decay", "init": "--init", "val_fraction": "--val-fraction",
    "split_seed": "--split-seed", "model": "--model",
}  # fmt: skip


# ------------------------------------------------------------------------------------------
# validation


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise ValueError
        except ValueError:
            raise ActlabError(f"{name} must be a whole number >= {low}, got {value!r}") from None
    if value < low:
        raise ActlabError(f"{name} must be a whole number >= {low}, got {value}")
    return int(value)


def _float(name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool) -> float:
    try:
        x = float(value)
        if isinstance(value, bool):
            raise ValueError
    except (TypeError, ValueError):
        raise ActlabError(f"{name} must be a number, got {value!r}") from None
    ok = math.isfinite(x) and (x > low if open_low else x >= low) and x < high
    if not ok:
        rng = f"{'>' if open_low else '>='} {low:g}" + (
            f" and < {high:g}" if high < math.inf else ""
        )
        raise ActlabError(f"{name} must be a finite number {rng}, got {value}")
    return x


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise ActlabError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return v


def _validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise every setting; messages name the setting and what is allowed."""
    from actlab import catalog, data

    c = dict(cfg)
    if c["csv"] is not None:
        c["dataset"] = None
        if not c["target"]:
            raise ActlabError("a CSV file needs a target column: add --target COLUMN")
        c["csv"] = str(Path(c["csv"]).expanduser().resolve())
        if c["noise"] is not None:
            raise ActlabError("noise applies only to the synthetic datasets, not to a CSV file")
    else:
        if c["target"] is not None:
            raise ActlabError("--target goes with --csv PATH (built-in datasets have their target)")
        name = data._canonical_name(c["dataset"] or "digits")
        if name not in data.DATASETS:
            data.load(name)  # raises the "unknown dataset ... did you mean" error
        c["dataset"] = name
        if c["noise"] is not None:
            if name not in data.SYNTHETIC:
                raise ActlabError(
                    f"noise applies only to the synthetic datasets ({', '.join(data.SYNTHETIC)}), "
                    f"not to '{name}'"
                )
            c["noise"] = data._check_noise(c["noise"])
    if c["task"] is not None:
        c["task"] = _choice("task", c["task"], data.TASKS)
    c["drop_missing"] = bool(c.get("drop_missing"))  # runs stored before it existed: False
    if c["drop_missing"] and c["csv"] is None:
        raise ActlabError("--drop-missing applies to --csv data (built-in datasets have no gaps)")
    c["val_fraction"] = _float("val_fraction", c["val_fraction"], 0.0, 1.0, open_low=True)
    c["split_seed"] = _int("split_seed", c["split_seed"], 0)
    acts = c["activations"]
    if isinstance(acts, str):
        acts = [acts]
    c["activations"] = [str(a) for a in catalog.parse_many([str(a) for a in acts])]
    c["seeds"] = _int("seeds", c["seeds"], 1)
    c["depth"] = _int("depth", c["depth"], 1)
    c["width"] = _int("width", c["width"], 1)
    c["epochs"] = _int("epochs", c["epochs"], 1)
    c["batch_size"] = _int("batch_size", c["batch_size"], 1)
    c["lr"] = _float("lr", c["lr"], 0.0, open_low=True)
    c["optimizer"] = _choice("optimizer", c["optimizer"], OPTIMIZERS)
    c["weight_decay"] = _float("weight_decay", c["weight_decay"], 0.0, open_low=False)
    c["init"] = _choice("init", c["init"], INITS)
    if c["model"] is not None:
        module, _, func = str(c["model"]).partition(":")
        if not module or not func or ":" in func:
            raise ActlabError(
                f"model must look like 'module:function' (e.g. 'mynets:build'), got {c['model']!r}"
            )
        c["model"] = f"{module.strip()}:{func.strip()}"
    return c


def _nest(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {k: c[k] for k in DATA_KEYS},
        "activations": list(c["activations"]),
        "seeds": c["seeds"],
        "train": {k: c[k] for k in TRAIN_KEYS},
    }


def _flat(nested: dict[str, Any]) -> dict[str, Any]:
    return {
        **nested["data"],
        "activations": list(nested["activations"]),
        "seeds": nested["seeds"],
        **nested["train"],
    }


def command_for(config: dict[str, Any], out: str | Path) -> str:
    """The ``actlab compare`` command line that reproduces a stored configuration."""
    c = _flat(config)
    parts = ["actlab", "compare"]
    for key, flag in CLI_FLAGS.items():
        value = c.get(key)
        if value is None:
            continue
        if isinstance(value, bool):  # a switch: present or not
            parts += [flag] if value else []
        elif key == "activations":
            parts += [flag, *value]
        else:
            parts += [flag, repr(value) if isinstance(value, float) else str(value)]
    parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


# ------------------------------------------------------------------------------------------ data


def _dataset(c: dict[str, Any]) -> Any:
    from actlab import data

    if c["csv"] is not None:
        ds = data.load_csv(c["csv"], c["target"], task=c["task"], drop_missing=c["drop_missing"])
    else:
        ds = data.load(c["dataset"], noise=c["noise"])
        if c["task"] is not None and c["task"] != ds.task:
            raise ActlabError(
                f"dataset '{ds.name}' is a {ds.task} dataset; task {c['task']!r} does not apply "
                "(drop --task)"
            )
    return ds


def _data_info(split: Any, dataset: Any) -> dict[str, Any]:
    return {
        "task_note": dataset.task_note,  # why this task, when it was inferred from a CSV
        "dropped_rows": dataset.dropped_rows,  # --drop-missing
        "name": split.name,
        "task": split.task,
        "target": split.target,
        "n_train": len(split.y_train),
        "n_val": len(split.y_val),
        "n_features": int(split.X_train.shape[1]),
        "feature_names": list(split.feature_names),
        "class_names": list(split.class_names),
        "n_classes": int(split.n_classes),
        "target_mean": float(split.target_mean),
        "target_scale": float(split.target_scale),
    }


# ------------------------------------------------------------------------------------------ results


def primary_metric(task: str) -> tuple[str, bool]:
    """The metric the comparison ranks by and whether higher is better."""
    return ("val_accuracy", True) if task == "classification" else ("val_rmse", False)


@dataclass
class Results:
    """What a comparison produced, read from its store.

    ``table``: one dict per model (activation, seed, status, final-epoch metrics); ``history``: one
    dict per model and epoch; ``summary``: one dict per activation with the statistics; ``headline``
    and ``winner`` (``None`` when the data do not support naming one).
    """

    directory: Path
    config: dict[str, Any]
    data: dict[str, Any]
    models: list[dict[str, Any]]
    history: list[dict[str, Any]]
    stats: Any  # stats.Summary
    complete: bool
    final_epoch: int
    command: str
    versions: dict[str, str]
    sessions: list[dict[str, Any]]
    fingerprint: str
    table: list[dict[str, Any]] = field(default_factory=list)
    report_files: dict[str, Path] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.stats.metric

    @property
    def headline(self) -> str:
        return self.stats.headline

    @property
    def winner(self) -> str | None:
        return self.stats.winner

    @property
    def summary(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.stats.rows]

    def to_frame(self, which: str = "models") -> Any:
        """A pandas DataFrame of ``table`` ("models"), ``history`` or ``summary`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ActlabError(
                "to_frame() needs pandas, which actlab does not require; pip install pandas, or "
                "use "
                ".table / .history / .summary (lists of dicts)"
            ) from None
        rows = {"models": self.table, "history": self.history, "summary": self.summary}
        if which not in rows:
            raise ActlabError(f"which must be one of {', '.join(rows)}, got {which!r}")
        return pd.DataFrame(rows[which])


def _session_devices(sessions: list[dict[str, Any]]) -> list[str]:
    """The distinct devices the sessions trained on, in order of first use."""
    seen: dict[str, None] = {}
    for s in sessions:
        for d in str(s["versions"].get("device") or "").split("; "):
            if d and d != "auto":
                seen.setdefault(d)
    return list(seen)


def all_diverged_headline(models: Sequence[dict[str, Any]], config: dict[str, Any]) -> str:
    """The headline of a run in which every model diverged: when it happened and what to try."""
    when: dict[int, int] = {}
    for m in models:
        epoch = int(m["diverged_epoch"] or m["epochs_done"] or 1)
        when[epoch] = when.get(epoch, 0) + 1
    epochs = ", ".join(
        f"{n} in epoch {e}" for e, n in sorted(when.items())
    )
    lr = float(config["train"]["lr"])
    return (
        f"Every model diverged (its loss became NaN or infinite): {epochs}. Nothing to compare. "
        f"The learning rate {lr:g} is too high for this network: try --lr {lr / 100:g} "
        "(in a new --out)."
    )


def load(directory: str | Path) -> Results:
    """Read a run directory's stored results (finished or not) and compute the statistics."""
    from actlab.compare import stats
    from actlab.compare.store import Store

    with Store.open(directory) as store:
        config = store.config
        data = store.meta("data")
        models = store.models()
        history = store.epochs()
        command = store.meta("command")
        versions = store.meta("versions")
        sessions = store.sessions()
        fingerprint = store.meta("fingerprint")
    epochs_total = int(config["train"]["epochs"])
    metric, higher = primary_metric(data["task"])
    last: dict[int, dict[str, Any]] = {}
    for row in history:
        last[row["model"]] = row
    # compare every model at the same epoch: the last one every still-training model reached
    alive = [m for m in models if m["status"] != "diverged" and m["epochs_done"] > 0]
    final_epoch = min((m["epochs_done"] for m in alive), default=0)
    at_final = {(r["model"], r["epoch"]): r for r in history if r["epoch"] == final_epoch}
    table, scores = [], {a: {} for a in config["activations"]}
    for m in models:
        rec = (
            at_final.get((m["id"], final_epoch)) if m["status"] != "diverged" else last.get(m["id"])
        )
        row = {
            "activation": m["activation"],
            "seed": m["seed"],
            "status": m["status"],
            "epochs": m["epochs_done"],
            "diverged_epoch": m["diverged_epoch"],
        }
        if rec is not None:
            for k, v in rec.items():
                if k not in row and k not in (
                    "model",
                    "grad_norms",
                    "dead_fraction",
                    "saturated_fraction",
                ):
                    row[k] = v
        table.append(row)
        if m["status"] == "diverged":
            scores[m["activation"]][m["seed"]] = None
        elif rec is not None:
            scores[m["activation"]][m["seed"]] = float(rec[metric])
    summary = stats.summarize(scores, metric=metric, higher_is_better=higher)
    if models and all(m["status"] == "diverged" for m in models):
        summary.headline = all_diverged_headline(models, config)
    complete = all(m["status"] in ("done", "diverged") for m in models)
    used = _session_devices(sessions)
    if len(used) > 1:
        summary.notes.append(
            f"The run was trained on more than one device ({'; '.join(used)}): resumed "
            "elsewhere, or Ray workers of several kinds. Devices differ in the last bits, so a "
            "rerun matches bit for bit only on the same devices."
        )
    if not complete:
        summary.notes.append(
            f"The run is unfinished: models are compared at epoch {final_epoch} of {epochs_total}; "
            "finish it with --resume."
        )
    return Results(
        directory=Path(directory),
        config=config,
        data=data,
        models=models,
        history=history,
        stats=summary,
        complete=complete,
        final_epoch=final_epoch,
        command=command,
        versions=versions,
        sessions=sessions,
        fingerprint=fingerprint,
        table=table,
    )


# ------------------------------------------------------------------------------------------ run


def _default_out(c: dict[str, Any]) -> Path:
    name = c["dataset"] or Path(c["csv"]).stem
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
) -> tuple[dict[str, Any], Path, bool]:
    """Validated configuration, output directory and whether it is a new run.

    On ``resume``, settings left as ``None`` come from the stored run; given ones must match it.
    Refuses to mix results: a stored run with another configuration, or an existing run without
    resume.
    """
    from actlab.compare.store import Store, config_differences

    given = {k: v for k, v in settings.items() if v is not None}
    if "csv" in given and "dataset" not in given:
        given["dataset"] = None
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
        c = _validate({**DEFAULTS, **given})
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
        stored = _flat(store.config)
        models = store.models()
    finished = all(m["status"] in ("done", "diverged") for m in models)
    if not resume:
        if finished:
            raise ActlabError(
                f"'{directory}' already holds a finished comparison; use --resume to re-use it "
                "(nothing is retrained) or choose a new --out"
            )
        done = sum(m["epochs_done"] for m in models)
        total = len(models) * int(stored["epochs"])
        raise ActlabError(
            f"'{directory}' holds an unfinished comparison ({done} of {total} model-epochs done); "
            "add --resume to finish it, or choose a new --out"
        )
    base = {**DEFAULTS, **stored, **given}
    if given.get("csv") is None and "dataset" in given:
        base["csv"] = None
        base["target"] = given.get("target")
    c = _validate(base)
    as_flags = lambda cfg: {CLI_FLAGS[k]: cfg.get(k) for k in CLI_FLAGS}  # noqa: E731
    diff = config_differences(as_flags(_validate(stored)), as_flags(c))
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
    from actlab.compare.store import Store, take_lock

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
        if lock is not None:
            lock.close()
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
    from actlab.compare.store import Store

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
    from actlab.compare import engine

    try:
        stored = store.meta("model_signature")
    except KeyError:  # a run made before signatures were stored
        return
    change = engine.model_changes(stored, signature)
    if change:
        directory = store.directory
        store.close()
        raise ActlabError(
            f"cannot resume '{directory}': its --model changed since the run started ({change}); "
            "restore the model code, or start a new run with a new --out"
        )


def run(
    dataset: str | None = None,
    *,
    csv: str | Path | None = None,
    target: str | None = None,
    task: str | None = None,
    drop_missing: bool | None = None,
    noise: float | None = None,
    activations: Iterable[str] | str | None = None,
    seeds: int | None = None,
    depth: int | None = None,
    width: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    weight_decay: float | None = None,
    init: str | None = None,
    val_fraction: float | None = None,
    split_seed: int | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    time_budget: float | None = None,
    progress: Callable[[dict], None] | None = None,
    on_start: Callable[[Path, bool], None] | None = None,
    report: bool = True,
    device: str = "auto",
    backend: str | Any = "local",
) -> Results:
    """Train every (activation x seed) model, store everything, compute the statistics, write
    reports.

    Settings left as ``None`` take the defaults (``DEFAULTS``) or, with ``resume=True``, the stored
    run's. ``out`` defaults to a fresh ``actlab-runs/<dataset>-<timestamp>``. ``time_budget``
    (seconds) stops cleanly at an epoch boundary; the run can be finished later with
    ``resume=True``. ``progress`` receives the engine's progress dicts; ``on_start(directory, new)``
    is called before training. ``device``: "auto" (CUDA, then MPS, then the CPU), "cpu", "cuda",
    "cuda:N" or "mps"; a run may be resumed on another device (the report says so). ``backend``:
    "local", "ray" or a :mod:`~actlab.compare.backends` object (``RayBackend(address)``).
    """
    from actlab import data
    from actlab.compare import backends, engine
    from actlab.compare.store import Store

    settings = {
        "dataset": dataset, "csv": str(csv) if csv is not None else None, "target": target,
        "task": task, "drop_missing": drop_missing, "noise": noise, "activations": activations,
        "seeds": seeds, "depth": depth,
        "width": width, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "optimizer": optimizer, "weight_decay": weight_decay, "init": init,
        "val_fraction": val_fraction, "split_seed": split_seed, "model": model,
    }  # fmt: skip
    deadline = None
    if time_budget is not None:
        deadline = time.monotonic() + _float("time_budget", time_budget, 0.0, open_low=True)
    c, directory, new = resolve(settings, out, resume)
    dataset = _dataset(c)
    split = data.split(dataset, val_fraction=c["val_fraction"], seed=c["split_seed"])
    config = _nest(c)
    jobs = [(a, s) for a in c["activations"] for s in range(c["seeds"])]
    # the engine's own checks first: a refused job must not leave a half-made run folder behind
    engine.check_jobs([engine.Job(a, s) for a, s in jobs])
    train_config = engine.TrainConfig(**{k: c[k] for k in TRAIN_KEYS})
    # builds the user's --model once per activation: a rejected model stops here, before any folder
    signature = engine.model_signature([engine.Job(a, s) for a, s in jobs], split, train_config)
    # a missing device or an unreachable cluster must not leave a run folder behind either
    trainer = backends.make(backend) if isinstance(backend, str) else backend
    where = trainer.prepare(device)
    if new:
        store = _create_locked(
            directory,
            config=config,
            fingerprint=split.fingerprint,
            data=_data_info(split, dataset),
            jobs=jobs,
            command=command_for(config, directory),
            extra={"model_signature": signature} if signature else None,
        )
    else:
        store = Store.open(directory)
        _check_model_unchanged(store, signature)
        if store.meta("fingerprint") != split.fingerprint:
            store.close()
            raise ActlabError(
                f"the data differ from those of the run in '{directory}' (fingerprint "
                f"{split.fingerprint[:12]} vs stored {store.meta('fingerprint')[:12]}): the CSV "
                "file "
                "or the library that loads it changed; start a new run with a new --out"
            )
    outcome = "failed"
    try:
        store.lock()
        if on_start is not None:
            on_start(directory, new)
        models = store.models()
        todo = [m for m in models if m["status"] == "running"]
        if todo:
            store.begin_session({"backend": where, "device": str(device)})
            ckpt = store.checkpoint()
            if (
                ckpt is not None
            ):  # the checkpoint holds every model's state: resume them all together
                ids = [m["id"] for m in models]
                blob: bytes | None = ckpt[1]
            else:  # nothing trained yet (or only finished models): start the rest from scratch
                ids = [m["id"] for m in todo]
                store.reset_models(ids)
                blob = None
            by_id = {m["id"]: m for m in models}
            job_list = [engine.Job(by_id[i]["activation"], int(by_id[i]["seed"])) for i in ids]
            total = c["epochs"]

            running = {m["id"] for m in todo}
            used: dict[str, None] = {}  # the devices the epochs came from (workers may differ)

            def on_epoch(update: backends.GroupEpoch) -> None:
                if update.device not in used:
                    used[update.device] = None
                    store.update_session({"device": "; ".join(used)})
                for r in update.records:
                    if r.diverged or r.epoch >= total:
                        running.discard(ids[r.job])
                # serialise before writing: an interrupt here leaves the last epoch's state intact;
                # once every model has finished there is nothing left to resume
                saved = update.checkpoint() if running else None
                store.save_epoch(update.epoch, update.records, ids, total, saved)

            trainer.train(
                [backends.GroupTask(tuple(job_list), train_config, blob)],
                split,
                on_epoch=on_epoch,
                device=device,
                deadline=deadline,
                progress=progress,
            )
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
    results = load(directory)
    if report:
        from actlab.compare import report as rep

        results.report_files = rep.write(results)
    return results
