"""The engine's types: ``TrainConfig``, ``Job`` (``check_jobs``), ``ModelEpoch``, ``_Trainer``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from actlab.catalog import parse
from actlab.compare.config import INITS, OPTIMIZERS
from actlab.errors import ActlabError, suggest

ORDER_SEED_OFFSET = 2**32  # the data-order stream of seed s is seeded with s + 2**32


# validation metrics that may pick the best epoch -> whether higher is better
SELECT = {"val_accuracy": True, "val_balanced_accuracy": True, "val_macro_f1": True,
          "val_log_loss": False, "val_roc_auc": True, "val_rmse": False, "val_mae": False,
          "val_r2": True}  # fmt: skip


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


def _check_activation(act: Any) -> None:
    if not act.spec.elementwise:
        raise ActlabError(
            f"activation '{act}' is not elementwise (it mixes units), so it cannot be a "
            "hidden-layer activation; it belongs on the output side, where compare already uses it "
            "inside the loss (the network emits logits). Compare hidden activations instead, "
            "e.g. --activations relu,gelu,silu"
        )


def check_jobs(jobs: Sequence[Job]) -> list[Any]:
    """Validate ``jobs`` (clear errors before anything is trained or stored); their Activations."""
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
