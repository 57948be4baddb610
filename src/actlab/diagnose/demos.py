"""The demonstrations (vanishing gradients, dying ReLU) and diagnosing the user's own model: small
networks (:mod:`actlab.nets`) read by the monitor (:mod:`actlab.diagnose.monitor`)."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from actlab import data, nets, spec
from actlab.catalog import parse, parse_many
from actlab.devices import resolve as resolve_device
from actlab.diagnose.monitor import Monitor
from actlab.diagnose.report import (
    DEAD,
    THRESHOLDS,
    Report,
    weight_label,
)
from actlab.errors import ActlabError, check_number
from actlab.settings import DEMO, check
from actlab.usercode import load_function

INITS = spec.DEMO_INITS  # the one list, with "paper" and "standard"


def _tensors(split: Any) -> tuple[torch.Tensor, ...]:
    return (
        torch.as_tensor(split.X_train),
        torch.as_tensor(split.y_train),
        torch.as_tensor(split.X_val),
        torch.as_tensor(split.y_val),
    )


def _loss(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return functools.partial(nets.loss, classification=task == "classification")


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        # the count is exact; Python's division equals a float64 mean (and MPS has no float64)
        acc = int((model(X).argmax(dim=1) == y).sum()) / len(y)
    model.train(was)
    return acc


def _train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    gen: torch.Generator,
    loss_fn: Callable,
) -> float:
    perm = torch.randperm(len(X), generator=gen)
    total = 0.0
    steps = 0
    for start in range(0, len(X), batch_size):
        idx = perm[start : start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1)


def _gradient_report(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    batches: int,
    loss_fn: Callable,
) -> Report:
    """Forward + backward over the first ``batches`` batches without an update."""
    with Monitor(model) as mon:
        for b in range(batches):
            rows = slice(b * batch_size, (b + 1) * batch_size)
            xb, yb = X[rows], y[rows]
            if len(xb) == 0:
                break
            model.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
    model.zero_grad(set_to_none=True)
    return mon.report()


@dataclass(frozen=True, eq=False)
class VanishingRun:
    activation: str
    init: str
    phase: str  # "init" or "trained"
    epoch: int
    val_accuracy: float
    report: Report

    @property
    def grad_norms(self) -> list[float | None]:
        return [w.grad_norm for w in self.report.weights]

    @property
    def ratio(self) -> float | None:
        return self.report.first_last_ratio


@dataclass(frozen=True, eq=False)
class VanishingDemo:
    """Gradient norm per layer of deep MLPs on digits, at initialisation and after training."""

    depth: int
    width: int
    epochs: int
    runs: tuple[VanishingRun, ...]
    layers: tuple[str, ...] = field(default=())

    def run(self, activation: str, phase: str = "init") -> VanishingRun:
        key = str(parse(activation))
        for r in self.runs:
            if r.activation == key and r.phase == phase:
                return r
        raise ActlabError(
            f"no run for {activation!r} at {phase!r}; have "
            + ", ".join(sorted({f"{r.activation}@{r.phase}" for r in self.runs}))
        )

    def ratio(self, activation: str, phase: str = "init") -> float | None:
        return self.run(activation, phase).ratio

    def table(self) -> list[dict[str, Any]]:
        """Tidy: one row per (activation, phase, weight layer)."""
        return [
            {
                "activation": r.activation,
                "init": r.init,
                "phase": r.phase,
                "epoch": r.epoch,
                "layer": w.name,
                "layer_index": i,
                "grad_norm": w.grad_norm,
                "ratio_to_last": w.ratio_to_last,
            }
            for r in self.runs
            for i, w in enumerate(r.report.weights)
        ]

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "activation": r.activation,
                "init": r.init,
                "phase": r.phase,
                "epoch": r.epoch,
                "first_last_ratio": r.ratio,
                "val_accuracy": r.val_accuracy,
                "verdicts": sorted(r.report.problems()),
            }
            for r in self.runs
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "demo": "vanishing",
            "depth": self.depth,
            "width": self.width,
            "epochs": self.epochs,
            "thresholds": dict(THRESHOLDS),
            "summary": self.summary(),
            "layers": self.table(),
            "verdicts": {
                f"{r.activation}@{r.phase}": [vars(v).copy() for v in r.report.verdicts]
                for r in self.runs
            },
        }

def _activations(activations: str | Iterable[Any], default: Sequence[str]) -> list[Any]:
    if activations is None:
        activations = default
    if isinstance(activations, str):
        return parse_many(activations)
    acts = [parse(a) for a in activations]
    if not acts:
        raise ActlabError("activations is empty; give at least one, e.g. 'sigmoid,tanh,relu'")
    for a in acts:
        if not a.spec.elementwise:
            raise ActlabError(
                f"{a.name} is not a hidden-layer activation (it normalises over an axis); "
                "use an elementwise one such as relu or tanh"
            )
    return acts


def _digits(dataset: str, seed: int, dev: torch.device, demo: str) -> tuple[Any, list[Any]]:
    """A demo's classification split and its tensors (X/y train, X/y validation) on ``dev``."""
    split = data.split(data.load(dataset), seed=seed)
    if split.task != "classification":
        raise ActlabError(f"the {demo} demo needs a classification dataset, got {dataset!r}")
    return split, [t.to(dev) for t in _tensors(split)]


def _demo(**given: Any) -> list[Any]:
    """The values of the demos' settings (``actlab.settings.DEMO``: their bounds), checked."""
    return [check(name, value, DEMO[name]) for name, value in given.items()]


def demo_vanishing(
    depth: int = 10,
    activations: str | Iterable[Any] = ("sigmoid", "tanh", "relu"),
    *,
    width: int = 64,
    epochs: int = 3,
    init: str = "paper",
    lr: float = 1e-3,
    batch_size: int = 64,
    batches: int = 8,
    seed: int = 0,
    dataset: str = "digits",
    device: str | torch.device = "auto",
) -> VanishingDemo:
    """Deep MLPs, one per activation: gradient norm per layer at initialisation and after training.

    ``init="paper"`` is Glorot & Bengio's (2010) comparison: sigmoid/tanh with the 'standard'
    U(±1/sqrt(fan_in)) initialisation (PyTorch's default), the ReLU family with He initialisation.
    Gradients are measured by forward + backward over the first ``batches`` training batches (no
    update) before training and after ``epochs`` epochs of Adam. ``device``: see
    :func:`actlab.devices.resolve` (networks are initialised on the CPU, then moved).
    """
    depth, width, epochs, batch_size = _demo(depth=depth, width=width, epochs=epochs,
                                             batch_size=batch_size)  # fmt: skip
    batches = check_number("batches", batches, 1, 100_000, integer="strict")
    lr = check("lr", lr, replace(DEMO["lr"], high=10.0))
    if init not in INITS:
        raise ActlabError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    acts = _activations(activations, ("sigmoid", "tanh", "relu"))
    dev = resolve_device(device)
    split, (Xtr, ytr, Xva, yva) = _digits(dataset, seed, dev, "vanishing")
    loss_fn = _loss(split.task)
    runs = []
    with torch.random.fork_rng(devices=[]):
        for act in acts:
            used = nets.init_scheme(act, init)
            model = nets.mlp(Xtr.shape[1], width, split.n_classes, [act] * depth, used, seed=seed,
                        output_act=act).to(dev)  # fmt: skip
            rep = _gradient_report(model, Xtr, ytr, batch_size, batches, loss_fn)
            runs.append(VanishingRun(str(act), used, "init", 0, _accuracy(model, Xva, yva), rep))
            if epochs:
                opt = torch.optim.Adam(model.parameters(), lr=lr)
                gen = torch.Generator().manual_seed(seed)
                for _ in range(epochs):
                    _train_epoch(model, opt, Xtr, ytr, batch_size, gen, loss_fn)
                rep = _gradient_report(model, Xtr, ytr, batch_size, batches, loss_fn)
                runs.append(
                    VanishingRun(str(act), used, "trained", epochs, _accuracy(model, Xva, yva), rep)
                )
    layers = tuple(
        f"{weight_label(k, w.name)} ({w.shape[1]}→{w.shape[0]})"
        for k, w in enumerate(runs[0].report.weights, start=1)
    )
    return VanishingDemo(depth, width, epochs, tuple(runs), layers)


@dataclass(frozen=True, eq=False)
class DyingDemo:
    """Dead fraction per hidden layer over training, each activation on the same pushed setup."""

    depth: int
    width: int
    lr: float
    bias: float
    optimizer: str
    activations: tuple[str, ...]
    # per activation: per epoch (0 = initialisation) the validation-set report
    reports: Mapping[str, tuple[Report, ...]]
    val_accuracy: Mapping[str, tuple[float, ...]]
    train_loss: Mapping[str, tuple[float, ...]]  # per epoch; nan at epoch 0

    def dead(self, activation: str, epoch: int = -1) -> list[float | None]:
        """Dead fraction per hidden layer at ``epoch`` (-1: the last)."""
        key = str(parse(activation))
        if key not in self.reports:
            raise ActlabError(f"no run for {activation!r}; have {', '.join(self.reports)}")
        return [a.dead_fraction for a in self.reports[key][epoch].activations]

    def mean_dead(self, activation: str, epoch: int = -1) -> float:
        values = [v for v in self.dead(activation, epoch) if v is not None]
        return float(np.mean(values)) if values else float("nan")

    def table(self) -> list[dict[str, Any]]:
        """Tidy: one row per (activation, epoch, hidden layer)."""
        rows = []
        for act, reps in self.reports.items():
            for epoch, rep in enumerate(reps):
                for i, a in enumerate(rep.activations):
                    rows.append(
                        {
                            "activation": act,
                            "epoch": epoch,
                            "layer": a.name,
                            "layer_index": i,
                            "dead_fraction": a.dead_fraction,
                            "saturated_fraction": a.saturated_fraction,
                            "val_accuracy": self.val_accuracy[act][epoch],
                            "train_loss": self.train_loss[act][epoch],
                        }
                    )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "demo": "dying-relu",
            "depth": self.depth,
            "width": self.width,
            "lr": self.lr,
            "bias": self.bias,
            "optimizer": self.optimizer,
            "thresholds": dict(THRESHOLDS),
            "rows": self.table(),
            "verdicts": {
                act: [vars(v).copy() for v in reps[-1].verdicts]
                for act, reps in self.reports.items()
            },
            "caveats": self.caveats(),
        }

    def caveats(self) -> list[str]:
        """Plain words when this run's numbers undercut the demo's lesson (an alternative that
        also ends badly): the push that kills ReLU units can break the others too.

        With the defaults (Adam, lr 0.1) ELU ends with its last layer 100% dead at 10% accuracy;
        with lr 0.01 and bias -1 (measured, seed 0, 5 epochs) ReLU still loses 16% of its units
        and ends at 64% accuracy while LeakyReLU (0% dead, 71%) and ELU (0% dead, 96%) keep theirs.
        """
        base = self.val_accuracy["relu"][-1] if "relu" in self.val_accuracy else None
        lines = []
        for act in self.activations:
            if act == "relu":
                continue
            acc = self.val_accuracy[act][-1]
            dead = [v for v in self.dead(act) if v is not None]
            worst = max(dead, default=0.0)
            bad = acc < 0.5 or (base is not None and acc < base - 0.05) or worst > DEAD
            if not bad:
                continue
            what = f"{act} ends at {acc:.0%} validation accuracy"
            if worst > DEAD:
                what += f" with up to {worst:.0%} of a layer's units dead"
            lines.append(what)
        if not lines:
            return []
        them = "it" if len(lines) == 1 else "them"
        return [
            "; ".join(lines) + f": {self.optimizer} at lr {self.lr:g} is too high for {them} as "
            "well, so this run shows how ReLU units die, not which activation trains best. Try "
            "--lr 0.01 --bias -1 (ReLU still loses units, the others keep theirs and train "
            "better), or 'actlab compare' for an accuracy comparison"
        ]

def demo_dying(
    activations: str | Iterable[Any] = ("relu", "leaky_relu", "elu"),
    *,
    depth: int = 4,
    width: int = 64,
    epochs: int = 5,
    lr: float = 0.05,
    bias: float = 0.0,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
    dataset: str = "digits",
    device: str | torch.device = "auto",
) -> DyingDemo:
    """Push ReLU networks into dying beside alternatives on the same setup.

    The push is a too-high learning rate (Adam at 0.05, 50x its usual 1e-3); a negative ``bias``
    for the hidden layers pushes further (units start half-dead). Every activation gets the same
    network, He initialisation, optimizer, learning rate and data order. At initialisation and
    after each epoch a fresh :class:`Monitor` measures the dead fraction per layer on the
    validation set (eval mode). Expect ReLU to lose most of its units for good while LeakyReLU
    keeps them all (its gradient is never 0); the learning rate still hurts everyone's accuracy.

    The default 0.05 was measured on digits, seeds 0-3, 5 epochs: ReLU goes from 0-1% to 32-41%
    dead units while LeakyReLU and ELU keep 0% dead (73-91% validation accuracy). At 0.1 ELU's
    pre-activations were pushed so far negative that exp(x) underflowed to f' = 0: 23% dead
    overall (whole layers at 100%) and 10% accuracy, which hid the lesson.
    """
    depth, width, batch_size, lr = _demo(depth=depth, width=width, batch_size=batch_size, lr=lr)
    epochs = check("epochs", epochs, replace(DEMO["epochs"], low=1))
    bias = check_number("bias", bias, -100.0, 100.0)
    if optimizer not in ("sgd", "adam"):
        raise ActlabError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    acts = _activations(activations, ("relu", "leaky_relu", "elu"))
    dev = resolve_device(device)
    split, (Xtr, ytr, Xva, yva) = _digits(dataset, seed, dev, "dying-ReLU")
    loss_fn = _loss(split.task)
    reports: dict[str, tuple[Report, ...]] = {}
    accs: dict[str, tuple[float, ...]] = {}
    losses: dict[str, tuple[float, ...]] = {}
    with torch.random.fork_rng(devices=[]):
        for act in acts:
            model = nets.mlp(Xtr.shape[1], width, split.n_classes, [act] * depth, "he", seed=seed,
                        bias=bias, output_act=act).to(dev)  # fmt: skip
            make = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
            opt: torch.optim.Optimizer = make(model.parameters(), lr=lr)
            gen = torch.Generator().manual_seed(seed)
            reps, acc, loss = [_eval_report(model, Xva)], [_accuracy(model, Xva, yva)], [math.nan]
            for _ in range(epochs):
                loss.append(_train_epoch(model, opt, Xtr, ytr, batch_size, gen, loss_fn))
                reps.append(_eval_report(model, Xva))
                acc.append(_accuracy(model, Xva, yva))
            key = str(act)
            reports[key], accs[key], losses[key] = tuple(reps), tuple(acc), tuple(loss)
    return DyingDemo(depth, width, lr, bias, optimizer, tuple(reports), reports, accs, losses)


def _eval_report(model: nn.Module, X: torch.Tensor) -> Report:
    was = model.training
    model.eval()
    with Monitor(model) as mon, torch.no_grad():
        model(X)
    model.train(was)
    return mon.report()


def load_model(ref: str, activation: str | None = None) -> nn.Module:
    """Import ``module:function`` (or ``path/to/file.py:function``) and call it to get the model.

    A function taking a required argument is called with the activation spec string (the compare
    command's convention, ``function(spec) -> nn.Module``); ``activation`` defaults to 'relu' there.
    """
    func = load_function(ref)
    func_name = ref.rpartition(":")[2]
    try:
        params = inspect.signature(func).parameters.values()
        needs_arg = any(
            p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in params
        )
    except (TypeError, ValueError):
        needs_arg = False
    if not needs_arg and activation is not None:
        raise ActlabError(
            f"--activation was given but {func_name}() takes no argument; define "
            f"{func_name}(activation) to build the model with a chosen activation"
        )
    spec = None
    if needs_arg:
        spec = str(parse(activation or "relu"))
    try:
        model = func(spec) if needs_arg else func()
    except ActlabError:
        raise
    except Exception as err:  # the user's code failed: one line, as compare says it
        call = f"{func_name}({spec!r})" if needs_arg else f"{func_name}()"
        raise ActlabError(
            f"--model: {ref}: {call} raised {type(err).__name__}: {err}; fix the function "
            "(it must return a torch.nn.Module)"
        ) from None
    if not isinstance(model, nn.Module):
        raise ActlabError(
            f"--model: {ref} returned {type(model).__name__}, expected a torch.nn.Module"
        )
    return model


def diagnose_model(
    model: nn.Module,
    split: Any,
    *,
    batches: int = 50,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    monitor_options: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> Report:
    """Train ``model`` for ``batches`` Adam steps on ``split`` (an :class:`actlab.data.Split`)
    under a Monitor and return its report; ``lr=0`` measures without changing the weights.

    Cross-entropy on logits for classification (the model must output one logit per class), MSE
    for regression (one output). ``device`` (see :func:`actlab.devices.resolve`) moves the model
    there first; ``None`` leaves it where it is (the data follow the model).
    """
    if not isinstance(model, nn.Module):
        raise ActlabError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batches = check_number("batches", batches, 1, 10_000_000, integer="strict")
    batch_size = check_number("batch_size", batch_size, 1, 1_000_000, integer="strict")
    lr = check_number("lr", lr, 0.0, 100.0)
    if device is not None:
        model = model.to(resolve_device(device))
    Xtr, ytr, _, _ = _tensors(split)
    ref = next((p for p in model.parameters() if p.is_floating_point()), None)
    if ref is not None:
        Xtr, ytr = Xtr.to(ref.device, ref.dtype), ytr.to(ref.device)
        if split.task == "regression":
            ytr = ytr.to(ref.dtype)
    loss_fn = _loss(split.task)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr) if params and lr > 0 else None
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(Xtr), generator=gen)
    monitor = Monitor(model, **dict(monitor_options or {}))
    if not monitor.watched():
        raise ActlabError(
            f"nothing to diagnose in {type(model).__name__}: it has no activation module and no "
            "Linear/Conv layer; build it from torch.nn modules (activations as modules, e.g. "
            "nn.ReLU(), not F.relu)"
        )
    model.train()
    with monitor as mon:
        pos = 0
        for step in range(batches):
            if pos >= len(perm):
                perm, pos = torch.randperm(len(Xtr), generator=gen), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            xb, yb = Xtr[idx], ytr[idx]
            try:
                out = model(xb)
            except Exception as err:
                if step:
                    raise
                raise ActlabError(
                    f"the model failed on a batch of shape {tuple(xb.shape)} from {split.name!r} "
                    f"({split.X_train.shape[1]} features): {type(err).__name__}: {err}"
                ) from None
            if step == 0:
                _check_output(out, split)
            if split.task == "regression" and out.ndim == 1:
                out = out[:, None]
            loss = loss_fn(out, yb)
            if not params:
                continue
            model.zero_grad(set_to_none=True)
            loss.backward()
            if opt is not None:
                opt.step()
    return mon.report()


def _check_output(out: Any, split: Any) -> None:
    want = split.n_classes if split.task == "classification" else 1
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    ok = shape is not None and (
        (len(shape) == 2 and shape[1] == want) or (split.task == "regression" and len(shape) == 1)
    )
    if not ok:
        what = (
            f"{want} logits per row (one per class of {split.name!r})"
            if split.task == "classification"
            else "one value per row (regression)"
        )
        raise ActlabError(
            f"the model's output has shape {shape}, expected (batch, {want}): {what}; "
            "change the last layer's size"
        )
