"""Running a comparison: its folder and lock, checkpoints, training the groups, ``run``."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from actlab import _notebook, dataforms
from actlab.compare import backends, baselines, limits, objective, planning, trackers, training
from actlab.compare import report as rep
from actlab.compare.config import (
    CompareConfig,
    ComputeConfig,
    check_metric,
    command,
    differences,
    flat_from_stored,
)
from actlab.compare.progress import PlainProgress
from actlab.compare.results import Results, load
from actlab.compare.store import Store, is_locked, locked_error, release_lock, take_lock
from actlab.data import SPLIT_VERSION, Split
from actlab.errors import ActlabError


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

    def __init__(self, group: planning.Group, store: Store | trackers.StoreTee) -> None:
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
    todo: Sequence[planning.Group],
    splits: dict[int, Split],
    store: Store | trackers.StoreTee,
    *,
    backend: backends.Backend | None = None,
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
        # a run still being written is another program's, not one to resume: say so (the lock
        # names it) rather than advise --resume, which the lock would then refuse
        release_lock(take_lock(directory))
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


def _stored_split_version(directory: Path) -> int:
    """The split function's version a stored run was made with: its meta's ``split_version``, or
    1 for runs made before it was stored (they all split with version 1)."""
    with Store.open(directory) as store:
        try:
            return int(store.meta("split_version"))
        except KeyError:
            return 1


def _core_free() -> bool:
    """Whether a core is left beside torch's threads (for the baselines' thread)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > torch.get_num_threads()


def _lacks_baselines(store: Store) -> bool:
    """Whether the baselines are still to be fit: a run that stores its split version (made since
    baselines are fit in the background) and has none yet. Older runs are left as they are."""
    try:
        store.meta("baselines")
        return False
    except KeyError:
        pass
    try:
        store.meta("split_version")
        return True
    except KeyError:
        return False


def _create_locked(directory: Path, **create: Any) -> Store:
    """Make the run folder, take its lock, then create the store (in that order).

    Of two runs started at once into one new folder, the second finds the lock held (or, if the
    first already finished, its results) and stops with a message naming it, having written
    nothing. A failure while creating (disk full, unwritable place) removes only what this call
    made, so the same --out can be used again.
    """
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


def _check_model_unchanged(store: Store, signature: dict[str, Any]) -> None:
    """Refuse to resume when the user's --model builds another network than the stored run's."""
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
    backend: str | backends.Backend = "local",
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
        settings["data"] = dataforms.describe(data)
        data = None if isinstance(data, (str, Path)) else data
    if callable(settings.get("objective")):
        settings["objective"] = objective.remember(settings["objective"])
    if objective_timeout is not None:
        objective_timeout = _positive("objective_timeout", objective_timeout)
    if track is not None:
        trackers.check(track)  # a missing package: one line, before any folder is made
    bar = None
    if progress is None and _notebook.in_notebook():  # a progress bar in the output cell
        progress = bar = _notebook.NotebookBar()
    deadline = None
    if time_budget is not None:
        deadline = time.monotonic() + _positive("time_budget", time_budget)
    c, directory, new = resolve(settings, out, resume)
    limits.check_models(c, max_models)  # before any list of the models is built
    dataset = planning._dataset(c, data)
    limits.check_memory(c, *planning._shape(dataset), max_memory)
    split_version = SPLIT_VERSION if new else _stored_split_version(directory)
    splits = planning._splits(c, dataset, split_version)
    check_metric(c.study.metric, dataset.task, int(next(iter(splits.values())).n_classes))
    fingerprint = planning._fingerprint(splits)
    grid = planning._grid(c)
    # the engine's own checks first: a refused job must not leave a half-made run folder behind
    training.check_jobs([training.Job(a, s) for a, s in dict.fromkeys((a, s) for a, s, *_ in grid)])
    # a missing device or an unreachable cluster must not leave a run folder behind either
    trainer = backends.make(backend) if isinstance(backend, str) else backend
    where = trainer.prepare(device)
    # the run's groups, once: the store's models are the grid's (the same ids, cells and keys)
    planned = planning.groups(
        c,
        [{"id": i, "activation": a, "seed": s, "cell": cell, "group": key}
         for i, (a, s, cell, key) in enumerate(grid)],
        objective_timeout=objective_timeout,
    )  # fmt: skip
    first = planned[0]
    if c.model.objective is not None:
        signature = objective.signature(first.config)
    else:
        signature = training.model_signature(list(first.jobs), splits[first.split_seed],
                                           first.config)  # fmt: skip
    background = _core_free()
    if new:
        extra: dict[str, Any] = {"split_version": split_version}
        if not background:  # no core to spare: fit them now, before the folder exists, as a
            # failure must leave no half-made run behind
            extra["baselines"] = baselines.fit_all(list(splits.values()))
        if signature:
            extra["model_signature"] = signature
        store = _create_locked(
            directory,
            config=c.to_dict(),
            fingerprint=fingerprint,
            data=planning._data_info(splits[min(splits)], dataset),
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
    # with a core free the baselines fit while the groups train (stored when training ends; a
    # run stopped before that fits them again on --resume)
    pending = None
    if _lacks_baselines(store):
        pending = baselines.in_background(list(splits.values()), background=background)
    # baselines_wait_s: how long the end waited for the baselines (0 when fitted beforehand)
    phases = {"prepare_s": time.perf_counter() - clock, "baselines_wait_s": 0.0}
    outcome = "failed"
    tracking = None
    try:
        store.lock()
        if on_start is not None:
            on_start(directory, new)
        models = store.models()
        running = {m["group"] for m in models if m["status"] == "running"}
        todo = [g for g in planned if g.key in running]
        if todo:
            store.begin_session({"backend": where, "device": str(device)})
            clock = time.perf_counter()
            writer = store
            if track is not None:  # each committed epoch also goes to the trackers

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
        try:
            if pending is not None and outcome in ("complete", "stopped"):
                clock = time.perf_counter()  # (waiting for them: only if training was shorter)
                store.add_meta("baselines", pending.result())
                phases["baselines_wait_s"] = time.perf_counter() - clock
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

        results.report_files = rep.write(results)
        phases["report_s"] = time.perf_counter() - clock
    if tracking is not None:
        tracking.summary(results)
        tracking.close()
    if bar is not None:
        bar.done(f"done: {len(results.models)} models")
    results.phases = phases
    return results
