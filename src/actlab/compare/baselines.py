"""Baselines on the run's own split: what any activation has to beat.

Classification: the majority class (scikit-learn's ``DummyClassifier(strategy="prior")``: it
predicts the most frequent training class and gives the training class frequencies as
probabilities) and a logistic regression (``LogisticRegression``, L2, C=1, on the standardised
features). Regression: the training mean (``DummyRegressor``) and a ridge regression (``Ridge``,
alpha=1). Each is fit on the training part only and scored once on the test part (or, without a
test part, on validation), with the engine's own metric code, so a baseline's number means exactly
what an activation's does.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["fit", "fit_all"]

_EPS = 1e-15  # probabilities are clipped as scikit-learn's log_loss does


def fit(split: Any) -> list[dict[str, Any]]:
    """``[{"name", "metrics": {"test_accuracy": ..., ...}}]`` for the baselines of ``split``'s task
    (metric names as the engine's records have them, on ``test`` or, without one, ``val``)."""
    import torch
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    from actlab.compare.engine import _Data, _val_metrics

    has_test = split.y_test is not None and len(split.y_test) > 0
    part = "test" if has_test else "val"
    X_eval = split.X_test if has_test else split.X_val
    data = _Data(split)
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
            model.fit(split.X_train, y if classification else y.reshape(len(y), -1))
        if classification:
            proba = np.zeros((len(X_eval), split.n_classes))
            proba[:, model.classes_] = model.predict_proba(X_eval)
            scores = np.log(np.clip(proba, _EPS, 1.0))  # logits whose softmax is proba
        else:
            scores = np.asarray(model.predict(X_eval), dtype=np.float64).reshape(len(X_eval), -1)
        out_t = torch.as_tensor(scores, dtype=torch.float32).T[None]  # (1, n_out, rows)
        _, metrics = _val_metrics(out_t, data, part)
        out.append({"name": name, "metrics": {k: float(v[0]) for k, v in metrics.items()}})
    return out


def fit_all(splits: list[Any]) -> list[dict[str, Any]]:
    """:func:`fit` on each split (one, or one per seed with ``resample_split``), averaged."""
    runs = [fit(s) for s in splits]
    return [{"name": b["name"],
             "metrics": {k: float(np.mean([r[i]["metrics"][k] for r in runs]))
                         for k in b["metrics"]}}
            for i, b in enumerate(runs[0])]  # fmt: skip
