"""Baselines on the run's own split: what any activation has to beat.

Classification: the majority class (scikit-learn's ``DummyClassifier(strategy="prior")``: it
predicts the most frequent training class and gives the training class frequencies as
probabilities) and a logistic regression (``LogisticRegression``, L2, C=1, on the standardised
features). Regression: the training mean (``DummyRegressor``) and a ridge regression (``Ridge``,
alpha=1). Each is fit on the training part only and scored once on the test part (or, without a
test part, on validation), with scikit-learn's metrics (the engine's are tested against them), so
a baseline's number means what an activation's does.
"""

from __future__ import annotations

import math
import threading
import warnings
from concurrent.futures import Future
from typing import Any

import numpy as np

__all__ = ["fit", "fit_all", "in_background"]

_EPS = 1e-15  # probabilities are clipped as scikit-learn's log_loss does


def fit(split: Any) -> list[dict[str, Any]]:
    """``[{"name", "metrics": {"test_accuracy": ..., ...}}]`` for the baselines of ``split``'s task
    (metric names as the engine's records have them, on ``test`` or, without one, ``val``)."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    has_test = split.y_test is not None and len(split.y_test) > 0
    part = "test" if has_test else "val"
    X_eval = _flat(split.X_test if has_test else split.X_val)
    y_eval = np.asarray(split.y_test if has_test else split.y_val)
    classification = split.task == "classification"
    if classification:
        models = [("majority class", DummyClassifier(strategy="prior")),
                  ("logistic regression", LogisticRegression(max_iter=2000))]  # fmt: skip
    else:
        models = [("mean", DummyRegressor()), ("ridge regression", Ridge(alpha=1.0))]
    y = np.asarray(split.y_train)
    out = []
    for name, model in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a baseline, not a contender
            model.fit(_flat(split.X_train), y if classification else y.reshape(len(y), -1))
        if classification:
            proba = np.zeros((len(X_eval), split.n_classes))
            proba[:, model.classes_] = model.predict_proba(X_eval)
            metrics = _classification(y_eval, proba)
        else:
            pred = np.asarray(model.predict(X_eval), dtype=np.float64).reshape(len(X_eval), -1)
            metrics = _regression(y_eval.reshape(len(y_eval), -1), pred, split.target_scale)
        out.append({"name": name, "metrics": {f"{part}_{k}": float(v) for k, v in metrics.items()}})
    return out


def _flat(X: Any) -> np.ndarray:
    """Rows of features: images (N x C x H x W, kept whole for --model networks) flattened."""
    X = np.asarray(X)
    return X.reshape(len(X), -1)


def _classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    pred = proba.argmax(1)
    clipped = np.clip(proba, _EPS, 1.0)  # a class the majority baseline never predicts: not inf
    out = {"accuracy": accuracy_score(y, pred),
           "balanced_accuracy": balanced_accuracy_score(y, pred),
           "macro_f1": f1_score(y, pred, average="macro", zero_division=0),
           "log_loss": log_loss(y, clipped / clipped.sum(1, keepdims=True),
                                labels=range(proba.shape[1]))}  # fmt: skip
    if proba.shape[1] == 2:
        out["roc_auc"] = roc_auc_score(y, proba[:, 1]) if len(set(y.tolist())) == 2 else math.nan
    return out


def _regression(y: np.ndarray, pred: np.ndarray, scale: float) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {"rmse": math.sqrt(mean_squared_error(y, pred)) * scale,
            "mae": mean_absolute_error(y, pred) * scale, "r2": r2_score(y, pred)}  # fmt: skip


def fit_all(splits: list[Any]) -> list[dict[str, Any]]:
    """:func:`fit` on each split (one, or one per seed with ``resample_split``), averaged."""
    runs = [fit(s) for s in splits]
    return [{"name": b["name"],
             "metrics": {k: float(np.mean([r[i]["metrics"][k] for r in runs]))
                         for k in b["metrics"]}}
            for i, b in enumerate(runs[0])]  # fmt: skip


def in_background(splits: list[Any], *, background: bool = True) -> Future:
    """:func:`fit_all` in a daemon thread, its result (or error) in the returned future.

    compare starts it before training and stores the result when training ends, so importing
    scikit-learn and fitting the logistic regression (digits: ~2.5 s of the default run, load
    ~2.5) overlap the first groups when a core is free beside torch's threads. Otherwise
    (``background=False``) it fits here and now: on this 2-core machine, whose two cores torch's
    threads use, the thread fighting the training loop for the GIL made the default run's training
    phase 4.1 -> 7.9 s and its wall 9.5 -> 11.8 s. A daemon thread: an interrupted run exits
    without waiting for it.
    """
    future: Future = Future()
    if not background:
        future.set_result(fit_all(splits))
        return future

    def work() -> None:
        try:
            future.set_result(fit_all(splits))
        except BaseException as err:  # handed to whoever reads the result
            future.set_exception(err)

    threading.Thread(target=work, name="actlab-baselines", daemon=True).start()
    return future
