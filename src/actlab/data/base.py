"""The data types every comparison shares (:class:`Dataset`, :class:`Split`) and the memory probe
that refuses work which cannot fit."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

TASKS = ("classification", "regression")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Raw data: ``X`` float64 (rows, features); ``y`` int64 class ids or float64 targets.

    A CSV's ``X`` is column-major (filled one column at a time to keep the peak memory low)."""

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    name: str
    target: str = "target"
    source: str = "builtin"  # "builtin", "synthetic" or the CSV path
    task_note: str = ""  # CSV: why this task was inferred and how to override it ("" when given)
    dropped_rows: int = 0  # CSV with drop_missing: incomplete rows left out
    column_note: str = ""  # CSV: columns dropped (drop_columns) or worth dropping (constant)

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.task == "classification" else 0


@dataclass(frozen=True, eq=False)
class Split:
    """Train/validation/test arrays shared by every model of a comparison.

    Features are float32, standardised with the training split's mean and standard deviation. ``y``
    is int64 class ids for classification, a float32 column ``(n, 1)`` for regression (standardised
    like the features, so that one learning rate suits every dataset; ``target_mean`` /
    ``target_scale`` undo it).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_classes: int
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    name: str
    fingerprint: str
    target: str = "target"
    target_mean: float = 0.0
    target_scale: float = 1.0
    val_fraction: float = 0.2
    seed: int = 0
    # the held-out test part (empty arrays when test_fraction is 0): never used for any choice
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_fraction: float = 0.0



def available_memory() -> int | None:
    """Bytes of memory this machine can still give (Linux: MemAvailable; elsewhere the physical
    memory), or None where it cannot be told. Used to refuse work that cannot fit before it
    starts (a CSV file, a compare grid)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None
