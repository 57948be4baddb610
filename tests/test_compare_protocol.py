"""Issue 20's study protocol: best validation epoch, early stopping, the user's metric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score, log_loss, mean_absolute_error, roc_auc_score

from actlab import compare
from actlab.compare.training import Job, TrainConfig, balanced_accuracy, roc_auc, train
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
    from actlab.compare.training.data import _Data
    from actlab.compare.training.metrics import _val_metrics

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


# ------------------------------------------------------------------ baselines, checks, margin


def test_baselines_are_in_the_table_json_and_headline(tmp_path, capsys):
    import json

    from actlab.cli import main

    # one epoch at a tiny learning rate: the networks cannot beat a logistic regression
    code = main(["compare", "--dataset", "iris", "--activations", "relu", "tanh", "--seeds", "3",
                 "--epochs", "1", "--lr", "1e-5", "--out", str(tmp_path / "r"),
                 "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    names = [b["name"] for b in out["baselines"]]
    assert names == ["majority class", "logistic regression"]
    assert all(0 <= b["test_metric"] <= 1 and b["metric"] == "test_accuracy"
               for b in out["baselines"])  # fmt: skip
    assert "No activation beats the logistic regression baseline" in out["headline"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| logistic regression |" in md and "| baseline |" in md
    res = compare.load(tmp_path / "r")
    from sklearn.linear_model import LogisticRegression

    from actlab import data

    split = data.split(data.load("iris"), val_fraction=0.2, seed=0, test_fraction=0.2)
    want = LogisticRegression(max_iter=2000).fit(split.X_train, split.y_train)
    acc = float((want.predict(split.X_test) == split.y_test).mean())
    assert res.analysis.baselines[1]["metrics"]["test_accuracy"] == pytest.approx(acc)


def test_regression_baselines_use_the_metric_in_target_units(tmp_path):
    res = compare.run("diabetes", out=tmp_path / "r", activations=["relu"], seeds=1, epochs=2,
                      metric="mae", report=False)  # fmt: skip
    names = {b["name"]: b["metrics"] for b in res.analysis.baselines}
    assert set(names) == {"mean", "ridge regression"}
    assert names["ridge regression"]["test_mae"] < names["mean"]["test_mae"]
    assert 20 < names["mean"]["test_mae"] < 100  # diabetes targets are ~25-346: target units


def test_next_value_extends_the_grid_on_its_own_scale():
    from actlab.compare.checks import _next_value

    assert _next_value([1e-3, 3e-3, 1e-2], up=True) == pytest.approx(0.033)
    assert _next_value([1e-3, 3e-3, 1e-2], up=False) == pytest.approx(0.00033)
    assert _next_value([32, 64], up=True) == 128 and _next_value([32, 64], up=False) == 16
    assert _next_value([0.0, 1e-4], up=False) is None  # nothing below a weight decay of 0


def test_edge_and_convergence_warnings_with_next_steps(tmp_path):
    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh"], seeds=3,
                      epochs=4, lr=[1e-4, 3e-4], metric="log_loss", report=False)  # fmt: skip
    # 4 epochs at lr <= 3e-4 is far too short: the loss still falls, at the top of the grid
    warnings = " ".join(res.analysis.warnings)
    assert "Edge of the grid: relu, tanh chose the largest learning rate tried, 0.0003" in warnings
    assert "Still improving: relu, tanh" in warnings
    commands = dict((r.split(":")[0], c) for c, r in res.analysis.next_steps)
    assert "--lr 0.0001,0.0003,0.0009" in commands["widen the grid"]
    assert "--epochs 8" in commands["more epochs"]
    md = (tmp_path / "r").joinpath("report.md")
    from actlab.compare import report

    report.write(res)
    text = md.read_text()
    assert "## Next steps" in text and "--epochs 8" in text.split("## Next steps")[1]


def test_practical_equivalence_and_capped_seed_advice():
    from actlab.compare import stats

    a = {s: 0.950 + 0.001 * (s % 2) for s in range(6)}
    b = {s: 0.949 + 0.0012 * (s % 3) for s in range(6)}
    s = stats.summarize({"a": a, "b": b}, metric="test_accuracy", higher_is_better=True,
                        margin=0.01)  # fmt: skip
    assert s.rows[1].verdict == stats.EQUIVALENT and s.rows[1].p_equivalence < 0.05
    assert "practically equivalent" in s.headline and "seeds" not in s.headline.split("CI")[-1]
    # the same data with a margin below the difference's uncertainty: not equivalent, no advice
    tight = stats.summarize({"a": a, "b": b}, metric="test_accuracy", higher_is_better=True,
                            margin=0.0005)  # fmt: skip
    assert tight.rows[1].verdict == stats.TIED
    p, lo, hi = stats.equivalence([1.0, 2.0, 3.0, 4.0], [1.1, 2.0, 2.9, 4.05], 0.5)
    d = np.array([-0.1, 0.0, 0.1, -0.05])
    half = 2.3533634 * d.std(ddof=1) / 2  # t(0.95, 3) x se
    assert (lo, hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert p < 0.05
    assert stats.default_margin("test_rmse", target_scale=50.0) == pytest.approx(1.0)
    assert stats.default_margin("test_accuracy") == 0.01


# ------------------------------------------------------------------ data problems in one round


def _messy(tmp_path) -> str:
    rng = np.random.default_rng(0)
    lines = ["ID,a,b,const,label"]
    for i in range(300):
        a = "" if i in (4, 50) else f"{rng.normal():.3f}"
        lines.append(f"row-{i},{a},{rng.normal():.3f},7,{i % 2}")
    p = tmp_path / "messy.csv"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_every_data_problem_in_one_message_with_its_fix(tmp_path):
    from actlab import data

    with pytest.raises(ActlabError) as info:
        data.load_csv(_messy(tmp_path), "label")
    text = str(info.value)
    assert "3 problem(s)" in text
    assert "column 'a' has 2 missing value(s) (file lines 6, 52)" in text
    assert "column 'ID' is text with 300 distinct values in 300 rows" in text
    assert "constant column(s) 'const'" in text
    assert "add: --drop-columns ID,const --drop-missing" in text
    ds = data.load_csv(_messy(tmp_path), "label", drop_missing=True, drop_columns=["ID"])
    assert ds.feature_names == ("a", "b", "const") and ds.dropped_rows == 2
    assert "constant column(s) const carry no information" in ds.column_note
    with pytest.raises(ActlabError, match=r"no column 'id'.*did you mean 'ID'"):
        data.load_csv(_messy(tmp_path), "label", drop_columns=["id"])
    with pytest.raises(ActlabError, match="names the target 'label'"):
        data.load_csv(_messy(tmp_path), "label", drop_columns=["label"])


def test_one_class_target_is_listed_with_the_other_problems(tmp_path):
    from actlab import data

    p = tmp_path / "one.csv"
    p.write_text("a,y\n1,5\n,5\n3,5\n")
    with pytest.raises(ActlabError) as info:
        data.load_csv(p, "y")
    assert "2 problem(s)" in str(info.value) and "same value '5' in every row" in str(info.value)


def test_drop_columns_in_compare_and_diagnose(tmp_path, capsys):
    from actlab.cli import main

    csv = _messy(tmp_path)
    out = tmp_path / "r"
    code = main(["compare", "--csv", csv, "--target", "label", "--drop-columns", "ID,const",
                 "--drop-missing", "--metric", "f1_macro", "--activations", "relu", "tanh",
                 "--seeds", "3", "--epochs", "2", "--width", "8", "--out", str(out)])  # fmt: skip
    assert code == 0
    md = (out / "report.md").read_text()
    assert "column(s) left out: ID, const (--drop-columns)" in md
    assert "test_macro_f1" in md and "| logistic regression |" in md
    assert "--drop-columns ID,const" in md  # the reproduce command keeps it
    capsys.readouterr()
    code = main(["diagnose", "--model", "examples/cnn_digits.py:build", "--csv", csv,
                 "--target", "label", "--drop-columns", "zzz"])  # fmt: skip
    assert code == 2 and "no column 'zzz'" in capsys.readouterr().err


# ------------------------------------------------------------------ progress


def test_plain_progress_is_rate_limited_and_says_where_it_writes(tmp_path, capsys, monkeypatch):
    import io

    from actlab.compare import progress as prog

    clock = iter([0.0, 0.1, 0.2, 1.0, 6.0, 6.5, 12.0, 12.0])
    monkeypatch.setattr(prog.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    p = prog.PlainProgress(out, every=5.0)  # created at t=0
    base = {"epochs": 30, "steps": 10, "eta_s": 75.0, "best": ("relu (seed 1)", 0.97)}
    p({**base, "epoch": 1, "step": 3})  # t=0.1: the first report is shown at once
    p({**base, "epoch": 1, "step": 10})  # t=0.2: too soon
    p({**base, "epoch": 2, "step": 5})  # t=1.0: too soon
    p({**base, "epoch": 3, "step": 5})  # t=6.0: due
    p({**base, "epoch": 3, "step": 9})  # t=6.5: too soon
    p({**base, "epoch": 30, "step": 10})  # t=12: the last epoch's end is always shown
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[2].startswith("actlab compare: epoch 30/30 (100%), 0:12")
    assert lines[1] == ("actlab compare: epoch 3/30 (8%), 0:06 elapsed, ETA 1:15, "
                        "best relu (seed 1) 0.97")  # fmt: skip
    monkeypatch.undo()
    compare.run("iris", out=tmp_path / "r", activations=["relu"], seeds=1, epochs=2,
                progress=True, report=False)  # fmt: skip
    err = capsys.readouterr().err
    assert f"Writing results to {(tmp_path / 'r').resolve()}" in err
    assert "epoch 2/2 (100%)" in err


def test_cli_prints_plain_progress_when_not_on_a_terminal(tmp_path, capsys):
    from actlab.cli import main

    assert main(["compare", "--dataset", "iris", "--activations", "relu", "--seeds", "1",
                 "--epochs", "2", "--out", str(tmp_path / "r"), "--json"]) == 0  # fmt: skip
    assert "actlab compare: epoch 2/2 (100%)" in capsys.readouterr().err
