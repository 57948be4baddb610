"""Log a comparison where you already look: MLflow, TensorBoard, Weights & Biases (offline).

``compare --track mlflow,tensorboard,wandb`` logs every model as it trains: its parameters
(activation, seed, every factor), its metrics per epoch (step = epoch), its status; and once the
run ends, the summary (headline, winner, each activation's mean test metric and CI). ``actlab
report DIR --to mlflow`` exports a finished run from its store the same way.

Everything stays offline and inside the run folder unless the tracker's own setting says otherwise:
MLflow's file store ``OUT/mlruns`` (or ``MLFLOW_TRACKING_URI``), TensorBoard event files under
``OUT/tensorboard`` (one folder per model), W&B in offline mode under ``OUT/wandb`` (``wandb
sync`` uploads it later). Each tracker is an optional extra (``pip install "actlab[track]"``) and
is imported only when named.

The store stays the record: a tracker is fed from the store's own writes (:class:`StoreTee`), and
a tracker that raises is switched off with one line on stderr while the run goes on; ``actlab report
DIR --to NAME`` can then export the finished run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from actlab.errors import ActlabError, suggest

if TYPE_CHECKING:  # (the results import scipy; `actlab report --to` checks first, light)
    from actlab.compare.results import Results

__all__ = ["TRACKERS", "StoreTee", "Tracking", "export", "make"]

TRACKERS = ("mlflow", "tensorboard", "wandb")
_PACKAGES = {"mlflow": "mlflow", "tensorboard": "tensorboard", "wandb": "wandb"}


def _names(track: str | Iterable[str] | None) -> list[str]:
    if track is None:
        return []
    items = [track] if isinstance(track, str) else list(track)
    names = [n.strip().lower() for item in items for n in str(item).split(",") if n.strip()]
    for n in names:
        if n not in TRACKERS:
            raise ActlabError(
                f"track must be one or more of {', '.join(TRACKERS)}, got {n!r}"
                + suggest(n, TRACKERS)
            )
    return list(dict.fromkeys(names))


def _check_installed(name: str) -> None:

    module = "torch.utils.tensorboard" if name == "tensorboard" else name
    found = importlib.util.find_spec(_PACKAGES[name]) is not None
    if found and name == "tensorboard":
        found = importlib.util.find_spec(module) is not None
    if not found:
        raise ActlabError(
            f"--track {name} needs the {_PACKAGES[name]} package, which is not installed; install "
            f'it with: pip install "actlab[track]" (or pip install {_PACKAGES[name]}), or drop '
            f"--track {name}"
        )


def _label(model: dict[str, Any], factors: Sequence[str]) -> str:
    cell = model["cell"]
    varying = "".join(f"_{f}{cell[f]}" for f in factors)
    safe = "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in model["activation"])
    return f"{safe}_seed{model['seed']}{varying}"


def _params(model: dict[str, Any]) -> dict[str, Any]:
    return {"activation": model["activation"], "seed": model["seed"], **model["cell"]}


def _metrics(record: Any) -> dict[str, float]:
    """An engine record (or a stored epoch row) as finite floats by name."""
    if isinstance(record, dict):
        skip = {"activation", "seed", "cell", "group", "model", "epoch", "grad_norms",
                "dead_fraction", "saturated_fraction", "diverged", "seconds"}  # fmt: skip
        items = {k: v for k, v in record.items() if k not in skip}
    else:
        items = {"train_loss": record.train_loss, "val_loss": record.val_loss, **record.metrics}
    return {k: float(v) for k, v in items.items()
            if isinstance(v, (int, float)) and math.isfinite(v)}  # fmt: skip


def _summary(res: Results) -> tuple[dict[str, float], dict[str, str]]:
    """The run's summary as metrics (per activation: mean, CI) and text (headline, winner)."""
    metrics: dict[str, float] = {}
    for cell in res.studies:
        where = "".join(f"{k}{v}_" for k, v in cell.values.items())
        for row in cell.summary.rows:
            for key, value in (("mean", row.mean), ("ci_low", getattr(row, "ci_low", None)),
                               ("ci_high", getattr(row, "ci_high", None))):  # fmt: skip
                if isinstance(value, (int, float)) and math.isfinite(value):
                    metrics[f"{where}{row.activation}/{res.metric}_{key}"] = float(value)
    text = {"headline": res.headline, "winner": str(res.winner or "none"), "metric": res.metric}
    return metrics, text


# ------------------------------------------------------------------------------------------ sinks


class _MLflow:
    """One MLflow run per model (nested under one parent run for the comparison)."""

    def __init__(self, directory: Path, name: str, factors: Sequence[str]) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or (directory / "mlruns").resolve().as_uri()
        if uri.startswith("file:"):
            # MLflow 3 refuses a file store unless asked; it is the offline store the run folder
            # keeps (mlflow ui --backend-store-uri OUT/mlruns reads it)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        self.uri, self.factors = uri, factors
        exp = self.client.get_experiment_by_name(name)
        self.experiment = exp.experiment_id if exp else self.client.create_experiment(name)
        self.parent = self.client.create_run(self.experiment, run_name="comparison").info.run_id
        self.runs: dict[int, str] = {}

    def start(self, model: dict[str, Any]) -> None:
        run = self.client.create_run(
            self.experiment, run_name=_label(model, self.factors),
            tags={"mlflow.parentRunId": self.parent, "actlab.model": str(model["id"])},
        )  # fmt: skip
        self.runs[model["id"]] = run.info.run_id
        for k, v in _params(model).items():
            self.client.log_param(run.info.run_id, k, v)

    def epoch(self, model: int, epoch: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        run = self.runs[model]
        stamp = 0
        self.client.log_batch(run, metrics=[Metric(k, v, stamp, epoch) for k, v in metrics.items()])

    def end(self, model: int, status: str) -> None:
        self.client.set_tag(self.runs[model], "actlab.status", status)
        state = "FINISHED" if status != "running" else "KILLED"
        self.client.set_terminated(self.runs[model], state)

    def summary(self, metrics: dict[str, float], text: dict[str, str]) -> None:
        from mlflow.entities import Metric

        safe = {k.replace("=", "_"): v for k, v in metrics.items()}
        self.client.log_batch(self.parent, metrics=[Metric(k, v, 0, 0) for k, v in safe.items()])
        for k, v in text.items():
            self.client.set_tag(self.parent, f"actlab.{k}", v)

    def close(self) -> None:
        self.client.set_terminated(self.parent)


class _TensorBoard:
    """Event files: one folder per model under ``OUT/tensorboard``, one for the summary."""

    def __init__(self, directory: Path, name: str, factors: Sequence[str]) -> None:
        self.root, self.factors = directory / "tensorboard", factors
        self.writers: dict[int, Any] = {}
        self.params: dict[int, dict[str, Any]] = {}

    def _writer(self, sub: str) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.root / sub))

    def start(self, model: dict[str, Any]) -> None:
        w = self._writer(_label(model, self.factors))
        self.writers[model["id"]] = w
        self.params[model["id"]] = _params(model)
        w.add_text("params", json.dumps(_params(model)), 0)

    def epoch(self, model: int, epoch: int, metrics: dict[str, float]) -> None:
        w = self.writers[model]
        for k, v in metrics.items():
            w.add_scalar(k, v, epoch)
        w.flush()

    def end(self, model: int, status: str) -> None:
        w = self.writers.pop(model)
        w.add_text("status", status, 0)
        w.close()

    def summary(self, metrics: dict[str, float], text: dict[str, str]) -> None:
        w = self._writer("summary")
        for k, v in metrics.items():
            w.add_scalar(k, v, 0)
        for k, v in text.items():
            w.add_text(k, v, 0)
        w.close()

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()


class _WandB:
    """One offline W&B run per model (``group`` = the comparison), files under ``OUT/wandb``."""

    def __init__(self, directory: Path, name: str, factors: Sequence[str]) -> None:
        import wandb

        self.wandb, self.dir, self.name, self.factors = wandb, directory, name, factors
        os.environ.setdefault("WANDB_SILENT", "true")
        self.mode = os.environ.get("WANDB_MODE", "offline")
        self.runs: dict[int, Any] = {}

    def _init(self, run_name: str, config: dict[str, Any]) -> Any:
        return self.wandb.init(
            project="actlab", group=self.name, name=run_name, config=config, dir=str(self.dir),
            mode=self.mode, reinit="create_new",
        )  # fmt: skip

    def start(self, model: dict[str, Any]) -> None:
        self.runs[model["id"]] = self._init(_label(model, self.factors), _params(model))

    def epoch(self, model: int, epoch: int, metrics: dict[str, float]) -> None:
        self.runs[model].log({**metrics, "epoch": epoch}, step=epoch)

    def end(self, model: int, status: str) -> None:
        run = self.runs.pop(model)
        run.summary["status"] = status
        run.finish(exit_code=0 if status != "running" else 1)

    def summary(self, metrics: dict[str, float], text: dict[str, str]) -> None:
        run = self._init("summary", {})
        for k, v in {**metrics, **text}.items():
            run.summary[k] = v
        run.finish()

    def close(self) -> None:
        for run in self.runs.values():
            run.finish(exit_code=1)
        self.runs.clear()


_SINKS = {"mlflow": _MLflow, "tensorboard": _TensorBoard, "wandb": _WandB}


# ------------------------------------------------------------------------------------------ fan-out


class Tracking:
    """The trackers of one run; each call goes to every tracker still working.

    A tracker that raises is closed and dropped with one line on stderr: the run goes on, and
    the store (which was written first) stays the record."""

    def __init__(self, names: Sequence[str], directory: Path, models: Sequence[dict[str, Any]],
                 factors: Sequence[str]) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.models = {m["id"]: m for m in models}
        self.sinks: dict[str, Any] = {}
        self.started: set[int] = set()
        for name in names:
            self._guard(name, lambda n=name: self.sinks.__setitem__(
                n, _SINKS[n](self.directory, self.directory.name, factors)))  # fmt: skip

    def _guard(self, name: str, call: Any) -> None:
        try:
            call()
        except Exception as err:
            sink = self.sinks.pop(name, None)
            if sink is not None:
                with contextlib.suppress(Exception):  # the first error is the one to tell
                    sink.close()
            print(
                f"actlab: note: the {name} tracker failed ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); the run goes on and its "
                f"store keeps every result: export it later with actlab report "
                f"{self.directory} --to {name}",
                file=sys.__stderr__ or sys.stderr, flush=True,
            )

    def _each(self, method: str, *args: Any) -> None:
        for name, sink in list(self.sinks.items()):
            self._guard(name, lambda s=sink: getattr(s, method)(*args))

    def records(self, records: Iterable[Any], model_ids: Sequence[int], total: int) -> None:
        """One committed epoch's records (as ``Store.save_epoch`` received them)."""
        for r in records:
            mid = model_ids[r.job]
            if mid not in self.started:
                self.started.add(mid)
                self._each("start", self.models[mid])
            self._each("epoch", mid, int(r.epoch), _metrics(r))
            if r.diverged or r.epoch >= total:
                self._each("end", mid, "diverged" if r.diverged else "done")
                self.started.discard(mid)

    def summary(self, res: Results) -> None:
        metrics, text = _summary(res)
        self._each("summary", metrics, text)

    def close(self) -> None:
        for mid in list(self.started):
            self._each("end", mid, "running")
        self.started.clear()
        self._each("close")


class StoreTee:
    """The store, with each committed epoch also handed to the trackers (after the commit)."""

    def __init__(self, store: Any, tracking: Tracking) -> None:
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_tracking", tracking)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._store, name, value)  # (write_s: the store's own counter)

    def save_epoch(self, epoch: int, records: Any, model_ids: Sequence[int], epochs_total: int,
                   *args: Any, **kwargs: Any) -> None:  # fmt: skip
        records = list(records)
        self._store.save_epoch(epoch, records, model_ids, epochs_total, *args, **kwargs)
        self._tracking.records(records, model_ids, epochs_total)


def make(track: str | Iterable[str] | None, directory: Path, models: Sequence[dict[str, Any]],
         factors: Sequence[str]) -> Tracking | None:  # fmt: skip
    """The run's trackers (None when none is named); a missing package is one line, at once."""
    names = _names(track)
    if not names:
        return None
    return Tracking(names, directory, models, factors)


def check(track: str | Iterable[str] | None) -> list[str]:
    """Validate the names and that each tracker's package is installed (before any work)."""
    names = _names(track)
    for name in names:
        _check_installed(name)
    return names


def export(res: Results, track: str | Iterable[str]) -> list[str]:
    """Log a finished (or stopped) run from its store: every model, epoch by epoch, and the
    summary. Returns the trackers that took it."""
    names = check(track)
    factors = [f for f in res.config.model.factors if len(getattr(res.config.model, f)) > 1]
    tracking = Tracking(names, Path(res.directory), res.models, factors)
    total = int(res.config.model.epochs)
    by_model: dict[int, list[dict[str, Any]]] = {}
    for row in res.history:
        by_model.setdefault(int(row["model"]), []).append(row)
    for mid, rows in by_model.items():
        for row in rows:
            rec = SimpleNamespace(job=0, epoch=row["epoch"], diverged=row["diverged"],
                                  train_loss=row["train_loss"], val_loss=row["val_loss"],
                                  metrics=_metrics(row))  # fmt: skip
            tracking.records([rec], [mid], total)
    tracking.summary(res)
    tracking.close()
    return list(tracking.sinks)
