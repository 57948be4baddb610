"""A tiny stand-in for actlab.compare.training (same interface), for fast store/resume/report tests.

Scores are a deterministic function of (activation, seed, epoch), so an interrupted-and-resumed run
must reproduce an uninterrupted one exactly. End-to-end tests use the real engine.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from actlab.compare.training import (  # the real records, settings and checks
    Job,
    ModelEpoch,
    TrainConfig,
    check_jobs,  # noqa: F401 - part of the engine interface the tests stand in for
    model_changes,  # noqa: F401
    model_signature,  # noqa: F401
)


@dataclass
class Behaviour:
    """Knobs the tests set: per-activation quality, which (activation, seed) diverge when."""

    quality: dict[str, float] = field(default_factory=dict)
    diverge: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)
    best_lr: dict[str, float] = field(default_factory=dict)  # activation -> its best lr

    def lr_effect(self, activation: str, lr: float) -> float:
        best = self.best_lr.get(activation)
        return 1.0 if best is None else 1.0 - 0.05 * abs(math.log10(lr / best))


BEHAVIOUR = Behaviour()


def _noise(*key: object) -> float:
    h = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 - 0.5


def train(
    jobs: Sequence[Job],
    split,
    config: TrainConfig,
    *,
    resume_from: bytes | None = None,
    on_epoch: Callable | None = None,
    deadline: float | None = None,
    progress: Callable | None = None,
    device: object = "cpu",  # the real engine's; the stand-in computes nothing
):
    start = 0 if resume_from is None else json.loads(resume_from)["epoch"]
    BEHAVIOUR.calls.append({"jobs": list(jobs), "start": start, "config": config,
                            "split": split.fingerprint})
    frozen = set() if resume_from is None else set(json.loads(resume_from)["frozen"])
    out: list[list[ModelEpoch]] = [[] for _ in jobs]
    for epoch in range(start + 1, config.epochs + 1):
        if deadline is not None and time.monotonic() > deadline:
            break
        records = []
        for i, job in enumerate(jobs):
            if i in frozen:
                continue
            act = str(job.activation)
            q = BEHAVIOUR.quality.get(act, 0.8) * BEHAVIOUR.lr_effect(
                act, config.lr
            )
            diverged = BEHAVIOUR.diverge.get((act, job.seed)) == epoch
            acc = min(1.0, q * (1 - 0.5**epoch) + 0.01 * _noise(act, job.seed, epoch))
            loss = math.nan if diverged else 1.0 - acc + 0.01
            metrics = (
                {"val_accuracy": acc, "val_macro_f1": acc}
                if split.task == "classification"
                else {"val_rmse": loss * split.target_scale, "val_r2": acc}  # target units
            )
            has_test = getattr(split, "X_test", None) is not None and len(split.X_test) > 0
            if epoch == config.epochs and has_test and not diverged:
                # like the engine: the test part is scored once, after the last epoch (a score a
                # little off the validation one, so that tests can tell which one is used)
                metrics.update({k.replace("val_", "test_"): v - 0.001 for k, v in metrics.items()})
                metrics["test_loss"] = loss
            layers = config.depth
            records.append(
                ModelEpoch(
                    i,
                    epoch,
                    loss,
                    loss,
                    metrics,
                    [0.1 * (k + 1) for k in range(layers + 1)],
                    [0.0] * layers,
                    [0.1] * layers,
                    diverged,
                    0.001,
                )
            )
            if diverged:
                frozen.add(i)
            out[i].append(records[-1])
        if progress is not None:
            progress(
                {
                    "epoch": epoch,
                    "epochs": config.epochs,
                    "step": 1,
                    "steps": 1,
                    "best": ("x", 0.5),
                    "eta_s": 1.0,
                }
            )
        if on_epoch is not None:
            state = {"epoch": epoch, "frozen": sorted(frozen)}
            on_epoch(epoch, records, lambda s=state: json.dumps(s).encode())
    return out
