"""The split without scikit-learn (issue 24 item 5): the same rows as scikit-learn's
``train_test_split`` (split version 1), the version stored with a run and used on --resume, and the
default run's data loaded without importing scikit-learn."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import actlab.compare as compare
from actlab import data
from actlab.compare.store import Store
from actlab.data import builtin, splitting
from actlab.errors import ActlabError

SMALL = {"activations": ["relu", "tanh"], "seeds": 2, "epochs": 2, "width": 8, "report": False}


def _sklearn_split(n: int, n_test: int, seed: int, y: np.ndarray | None):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=n_test, random_state=seed, shuffle=True,
                            stratify=y)  # fmt: skip


def test_shuffle_split_is_scikit_learns_row_for_row() -> None:
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 200:
        n = int(rng.integers(4, 300))
        stratified = checked % 3 != 0
        y = None
        k = 1
        if stratified:
            k = int(rng.integers(1, 8))
            # skewed class sizes, so remainders tie and _approximate_mode draws
            y = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k)))
            counts = np.bincount(y)
            if (counts[counts > 0] < 2).any():
                continue
            k = int((counts > 0).sum())
        n_test = int(rng.integers(k, n - k + 1)) if n - k >= k else -1
        if n_test < 1:
            continue
        seed = int(rng.integers(0, 2**32 - 1))
        want_train, want_test = _sklearn_split(n, n_test, seed, y)
        got_train, got_test = splitting._shuffle_split(n, n_test, seed, y)
        assert np.array_equal(got_train, want_train) and np.array_equal(got_test, want_test)
        checked += 1


@pytest.mark.parametrize("name", ["iris", "digits", "wine", "diabetes", "spirals", "blobs"])
@pytest.mark.parametrize("test_fraction", [0.0, 0.2])
def test_split_keeps_the_rows_of_the_scikit_learn_split(name: str, test_fraction: float) -> None:
    """The split as it was (scikit-learn's train_test_split twice) gives the same parts."""
    ds = data.load(name)
    got = data.split(ds, seed=3, test_fraction=test_fraction)
    n = len(ds.y)
    strat = ds.y if ds.task == "classification" else None
    rest = np.arange(n)
    test = rest[:0]
    n_test = int(np.ceil(test_fraction * n)) if test_fraction else 0
    if n_test:
        keep, test = _sklearn_split(n, n_test, 3, strat)
        rest = keep
        strat = None if strat is None else ds.y[rest]
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(rest, test_size=int(np.ceil(0.2 * n)), random_state=3,
                                  shuffle=True, stratify=strat)  # fmt: skip
    mean, std = ds.X[train].mean(0), ds.X[train].std(0)
    std[std == 0] = 1.0
    for part, rows in (("train", train), ("val", val), ("test", test)):
        want = ((ds.X[rows] - mean) / std).astype(np.float32)
        assert np.array_equal(getattr(got, f"X_{part}"), want), part


def test_unknown_split_version_is_refused() -> None:
    with pytest.raises(ActlabError, match=r"split version 2 is not one this actlab knows.*upgrade"):
        data.split(data.load("iris"), version=2)


def test_digits_read_without_scikit_learn_equal_load_digits() -> None:
    from sklearn.datasets import load_digits

    fast, ref = builtin._digits(), load_digits()
    assert fast is not None
    assert np.array_equal(fast.X, ref.data) and fast.X.dtype == np.float64
    assert np.array_equal(fast.y, ref.target) and fast.y.dtype == np.int64
    assert fast.feature_names == tuple(ref.feature_names)
    assert fast.class_names == tuple(str(c) for c in ref.target_names)


def test_default_data_and_split_import_no_scikit_learn() -> None:
    code = ("import sys; from actlab import data; "
            "[data.split(data.load(n), test_fraction=0.2) for n in ('digits', 'spirals')]; "
            "print('sklearn' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _meta(path: Path, key: str, value: object | None) -> None:
    with sqlite3.connect(Store.path(path)) as conn:
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))


def test_run_stores_split_version_and_baselines(tmp_path: Path, engine: object) -> None:
    res = compare.run("iris", out=tmp_path / "r", **SMALL)
    with Store.open(tmp_path / "r") as store:
        assert store.meta("split_version") == splitting.SPLIT_VERSION == 1
        names = [b["name"] for b in store.meta("baselines")]
    assert names == ["majority class", "logistic regression"]
    assert [b["name"] for b in res.analysis.baselines] == names
    assert "baselines_wait_s" in res.phases


def test_baselines_failing_without_a_free_core_leave_no_run_folder(
    tmp_path: Path, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fitted before the folder is made when no core is free: their failure leaves nothing."""
    from actlab.compare import baselines, running

    def boom(splits: object) -> None:
        raise RuntimeError("baseline fit failed")

    monkeypatch.setattr(running, "_core_free", lambda: False)
    monkeypatch.setattr(baselines, "fit_all", boom)
    with pytest.raises(RuntimeError, match="baseline fit failed"):
        compare.run("iris", out=tmp_path / "r", **SMALL)
    assert not (tmp_path / "r").exists()


def test_resume_splits_with_the_stored_version(tmp_path: Path, engine: object) -> None:
    compare.run("iris", out=tmp_path / "r", **SMALL)
    _meta(tmp_path / "r", "split_version", 2)  # as a newer actlab would have stored it
    with pytest.raises(ActlabError, match=r"split version 2 .*newer actlab"):
        compare.run(out=tmp_path / "r", resume=True)


def test_resume_of_a_run_without_split_version_uses_version_one(
    tmp_path: Path, engine: object
) -> None:
    """Runs made before the version was stored split with version 1; they gain no baselines."""
    compare.run("iris", out=tmp_path / "r", **SMALL)
    _meta(tmp_path / "r", "split_version", None)
    _meta(tmp_path / "r", "baselines", None)
    again = compare.run(out=tmp_path / "r", resume=True)
    assert again.complete and again.analysis.baselines == []


def test_baselines_stopped_before_storing_are_fit_on_resume(tmp_path: Path, engine: object) -> None:
    compare.run("iris", out=tmp_path / "r", **SMALL)
    _meta(tmp_path / "r", "baselines", None)  # as a run interrupted before training ended
    again = compare.run(out=tmp_path / "r", resume=True)
    assert [b["name"] for b in again.analysis.baselines] == ["majority class",
                                                             "logistic regression"]  # fmt: skip


def test_baselines_in_a_thread_or_here_store_the_same(
    tmp_path: Path, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actlab.compare import running

    got = []
    for free in (True, False):
        monkeypatch.setattr(running, "_core_free", lambda free=free: free)
        got.append(compare.run("iris", out=tmp_path / str(free), **SMALL).analysis.baselines)
    assert got[0] == got[1] and [b["name"] for b in got[0]] == ["majority class",
                                                                "logistic regression"]  # fmt: skip
