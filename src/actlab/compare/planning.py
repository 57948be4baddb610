"""Planning a comparison: its data and splits, the grid of models, its groups."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actlab import data, dataforms
from actlab.compare import objective, training
from actlab.compare.config import CompareConfig
from actlab.errors import ActlabError


def _dataset(c: CompareConfig, obj: Any = None) -> data.Dataset:

    d = c.data
    if d.data is not None:  # your own data in any form (a file, or ``obj`` given in Python)

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


def _shape(ds: data.Dataset) -> tuple[int, int]:
    """(inputs, outputs) of the networks a dataset needs."""
    n_out = ds.n_classes if ds.task == "classification" else 1
    return int(ds.X.shape[1]), max(int(n_out), 1)


def _splits(
    c: CompareConfig, ds: data.Dataset, version: int = data.SPLIT_VERSION
) -> dict[int, data.Split]:
    """Split seed -> Split: one for the run, or one per seed with ``resample_split``; ``version``:
    the split function's (a resumed run's stored one)."""
    seeds = sorted({c.data.split_seed_for(s) for s in range(c.study.seeds)})
    return {
        ss: data.split(
            ds, val_fraction=c.data.val_fraction, seed=ss, test_fraction=c.data.test_fraction,
            version=version,
        )
        for ss in seeds
    }


def _fingerprint(splits: dict[int, data.Split]) -> str:
    """The data's fingerprint: the split's own, or a digest of every seed's split."""
    if len(splits) == 1:
        return next(iter(splits.values())).fingerprint

    text = "|".join(f"{k}:{v.fingerprint}" for k, v in sorted(splits.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _data_info(split: data.Split, dataset: data.Dataset) -> dict[str, Any]:
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



@dataclass(frozen=True)
class Group:
    """One engine call: models sharing every factor value (and split) train in one batch.

    ``key`` names the group in the store (its checkpoint row); ``jobs`` are training ``Job``s, in
    the order of ``model_ids`` (their store ids); ``config`` is the trainer's ``TrainConfig``;
    ``split_seed`` selects the split its models use; :func:`train_groups` trains groups.
    """

    key: str
    jobs: tuple[training.Job, ...]
    config: training.TrainConfig | objective.ObjectiveConfig
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
    by_group: dict[str, list[dict[str, Any]]] = {}
    for m in models:
        by_group.setdefault(m["group"], []).append(m)
    out = []
    for key, ms in by_group.items():
        cell = ms[0]["cell"]
        if c.model.objective is not None:
            cfg: training.TrainConfig | objective.ObjectiveConfig
            cfg = objective.task_config(c, cell, objective_timeout)
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

