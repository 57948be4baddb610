"""Training engine of ``actlab compare``: every (activation x seed) model trains at once.

The default network is an MLP (``depth`` hidden layers of ``width`` units, logits out). All M models
live in stacked tensors, ``W[l]`` of shape ``(M, in, out)`` and ``b[l]`` of shape ``(M, 1, out)``,
with the models of one activation in one contiguous slice. A training step is a handful of batched
matrix products (``torch.baddbmm`` / ``torch.bmm``) over all models plus one activation call per
activation slice, and a hand-written backward pass: the activation's derivative comes from ATen's
own backward kernels (the ones autograd would call) for PyTorch's native activation modules, and
from autograd on that slice alone for anything else. The optimiser is ``torch.optim.Adam`` /
``SGD``'s update (``_Optimizer`` runs their kernels) on one flat tensor holding every stacked
parameter: both are elementwise, so stacked Adam is per-model Adam, weight decay included
(``torch.optim.Adam(weight_decay=...)`` adds L2 to the gradient; it is not AdamW).

Where the time goes (default sweep: 35 models of 64-128-128-10 on digits, two stacks of 17-18
models, one worker thread each; thread CPU time of one stack's epoch on a loaded 2-core AVX-512
box, tools in benchmarks/compare_speed.py): the batched products ~46% (each at ~75% of one core's
large-matmul rate alone, less in the step: their operands no longer fit the 2 MB L2), the
activations' kernels 16-25% (2-4x their time on a warm cache), the validation pass ~12%, Adam ~10%
(memory-bound; run per layer inside the backward while the layer is in cache), the loss 5%, the
gradient norms 4%. ``_MLP`` says what was done about the rest.

Reproducing one model alone (what ``tests/test_compare_engine.py`` does with a plain PyTorch loop):

* network: ``nn.Sequential(Linear(n_in, width), act, ..., Linear(width, n_out))`` with ``act`` from
  ``actlab.torch.build(job.activation)``; ``n_out`` is the number of classes (or target columns).
* initialisation: ``g = torch.Generator().manual_seed(seed)``; for each Linear layer, input to
  output, draw its weight (PyTorch's ``(out, in)`` layout) and then its bias from ``g``:

  - ``he``: ``nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)``, or
    ``nonlinearity="leaky_relu", a=negative_slope`` for leaky ReLU (gain ``calculate_gain``);
  - ``glorot``: ``nn.init.xavier_uniform_(w, generator=g)`` (gain 1);
  - ``lecun``: ``nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g)`` (std
    1/sqrt(fan_in));
  - ``torch``: ``nn.Linear``'s own ``reset_parameters`` recipe (``kaiming_uniform_(a=sqrt(5))``,
    bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``), both drawn from ``g``;
  - ``auto``: the catalog's ``recommended_init`` for the activation (``none`` -> glorot).

  The output layer has no activation, so it gets the same scheme with gain 1 (``he`` -> LeCun
  normal). Biases are zero except with ``torch``.
* data order: a second stream, ``torch.Generator().manual_seed(seed + 2**32)``; every epoch draws
  ``perm = torch.randperm(n_train, generator=order)`` and the batches are consecutive slices of
  ``perm`` of ``batch_size`` rows (the last one may be shorter). The order depends on the seed only,
  so models of the same seed see the same batches whatever their activation (paired comparisons).
* loss on logits: ``nn.CrossEntropyLoss()`` (classification) or ``nn.MSELoss()`` (regression; the
  split's targets are already standardised), the mean over the batch; the optimiser is
  ``torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)`` or ``torch.optim.SGD`` likewise.

Activations with parameters of their own (PReLU's slope, a learnable Swish beta) cannot share the
stacked tensors; their models are built as that plain ``nn.Sequential`` (same initialisation) and
trained by the generic path below (batched over seeds with ``torch.func``), side by side with the
stacks, with the same data order and optimiser.

A model whose training or validation loss becomes NaN/inf is marked diverged in that epoch (its
record has ``diverged=True`` and NaN metrics); its weights and optimiser state are then reset to
zero and its output gradient masked, so it takes no further updates, costs nothing numerically and
gets no later records. Every other model goes on untouched (all arithmetic is per model).

Bring your own network (``TrainConfig.model = "module:function"``): ``function(activation_spec)``
must return an ``nn.Module`` mapping ``(batch, n_features)`` to ``(batch, n_out)`` logits. Each
model is built under ``torch.manual_seed(seed)`` (its own initialisation unless ``init`` names a
scheme, which is then applied to every ``nn.Linear`` as above). The seeds of one activation train
batched with ``torch.func`` (``stack_module_state`` + ``functional_call`` + ``vmap``) when the model
allows it (no randomness such as dropout, no unbatchable in-place updates); otherwise one model at a
time, each with its own global-RNG stream for dropout and the like (``torch.manual_seed(seed)``
again after building, saved and restored around its steps). Either way each model equals a plain
loop: ``torch.manual_seed(seed); net = function(spec); torch.manual_seed(seed)``, then the data
order and optimiser above. BYO records have gradient norms per weight (``*.weight`` with 2+ dims)
in module order; dead/saturated fractions come from forward hooks on every elementwise activation
module the catalog recognises (``actlab.torch.catalog_name``), one entry per call, in call order.

Threads: the MLP's models are split into ``torch.get_num_threads()`` stacks of (nearly) equal model
counts, each trained by its own worker thread with single-threaded ops (see ``train``); BYO trainers
run one after another with PyTorch's own threading. Splitting by each activation's kernel cost
(tanh's is ~10x sigmoid's on the AMD/MKL machine this was tuned on) would gain at most ~1.5% on the
default sweep, whose count split is already within ~4% of balanced: not worth a per-machine table.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from actlab.compare import INITS, OPTIMIZERS  # one list for the CLI, run() and the engine
from actlab.errors import ActlabError, suggest
from actlab.health import MAJORITY, SATURATION, measures_saturation, unit_health
from actlab.nets import init_linear, init_scheme, loss, mlp
from actlab.torch import fast_path
from actlab.usercode import guarded, load_function

__all__ = [
    "INITS",
    "OPTIMIZERS",
    "Job",
    "ModelEpoch",
    "TrainConfig",
    "check_jobs",
    "macro_f1",
    "state_dicts",
    "train",
]

ORDER_SEED_OFFSET = 2**32  # the data-order stream of seed s is seeded with s + 2**32
_FORMAT = "actlab.compare.engine checkpoint v2"  # v2: the MLP's optimiser state is one flat tensor
_EVAL_ROWS = 4096  # validation rows per forward chunk; unit health uses the first chunk
_GATHER_BYTES = 1 << 20  # training rows gathered at once per stack (or one step's; _MLP._gather)
# validation metrics that may pick the best epoch -> whether higher is better
SELECT = {"val_accuracy": True, "val_balanced_accuracy": True, "val_macro_f1": True,
          "val_log_loss": False, "val_roc_auc": True, "val_rmse": False, "val_mae": False,
          "val_r2": True}  # fmt: skip


# ------------------------------------------------------------ types


def _int_field(name: str, value: Any, low: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ActlabError(f"{name} must be an integer >= {low} ({what}), got {value!r}")


def _float_field(name: str, value: Any, *, positive: bool, example: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if ok:
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ActlabError(f"{name} must be a finite number {bound} (e.g. {example}), got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How every model of a comparison is trained; validated on construction."""

    depth: int = 2
    width: int = 128
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" | "sgd"
    weight_decay: float = 0.0
    init: str = "auto"  # "auto" | "he" | "glorot" | "lecun" | "torch"
    model: str | None = None  # "module:function", function(spec_str) -> nn.Module
    # the validation metric that picks each model's best epoch (None: val_accuracy / val_rmse)
    # and the epochs without improvement after which a model stops (None: train every epoch)
    select: str | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        _int_field("depth", self.depth, 1, "number of hidden layers")
        if self.patience is not None:
            _int_field("patience", self.patience, 1, "epochs without a better validation score")
        if self.select is not None and self.select not in SELECT:
            raise ActlabError(
                f"select must be one of {', '.join(SELECT)}, got {self.select!r}"
                + suggest(str(self.select), SELECT)
            )
        _int_field("width", self.width, 1, "units per hidden layer")
        _int_field("epochs", self.epochs, 1, "passes over the training data")
        _int_field("batch_size", self.batch_size, 1, "rows per training step")
        _float_field("lr", self.lr, positive=True, example="1e-3")
        _float_field("weight_decay", self.weight_decay, positive=False, example="1e-4")
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("init", self.init, INITS),
        ):
            if value not in allowed:
                raise ActlabError(
                    f"{name} must be one of {', '.join(allowed)}, got {value!r}"
                    + (suggest(value, allowed) if isinstance(value, str) else "")
                )
        if self.model is not None:
            head, _, tail = str(self.model).rpartition(":")
            if not isinstance(self.model, str) or not head or not tail.isidentifier():
                raise ActlabError(
                    f"model must look like 'module:function' (e.g. 'mynets:make_mlp' or "
                    f"'path/to/nets.py:make_mlp'), got {self.model!r}"
                )


@dataclass(frozen=True)
class Job:
    """One model: an activation (canonical spec string) and a seed."""

    activation: str
    seed: int


@dataclass
class ModelEpoch:
    """What was measured for one model in one epoch (diverged models: see the module docstring)."""

    job: int
    epoch: int
    train_loss: float
    val_loss: float
    metrics: dict[str, float]
    grad_norms: list[float]
    dead_fraction: list[float]
    saturated_fraction: list[float]
    diverged: bool
    seconds: float
    stopped: bool = False  # early stopping (patience): this is the model's last record


# ------------------------------------------------------------ metrics


def macro_f1(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Macro-averaged F1 of predictions ``(..., n)`` against targets ``(n,)``, per leading index.

    F1_c = 2 TP_c / (predicted_c + true_c); the mean runs over the classes that occur in the targets
    or the predictions (scikit-learn's ``f1_score(average="macro", zero_division=0)``).
    """
    # counts are whole numbers, exact in float32 below 2**24 rows: MPS, which has no float64
    dt = torch.float32 if pred.device.type == "mps" else torch.float64
    pred_oh = nn.functional.one_hot(pred, n_classes).to(dt)
    true_oh = nn.functional.one_hot(target, n_classes).to(dt)
    tp = (pred_oh * true_oh).sum(-2)
    denom = pred_oh.sum(-2) + true_oh.sum(-2)
    present = denom > 0
    f1 = torch.where(present, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))
    return (f1.sum(-1) / present.sum(-1)).to(torch.float32)


def balanced_accuracy(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean recall over the classes present in ``target`` (scikit-learn's
    ``balanced_accuracy_score``), per leading index of ``pred`` ``(..., n)``."""
    dt = torch.float32 if pred.device.type == "mps" else torch.float64
    true_oh = nn.functional.one_hot(target, n_classes).to(dt)
    hit = (pred == target).to(dt)
    tp = (hit.unsqueeze(-1) * true_oh).sum(-2)
    count = true_oh.sum(-2)
    present = count > 0
    recall = torch.where(present, tp / count.clamp_min(1), torch.zeros_like(tp))
    return (recall.sum(-1) / present.sum(-1)).to(torch.float32)


def roc_auc(score: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary ROC AUC of scores ``(M, n)`` against 0/1 targets ``(n,)``, per model: the
    Mann-Whitney statistic with tied scores given their average rank (= scikit-learn's
    ``roc_auc_score``, which integrates the ROC curve with trapezoids); NaN with one class."""
    dt = torch.float32 if score.device.type == "mps" else torch.float64
    s = score.to(dt)
    ordered = s.sort(-1).values
    left = torch.searchsorted(ordered, s, right=False)
    right = torch.searchsorted(ordered, s, right=True)
    rank = (left + right + 1).to(dt) / 2  # 1-based average rank of each score
    pos = target.to(torch.bool)
    n_pos = int(pos.sum())
    n_neg = int(pos.numel()) - n_pos
    if n_pos == 0 or n_neg == 0:
        return torch.full(score.shape[:-1], math.nan, dtype=torch.float32, device=score.device)
    u = rank[..., pos].sum(-1) - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).to(torch.float32)


def _val_metrics(
    out_t: torch.Tensor, data: _Data, part: str = "val"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and metrics, each (M,), for transposed outputs ``(M, n_out, n_rows)`` of ``part``.

    ``part`` is "val" (every epoch) or "test" (once per model, with its best epoch's outputs);
    metric names carry it as a prefix: accuracy, balanced_accuracy, macro_f1, log_loss (= the loss)
    and, with two classes, roc_auc for classification; rmse, mae and r2 for regression (in the
    target's units). Classes along dim 1 (the MLP's native layout): log-softmax and argmax then run
    along contiguous rows of n_val values, ~10x faster than over a last dimension of ~10 classes.
    """
    y = data.y_test if part == "test" else data.y_val
    if data.classification:
        logp = torch.log_softmax(out_t, 1)
        loss = -logp.gather(1, y.expand(out_t.shape[0], 1, -1)).mean((1, 2))
        pred = out_t.max(1).indices  # = argmax(1) (first maximum), ~10x faster along dim 1
        acc = (pred == y).to(torch.float32).mean(-1)
        out = {f"{part}_accuracy": acc, f"{part}_macro_f1": macro_f1(pred, y, data.n_out),
               f"{part}_balanced_accuracy": balanced_accuracy(pred, y, data.n_out),
               f"{part}_log_loss": loss.to(torch.float32)}  # fmt: skip
        if data.n_out == 2:
            out[f"{part}_roc_auc"] = roc_auc(out_t[:, 1] - out_t[:, 0], y)
        return loss, out
    out = out_t.transpose(1, 2)
    err = (out - y).square()
    loss = err.mean((-2, -1))
    rmse = loss.sqrt() * data.target_scale  # targets were standardised by the split
    mae = (out - y).abs().mean((-2, -1)) * data.target_scale
    ss_res = err.sum(-2)
    ss_tot = (y - y.mean(0)).square().sum(0)
    # scikit-learn's r2_score with force_finite: a constant validation target gives 1 (perfect) or 0
    r2 = torch.where(
        ss_tot > 0,
        1 - ss_res / ss_tot.clamp_min(torch.finfo(torch.float32).tiny),
        (ss_res == 0).to(torch.float32),
    ).mean(-1)
    return loss, {f"{part}_rmse": rmse, f"{part}_r2": r2, f"{part}_mae": mae}


# ------------------------------------------------------------ data


class _Data:
    """The split as float32/int64 tensors on ``device`` (moved there once, after the checks)."""

    def __init__(self, split: Any, device: torch.device | str = "cpu") -> None:
        task = getattr(split, "task", None)
        if task not in ("classification", "regression"):
            raise ActlabError(f"split.task must be 'classification' or 'regression', got {task!r}")
        self.classification = task == "classification"
        try:
            self.X_train = torch.as_tensor(np.asarray(split.X_train, dtype=np.float32))
            self.X_val = torch.as_tensor(np.asarray(split.X_val, dtype=np.float32))
            ydt = np.int64 if self.classification else np.float32
            self.y_train = torch.as_tensor(np.asarray(split.y_train, dtype=ydt))
            self.y_val = torch.as_tensor(np.asarray(split.y_val, dtype=ydt))
        except (TypeError, ValueError) as err:
            raise ActlabError(f"split arrays must be numeric: {err}") from None
        # rows first; a --model network may take more dimensions (N x C x H x W images)
        if self.X_train.ndim < 2 or self.X_train.shape[1:] != self.X_val.shape[1:]:
            raise ActlabError(
                f"split.X_train and X_val must be 2-D (or rows of images) with the same columns, "
                f"got shapes {tuple(self.X_train.shape)} and {tuple(self.X_val.shape)}"
            )
        if len(self.X_train) == 0 or len(self.X_val) == 0:
            raise ActlabError("the training and validation parts must both have rows")
        if len(self.y_train) != len(self.X_train) or len(self.y_val) != len(self.X_val):
            raise ActlabError(
                "split: y_train / y_val must have one value per row of X_train / X_val"
            )
        if not (torch.isfinite(self.X_train).all() and torch.isfinite(self.X_val).all()):
            raise ActlabError("split: the features contain NaN or inf; clean or impute them first")
        if self.classification:
            self.n_out = int(getattr(split, "n_classes", 0))
            if self.n_out < 2:
                raise ActlabError(f"classification needs n_classes >= 2, got {self.n_out}")
            for name, y in (("y_train", self.y_train), ("y_val", self.y_val)):
                if y.ndim != 1 or int(y.min()) < 0 or int(y.max()) >= self.n_out:
                    raise ActlabError(f"split.{name} must hold class ids 0..{self.n_out - 1}")
            self.target_scale = 1.0
        else:
            if self.y_train.ndim == 1:
                self.y_train, self.y_val = self.y_train[:, None], self.y_val[:, None]
            if not (torch.isfinite(self.y_train).all() and torch.isfinite(self.y_val).all()):
                raise ActlabError("split: the regression target contains NaN or inf")
            self.n_out = int(self.y_train.shape[1])
            self.target_scale = float(getattr(split, "target_scale", 1.0))
        # the held-out test part (optional): scored once, after the final epoch
        X_test, y_test = getattr(split, "X_test", None), getattr(split, "y_test", None)
        self.X_test = self.y_test = None
        if X_test is not None and y_test is not None and len(X_test) > 0:
            self.X_test = torch.as_tensor(np.asarray(X_test, dtype=np.float32))
            ydt = np.int64 if self.classification else np.float32
            self.y_test = torch.as_tensor(np.asarray(y_test, dtype=ydt))
            if not self.classification and self.y_test.ndim == 1:
                self.y_test = self.y_test[:, None]
            if self.X_test.shape[1:] != self.X_train.shape[1:] or len(self.y_test) != len(
                self.X_test
            ):
                raise ActlabError("split.X_test / y_test must match X_train's columns and rows")
        parts = (self.X_train, self.y_train, self.X_val, self.y_val)  # hashed if no fingerprint
        self.fingerprint = (
            str(getattr(split, "fingerprint", ""))
            or hashlib.sha256(b"".join(t.numpy().tobytes() for t in parts)).hexdigest()
        )
        self.device = torch.device(device)
        if self.device.type != "cpu":
            self.X_train, self.y_train, self.X_val, self.y_val = (
                t.to(self.device) for t in (self.X_train, self.y_train, self.X_val, self.y_val)
            )
            if self.X_test is not None and self.y_test is not None:
                self.X_test, self.y_test = self.X_test.to(self.device), self.y_test.to(self.device)

    @property
    def n_train(self) -> int:
        return len(self.X_train)


def _loss_and_grad(
    out_t: torch.Tensor, y: torch.Tensor, classification: bool, loss: torch.Tensor,
    grad: torch.Tensor, minus_one: torch.Tensor,
) -> None:  # fmt: skip
    """Per-model mean loss into ``loss`` (M,) and its gradient into ``grad``, like ``out_t``.

    ``out_t`` holds transposed outputs ``(M, n_out, b)``; ``y`` is (M, b) class ids or (M, b, k)
    targets (views of the epoch's gathered rows). Cross-entropy / MSE with mean reduction, as in
    ``nn.CrossEntropyLoss()`` / ``nn.MSELoss()``: d(loss)/d(logits) = (softmax - onehot) / b.
    ``minus_one`` is a (M, 1, b) tensor of -1 (kept by the caller: one allocation less per step).
    """
    b = out_t.shape[2]
    if classification:
        idx = y.unsqueeze(1)
        torch.log_softmax(out_t, 1, out=grad)
        torch.mean(grad.gather(1, idx), (1, 2), out=loss).neg_()
        grad.exp_().scatter_add_(1, idx, minus_one).div_(b)
        return
    diff = torch.sub(out_t, y.transpose(1, 2), out=grad)
    torch.mean(diff.square(), (1, 2), out=loss)
    diff.mul_(2.0 / diff[0].numel())


# ------------------------------------------------------------ activations


# the ATen kernels behind a native activation module (its definition's ``fast``): ``fwd(z, out)``
# is what the module's forward calls, ``bwd(g, z, h, out)`` = g * f'(z) the kernel autograd runs
# for it, so the batched backward matches a plain loop's; None: through autograd
_fast_path = fast_path


class _Group:
    """The contiguous slice of stacked models that share one activation."""

    def __init__(self, act: Any, start: int, stop: int) -> None:
        from actlab.torch import build

        self.act, self.start, self.stop = act, start, stop
        self.module = build(act)
        if getattr(self.module, "inplace", False):
            self.module.inplace = False  # the backward needs the pre-activation intact
        self.fast = _fast_path(self.module)
        self.graphs: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}  # slow path's last forward

    def forward_call(self, z: torch.Tensor, out: torch.Tensor, key: Any) -> Callable[[], Any]:
        """A call without arguments that writes f(z) into ``out`` (both: this group's rows).

        Slow path: autograd on this slice only, its graph kept under ``key`` for the backward.
        """
        if self.fast is not None:
            return partial(self.fast[0], z, out)
        return partial(self._autograd_forward, z, out, key)

    def backward_call(
        self, g: torch.Tensor, z: torch.Tensor, h: torch.Tensor, out: torch.Tensor, key: Any
    ) -> Callable[[], Any]:
        """A call without arguments that writes g * f'(z) into ``out`` (h = f(z))."""
        if self.fast is not None:
            return partial(self.fast[1], g, z, h, out)
        return partial(self._autograd_backward, g, out, key)

    def _autograd_forward(self, z: torch.Tensor, out: torch.Tensor, key: Any) -> None:
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            hg = self.module(zg)
        out.copy_(hg.detach())
        self.graphs[key] = zg, hg

    def _autograd_backward(self, g: torch.Tensor, out: torch.Tensor, key: Any) -> None:
        zg, hg = self.graphs.pop(key)
        out.copy_(torch.autograd.grad(hg, zg, g)[0])


def _check_activation(act: Any) -> None:
    if not act.spec.elementwise:
        raise ActlabError(
            f"activation '{act}' is not elementwise (it mixes units), so it cannot be a "
            "hidden-layer activation; it belongs on the output side, where compare already uses it "
            "inside the loss (the network emits logits). Compare hidden activations instead, "
            "e.g. --activations relu,gelu,silu"
        )


# ------------------------------------------------------------ trainers


class _Trainer(Protocol):
    """What train() asks of a trainer (``_MLP``, ``_Vmapped``, ``_OneByOne``); its M models are
    rows, in the order of the job indices it was given."""

    frozen: torch.Tensor  # (M,) bool on the CPU: diverged models, no longer trained
    units: int  # progress steps per batch: 1, or M when the models train one at a time

    # one epoch over row orders perms (M, n): mean loss (M,), grad norms (M, layers)
    def run_epoch(self, perms: torch.Tensor, on_step: Callable[[], None]) -> tuple[Any, Any]: ...
    # validation outputs (M, n_out, n_val), dead and saturated fractions (M, layers)
    def evaluate(self) -> tuple[torch.Tensor, Any, Any]: ...
    def outputs(self, X: torch.Tensor) -> torch.Tensor: ...  # (M, n_out, rows) on X
    def freeze(self, rows: torch.Tensor) -> None: ...  # zero them; no more updates
    def state(self) -> dict[str, Any]: ...
    def load_state(self, state: dict[str, Any]) -> None: ...


class _MLP:
    """All models of the default MLP, stacked; rows are models, grouped by activation.

    Hidden layers: ``W[l]`` (M, in, out), ``b[l]`` (M, 1, out). The output layer is kept the other
    way round, ``W[-1]`` (M, n_out, in) and ``b[-1]`` (M, n_out, 1) (nn.Linear's layout), and
    computes transposed logits (M, n_out, batch): with few outputs that orientation is ~3x faster in
    MKL, and log-softmax over dim 1 vectorises along the batch.

    What makes it fast (each measured; see benchmarks/compare_speed.py):

    * one flat buffer holds every parameter (weights, then biases; each a contiguous view) and
      another every gradient, so the backward pass writes gradients in place with ``out=`` (no
      allocation, no zeroing) and Adam runs one fused kernel per layer inside the backward, on
      views of those buffers and of its moments (SGD: one update of the flat tensor after it).
      Both are elementwise, so either is the per-tensor update, bit for bit;
    * a step's kernels are bound once per batch size (``_plan``) to persistent buffers and their
      per-group slices, as ``functools.partial`` calls: a step is then mostly a loop of C-level
      calls. Building each call afresh (slicing, argument lists) cost as much as the elementwise
      kernels and held the GIL that the other worker thread waits for;
    * activations write into contiguous buffers only: several ATen ``out=`` kernels (gelu, silu,
      elu, sigmoid...) give wrong values for a strided ``out`` in PyTorch 2.13.
    """

    def __init__(self, acts: list[Any], seeds: list[int], data: _Data, config: TrainConfig) -> None:
        self.data, self.config = data, config
        m = len(acts)
        sizes = [data.X_train.shape[1]] + [config.width] * config.depth + [data.n_out]
        self.shapes = [(m, i, o) for i, o in itertools.pairwise(sizes[:-1])]
        self.shapes.append((m, sizes[-1], sizes[-2]))
        self.shapes += [(m, 1, o) for o in sizes[1:-1]] + [(m, sizes[-1], 1)]
        self.n_weights = len(sizes) - 1
        self.device = dev = data.device  # every tensor lives there; initialised on the CPU first
        self.flat = torch.zeros(sum(math.prod(s) for s in self.shapes), device=dev)
        self.flat.grad = torch.zeros_like(self.flat)
        self.params = self._views(self.flat)
        self.W, self.b = self.params[: self.n_weights], self.params[self.n_weights :]
        grads = self._views(self.flat.grad)
        self.gW, self.gb = grads[: self.n_weights], grads[self.n_weights :]
        for k, (act, seed) in enumerate(zip(acts, seeds, strict=True)):
            g = torch.Generator().manual_seed(seed)
            scheme = init_scheme(act, config.init)
            for layer, (i, o) in enumerate(itertools.pairwise(sizes)):
                w, bias = torch.empty(o, i), torch.empty(o)
                init_linear(w, bias, scheme, act if layer < config.depth else None, g)
                self.W[layer][k] = w if layer == config.depth else w.T
                self.b[layer][k] = bias.view(self.b[layer].shape[1:])
        self.groups: list[_Group] = []
        start = 0
        for k in range(1, m + 1):
            if k == m or str(acts[k]) != str(acts[start]):
                self.groups.append(_Group(acts[start], start, k))
                start = k
        self.optimizer = _Optimizer([self.flat], config)
        self.mask = torch.ones(m, 1, 1, device=dev)
        self.frozen = torch.zeros(m, dtype=torch.bool)  # on the CPU: read every epoch
        self.units = 1
        # NaN marks "not measured": saturation only means something for bounded activations
        measured = [measures_saturation(a) for a in acts]
        self.saturation_scale = torch.tensor([1.0 if m else math.nan for m in measured], device=dev)
        rows = [k for k, m in enumerate(measured) if m] or [0, -1]
        self.measured = slice(rows[0], rows[-1] + 1)  # the rows whose saturation is counted
        self._plans: dict[tuple[str, int], SimpleNamespace] = {}
        self._blocks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The per-layer tensors (weights, then biases) as contiguous views of a flat buffer."""
        sizes = [math.prod(s) for s in self.shapes]
        return [v.view(s) for v, s in zip(flat.split(sizes), self.shapes, strict=True)]

    def _parts(self, t: torch.Tensor) -> list[torch.Tensor]:
        """``t``'s rows of each activation group."""
        return [t[gr.start : gr.stop] for gr in self.groups]

    def _plan(self, tag: str, rows: int) -> SimpleNamespace:
        """Buffers and bound kernel calls of a pass over ``rows`` rows per model, made once.

        The buffers persist (fresh multi-MB tensors every step page-fault on first touch).

        ``tag`` "t" (training step: forward and backward) or "e" (evaluation: forward and f'(z)).
        Layer 0's product is left to the caller: its input changes every call. Fields: ``z``,
        ``h`` (per hidden layer, (M, rows, width)), ``out`` (M, n_out, rows); ``forward``: the
        calls from layer 0's activation to the logits; training: ``g_t`` (d loss / d logits),
        ``backward`` (down to layer 0's pre-activation gradient ``gz[0]`` and bias gradient, each
        weight gradient's per-model norm into ``norm``), ``finish`` (layer 0's norm); evaluation:
        ``derivative[k]`` (f'(z) of hidden layer k into ``d``).
        """
        plan = self._plans.get((tag, rows))
        if plan is not None:
            return plan
        m, depth, dev = len(self.mask), self.n_weights - 1, self.device
        W, b, gW, gb = self.W, self.b, self.gW, self.gb
        p = SimpleNamespace()
        p.z = [torch.empty(m, rows, W[k].shape[2], device=dev) for k in range(depth)]
        p.h = [torch.empty_like(z) for z in p.z]
        p.out = torch.empty(m, W[-1].shape[1], rows, device=dev)
        p.forward = []
        for k in range(depth):
            for gr, z, h in zip(self.groups, self._parts(p.z[k]), self._parts(p.h[k]), strict=True):
                p.forward.append(gr.forward_call(z, h, (tag, rows, k)))
            if k + 1 < depth:
                p.forward.append(partial(torch.baddbmm, b[k + 1], p.h[k], W[k + 1], out=p.z[k + 1]))
        p.forward.append(partial(torch.baddbmm, b[-1], W[-1], p.h[-1].transpose(1, 2), out=p.out))

        def act_backward(g: torch.Tensor, k: int, out: torch.Tensor) -> list[Callable[[], Any]]:
            parts = [self._parts(t) for t in (g, p.z[k], p.h[k], out)]
            return [
                gr.backward_call(*args, (tag, rows, k))
                for gr, *args in zip(self.groups, *parts, strict=True)
            ]

        if tag == "e":
            # f'(z) = the backward of a gradient of ones, one layer at a time into one buffer
            p.d = torch.empty_like(p.z[0])
            ones = torch.ones(1, 1, 1, device=dev).expand(p.d.shape)
            p.derivative = [act_backward(ones, k, p.d) for k in range(depth)]
            self._plans[tag, rows] = p
            return p
        p.g_t = torch.empty_like(p.out)
        p.minus_one = torch.full((m, 1, rows), -1.0, device=dev)
        p.gh = [torch.empty_like(z) for z in p.z]  # d loss / d h
        p.gz = [torch.empty_like(z) for z in p.z]  # d loss / d z
        p.loss = torch.empty(m, device=dev)
        p.norm = torch.empty(self.n_weights, m, device=dev)  # per layer and model: |grad W|

        def norm(k: int) -> Callable[[], Any]:  # right after gW[k] is written: still in cache
            return partial(torch.linalg.vector_norm, gW[k], dim=(1, 2), out=p.norm[k])

        def update(k: int) -> list[Callable[[], Any]]:
            """Adam on layer k once its weights are no longer needed in this step: its weights
            and gradients are still in cache (one fused call per layer = the flat update)."""
            if not self.optimizer.adam:
                return []
            st = self.optimizer.moments_of(0)
            m, v, j = self._views(st["exp_avg"]), self._views(st["exp_avg_sq"]), self.n_weights + k
            lists = [W[k], b[k]], [gW[k], gb[k]], [m[k], m[j]], [v[k], v[j]], [], [st["step"]] * 2
            return [partial(torch._fused_adam_, *lists, **self.optimizer.adam_args)]

        p.backward = [
            partial(torch.bmm, p.g_t, p.h[-1], out=gW[-1]),
            norm(depth),
            partial(torch.sum, p.g_t, dim=2, keepdim=True, out=gb[-1]),
            # the transposed view runs as fast as a contiguous copy would (measured, these shapes)
            partial(torch.bmm, p.g_t.transpose(1, 2), W[-1], out=p.gh[-1]),
            *update(depth),
        ]
        for k in range(depth - 1, -1, -1):
            p.backward += act_backward(p.gh[k], k, p.gz[k])
            p.backward.append(partial(torch.sum, p.gz[k], dim=1, keepdim=True, out=gb[k]))
            if k > 0:
                p.backward += [
                    partial(torch.bmm, p.h[k - 1].transpose(1, 2), p.gz[k], out=gW[k]),
                    norm(k),
                    partial(torch.bmm, p.gz[k], W[k].transpose(1, 2), out=p.gh[k - 1]),
                    *update(k),
                ]
        p.finish = [norm(0), *update(0)]  # after the caller's layer-0 weight gradient
        self._plans[tag, rows] = p
        return p

    def _gather(self, perms: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each model's rows ``perms[:, lo:hi]`` of the training data, (M, rows, ...), in one op.

        A block of many steps at once: per-step gathers of a few rows per model cost more in call
        overhead and cache misses than the copy itself. Steps take strided views of the block,
        which MKL's batched products read without a copy.
        """
        X, Y = self.data.X_train, self.data.y_train
        m = perms.shape[0]
        if hi - lo not in self._blocks:
            self._blocks[hi - lo] = (
                torch.empty(m, hi - lo, X.shape[1], device=X.device),
                torch.empty(m, hi - lo, *Y.shape[1:], dtype=Y.dtype, device=X.device),
            )
        x, y = self._blocks[hi - lo]
        idx = perms[:, lo:hi].reshape(-1)
        torch.index_select(X, 0, idx, out=x.view(-1, X.shape[1]))
        torch.index_select(Y, 0, idx, out=y.view(-1, *Y.shape[1:]))
        return x, y

    @torch.no_grad()
    def run_epoch(
        self, perms: torch.Tensor, on_step: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m, n = perms.shape
        bs = self.config.batch_size
        steps = math.ceil(n / bs)
        classification = self.data.classification
        frozen = bool(self.frozen.any())
        loss_sum = torch.zeros(m, device=self.device)
        norm_sum = torch.zeros(self.n_weights, m, device=self.device)
        row_bytes = m * self.data.X_train.shape[1] * 4
        block = bs * max(1, _GATHER_BYTES // (row_bytes * bs))  # rows gathered at once
        adam = self.optimizer.adam  # Adam runs inside the backward, layer by layer (_plan)
        step = self.optimizer.moments_of(0)["step"] if adam else None
        for s in range(steps):
            lo, hi = s * bs, min(n, (s + 1) * bs)
            if lo % block == 0:
                X, Y = self._gather(perms, lo, min(n, lo + block))
            x, y = X[:, lo % block : lo % block + hi - lo], Y[:, lo % block : lo % block + hi - lo]
            p = self._plans.get(("t", hi - lo)) or self._plan("t", hi - lo)
            torch.baddbmm(self.b[0], x, self.W[0], out=p.z[0])
            for call in p.forward:
                call()
            _loss_and_grad(p.out, y, classification, p.loss, p.g_t, p.minus_one)
            if frozen:
                p.g_t.mul_(self.mask)  # frozen (diverged) models get exactly zero gradients
            if step is not None:
                step.add_(1)
            for call in p.backward:
                call()
            torch.bmm(x.transpose(1, 2), p.gz[0], out=self.gW[0])
            for call in p.finish:
                call()
            loss_sum += p.loss
            norm_sum += p.norm
            if not adam:
                self.optimizer.step()
            on_step()
        return loss_sum / steps, (norm_sum / steps).T

    @staticmethod
    def _health(
        d: torch.Tensor, work: torch.Tensor, rows: slice = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``unit_health(d)`` for derivatives ``d`` (M, rows, units), saturation counted on the
        models ``rows`` only (0 elsewhere); overwrites ``d`` and ``work``.

        Same definitions and values (a test checks) at a third of the cost: no boolean
        temporaries (reducing or converting bool tensors is slow in ATen), |f'| in place, dead =
        max |f'| == 0 (``aminmax`` along rows is ~8x slower), saturated = the fraction of rows
        with |f'| < 0.01 above one half, the rows counted as a float32 sum of 0/1 (exact below
        2**24 rows).
        """
        a = d.abs_()
        dead = a.amax(1) == 0
        saturated = torch.zeros_like(dead)
        small = torch.lt(a[rows], SATURATION, out=work[rows])
        saturated[rows] = (small.sum(1) / a.shape[1] > MAJORITY) & ~dead[rows]
        return dead.to(torch.float32).mean(-1), saturated.to(torch.float32).mean(-1)

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs, dead, sat = [], [], []
        for c0, p in self._forward_chunks(self.data.X_val):
            outs.append(p.out.clone())
            if c0 == 0:  # unit health from the first chunk
                for z, calls in zip(p.z, p.derivative, strict=True):
                    for call in calls:
                        call()
                    dd, ss = self._health(p.d, z, self.measured)  # z: no longer needed
                    dead.append(dd)
                    sat.append(ss * self.saturation_scale)
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 2)
        return out, torch.stack(dead, 1), torch.stack(sat, 1)

    @torch.no_grad()
    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs (M, n_out, rows) on ``X`` (the test part): forward only, no unit health."""
        outs = [p.out.clone() for _, p in self._forward_chunks(X)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 2)

    def _forward_chunks(self, X: torch.Tensor) -> Iterator[tuple[int, Any]]:
        """(first row, plan) per chunk of ``_EVAL_ROWS`` rows of ``X``, after the forward pass;
        the plan's buffers are reused by the next chunk."""
        m = len(self.mask)
        for c0 in range(0, len(X), _EVAL_ROWS):
            x = X[c0 : c0 + _EVAL_ROWS]
            p = self._plan("e", len(x))
            torch.baddbmm(self.b[0], x.expand(m, -1, -1), self.W[0], out=p.z[0])
            for call in p.forward:
                call()
            yield c0, p

    def freeze(self, rows: torch.Tensor) -> None:
        """Zero the weights and optimiser state of ``rows`` and mask their gradients from now on."""
        with torch.no_grad():
            for flat in [self.flat, *self.optimizer.moments(0)]:
                for p in self._views(flat):
                    p[rows] = 0
            self.mask[rows] = 0
            self.frozen[rows] = True

    def state(self) -> dict[str, Any]:
        return {
            "params": [p.clone() for p in self.params],
            "optimizer": self.optimizer.state_dict(),
            "mask": self.mask.clone(),
            "frozen": self.frozen.clone(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"], strict=True):
                p.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self._plans.clear()  # they hold views of the optimiser state
        self.mask.copy_(state["mask"])
        self.frozen.copy_(state["frozen"])


class _Optimizer:
    """``torch.optim.Adam(fused=True)`` / ``torch.optim.SGD`` on ``params`` (their ``.grad``),
    bit for bit (a test compares), without ``torch.optim``: constructing one of its optimisers
    imports ``torch._dynamo`` (~1.5 s, once per process) and its step's Python layer costs about
    as much as the fused kernel here. Adam's state appears at a tensor's first step with a
    gradient, and ``state_dict()`` keeps torch.optim's ``{"state": {index: {"step", "exp_avg",
    "exp_avg_sq"}}}``, so checkpoints written through torch.optim still load. Fused Adam misreads a
    gradient laid out unlike its parameter (PyTorch 2.13): callers keep ``.grad`` contiguous.
    """

    def __init__(self, params: list[torch.Tensor], config: TrainConfig) -> None:
        self.params, self.lr, self.decay = params, config.lr, config.weight_decay
        self.adam = config.optimizer == "adam"
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        live = [(k, p) for k, p in enumerate(self.params) if p.grad is not None]
        if not self.adam:
            for _, p in live:  # torch.optim.SGD's single-tensor update (momentum 0)
                p.add_(p.grad.add(p, alpha=self.decay) if self.decay else p.grad, alpha=-self.lr)
            return
        st = [self.moments_of(k) for k, _ in live]
        steps = [s["step"] for s in st]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_([p for _, p in live], [p.grad for _, p in live],
                           [s["exp_avg"] for s in st], [s["exp_avg_sq"] for s in st], [], steps,
                           **self.adam_args)  # fmt: skip

    @property
    def adam_args(self) -> dict[str, Any]:
        """``torch._fused_adam_``'s keywords: torch.optim.Adam's defaults, this lr and decay."""
        return {"amsgrad": False, "lr": self.lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                "weight_decay": self.decay, "maximize": False, "grad_scale": None,
                "found_inf": None}  # fmt: skip

    def moments_of(self, k: int) -> dict[str, torch.Tensor]:
        """Adam's state of parameter ``k``, made (zero) if it has none yet."""
        if k not in self.state:
            p = self.params[k]
            zero = partial(torch.zeros_like, p, memory_format=torch.preserve_format)
            self.state[k] = {"step": torch.zeros((), device=p.device),
                             "exp_avg": zero(), "exp_avg_sq": zero()}  # fmt: skip
        return self.state[k]

    def moments(self, k: int) -> list[torch.Tensor]:
        """Adam's moments of parameter ``k`` (shaped like it; none yet, or for SGD: [])."""
        return [v for n, v in self.state.get(k, {}).items() if n != "step"]

    def state_dict(self) -> dict[str, Any]:
        return {"state": {k: {n: v.clone() for n, v in s.items()} for k, s in self.state.items()}}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = {
            int(k): {n: v.to(self.params[int(k)].device, torch.float32 if n == "step" else v.dtype)
                     for n, v in s.items()}
            for k, s in saved["state"].items()
        }  # fmt: skip


# ------------------------------------------------------------ bring your own network


def _build_net(
    factory: Callable[[str], Any], act: Any, seed: int, data: _Data, config: TrainConfig
) -> nn.Module:
    where = f"model: {config.model}('{act}')"
    with torch.random.fork_rng(devices=[]), guarded(where):
        torch.manual_seed(seed)
        try:
            net = factory(str(act))
        except ActlabError:
            raise
        except Exception as err:
            raise ActlabError(f"{where} raised {type(err).__name__}: {err}") from None
    if not isinstance(net, nn.Module):
        raise ActlabError(
            f"{where} returned {type(net).__name__}; it must return a torch.nn.Module"
        )
    if not any(p.requires_grad for p in net.parameters()):
        raise ActlabError(
            f"{where}: the network has no trainable parameters (nn.Identity, or every parameter "
            "set to requires_grad_(False)), so there is nothing to train; return a network with "
            "learnable layers such as nn.Linear"
        )
    net = net.float().cpu()  # initialised with a CPU generator, then moved to the device
    if config.init not in ("auto", "torch"):
        g = torch.Generator().manual_seed(seed)
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for k, lin in enumerate(linears):
                hidden = k < len(linears) - 1
                init_linear(lin.weight, lin.bias, config.init, act if hidden else None, g)
    net = net.to(data.device)
    try:
        net.eval()
        with guarded(f"{where}: its forward"), torch.enable_grad():
            out = net(data.X_train[:2])
        net.train()
    except ActlabError:
        raise
    except Exception as err:
        raise ActlabError(
            f"{where}: the network fails on a batch of shape {tuple(data.X_train[:2].shape)}: "
            f"{type(err).__name__}: {err}"
        ) from None
    if isinstance(out, torch.Tensor) and not (out.is_floating_point() and out.requires_grad):
        raise ActlabError(
            f"{where}: its output (dtype {str(out.dtype).replace('torch.', '')}) has no gradient "
            "with respect to the network's parameters (.detach(), torch.no_grad() or an integer "
            "result cut it), so training cannot change it; return the last layer's float output"
        )
    out = out.detach() if isinstance(out, torch.Tensor) else out
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, data.n_out):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ActlabError(
            f"{where}: for a batch of shape {tuple(data.X_train[:2].shape)} the network must "
            "return "
            f"{'logits' if data.classification else 'predictions'} of shape (2, {data.n_out}), "
            f"got {shape}"
        )
    return net


_batch_loss = loss  # the one loss (actlab.nets)


def _weight_names(net: nn.Module) -> list[str]:
    return [k for k, p in net.named_parameters() if k.endswith("weight") and p.ndim >= 2]


class _Health:
    """Hooks on a network's elementwise activation modules: unit health per call, in order."""

    def __init__(self, net: nn.Module) -> None:
        from actlab.catalog import parse
        from actlab.torch import catalog_name

        self.results: list[tuple[float, float]] = []
        self.handles = []
        self.saturation: dict[int, bool] = {}  # per module: is saturation meaningful for it?
        for m in net.modules():
            name = catalog_name(m)
            if name is not None and parse(name).spec.elementwise:
                # by name: the rule depends on the spec alone, and the base module of a vmapped
                # network lives on the meta device (identify() would read its parameters)
                self.saturation[id(m)] = measures_saturation(parse(name))
                self.handles.append(m.register_forward_hook(self._hook))

    def _hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not args or not isinstance(args[0], torch.Tensor) or args[0].ndim < 2:
            return
        with torch.enable_grad():
            z = args[0].detach().requires_grad_(True)
            h = module.forward(z)  # .forward: calling the module would re-enter this hook
            d = torch.autograd.grad(h, z, torch.ones_like(h))[0]
        dead, sat = unit_health(d.reshape(d.shape[0], -1))
        measured = self.saturation[id(module)]
        self.results.append((float(dead), float(sat) if measured else math.nan))

    def measure(self, run: Callable[[], Any]) -> tuple[list[float], list[float]]:
        """Dead and saturated fractions of each hooked call while ``run()`` runs."""
        self.results = []
        run()
        return [r[0] for r in self.results], [r[1] for r in self.results]

    def __enter__(self) -> _Health:
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


class _Vmapped:
    """The seeds of one activation of a user network, batched with torch.func."""

    def __init__(self, nets: list[nn.Module], data: _Data, config: TrainConfig) -> None:
        self.data, self.config = data, config
        self.params, self.buffers = torch.func.stack_module_state(nets)
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.weights = _weight_names(nets[0])
        self.n_weights = len(self.weights)
        for p in self.params.values():
            p.grad = torch.zeros_like(p)
        self.optimizer = _Optimizer(list(self.params.values()), config)
        self.frozen = torch.zeros(len(nets), dtype=torch.bool)
        self.mask = torch.ones(len(nets), device=data.device)
        self.units = 1

        def call(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(self.base, (p, b), (x,))

        self.call = torch.func.vmap(call, in_dims=(0, 0, 0), randomness="error")
        self.call_shared = torch.func.vmap(call, in_dims=(0, 0, None), randomness="error")

    def dry_run(self) -> None:
        """Raise if the network cannot run under vmap (tried on copies, nothing changes)."""
        p = {k: v.detach().clone().requires_grad_(True) for k, v in self.params.items()}
        b = {k: v.clone() for k, v in self.buffers.items()}
        n = len(self.frozen)
        x = self.data.X_train[:2].expand(n, 2, -1)
        y = self.data.y_train[:2].expand(n, *self.data.y_train[:2].shape)
        self.base.train()
        loss = _batch_loss(self.call(p, b, x), y, self.data.classification).sum()
        torch.autograd.grad(loss, list(p.values()), allow_unused=True)
        self.base.eval()
        with torch.no_grad():
            self.call_shared(p, b, self.data.X_val[:2])

    def run_epoch(
        self, perms: torch.Tensor, on_step: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        X, Y = self.data.X_train, self.data.y_train
        n_models, n = perms.shape
        bs = self.config.batch_size
        steps = math.ceil(n / bs)
        loss_sum = torch.zeros(n_models, device=X.device)
        norm_sum = torch.zeros(n_models, self.n_weights, device=X.device)
        plist = list(self.params.values())
        self.base.train()
        for s in range(steps):
            idx = perms[:, s * bs : (s + 1) * bs].reshape(-1)
            x = X.index_select(0, idx).view(n_models, -1, *X.shape[1:])
            y = Y.index_select(0, idx).view(n_models, -1, *Y.shape[1:])
            loss = _batch_loss(self.call(self.params, self.buffers, x), y, self.data.classification)
            grads = torch.autograd.grad((loss * self.mask).sum(), plist, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(plist, grads, strict=True):
                    # fused Adam needs gradients laid out like their parameters (vmap's may be
                    # transposed)
                    if g is None:
                        p.grad.zero_()
                    else:
                        p.grad.copy_(g)
                loss_sum += loss.detach()
                for k, name in enumerate(self.weights):
                    norm_sum[:, k] += torch.linalg.vector_norm(
                        self.params[name].grad.flatten(1), dim=1
                    )
                self.optimizer.step()
            on_step()
        return loss_sum / steps, norm_sum / steps

    @torch.no_grad()
    def outputs(self, X: torch.Tensor, transpose: bool = True) -> torch.Tensor:
        """Outputs (M, n_out, rows) on ``X`` (the test part), or (M, rows, n_out) untransposed."""
        self.base.eval()
        out = self.call_shared(self.params, self.buffers, X)
        return out.transpose(1, 2) if transpose else out

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, list[list[float]], list[list[float]]]:
        self.base.eval()
        out = self.outputs(self.data.X_val, transpose=False)
        with _Health(self.base) as probe:
            health = [probe.measure(partial(
                torch.func.functional_call, self.base, ({n: v[k] for n, v in self.params.items()},
                {n: v[k] for n, v in self.buffers.items()}), (self.data.X_val[:_EVAL_ROWS],),
            )) for k in range(len(self.frozen))]  # fmt: skip
        return out.transpose(1, 2), [h[0] for h in health], [h[1] for h in health]

    def freeze(self, rows: torch.Tensor) -> None:
        with torch.no_grad():
            for k, p in enumerate(self.params.values()):
                for t in [p, *self.optimizer.moments(k)]:
                    t[rows] = 0
            self.mask[rows] = 0
            self.frozen[rows] = True

    def state(self) -> dict[str, Any]:
        return {
            "params": {k: v.detach().clone() for k, v in self.params.items()},
            "buffers": {k: v.clone() for k, v in self.buffers.items()},
            "optimizer": self.optimizer.state_dict(),
            "frozen": self.frozen.clone(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for k, v in self.params.items():
                v.copy_(state["params"][k])
            for k, v in self.buffers.items():
                v.copy_(state["buffers"][k])
        self.optimizer.load_state_dict(state["optimizer"])
        self.frozen.copy_(state["frozen"])
        self.mask.copy_((~self.frozen).to(torch.float32))


def _device_rng(device: torch.device) -> tuple[Callable[[], Any], Callable[[Any], Any]] | None:
    """Get/set of an accelerator's global generator (dropout on a GPU draws from it), or None."""
    if device.type == "cuda":
        return partial(torch.cuda.get_rng_state, device), partial(
            torch.cuda.set_rng_state, device=device
        )
    if device.type == "mps":
        return torch.mps.get_rng_state, torch.mps.set_rng_state
    return None


class _OneByOne:
    """User networks vmap cannot batch (dropout, in-place buffer updates...): a plain loop each."""

    def __init__(self, nets: list[nn.Module], data: _Data, config: TrainConfig) -> None:
        self.nets, self.data, self.config = nets, data, config
        self.optimizers = [_Optimizer(list(net.parameters()), config) for net in nets]
        self.n_weights = len(_weight_names(nets[0]))
        self.frozen = torch.zeros(len(nets), dtype=torch.bool)
        self.units = len(nets)
        # each model's own global-RNG stream (dropout masks...), seeded like its initialisation;
        # on an accelerator also its generator's stream (the caller's streams are restored)
        self.dev_rng = _device_rng(data.device)
        self.rng, self.device_rng = [], []
        for net in nets:
            saved = self.dev_rng[0]() if self.dev_rng else None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(net._actlab_seed)  # type: ignore[attr-defined]
                self.rng.append(torch.get_rng_state())
                if self.dev_rng:
                    self.device_rng.append(self.dev_rng[0]())
                    self.dev_rng[1](saved)

    def run_epoch(
        self, perms: torch.Tensor, on_step: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        X, Y = self.data.X_train, self.data.y_train
        n_models, n = perms.shape
        bs = self.config.batch_size
        steps = math.ceil(n / bs)
        loss_sum = torch.zeros(n_models, device=X.device)
        norm_sum = torch.zeros(n_models, self.n_weights, device=X.device)
        for k, (net, opt) in enumerate(zip(self.nets, self.optimizers, strict=True)):
            if self.frozen[k]:
                for _ in range(steps):
                    on_step()
                continue
            weights = [dict(net.named_parameters())[w] for w in _weight_names(net)]
            net.train()
            saved = self.dev_rng[0]() if self.dev_rng else None
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self.rng[k])
                if self.dev_rng:
                    self.dev_rng[1](self.device_rng[k])
                for s in range(steps):
                    idx = perms[k, s * bs : (s + 1) * bs]
                    loss = _batch_loss(net(X[idx]), Y[idx], self.data.classification)
                    net.zero_grad(set_to_none=False)
                    loss.backward()
                    with torch.no_grad():
                        loss_sum[k] += loss.detach()
                        for j, w in enumerate(weights):
                            if w.grad is not None:
                                norm_sum[k, j] += torch.linalg.vector_norm(w.grad)
                    opt.step()
                    on_step()
                self.rng[k] = torch.get_rng_state()
                if self.dev_rng:
                    self.device_rng[k] = self.dev_rng[0]()
                    self.dev_rng[1](saved)
        return loss_sum / steps, norm_sum / steps

    @torch.no_grad()
    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        outs = []
        for net in self.nets:
            net.eval()
            outs.append(net(X))
        return torch.stack(outs).transpose(1, 2)

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, list[list[float]], list[list[float]]]:
        health = []
        for net in self.nets:
            net.eval()
            with _Health(net) as probe:
                health.append(probe.measure(partial(net, self.data.X_val[:_EVAL_ROWS])))
        return self.outputs(self.data.X_val), [h[0] for h in health], [h[1] for h in health]

    def freeze(self, rows: torch.Tensor) -> None:
        for k in rows.tolist():
            self.frozen[k] = True
            with torch.no_grad():
                for p in self.nets[k].parameters():
                    p.zero_()
            self.optimizers[k].state.clear()

    def state(self) -> dict[str, Any]:
        return {
            "nets": [net.state_dict() for net in self.nets],
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "rng": [r.clone() for r in self.rng],
            "frozen": self.frozen.clone(),
            **({"device_rng": [r.clone() for r in self.device_rng]} if self.dev_rng else {}),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for net, sd in zip(self.nets, state["nets"], strict=True):
            net.load_state_dict(sd)
        for opt, sd in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        self.rng = [r.clone() for r in state["rng"]]
        if self.dev_rng and "device_rng" in state:  # absent when resumed from a CPU run
            self.device_rng = [r.clone() for r in state["device_rng"]]
        self.frozen.copy_(state["frozen"])


# ------------------------------------------------------------ the loop


def check_jobs(jobs: Sequence[Job]) -> list[Any]:
    """Validate ``jobs`` (clear errors before anything is trained or stored); their Activations."""
    from actlab.catalog import parse

    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence) or len(jobs) == 0:
        raise ActlabError("jobs must be a non-empty sequence of Job(activation, seed)")
    acts, seen = [], set()
    for k, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise ActlabError(
                f"jobs[{k}] must be a Job(activation, seed), got {type(job).__name__}"
            )
        if (
            isinstance(job.seed, bool)
            or not isinstance(job.seed, (int, np.integer))
            or not 0 <= job.seed < 2**32
        ):
            raise ActlabError(f"jobs[{k}]: seed must be an integer in [0, 2**32), got {job.seed!r}")
        act = parse(job.activation)
        _check_activation(act)
        key = (str(act), int(job.seed))
        if key in seen:
            raise ActlabError(
                f"jobs[{k}] repeats activation '{act}' with seed {job.seed}; give each pair once"
            )
        seen.add(key)
        acts.append(act)
    return acts


def _first_nets(jobs: Sequence[Job], split: Any, config: TrainConfig) -> dict[str, nn.Module]:
    """The user's network built for each activation (first seed), checked (``_build_net``)."""
    acts, data = check_jobs(jobs), _Data(split)
    factory = load_function(str(config.model))
    nets: dict[str, nn.Module] = {}
    for act, job in zip(acts, jobs, strict=True):
        if str(act) not in nets:
            nets[str(act)] = _build_net(factory, act, int(job.seed), data, config)
    return nets


def model_signature(jobs: Sequence[Job], split: Any, config: TrainConfig) -> dict[str, Any]:
    """What a resumed run must find unchanged in the user's ``--model``: a hash of its source
    file and the parameter shapes of the network built for each activation (first seed).

    Building the networks checks the model too (missing file, syntax error, raising function,
    non-Module, wrong output shape), so a rejected one stops the run before its folder is made.
    Empty for the built-in MLP (its shapes follow from the stored settings)."""
    if config.model is None:
        return {}
    import inspect

    nets = _first_nets(jobs, split, config)
    factory = load_function(config.model)
    try:  # the whole file: an edit anywhere in it (a helper, a constant) can change the network
        path = inspect.getsourcefile(factory)
        source = Path(path).read_text(encoding="utf-8") if path else inspect.getsource(factory)
    except (OSError, TypeError, UnicodeDecodeError):
        source = ""
    shapes = {a: [f"{n}{list(p.shape)}" for n, p in m.named_parameters()] for a, m in nets.items()}
    sha = hashlib.sha256(source.encode()).hexdigest() if source else None
    return {"source_sha256": sha, "parameters": shapes}


def model_changes(stored: dict[str, Any], now: dict[str, Any]) -> str | None:
    """One line naming what changed between two :func:`model_signature` s, or None."""
    if not stored or not now:
        return None
    for act, shapes in now.get("parameters", {}).items():
        before = stored.get("parameters", {}).get(act)
        if before is not None and before != shapes:
            diff = [f"{a} -> {b}" for a, b in zip(before, shapes, strict=False) if a != b]
            if len(before) != len(shapes):
                diff.append(f"{len(before)} parameter tensors -> {len(shapes)}")
            return f"the network built for '{act}' has other parameters ({'; '.join(diff[:3])})"
    if stored.get("source_sha256") and stored.get("source_sha256") != now.get("source_sha256"):
        return "the source file of the model function was edited since the run started"
    return None


def _fingerprint(jobs: Sequence[Job], acts: list[Any], data: _Data, config: TrainConfig) -> str:
    cfg = asdict(config)
    cfg.pop("epochs")  # more epochs may be added to a run later: training does not depend on it
    for key in ("select", "patience"):  # added later: unset, the fingerprint is as before
        if cfg[key] is None:
            cfg.pop(key)
    text = json.dumps(
        {"format": _FORMAT, "config": cfg,
         "jobs": [[str(a), int(j.seed)] for a, j in zip(acts, jobs, strict=True)],
         "data": data.fingerprint},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def _trainers(
    jobs: Sequence[Job], acts: list[Any], data: _Data, config: TrainConfig, parts: int = 1
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


def _stackable(act: Any) -> bool:
    """Whether the stacked MLP can train ``act``: it has no parameters of its own (PReLU's slope
    and a learnable Swish beta are trained by the generic path instead)."""
    from actlab.torch import build

    return not any(True for _ in build(act).parameters())


def _plain_mlp(act: Any, seed: int, data: _Data, config: TrainConfig) -> nn.Module:
    """The default MLP as an ``nn.Sequential`` (:func:`actlab.nets.mlp`), initialised by the recipe
    of the module docstring (exactly the stacked ``_MLP``'s), for activations with parameters."""
    n_in = data.X_train.shape[1]
    net = mlp(n_in, config.width, data.n_out, [act] * config.depth, config.init, seed=seed)
    net = net.to(data.device)
    net._actlab_seed = seed  # type: ignore[attr-defined]
    return net


def _generic_trainer(nets: list[nn.Module], data: _Data, config: TrainConfig) -> _Trainer:
    """Seeds of one activation batched with torch.func where the network allows, else one by one."""
    if len({tuple((n, p.shape) for n, p in net.named_parameters()) for net in nets}) == 1:
        try:
            trainer = _Vmapped(nets, data, config)
            trainer.dry_run()
            return trainer
        except Exception:  # the model does not allow vmap: train it one model at a time
            pass
    return _OneByOne(nets, data, config)


def _load(blob: Any, what: str, fix: str = "") -> dict[str, Any]:
    """A checkpoint's contents; ``what`` names the argument in errors, ``fix`` ends them."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ActlabError(f"{what} must be the bytes of a checkpoint, got {type(blob).__name__}")
    try:
        state = torch.load(io.BytesIO(bytes(blob)), weights_only=True, map_location="cpu")
    except Exception as err:
        raise ActlabError(
            f"{what} is not a readable actlab checkpoint ({type(err).__name__}){fix}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ActlabError(f"{what} is not an actlab compare checkpoint (wrong format){fix}")
    return state


def _read_checkpoint(blob: bytes, fingerprint: str) -> dict[str, Any]:
    state = _load(blob, "resume_from", "; start the run afresh")
    if state.get("fingerprint") != fingerprint:
        raise ActlabError(
            "resume_from was saved for other jobs, data or settings than this call's; resume "
            "with the same configuration (only epochs may grow) or start a new run"
        )
    return state


def train(
    jobs: Sequence[Job],
    split: Any,
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
    from actlab.devices import resolve

    if not isinstance(config, TrainConfig):
        raise ActlabError(f"config must be a TrainConfig, got {type(config).__name__}")
    acts = check_jobs(jobs)
    dev = resolve(device)
    data = _Data(split, dev)
    fingerprint = _fingerprint(jobs, acts, data, config)
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


def stuck_workers() -> list[str]:
    """Names of training threads still running (left behind by :func:`_stopped`)."""
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("actlab-train")]


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


def _to_cpu(state: Any) -> Any:
    """A trainer's state with every tensor on the CPU (checkpoints load on any machine)."""
    if isinstance(state, torch.Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


class _Cancelled(Exception):
    """Raised inside a worker thread when the call is being abandoned."""


def state_dicts(blob: bytes) -> list[dict[str, torch.Tensor]]:
    """Each job's trained weights from a checkpoint, as a ``state_dict`` per job (in job order).

    For the default MLP the keys are those of ``nn.Sequential(Linear, act, Linear, act, ...,
    Linear)`` (``"0.weight"``, ``"0.bias"``, ``"2.weight"``...), so
    ``net.load_state_dict(state_dicts(blob)[k])`` loads model k into the plain network of the module
    docstring; for your own network, its own keys.
    """
    state = _load(blob, "state_dicts(blob)")
    n_jobs = len(state["orders"])
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(n_jobs)]
    for rows, tr in zip(state["rows"], state["trainers"], strict=True):
        for r, k in enumerate(rows):
            if "nets" in tr:  # one model at a time
                out[k] = {n: v.clone() for n, v in tr["nets"][r].items()}
            elif isinstance(tr["params"], dict):  # vmapped user network
                out[k] = {n: v[r].clone() for n, v in {**tr["params"], **tr["buffers"]}.items()}
            else:  # stacked MLP: weights first, then biases; the output layer is stored (out, in)
                params = tr["params"]
                n_layers = len(params) // 2
                for layer in range(n_layers):
                    w = params[layer][r]
                    w = w if layer == n_layers - 1 else w.T
                    out[k][f"{2 * layer}.weight"] = w.contiguous().clone()
                    out[k][f"{2 * layer}.bias"] = params[n_layers + layer][r].flatten().clone()
    return out
