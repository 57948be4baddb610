"""Issue 20's study protocol: best validation epoch, early stopping, the user's metric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score, log_loss, mean_absolute_error, roc_auc_score

from actlab import compare
from actlab.compare.engine import Job, TrainConfig, balanced_accuracy, roc_auc, train
from actlab.errors import ActlabError


@dataclass(frozen=True)
class Split3:
    """The fields of actlab.data.Split the engine reads, with a test part."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str = "classification"
    n_classes: int = 10
    fingerprint: str = "digits-600"
    target_scale: float = 1.0




@pytest.fixture(scope="module")
def digits() -> Split3:
    X, y = load_digits(return_X_y=True)
    X = ((X - X[:400].mean(0)) / (X[:400].std(0) + 1)).astype(np.float32)
    y = y.astype(np.int64)
    return Split3(X[:300], y[:300], X[300:400], y[300:400], X[400:600], y[400:600])


JOBS = [Job("relu", 0), Job("tanh", 1), Job("sigmoid", 2)]


def test_each_model_is_scored_at_its_best_validation_epoch(digits):
    # lr 0.05 overshoots: validation accuracy goes up and down, so the best epoch is not the last
    config = TrainConfig(depth=1, width=16, epochs=8, batch_size=32, lr=0.05)
    history = train(JOBS, digits, config)
    for k, h in enumerate(history):
        val = [r.metrics["val_accuracy"] for r in h]
        best = int(np.argmax(val)) + 1  # the first best epoch (ties keep the earlier one)
        last = h[-1].metrics
        assert last["best_epoch"] == best
        assert all("test_accuracy" not in r.metrics for r in h[:-1])  # scored once, at the end
        # the weights of that epoch: training only that far scores the same on test
        again = train([JOBS[k]], digits, TrainConfig(**{**config.__dict__, "epochs": best}))
        assert again[0][-1].metrics["test_accuracy"] == pytest.approx(last["test_accuracy"])
        assert again[0][-1].metrics["test_log_loss"] == pytest.approx(last["test_log_loss"])
    assert any(h[-1].metrics["best_epoch"] < config.epochs for h in history)


def test_patience_stops_a_model_after_its_best_epoch(digits):
    config = TrainConfig(depth=1, width=16, epochs=12, batch_size=32, lr=0.05, patience=2)
    history = train(JOBS, digits, config)
    stopped = [h for h in history if len(h) < config.epochs]
    assert stopped, "with lr 0.05 and patience 2 some model stops early"
    for h in history:
        best = int(h[-1].metrics["best_epoch"])
        assert len(h) == min(best + config.patience, config.epochs)
        assert h[-1].stopped == (len(h) < config.epochs)
        assert np.isfinite(h[-1].metrics["test_accuracy"])


def test_select_picks_the_epoch_by_the_chosen_metric(digits):
    config = TrainConfig(depth=1, width=16, epochs=6, batch_size=32, lr=0.05, select="val_log_loss")
    for h in train(JOBS, digits, config):
        losses = [r.metrics["val_log_loss"] for r in h]
        assert h[-1].metrics["best_epoch"] == int(np.argmin(losses)) + 1


def test_new_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, 80)
    preds = np.stack([rng.integers(0, 4, 80), target, np.full(80, 1)])
    got = balanced_accuracy(torch.as_tensor(preds), torch.as_tensor(target), 4).numpy()
    np.testing.assert_allclose(got, [balanced_accuracy_score(target, p) for p in preds], 1e-6)
    y = rng.integers(0, 2, 50)
    scores = np.stack([rng.normal(size=50), np.round(rng.normal(size=50)), y + 0.0])  # ties
    got = roc_auc(torch.as_tensor(scores), torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(got, [roc_auc_score(y, s) for s in scores], 1e-6)
    assert torch.isnan(roc_auc(torch.ones(1, 5), torch.zeros(5, dtype=torch.int64))).all()


def test_test_metrics_match_sklearn(digits):
    from actlab.compare.engine import _Data, _val_metrics

    data = _Data(digits)
    out = torch.randn(2, 10, len(digits.y_test))
    _, m = _val_metrics(out, data, "test")
    proba = torch.softmax(out, 1).transpose(1, 2).numpy()
    for k in range(2):
        ll = log_loss(digits.y_test, proba[k], labels=range(10))
        assert m["test_log_loss"][k].item() == pytest.approx(ll, rel=1e-5)
        pred = proba[k].argmax(1)
        assert m["test_balanced_accuracy"][k].item() == pytest.approx(
            balanced_accuracy_score(digits.y_test, pred), rel=1e-6)  # fmt: skip
    reg = Split3(digits.X_train, digits.y_train[:, None] / 3.0, digits.X_val,
                    digits.y_val[:, None] / 3.0, digits.X_test,
                    (digits.y_test / 3.0).astype(np.float32), task="regression", n_classes=0,
                    target_scale=2.0)  # fmt: skip
    rdata = _Data(reg)
    out = torch.randn(1, 1, len(digits.y_test))
    _, m = _val_metrics(out, rdata, "test")
    want = mean_absolute_error(reg.y_test * 2.0, out[0, 0].numpy() * 2.0)
    assert m["test_mae"][0].item() == pytest.approx(want, rel=1e-5)


def test_metric_drives_the_run_and_is_checked_against_the_task(tmp_path):
    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh"], seeds=2,
                      epochs=3, metric="f1_macro", report=False)  # fmt: skip
    assert res.metric == "test_macro_f1"
    assert res.analysis.val_metric == "val_macro_f1"
    assert all(r["best_epoch"] >= 1 for r in res.table)
    assert "best epoch" in res.analysis.selection
    with pytest.raises(ActlabError, match="roc_auc is defined here for two classes only"):
        compare.run("iris", out=tmp_path / "a", metric="roc_auc", seeds=1, epochs=1)
    with pytest.raises(ActlabError, match="rmse is a regression metric"):
        compare.run("iris", out=tmp_path / "b", metric="rmse", seeds=1, epochs=1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
