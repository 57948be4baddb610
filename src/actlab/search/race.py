"""Racing: successive halving of many candidates, every rung trained as one stacked computation.

:class:`Stack` holds M MLPs (``depth`` hidden layers of ``width``, logits out) in stacked tensors
``W[l] (M, in, out)``, ``b[l] (M, 1, out)`` and the candidates' betas ``(M, 3)``; a step is a few
batched matrix products, one :class:`~actlab.search.primitives.Program` call per layer (a loop over
the distinct primitives, not the models) and autograd. Adam (PyTorch's update rule, written out so
that a rung's survivors keep their moments) is elementwise, so stacked Adam is per-model Adam.

Every model starts from the same Glorot-uniform weights (what ``compare`` gives a user activation
with ``--init auto``) drawn from ``seed``, and sees the same batches (epoch e's order is
``randperm`` from ``seed`` and e): the candidates differ only by their activation. A model whose
loss becomes NaN/inf is marked diverged (score -inf), zeroed and frozen.

:func:`plan` lays out the rungs; :func:`race` runs them, storing each finished rung (its scores and
the survivors' weights and optimiser state) through a callback, so a resumed search retrains no
finished rung.
"""

from __future__ import annotations

import io
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from actlab.nets import loss as net_loss
from actlab.search.primitives import Program, one_thread

__all__ = ["Rung", "Stack", "plan", "race"]

_B1, _B2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults


def race_lr(c: Any) -> float:
    """Racing uses one learning rate: the middle value of --lr (3e-3 of the default grid)."""
    values = sorted(c.model.lr)
    return float(values[len(values) // 2])


@dataclass(frozen=True)
class Rung:
    """One round: ``size`` candidates trained to ``epochs`` epochs in total."""

    size: int
    epochs: int


def plan(entrants: int, finalists: int, max_epochs: int, eta: int = 3,
         min_epochs: int = 1) -> list[Rung]:  # fmt: skip
    """Successive halving: ``entrants`` at ``min_epochs``, then each rung keeps the best 1/eta
    (at least ``finalists``) and trains them eta times as long (at most ``max_epochs``), until
    ``finalists * eta`` or fewer are left."""
    rungs = [Rung(entrants, min(min_epochs, max_epochs))]
    while rungs[-1].size > finalists * eta and rungs[-1].epochs < max_epochs:
        last = rungs[-1]
        rungs.append(Rung(max(finalists, math.ceil(last.size / eta)),
                          min(last.epochs * eta, max_epochs)))  # fmt: skip
    return rungs


def cost(rungs: Sequence[Rung]) -> int:
    """Model-epochs the rungs train (survivors continue: each rung adds its new epochs)."""
    done, total = 0, 0
    for r in rungs:
        total += r.size * (r.epochs - done)
        done = r.epochs
    return total


class Stack:
    """M models trained together (see the module docstring)."""

    def __init__(self, slot_list: Sequence[tuple[str, str, str]], data: dict[str, Any], *,
                 depth: int, width: int, seed: int, lr: float,
                 batch_size: int) -> None:  # fmt: skip
        self.slots = [tuple(s) for s in slot_list]
        self.prog = Program(self.slots)
        self.data, self.seed, self.lr, self.batch_size = data, seed, lr, batch_size
        self.classification = data["classification"]
        m = len(self.slots)
        sizes = [data["X_train"].shape[1], *[width] * depth, data["n_out"]]
        gen = torch.Generator().manual_seed(seed)
        self.params: list[torch.Tensor] = []
        for n_in, n_out in itertools.pairwise(sizes):
            bound = math.sqrt(6.0 / (n_in + n_out))
            w = (torch.rand(n_in, n_out, generator=gen) * 2 - 1) * bound
            self.params += [w.expand(m, -1, -1).clone(), torch.zeros(m, 1, n_out)]
        self.params.append(self.prog.initial_beta())
        for p in self.params:
            p.requires_grad_(True)
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.steps = 0
        self.epochs = 0
        self.diverged = torch.zeros(m, dtype=torch.bool)

    # -------------------------------------------------------------------------- computation

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits ``(M, rows, n_out)``."""
        beta = self.params[-1]
        layers = self.params[:-1]
        h = torch.matmul(X, layers[0]) + layers[1]
        for k in range(2, len(layers), 2):
            h = torch.baddbmm(layers[k + 1], self.prog(h, beta), layers[k])
        return h

    def run_epoch(self) -> torch.Tensor:
        """One epoch of mini-batches; returns the mean training loss per model."""
        with one_thread():
            return self._epoch()

    def _epoch(self) -> torch.Tensor:
        Xt, yt = self.data["X_train"], self.data["y_train"]
        n = Xt.shape[0]
        order = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epochs)
        perm = torch.randperm(n, generator=order)
        total = torch.zeros(len(self.slots), dtype=torch.float64)
        batches = 0
        for lo in range(0, n, self.batch_size):
            idx = perm[lo : lo + self.batch_size]
            out = self.forward(Xt[idx])
            losses = self._loss(out, yt[idx])
            ok = torch.isfinite(losses) & ~self.diverged
            torch.where(ok, losses, 0.0).sum().backward()
            self._step(~ok)
            total += torch.where(ok, losses.detach(), math.nan).double()
            batches += 1
        self.epochs += 1
        return total / max(batches, 1)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss per model (``nets.loss``: cross-entropy on logits, or MSE)."""
        if self.classification:
            y = y.expand(out.shape[0], -1)
        return net_loss(out, y, self.classification)

    @torch.no_grad()
    def _step(self, bad: torch.Tensor) -> None:
        """Adam on every stacked parameter; models with a non-finite loss diverge (zeroed)."""
        self.steps += 1
        newly = bad & ~self.diverged
        self.diverged |= bad
        bc1, bc2 = 1 - _B1**self.steps, 1 - _B2**self.steps
        for p, (m, v) in zip(self.params, self.moments, strict=True):
            g = p.grad
            p.grad = None
            if g is None:
                continue
            g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
            m.mul_(_B1).add_(g, alpha=1 - _B1)
            v.mul_(_B2).addcmul_(g, g, value=1 - _B2)
            p.addcdiv_(m, (v / bc2).sqrt_().add_(_EPS), value=-self.lr / bc1)
            if newly.any():
                for t in (p, m, v):
                    t[self.diverged] = 0.0

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation loss and score per model (accuracy, or -RMSE for regression; diverged and
        non-finite models: -inf)."""
        with one_thread():
            return self._evaluate()

    def _evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        X, y = self.data["X_val"], self.data["y_val"]
        out = self.forward(X)
        losses = self._loss(out, y)
        if self.classification:
            score = (out.argmax(-1) == y).double().mean(-1)
        else:
            score = -(out - y).square().mean((-2, -1)).sqrt().double()
        bad = self.diverged | ~torch.isfinite(losses) | ~torch.isfinite(score)
        self.diverged |= bad
        return torch.where(bad, math.inf, losses.double()), torch.where(bad, -math.inf, score)

    # ---------------------------------------------------------------------------- bookkeeping

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only the models ``rows`` (in that order), weights and optimiser state."""
        idx = torch.as_tensor(list(rows), dtype=torch.long)
        with torch.no_grad():
            self.params = [p.detach()[idx].clone().requires_grad_(True) for p in self.params]
            self.moments = [(m[idx].clone(), v[idx].clone()) for m, v in self.moments]
        self.diverged = self.diverged[idx]
        self.slots = [self.slots[i] for i in rows]
        self.prog = Program(self.slots)

    def betas(self) -> list[list[float]]:
        return self.params[-1].detach().tolist()

    def state(self) -> bytes:
        buf = io.BytesIO()
        torch.save({"params": [p.detach() for p in self.params], "moments": self.moments,
                    "steps": self.steps, "epochs": self.epochs, "diverged": self.diverged,
                    "slots": self.slots}, buf)  # fmt: skip
        return buf.getvalue()

    def load_state(self, blob: bytes) -> None:
        s = torch.load(io.BytesIO(blob), weights_only=True)
        self.params = [p.clone().requires_grad_(True) for p in s["params"]]
        self.moments = [(m, v) for m, v in s["moments"]]
        self.steps, self.epochs, self.diverged = s["steps"], s["epochs"], s["diverged"]
        self.slots = [tuple(x) for x in s["slots"]]
        self.prog = Program(self.slots)


def _fit(sizes: list[int], rungs: Sequence[Rung], r: int, per: float, left: float) -> None:
    """Shrink the sizes of the rungs after ``r`` (in place, by one factor, keeping the last
    rung's at least 1) so that their cost at ``per`` seconds per model-epoch fits ``left``: the
    planned cost came from a small calibration stack, and a shared machine's speed changes."""

    def need(scale: float) -> float:
        total, done = 0.0, rungs[r].epochs
        for k in range(r + 1, len(rungs)):
            total += max(1, int(sizes[k] * scale)) * (rungs[k].epochs - done)
            done = rungs[k].epochs
        return total * per

    scale = 1.0
    while scale > 0.01 and need(scale) > 0.9 * left:
        scale *= 0.8
    if scale < 1.0:
        for k in range(r + 1, len(rungs)):
            sizes[k] = max(1, int(sizes[k] * scale))


def race(
    entrants: Sequence[tuple[str, str, str]],
    ids: Sequence[int],
    data: dict[str, Any],
    rungs: Sequence[Rung],
    *,
    depth: int,
    width: int,
    seed: int,
    lr: float,
    batch_size: int,
    done: dict[int, dict[str, Any]] | None = None,
    on_rung: Callable[[int, list[dict[str, Any]], bytes, list[int]], None] | None = None,
    deadline: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Run the rungs; returns every rung's rows and whether the race finished.

    ``entrants`` are ``(b, u1, u2)`` triples and ``ids`` their candidate ids (the rows' ``cand``;
    survivors are stored as positions in ``entrants``). ``done``:
    the rungs already stored (rung -> ``{"rows": [...], "state": bytes, "survivors": [...]}``);
    they are not retrained. A row: ``rung, cand, epochs, val_score, val_loss, curve`` (validation
    score after each epoch of this rung), ``betas``. ``on_rung(r, rows, state, survivors)`` stores
    a finished rung; past ``deadline`` (``time.monotonic()``) the race stops at an epoch boundary
    and the unfinished rung is dropped (a resume runs it again).
    """
    done = done or {}
    sizes = [r.size for r in rungs]
    rows: list[dict[str, Any]] = []
    alive = list(range(len(entrants)))
    order = sorted(range(len(entrants)), key=lambda i: (entrants[i], i))  # contiguous groups
    stack: Stack | None = None
    for r, rung in enumerate(rungs):
        if r in done:
            rows += done[r]["rows"]
            alive = done[r]["survivors"]
            continue
        if stack is None:
            stack = Stack([entrants[i] for i in order], data, depth=depth, width=width, seed=seed,
                          lr=lr, batch_size=batch_size)  # fmt: skip
            current = order
            if r > 0:
                stack.load_state(done[r - 1]["state"])
                current = done[r - 1]["survivors"]
        else:
            current = alive
        if progress:
            progress(f"rung {r + 1}/{len(rungs)}: {len(current)} candidates to "
                     f"{rung.epochs} epochs")  # fmt: skip
        curves: list[list[float]] = [[] for _ in current]
        clock, before = time.monotonic(), stack.epochs
        while stack.epochs < rung.epochs:
            if deadline is not None and time.monotonic() > deadline:
                return rows, False
            stack.run_epoch()
            _, score = stack.evaluate()
            for k, v in enumerate(score.tolist()):
                curves[k].append(v)
        loss, score = stack.evaluate()
        betas = stack.betas()
        rung_rows = [
            {"rung": r, "cand": c, "epochs": stack.epochs, "val_score": float(score[k]),
             "val_loss": float(loss[k]), "curve": curves[k], "betas": betas[k]}
            for k, c in enumerate(ids[i] for i in current)
        ]  # fmt: skip
        rows += rung_rows
        ranked = sorted(range(len(current)), key=lambda k: (-score[k], loss[k], current[k]))
        if deadline is not None and r + 1 < len(rungs) and stack.epochs > before:
            per = (time.monotonic() - clock) / (len(current) * (stack.epochs - before))
            _fit(sizes, rungs, r, per, deadline - time.monotonic())
        n_next = min(sizes[r + 1], len(current)) if r + 1 < len(rungs) else len(current)
        keep = sorted(ranked[:n_next])
        stack.keep(keep)
        alive = [current[k] for k in keep]
        if on_rung is not None:
            on_rung(r, rung_rows, stack.state(), alive)
    return rows, True
