"""The engine's inputs, ``TrainConfig`` and ``Job`` (``check_jobs``), and the trainer Protocol."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch

from actlab.catalog import Activation, parse
from actlab.compare.config import SELECT, CompareConfig, cell, metric_key
from actlab.errors import ActlabError
from actlab.settings import setting, validate

ORDER_SEED_OFFSET = 2**32  # the data-order stream of seed s is seeded with s + 2**32


@dataclass(frozen=True)
class TrainConfig:
    """How every model of a group trains: one value of each ``ModelConfig`` setting (the same
    declaration, bounds and check: ``config.cell``), validated on construction."""

    depth: int = cell("depth")
    width: int = cell("width")
    epochs: int = cell("epochs")
    batch_size: int = cell("batch_size")
    lr: float = cell("lr")
    optimizer: str = cell("optimizer")
    weight_decay: float = cell("weight_decay")
    init: str = cell("init")
    model: str | None = cell("model")  # function(spec_str) -> nn.Module
    select: str | None = setting(
        None, kind="choice", choices=tuple(SELECT), cli=False,
        help="the validation metric that picks each model's best epoch (None: val_accuracy / "
        "val_rmse)",
    )  # fmt: skip
    patience: int | None = cell("patience")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def of(cls, c: CompareConfig, factors: Mapping[str, Any]) -> TrainConfig:
        """One cell of a study's grid: the values of ``factors``, the other settings of ``c``."""
        given = {f.name: factors.get(f.name, getattr(c.model, f.name, None)) for f in fields(cls)}
        select = None if c.study.metric is None else "val_" + metric_key(c.study.metric)
        return cls(**{**given, "select": select})


@dataclass(frozen=True)
class Job:
    """One model: an activation (a spec string is parsed here, once) and a seed."""

    activation: Activation
    seed: int

    def __post_init__(self) -> None:
        if isinstance(self.activation, str):
            object.__setattr__(self, "activation", parse(self.activation))

    def __reduce__(self) -> tuple[type[Job], tuple[str, int]]:
        # pickled (to a Ray worker) as its spec string: a registered function travels by name
        return Job, (str(self.activation), self.seed)


def _check_activation(act: Activation) -> None:
    if not act.spec.elementwise:
        raise ActlabError(
            f"activation '{act}' is not elementwise (it mixes units), so it cannot be a "
            "hidden-layer activation; it belongs on the output side, where compare already uses it "
            "inside the loss (the network emits logits). Compare hidden activations instead, "
            "e.g. --activations relu,gelu,silu"
        )


def check_jobs(jobs: Sequence[Job]) -> list[Activation]:
    """Validate ``jobs`` (clear errors before anything is trained or stored); their Activations."""
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence) or len(jobs) == 0:
        raise ActlabError("jobs must be a non-empty sequence of Job(activation, seed)")
    acts, seen = [], set()
    for k, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise ActlabError(
                f"jobs[{k}] must be a Job(activation, seed), got {type(job).__name__}"
            )
        s = job.seed
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s < 2**32:
            raise ActlabError(f"jobs[{k}]: seed must be an integer in [0, 2**32), got {job.seed!r}")
        act = job.activation
        if not isinstance(act, Activation):
            raise ActlabError(f"jobs[{k}]: activation must be a spec string, got {act!r}")
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
