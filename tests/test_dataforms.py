"""Data in any form (actlab.dataforms): each gives the stored rows the equivalent CSV gives."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actlab import compare, dataforms
from actlab.cli import main
from actlab.errors import ActlabError

TINY = {"activations": ["relu"], "seeds": 1, "epochs": 1, "width": 8, "report": False}


def _stored(directory: Path) -> tuple[Any, ...]:
    conn = sqlite3.connect(directory / "results.sqlite")
    try:
        epochs = conn.execute(
            "SELECT model_id, epoch, train_loss, val_loss, metrics FROM epochs ORDER BY 1, 2"
        ).fetchall()
        fingerprint = conn.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
    finally:
        conn.close()
    return fingerprint, epochs


@pytest.fixture(scope="module")
def frame() -> Any:
    """Iris with a text column: numbers, one-hot text and a class target, as a CSV has them."""
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["colour"] = np.where(X[:, 0] > 5.8, "red", "blue")
    df["label"] = y
    return df


@pytest.fixture(scope="module")
def reference(frame: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple]:
    base = tmp_path_factory.mktemp("csv")
    frame.to_csv(base / "iris.csv", index=False)
    compare.run(csv=base / "iris.csv", target="label", out=base / "run", **TINY)
    return base, _stored(base / "run")


def _forms(frame: Any, base: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, base / "iris.parquet")
    feather.write_feather(table, base / "iris.feather")
    feather.write_feather(table, base / "iris.arrow")
    forms: dict[str, Any] = {
        "pandas": frame, "arrow": table, "dict": {c: frame[c].to_numpy() for c in frame},
        "parquet": str(base / "iris.parquet"), "feather": str(base / "iris.feather"),
        "arrow-file": str(base / "iris.arrow"),
    }  # fmt: skip
    try:
        import polars as pl
    except ImportError:
        pass
    else:
        forms["polars"] = pl.from_pandas(frame)
    return forms


def test_every_table_form_stores_the_csv_rows(
    frame: Any, reference: tuple[Path, tuple], tmp_path: Path
) -> None:
    _, expected = reference
    for name, form in _forms(frame, tmp_path).items():
        compare.run(data=form, target="label", out=tmp_path / name, **TINY)
        assert _stored(tmp_path / name) == expected, name


def test_every_array_form_stores_the_csv_rows(frame: Any, tmp_path: Path) -> None:
    import torch

    numeric = frame[["a", "b", "c", "d", "label"]].rename(
        columns={"a": "x0", "b": "x1", "c": "x2", "d": "x3", "label": "y"}
    )
    numeric.to_csv(tmp_path / "n.csv", index=False)
    compare.run(csv=tmp_path / "n.csv", target="y", out=tmp_path / "csv", **TINY)
    expected = _stored(tmp_path / "csv")
    X, y = numeric[["x0", "x1", "x2", "x3"]].to_numpy(), numeric["y"].to_numpy()
    np.savez(tmp_path / "n.npz", X=X, y=y)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(X)

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            return torch.tensor(X[i]), torch.tensor(y[i])

    forms = {
        "numpy": (X, y), "torch": (torch.tensor(X), torch.tensor(y)),
        "float-labels": (X.astype(np.float32), y.astype(np.float64)), "dataset": Pairs(),
        "npz": str(tmp_path / "n.npz"), "npy": f"{tmp_path / 'X.npy'},{tmp_path / 'y.npy'}",
    }  # fmt: skip
    for name, form in forms.items():
        compare.run(data=form, out=tmp_path / name, **TINY)
        fingerprint, epochs = _stored(tmp_path / name)
        if name == "float-labels":  # float32 features round: same split, other numbers
            assert epochs != expected[1]
            continue
        assert (fingerprint, epochs) == expected, name


IMAGE_NET = '''
from torch import nn
import actlab.torch

def build(activation):
    return nn.Sequential(Check(), nn.Conv2d(1, 4, 3, padding=1), actlab.torch.build(activation),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 10))

class Check(nn.Module):
    def forward(self, x):
        assert x.shape[1:] == (1, 8, 8), x.shape  # images, not flattened rows
        return x
'''


def test_model_networks_get_images_in_their_shape(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images[:400, None].astype(np.float32)  # N x 1 x 8 x 8
    np.savez(tmp_path / "img.npz", X=images, y=digits.target[:400])
    (tmp_path / "net.py").write_text(IMAGE_NET)
    code = main(["compare", "--data", str(tmp_path / "img.npz"), "--model",
                 f"{tmp_path / 'net.py'}:build", "--activations", "relu", "--seeds", "1",
                 "--epochs", "1", "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 0
    res = compare.load(tmp_path / "o")
    assert res.complete and res.data["n_train"] + res.data["n_val"] + res.data["n_test"] == 400
    # the built-in MLP gets the same pixels as rows of 64 numbers
    flat = compare.run(data=(images, digits.target[:400]), out=tmp_path / "mlp", **TINY)
    assert flat.data["n_features"] == 64


def test_resume_refuses_changed_data(frame: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    out = tmp_path / "o"
    compare.run(data=str(path), target="label", out=out, time_budget=1e-6, **{**TINY, "seeds": 2})
    changed = frame.copy()
    changed.loc[0, "a"] = 9.9
    pq.write_table(pa.Table.from_pandas(changed, preserve_index=False), path)
    with pytest.raises(ActlabError, match=r"^the data differ from those of the run") as err:
        compare.run(out=out, resume=True, report=False)
    assert "\n" not in str(err.value)
    # data given in Python: resuming needs them again, from Python
    compare.run(data=frame, target="label", out=tmp_path / "p", time_budget=1e-6,
                **{**TINY, "seeds": 2})  # fmt: skip
    with pytest.raises(ActlabError, match="were given in Python"):
        compare.run(out=tmp_path / "p", resume=True, report=False)
    assert compare.run(out=tmp_path / "p", resume=True, data=frame, report=False).complete


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("a.npz", lambda p: np.savez(p, X=np.ones((4, 2))), "has arrays X; it needs X and y"),
        ("a.txt", lambda p: p.write_text("x"), r"actlab reads \.csv, \.parquet"),
        ("none.parquet", lambda p: None, "does not exist"),
    ],
)
def test_bad_files_are_one_line(tmp_path: Path, name: str, make: Any, message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    make(tmp_path / name)
    out = tmp_path / "o"
    code = main(["compare", "--data", str(tmp_path / name), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert re.search(message, err), err


def test_bad_python_data_is_one_line(frame: Any) -> None:
    with pytest.raises(ActlabError, match="a table needs target='column'"):
        dataforms.load(frame)
    with pytest.raises(ActlabError, match="did you mean 'label'"):
        dataforms.load(frame, target="labl")
    gappy = frame.copy()
    gappy.loc[3, "b"] = np.nan
    with pytest.raises(ActlabError, match=r"1 column\(s\) have missing values \('b'; 1 row"):
        dataforms.load(gappy, target="label")
    assert len(dataforms.load(gappy, target="label", drop_missing=True).y) == len(frame) - 1
    with pytest.raises(ActlabError, match=r"y must hold one value per row of X \(3\)"):
        dataforms.load((np.ones((3, 2)), np.ones(4)))
    with pytest.raises(ActlabError, match="is not a form actlab reads"):
        dataforms.load(42)
