"""Training engine of ``actlab compare``: every (activation x seed) model of a group trains at once.

The recipe that reproduces one model alone, and the layout of the modules: docs/ARCHITECTURE.md."""

from __future__ import annotations

from actlab.compare.store import ModelEpoch
from actlab.compare.training.checkpoint import state_dicts
from actlab.compare.training.generic import model_changes, model_signature
from actlab.compare.training.loop import train
from actlab.compare.training.metrics import balanced_accuracy, macro_f1, roc_auc
from actlab.compare.training.types import Job, TrainConfig, check_jobs

__all__ = [
    "Job",
    "ModelEpoch",
    "TrainConfig",
    "balanced_accuracy",
    "check_jobs",
    "macro_f1",
    "model_changes",
    "model_signature",
    "roc_auc",
    "state_dicts",
    "train",
]
