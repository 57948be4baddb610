"""Built-in datasets, CSV loading and the train/validation split (actlab.data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actlab import data
from actlab.errors import ActlabError


@pytest.mark.parametrize("name", list(data.DATASETS))
def test_builtin_datasets_load_and_split(name: str) -> None:
    ds = data.load(name)
    assert ds.X.ndim == 2 and ds.X.dtype == np.float64 and len(ds.X) == len(ds.y)
    assert ds.task == ("regression" if name == "diabetes" else "classification")
    s = data.split(ds, val_fraction=0.25, seed=1)
    assert s.X_train.dtype == np.float32 and s.X_val.dtype == np.float32
    assert len(s.y_train) + len(s.y_val) == len(ds.y)
    if ds.task == "classification":
        assert s.y_train.dtype == np.int64 and s.n_classes == len(ds.class_names) >= 2
    else:
        assert s.y_train.dtype == np.float32 and s.y_train.shape == (len(s.y_train), 1)
        assert s.n_classes == 0


def test_standardised_with_training_statistics_only() -> None:
    s = data.split(data.load("wine"), seed=3)
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(s.X_train.std(axis=0), 1, atol=1e-4)
    # the validation part is transformed with the training statistics, so it is not exactly standard
    assert np.abs(s.X_val.mean(axis=0)).max() > 1e-3


def test_split_is_stratified_fixed_by_seed_and_fingerprinted() -> None:
    ds = data.load("breast_cancer")
    a = data.split(ds, val_fraction=0.2, seed=7)
    b = data.split(ds, val_fraction=0.2, seed=7)
    c = data.split(ds, val_fraction=0.2, seed=8)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    np.testing.assert_array_equal(a.X_val, b.X_val)
    share = np.bincount(ds.y) / len(ds.y)
    np.testing.assert_allclose(np.bincount(a.y_val) / len(a.y_val), share, atol=0.01)
    assert len(a.fingerprint) == 64


def test_regression_target_standardised_and_recoverable() -> None:
    ds = data.load("diabetes")
    s = data.split(ds)
    restored = np.concatenate([s.y_train, s.y_val])[:, 0] * s.target_scale + s.target_mean
    np.testing.assert_allclose(np.sort(restored), np.sort(ds.y), rtol=1e-5)


def test_synthetic_noise_and_determinism() -> None:
    for name in data.SYNTHETIC:
        quiet, loud = data.load(name, noise=0.0), data.load(name, noise=0.5)
        assert quiet.X.shape == (data.SYNTHETIC_ROWS, 2)
        assert set(np.unique(quiet.y)) == set(range(len(quiet.class_names))) >= {0, 1}
        np.testing.assert_array_equal(quiet.X, data.load(name, noise=0.0).X)
        assert not np.allclose(quiet.X, loud.X)
    # xor without noise: the label is exactly the sign of x1 * x2
    x = data.load("xor", noise=0.0)
    np.testing.assert_array_equal(x.y, (x.X[:, 0] * x.X[:, 1] > 0).astype(int))


def test_dataset_name_errors() -> None:
    with pytest.raises(ActlabError, match="did you mean 'digits'"):
        data.load("digts")
    with pytest.raises(ActlabError, match="only to the synthetic"):
        data.load("iris", noise=0.1)
    with pytest.raises(ActlabError, match="between 0 and 2"):
        data.load("moons", noise=-1)
    assert data.load("Breast-Cancer").name == "breast_cancer"


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "x", True])
def test_bad_val_fraction(bad: object) -> None:
    with pytest.raises(ActlabError, match="val_fraction"):
        data.split(data.load("iris"), val_fraction=bad)  # type: ignore[arg-type]


# -----------------------------------------------------------------------------------------------
# CSV


def _csv(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_numeric_text_onehot_and_inferred_classification(tmp_path: Path) -> None:
    text = "size,colour,label\n" + "".join(
        f"{i},{'red' if i % 3 else 'blue'},{'cat' if i % 2 else 'dog'}\n" for i in range(12)
    )
    p = _csv(tmp_path, text)
    ds = data.load_csv(p, "label")
    assert ds.task == "classification" and ds.class_names == ("cat", "dog")
    assert ds.feature_names == ("size", "colour=blue", "colour=red")
    np.testing.assert_array_equal(ds.X[:3], [[0, 1, 0], [1, 0, 1], [2, 0, 1]])
    assert ds.name == "d" and ds.target == "label"


def test_csv_task_inference(tmp_path: Path) -> None:
    ints = _csv(tmp_path, "a,y\n" + "".join(f"{i},{i % 3}\n" for i in range(30)), "i.csv")
    floats = _csv(tmp_path, "a,y\n" + "".join(f"{i},{i * 0.37}\n" for i in range(30)), "f.csv")
    many = _csv(tmp_path, "a,y\n" + "".join(f"{i},{i}\n" for i in range(30)), "m.csv")
    assert data.load_csv(ints, "y").task == "classification"
    assert data.load_csv(ints, "y").class_names == ("0", "1", "2")
    assert data.load_csv(floats, "y").task == "regression"
    assert data.load_csv(many, "y").task == "regression"  # 30 distinct integers: a quantity
    assert data.load_csv(ints, "y", task="regression").task == "regression"
    assert data.load_csv(floats, "y", task="classification").n_classes == 30


def test_csv_semicolon_delimiter(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a;b;y\n" + "".join(f"{i};{2 * i};{i % 2}\n" for i in range(10)))
    assert data.load_csv(p, "y").X.shape == (10, 2)


def test_csv_missing_values_name_the_column(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,b,y\n1,2,0\n3,,1\n5,NA,0\n7,8,1\n")
    with pytest.raises(ActlabError, match=r"column 'b' has 2 missing value\(s\).*file lines 3, 4"):
        data.load_csv(p, "y")


def test_csv_missing_target_lists_columns_and_suggests(tmp_path: Path) -> None:
    p = _csv(tmp_path, "height,weight,species\n1,2,a\n3,4,b\n")
    with pytest.raises(ActlabError, match=r"'specie'.*did you mean 'species'.*height, weight"):
        data.load_csv(p, "specie")
    with pytest.raises(ActlabError, match="did you mean 'species'"):
        data.load_csv(p, "Species")


def test_csv_constant_target(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,y\n1,5\n2,5\n3,5\n")
    with pytest.raises(ActlabError, match="target column 'y' has the same value '5' in every row"):
        data.load_csv(p, "y")


def test_csv_class_with_too_few_rows_for_the_split(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(20)) + "99,rare\n"
    ds = data.load_csv(_csv(tmp_path, "x,kind\n" + rows), "kind")
    with pytest.raises(ActlabError, match="class 'rare' of target column 'kind' has 1 row"):
        data.split(ds)
    small = data.load_csv(_csv(tmp_path, "x,k\n1,a\n2,a\n3,b\n4,b\n5,c\n6,c\n", "s.csv"), "k")
    with pytest.raises(ActlabError, match="validation part would have 2 rows for 3 classes"):
        data.split(small, val_fraction=0.2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   \n\n", "is empty"),
        ("a,b,y\n", "header but no data rows"),
        ("a,b,y\n1,2\n", "has 2 fields but the header has 3"),
        ("a,a,y\n1,2,3\n", "'a' appears more than once"),
        ("a,y\n1,0\ninf,1\n2,0\n", "column 'a' contains inf"),
    ],
)
def test_csv_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ActlabError, match=message):
        data.load_csv(_csv(tmp_path, text), "y")


def test_csv_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ActlabError, match="does not exist"):
        data.load_csv(tmp_path / "nope.csv", "y")
    with pytest.raises(ActlabError, match="is a directory"):
        data.load_csv(tmp_path, "y")
    with pytest.raises(ActlabError, match="task must be one of"):
        data.load_csv(tmp_path / "nope.csv", "y", task="clustering")


def test_csv_text_target_cannot_be_regression(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,y\n1,cat\n2,dog\n")
    with pytest.raises(ActlabError, match="use --task classification"):
        data.load_csv(p, "y", task="regression")


def test_csv_identifier_column_is_refused(tmp_path: Path) -> None:
    rows = "".join(f"id{i},{i % 7},{i % 2}\n" for i in range(300))
    with pytest.raises(ActlabError, match="column 'name' is text with 300 distinct values"):
        data.load_csv(_csv(tmp_path, "name,a,y\n" + rows), "y")
