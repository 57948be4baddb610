"""``train``: a group's trainers epoch by epoch in worker threads; progress, best epoch, Ctrl-C."""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import torch

from actlab.catalog import Activation
from actlab.compare.store import ModelEpoch
from actlab.compare.training.checkpoint import _FORMAT, _fingerprint, _read_checkpoint, _to_cpu
from actlab.compare.training.data import _Data
from actlab.compare.training.generic import _build_net, _generic_trainer, _plain_mlp
from actlab.compare.training.metrics import _val_metrics
from actlab.compare.training.mlp import _MLP, _stackable
from actlab.compare.training.types import (
    ORDER_SEED_OFFSET,
    SELECT,
    Job,
    TrainConfig,
    _Trainer,
    check_jobs,
)
from actlab.data import Split
from actlab.devices import resolve
from actlab.errors import ActlabError
from actlab.usercode import load_function


def _trainers(
    jobs: Sequence[Job], acts: list[Activation], data: _Data, config: TrainConfig, parts: int = 1
) -> list[tuple[_Trainer, list[int]]]:
    """(trainer, job indices of its rows); models of one activation are contiguous.

    The MLP's models are cut into ``parts`` contiguous stacks, one per worker thread.
    """
    groups: dict[str, list[int]] = {}
    for k, act in enumerate(acts):
        groups.setdefault(str(act), []).append(k)
    out: list[tuple[_Trainer, list[int]]] = []
    if config.model is None:
        order = [k for ks in groups.values() for k in ks if _stackable(acts[k])]
        if order:
            chunks = [
                c.tolist() for c in np.array_split(np.array(order), max(1, min(parts, len(order))))
            ]
            out += [
                (_MLP([acts[k] for k in rows], [int(jobs[k].seed) for k in rows], data, config),
                 rows)
                for rows in chunks
            ]  # fmt: skip
        for ks in groups.values():
            if not _stackable(acts[ks[0]]):
                nets = [_plain_mlp(acts[k], int(jobs[k].seed), data, config) for k in ks]
                out.append((_generic_trainer(nets, data, config), ks))
        return out
    factory = load_function(config.model)
    for ks in groups.values():
        nets = []
        for k in ks:
            net = _build_net(factory, acts[k], int(jobs[k].seed), data, config)
            net._actlab_seed = int(jobs[k].seed)  # type: ignore[attr-defined]
            nets.append(net)
        out.append((_generic_trainer(nets, data, config), ks))
    return out


def train(
    jobs: Sequence[Job],
    split: Split,
    config: TrainConfig,
    *,
    resume_from: bytes | None = None,
    on_epoch: Callable[[int, list[ModelEpoch], Callable[[], bytes]], None] | None = None,
    deadline: float | None = None,
    progress: Callable[[dict], None] | None = None,
    device: str | torch.device = "cpu",
) -> list[list[ModelEpoch]]:
    """Train every job, all at once; return each job's epochs (this call's), in job order.

    ``on_epoch(epoch, records, checkpoint)`` runs after every epoch with the records of the models
    trained in it; ``checkpoint()`` (call it there) returns bytes that ``resume_from`` accepts: the
    run then continues and ends bit-identical to an uninterrupted one. ``deadline`` (a
    ``time.monotonic()`` value) stops at the first epoch boundary after it. ``progress`` gets
    ``{"epoch", "epochs", "step", "steps", "best", "eta_s"}`` at most every 0.25 s and at every
    epoch's end; ``best`` is ``(label, value)`` of the best validation accuracy (or lowest RMSE) so
    far, None before the first epoch ends.

    Threads: the default MLP's models are split into ``torch.get_num_threads()`` stacks trained side
    by side by as many worker threads, each running single-threaded PyTorch ops (PyTorch's thread
    count is set to 1 for the call and restored after). Independent stacks need no barrier per
    operation, which keeps a busy, shared machine from stalling every small op; the split is kept in
    checkpoints, so a resumed run splits the same way and stays bit-identical.

    ``device`` (``actlab.devices.resolve``'s choices: "auto", "cpu", "cuda", "cuda:N", "mps"): the
    data move there once and every trainer keeps its tensors there; on an accelerator the MLP's
    models form one stack (one worker). Records are plain floats and checkpoints hold CPU tensors
    whatever the device, so a run may resume on another device (bit-identical only on the same one).
    """
    if not isinstance(config, TrainConfig):
        raise ActlabError(f"config must be a TrainConfig, got {type(config).__name__}")
    acts = check_jobs(jobs)
    dev = resolve(device)
    data = _Data(split, dev)
    fingerprint = _fingerprint(jobs, data, config)
    state = _read_checkpoint(resume_from, fingerprint) if resume_from is not None else None
    threads = torch.get_num_threads()
    parts = threads if dev.type == "cpu" else 1  # an accelerator takes one big stack best
    if state is not None:  # the saved split: the stacked MLP's states are those with a mask
        parts = sum("mask" in t for t in state["trainers"])
    trainers = _trainers(jobs, acts, data, config, parts)
    workers = len(trainers) if config.model is None else 1
    orders = [torch.Generator().manual_seed(int(j.seed) + ORDER_SEED_OFFSET) for j in jobs]
    done = 0
    if state is not None:
        done = int(state["epoch"])
        for (trainer, _), saved in zip(trainers, state["trainers"], strict=True):
            trainer.load_state(saved)
        for g, saved in zip(orders, state["orders"], strict=True):
            g.set_state(saved)
    best = _Best(len(jobs), config, data.classification)
    if state is not None and "best" in state:  # (checkpoints before best-epoch selection: none)
        best.load_state(state["best"])
    active = torch.ones(len(jobs), dtype=torch.bool)
    for trainer, rows in trainers:
        active[rows] = ~trainer.frozen
    history: list[list[ModelEpoch]] = [[] for _ in jobs]
    # progress unit: one optimisation step of one trainer (of one model when one by one)
    steps = math.ceil(data.n_train / config.batch_size) * sum(t.units for t, _ in trainers)
    prog = _Progress(progress, config.epochs, steps, max(config.epochs - done, 0) * steps)

    if workers > 1:
        torch.set_num_threads(1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="actlab-train")
    futures: list[Any] = []
    stuck = False
    try:
        for epoch in range(done + 1, config.epochs + 1):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not bool(active.any()):
                break
            t0 = time.perf_counter()
            first = prog.count
            trained = active.clone()
            final = epoch == config.epochs
            futures = [pool.submit(_epoch, t, rows, data, orders, final, prog.step, best, epoch)
                       for t, rows in trainers]  # fmt: skip
            while not all(f.done() for f in futures):
                wait(futures, timeout=0.25)
                prog.report(epoch, prog.count - first)
            pending: list[tuple[int, dict[str, Any]]] = []
            for (trainer, rows), future in zip(trainers, futures, strict=True):
                bad, fields = future.result()
                pending += [(k, f) for k, f in zip(rows, fields, strict=True) if trained[k]]
                ended = bad | torch.tensor([f["stopped"] for f in fields], dtype=torch.bool)
                if bool(ended.any()):  # diverged or stopped early: no more updates or records
                    trainer.freeze(ended.nonzero().flatten())
                    active[[rows[r] for r in ended.nonzero().flatten().tolist()]] = False
            seconds = (time.perf_counter() - t0) / max(int(trained.sum()), 1)
            pending.sort(key=lambda item: item[0])
            records = [
                ModelEpoch(job=k, epoch=epoch, seconds=seconds, **fields) for k, fields in pending
            ]
            for rec in records:
                history[rec.job].append(rec)
            prog.rank(records, [f"{a} (seed {j.seed})" for a, j in zip(acts, jobs, strict=True)],
                      data.classification)  # fmt: skip

            def checkpoint(epoch: int = epoch) -> bytes:
                buf = io.BytesIO()
                torch.save(
                    {"format": _FORMAT, "fingerprint": fingerprint, "epoch": epoch,
                     "rows": [r for _, r in trainers],
                     "trainers": [_to_cpu(t.state()) for t, _ in trainers],
                     "orders": [g.get_state() for g in orders], "best": best.state()},
                    buf,
                )  # fmt: skip
                return buf.getvalue()

            if on_epoch is not None:
                on_epoch(epoch, records, checkpoint)
            prog.report(epoch, steps)
    except BaseException:
        prog.cancel.set()  # Ctrl-C or an error: stop the workers at their next step
        stuck = not _stopped(futures)
        raise
    finally:
        pool.shutdown(wait=not stuck, cancel_futures=True)
        torch.set_num_threads(threads)
    return history


STOP_GRACE_S = 2.0  # how long Ctrl-C waits for the workers to reach their next step


def _stopped(futures: list[Any]) -> bool:
    """After Ctrl-C or an error: whether the workers stopped within STOP_GRACE_S. One stuck in
    the user's code (an endless loop in an activation) cannot be stopped from Python: it is left
    behind, rather than making Ctrl-C wait for ever, and ``actlab.cli.run`` exits without
    joining it (``stuck_workers``)."""
    if futures:
        wait(futures, timeout=STOP_GRACE_S)
    return all(f.done() for f in futures)


def _epoch(
    trainer: _Trainer, rows: list[int], data: _Data, orders: list[torch.Generator], final: bool,
    on_step: Callable[[], None], best: _Best, epoch: int,
) -> tuple[Any, ...]:  # fmt: skip
    """One epoch of one trainer, in a worker thread: train, validate, keep each improved model's
    test outputs (``best``) and score the test part of the models that end here (the last epoch,
    or early stopping); which models diverged, and each model's record fields (NaN metrics if
    diverged)."""
    # each worker draws its own models' row orders (each job has its own generator), on the
    # CPU (the order is the seed's whatever the device), then moved once
    perms = torch.stack([torch.randperm(data.n_train, generator=orders[k]) for k in rows])
    loss, norms = trainer.run_epoch(perms.to(data.device), on_step)
    out, dead, sat = trainer.evaluate()
    with torch.no_grad():
        val_loss, metrics = _val_metrics(out, data)
        loss, val_loss = loss.cpu(), val_loss.cpu()
        bad = ~(torch.isfinite(loss) & torch.isfinite(val_loss)) & ~trainer.frozen
        ended = best.update(rows, metrics[best.key].cpu(), epoch, ~bad & ~trainer.frozen, final)
        improved = best.improved(rows, epoch)
        if data.X_test is not None and bool(improved.any()):  # this epoch is the best so far
            best.keep(rows, improved, trainer.outputs(data.X_test))
        if data.X_test is not None and bool(ended.any()):  # the test part, once per model
            _, test_metrics = _val_metrics(best.outputs(rows, ended, data.device), data, "test")
            scored = ended.nonzero().flatten().tolist()
            test = {r: {k: float(v[i]) for k, v in test_metrics.items()}
                    for i, r in enumerate(scored)}  # fmt: skip
        else:
            test = {}
    loss, norms, dead, sat = (t.tolist() if isinstance(t, torch.Tensor) else t
                              for t in (loss, norms, dead, sat))  # fmt: skip
    val, metrics, nan = val_loss.tolist(), {k: v.tolist() for k, v in metrics.items()}, math.nan
    stopped = (ended & ~bad).tolist() if not final else [False] * len(rows)
    return bad, [
        {"train_loss": loss[r], "val_loss": nan if div else val[r],
         "metrics": {**{n: nan if div else v[r] for n, v in metrics.items()},
                     **best.fields(rows[r], test.get(r), bool(ended[r]) and not div)},
         "grad_norms": [float(v) for v in norms[r]],
         "dead_fraction": [nan if div else float(v) for v in dead[r]],
         "saturated_fraction": [nan if div else float(v) for v in sat[r]], "diverged": div,
         "stopped": stopped[r]}
        for r, div in enumerate(bad.tolist())
    ]  # fmt: skip


class _Best:
    """Each model's best validation epoch so far (by ``config.select``), the test-part outputs of
    its weights at that epoch, and early stopping.

    The test outputs are computed when a model improves (a forward pass on the test part) and kept
    here, never scored, until the model ends: then they are scored once (``_epoch``). Nothing here
    reads a test label; the choice of epoch reads validation metrics only. Ties keep the earlier
    epoch (a strictly better score is needed), so a plateau does not move the best epoch.
    """

    def __init__(self, n: int, config: TrainConfig, classification: bool) -> None:
        default = "val_accuracy" if classification else "val_rmse"
        self.key = config.select or default
        self.sign = 1.0 if SELECT[self.key] else -1.0
        self.patience = config.patience
        self.value = torch.full((n,), -math.inf, dtype=torch.float64)  # sign x best score
        self.epoch = torch.zeros(n, dtype=torch.int64)  # 0: none yet
        self.test: list[torch.Tensor | None] = [None] * n  # (n_out, n_test) on the CPU

    def update(self, rows: list[int], score: torch.Tensor, epoch: int, ok: torch.Tensor,
               final: bool) -> torch.Tensor:  # fmt: skip
        """Record this epoch's validation ``score`` of ``rows`` (models ``ok`` trained and did
        not diverge); return which of them end now (the last epoch, patience run out, or
        diverged: a diverged model ends with its best epoch's outputs unscored, as NaN)."""
        idx = torch.tensor(rows, dtype=torch.int64)
        s = self.sign * score.to(torch.float64)
        # the first epoch always counts (a NaN score, e.g. an AUC of one class, still gets one)
        better = ok & ((s > self.value[idx]) | (self.epoch[idx] == 0))
        self.value[idx[better]] = s[better]
        self.epoch[idx[better]] = epoch
        ended = ok & torch.tensor([final] * len(rows), dtype=torch.bool)
        if self.patience is not None:
            ended |= ok & (epoch - self.epoch[idx] >= self.patience)
        return ended

    def improved(self, rows: list[int], epoch: int) -> torch.Tensor:
        return self.epoch[torch.tensor(rows, dtype=torch.int64)] == epoch

    def keep(self, rows: list[int], which: torch.Tensor, out: torch.Tensor) -> None:
        out = out.cpu()
        for r in which.nonzero().flatten().tolist():
            self.test[rows[r]] = out[r].clone()

    def outputs(self, rows: list[int], which: torch.Tensor, device: torch.device) -> torch.Tensor:
        picked = [self.test[rows[r]] for r in which.nonzero().flatten().tolist()]
        return torch.stack(picked).to(device)  # type: ignore[arg-type]

    def fields(self, job: int, test: dict[str, float] | None, ended: bool) -> dict[str, float]:
        """The metrics a model's last record adds: its best epoch and (with a test part) the
        test metrics of its weights at that epoch."""
        if not ended:
            return {}
        return {"best_epoch": float(self.epoch[job]), **(test or {})}

    def state(self) -> dict[str, Any]:
        return {"value": self.value.clone(), "epoch": self.epoch.clone(), "test": list(self.test)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.value.copy_(state["value"])
        self.epoch.copy_(state["epoch"])
        self.test = list(state["test"])


class _Progress:
    """train()'s progress across its workers: steps finished in this call, the best validation
    result so far, and the cancel flag that every worker checks at each step."""

    def __init__(self, callback: Callable[[dict], None] | None, epochs: int, steps: int,
                 total: int) -> None:  # fmt: skip
        self.callback, self.epochs, self.steps, self.total = callback, epochs, steps, total
        self.count, self.best, self.start = 0, None, time.perf_counter()
        self.cancel = threading.Event()

    def step(self) -> None:
        self.count += 1  # atomic enough under the GIL for a progress counter
        if self.cancel.is_set():
            raise _Cancelled

    def report(self, epoch: int, step: int) -> None:
        if self.callback is not None:
            n, spent = self.count, time.perf_counter() - self.start
            self.callback({"epoch": epoch, "epochs": self.epochs, "step": min(step, self.steps),
                           "steps": self.steps, "best": self.best,
                           "eta_s": spent / n * (self.total - n) if n else None})  # fmt: skip

    def rank(self, records: list[ModelEpoch], labels: list[str], classification: bool) -> None:
        """Keep (label, value) of the best validation accuracy (lowest RMSE) so far."""
        key, sign = ("val_accuracy", 1) if classification else ("val_rmse", -1)
        for r in records:
            value = r.metrics[key]
            if not r.diverged and (self.best is None or sign * value > sign * self.best[1]):
                self.best = (labels[r.job], value)


class _Cancelled(Exception):
    """Raised inside a worker thread when the call is being abandoned."""
