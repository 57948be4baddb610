"""``--objective``: the user's own training function inside the study (actlab.compare.objective)."""

from __future__ import annotations

import json
import logging
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from actlab import compare
from actlab.cli import main
from actlab.errors import ActlabError

FIT = textwrap.dedent(
    '''
    import torch
    from torch import nn

    CALLS = []

    def fit(trial):
        """A small network in its own loop with its own scheduler."""
        CALLS.append((trial.spec, trial.seed, dict(trial.params)))
        d = trial.data
        X, y = torch.tensor(d.X_train), torch.tensor(d.y_train)
        Xv, yv = torch.tensor(d.X_val), torch.tensor(d.y_val)
        Xt, yt = torch.tensor(d.X_test), torch.tensor(d.y_test)
        net = nn.Sequential(nn.Linear(X.shape[1], 16), trial.activation(),
                            nn.Linear(16, d.n_classes))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=trial.params["gamma"])
        for epoch in range(1, trial.epochs + 1):
            perm = torch.randperm(len(X))
            for i in range(0, len(X), 32):
                idx = perm[i:i + 32]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(net(X[idx]), y[idx])
                loss.backward()
                opt.step()
            sched.step()
            with torch.no_grad():
                acc = (net(Xv).argmax(1) == yv).float().mean().item()
            trial.report(epoch, val_accuracy=acc, train_loss=loss.item())
        with torch.no_grad():
            return {"test_accuracy": (net(Xt).argmax(1) == yt).float().mean().item()}
    '''
)

TINY = {"activations": ["relu", "tanh"], "seeds": 3, "epochs": 2, "param": ["gamma=0.5,0.9"]}


@pytest.fixture
def fit_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(FIT)
    return path


def _rows(directory: Path) -> list[tuple]:
    conn = sqlite3.connect(directory / "results.sqlite")
    try:
        return conn.execute(
            "SELECT m.activation, m.seed, m.cell, e.epoch, e.train_loss, e.metrics "
            "FROM epochs e JOIN models m ON m.id = e.model_id ORDER BY m.id, e.epoch"
        ).fetchall()
    finally:
        conn.close()


def test_records_flow_into_the_study(fit_file: Path, tmp_path: Path) -> None:
    res = compare.run("iris", out=tmp_path / "a", objective=f"{fit_file}:fit", **TINY)
    assert res.complete and len(res.models) == 2 * 3 * 2  # activations x seeds x gamma values
    rows = _rows(tmp_path / "a")
    assert len(rows) == 12 * 2  # two reported epochs per model
    for act, _seed, cell, epoch, loss, metrics in rows:
        m = json.loads(metrics)
        assert 0 <= m["val_accuracy"] <= 1 and loss > 0
        assert ("test_accuracy" in m) == (epoch == 2)
        assert json.loads(cell)["gamma"] in (0.5, 0.9) and act in ("relu", "tanh")
    # gamma is the user's own factor: tuned per activation on validation, reported on test
    assert res.analysis.tuned == ("gamma",) and res.metric == "test_accuracy"
    assert {r.activation for r in res.stats.rows} == {"relu", "tanh"}
    assert "gamma" in res.rows()[0] and (tmp_path / "a" / "report.html").is_file()
    # the seed is applied: a second run is identical, number for number
    compare.run("iris", out=tmp_path / "b", objective=f"{fit_file}:fit", report=False, **TINY)
    assert _rows(tmp_path / "b") == rows


def _python_fit(trial: Any) -> dict[str, float]:
    import random

    import numpy as np
    import torch

    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))  # noqa: NPY002
    _python_fit.seen.append((trial.spec, trial.seed, trial.params["k"], draws))  # type: ignore[attr-defined]
    if trial.spec == _python_fit.fail_on:  # type: ignore[attr-defined]
        raise ValueError("boom")
    for epoch in range(1, trial.epochs + 1):
        trial.report(epoch, val_accuracy=draws[0] / epoch)
    return {"test_accuracy": draws[1]}


def test_a_python_function_fails_then_resumes_per_model(tmp_path: Path) -> None:
    _python_fit.seen = []  # type: ignore[attr-defined]
    _python_fit.fail_on = "tanh"  # type: ignore[attr-defined]
    settings = {"activations": ["relu", "tanh"], "seeds": 2, "epochs": 3, "param": {"k": [1, 2]}}
    with pytest.raises(ActlabError) as err:
        compare.run("iris", out=tmp_path / "r", objective=_python_fit, **settings)
    text = str(err.value)
    assert "\n" not in text and "_python_fit raised ValueError: boom" in text
    assert "activation tanh, seed 0" in text and "--resume" in text
    # seeds seeded alike: relu's seed 0 and 1 drew different numbers, torch/NumPy/random all
    draws = [d for _, _, _, d in _python_fit.seen]  # type: ignore[attr-defined]
    assert draws[0] != draws[1] and len(set(draws[0])) == 3
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as conn:
        done = conn.execute("SELECT activation, seed FROM models WHERE status = 'done'").fetchall()
    assert done == [("relu", 0), ("relu", 1)]  # the models before the failure are kept
    _python_fit.fail_on = None  # type: ignore[attr-defined]
    _python_fit.seen = []  # type: ignore[attr-defined]
    res = compare.run(out=tmp_path / "r", resume=True, objective=_python_fit, report=False)
    assert res.complete
    # only what was missing ran again: tanh (k=1), then the whole k=2 cell
    again = [(a, s, k) for a, s, k, _ in _python_fit.seen]  # type: ignore[attr-defined]
    assert again == [("tanh", 0, 1), ("tanh", 1, 1), ("relu", 0, 2), ("relu", 1, 2),
                     ("tanh", 0, 2), ("tanh", 1, 2)]  # fmt: skip
    first_draw = next(d for a, s, k, d in _python_fit.seen if (a, s, k) == ("tanh", 0, 1))
    assert first_draw == draws[0]  # seed 0 draws the same numbers whatever the activation


def test_the_cli_names_a_failing_function_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def fit(trial):\n    if trial.seed == 1:\n        1 / 0\n"
                   "    return {'test_accuracy': 0.5, 'val_accuracy': 0.5}\n")  # fmt: skip
    out = tmp_path / "run"
    code = main(["compare", "--dataset", "iris", "--objective", f"{bad}:fit", "--seeds", "2",
                 "--activations", "relu", "--epochs", "1", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    *progress, last = err.splitlines()  # off a terminal: plain progress lines, then the error
    assert code == 2 and last.startswith("actlab: error:") and "Traceback" not in err
    assert all(line.startswith("actlab compare: ") for line in progress)
    assert "--objective" in err and "bad.py:fit raised ZeroDivisionError" in err
    with sqlite3.connect(out / "results.sqlite") as conn:
        status = conn.execute("SELECT seed, status FROM models ORDER BY id").fetchall()
    assert status == [(0, "done"), (1, "running")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 0.9", "returned float .* it must return a dict of test metrics"),
        ("return {'test_accuracy': 'high'}", "metric 'test_accuracy' must be a number"),
        ("trial.report(5, val_accuracy=1.0)", r"epoch 5 after epoch 0; .*trial.epochs \(2\)"),
        ("import time; time.sleep(5)", "did not return within 0.5 s"),
    ],
)
def test_bad_functions_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "f.py"
    path.write_text(f"def fit(trial):\n    {body}\n")
    with pytest.raises(ActlabError, match=message):
        compare.run("iris", out=tmp_path / "o", objective=f"{path}:fit", seeds=1, epochs=2,
                    activations=["relu"], objective_timeout=0.5, report=False)  # fmt: skip


def test_a_missing_function_leaves_no_folder(tmp_path: Path) -> None:
    path = tmp_path / "f.py"
    path.write_text("def fitt(trial):\n    return {}\n")
    with pytest.raises(ActlabError, match="has no function 'fit'; did you mean 'fitt'"):
        compare.run("iris", out=tmp_path / "o", objective=f"{path}:fit", seeds=1)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ActlabError, match="--objective and --model exclude each other"):
        compare.run("iris", out=tmp_path / "o", objective=f"{path}:fit", model="m:f")
    with pytest.raises(ActlabError, match="--param declares a factor of your own"):
        compare.run("iris", out=tmp_path / "o", param=["k=1"])


def test_printing_and_global_changes_are_named_and_undone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import torch

    path = tmp_path / "noisy.py"
    path.write_text(
        "import torch\n"
        "def fit(trial):\n"
        "    print('epoch 1 loss 0.3')\n"
        "    torch.set_default_dtype(torch.float64)\n"
        "    return {'test_accuracy': 0.5, 'val_accuracy': 0.5}\n"
    )
    code = main(["compare", "--dataset", "iris", "--objective", f"{path}:fit", "--seeds", "2",
                 "--activations", "relu", "--epochs", "1", "--out", str(tmp_path / "o"),
                 "--json"])  # fmt: skip
    out, err = capfd.readouterr()
    assert code == 0 and json.loads(out)["complete"]  # stdout is still pure JSON
    assert torch.get_default_dtype() == torch.float32
    notes = [line for line in err.splitlines() if line.startswith("actlab: note:")]
    assert len(notes) == 2
    assert "printed 2 line(s) in 2 of 2 call(s) (first: 'epoch 1 loss 0.3')" in notes[0]
    assert "default dtype torch.float32 -> torch.float64" in notes[1] and "restored" in notes[1]


def test_a_changed_function_refuses_to_resume(fit_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    compare.run("iris", out=out, objective=f"{fit_file}:fit", time_budget=1e-6, report=False,
                **TINY)  # fmt: skip
    fit_file.write_text(FIT + "\n# edited\n")
    with pytest.raises(ActlabError, match="its --objective changed since the run started"):
        compare.run(out=out, resume=True, report=False)


@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_same_records_as_local(
    ray_local: Any, fit_file: Path, tmp_path: Path
) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as the Ray task on the 2-CPU instance gets
    try:
        settings = {**TINY, "seeds": 2}
        compare.run("iris", out=tmp_path / "l", objective=f"{fit_file}:fit", report=False,
                    **settings)  # fmt: skip
        res = compare.run("iris", out=tmp_path / "r", objective=f"{fit_file}:fit",
                          backend="ray", report=False, **settings)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    assert res.complete and _rows(tmp_path / "r") == _rows(tmp_path / "l")


def test_user_factors_are_declared_checked_and_stored() -> None:
    from actlab.compare.config import CompareConfig, command, differences, flat_from_stored

    c = CompareConfig.from_settings(objective="fit.py:fit", param=["sched=cosine,step", "k=1,2"],
                                    lr=[1e-3, 1e-2], tune=["sched"])  # fmt: skip
    assert c.tuned == ("sched",) and c.studied == ("lr", "k") and c.model.k == (1, 2)
    assert len(c.model.cells()) == 2 * 2 * 2 and c.model.cells()[0]["sched"] == "cosine"
    again = CompareConfig.from_settings(flat_from_stored(json.loads(json.dumps(c.to_dict()))))
    assert differences(c, again) == []  # stored and read back unchanged (resume compares them)
    assert "--param sched=cosine,step --param k=1,2" in command(c, "out")
    for bad, message in [(["lr=1,2"], "cannot name a factor of your own"),
                         (["k"], "expected NAME=V1"), (["k=1,1"], "lists 1 twice")]:  # fmt: skip
        with pytest.raises(ActlabError, match=message):
            CompareConfig.from_settings(objective="fit.py:fit", param=bad)
    with pytest.raises(ActlabError, match="tune: 'sched' is not a factor"):
        CompareConfig.from_settings(tune=["sched"])


def test_the_cnn_example_trains_images_through_its_own_loop(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images[:300, None]  # N x 1 x 8 x 8: reaches fit as images
    example = Path(__file__).resolve().parents[1] / "examples" / "cnn_objective.py"
    res = compare.run(data=(images, digits.target[:300]), objective=f"{example}:fit",
                      activations=["relu"], seeds=1, epochs=2, param=["scheduler=cosine,step"],
                      out=tmp_path / "o", report=False)  # fmt: skip
    assert res.complete and res.analysis.tuned == ("scheduler",)
    assert [int(r["epoch"]) for r in res.history] == [1, 2, 1, 2]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in res.history)
    assert 0.1 < float(np.mean([r["test_accuracy"] for r in res.table])) <= 1.0
