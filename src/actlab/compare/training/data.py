"""The split as tensors on the training device, checked once (``_Data``)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from actlab.data import Split
from actlab.errors import ActlabError

_EVAL_ROWS = 4096  # validation rows per forward chunk; unit health uses the first chunk


class _Data:
    """The split as float32/int64 tensors on ``device`` (moved there once, after the checks)."""

    def __init__(self, split: Split, device: torch.device | str = "cpu") -> None:
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
