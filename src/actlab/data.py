"""Datasets for comparisons: scikit-learn's bundled sets, TensorFlow-Playground-style 2-D sets, CSV
files.

Nothing is downloaded. ``load`` / ``load_csv`` give a :class:`Dataset` (raw features); ``split``
turns it into a :class:`Split` (stratified for classification, standardised with training statistics
only) that every model of a comparison shares.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.errors import ActlabError, suggest

TASKS = ("classification", "regression")

DATASETS: dict[str, str] = {
    "digits": "8x8 images of handwritten digits, 1797 rows, 64 features, 10 classes (scikit-learn)",
    "iris": "iris flowers, 150 rows, 4 features, 3 classes (scikit-learn)",
    "wine": "wine cultivars, 178 rows, 13 features, 3 classes (scikit-learn)",
    "breast_cancer": "breast tumour biopsies, 569 rows, 30 features, 2 classes (scikit-learn)",
    "diabetes": "diabetes progression, 442 rows, 10 features, regression (scikit-learn)",
    "moons": "two interleaving half-moons, 2-D, 2 classes (synthetic, --noise)",
    "circles": "a circle inside a ring, 2-D, 2 classes (synthetic, --noise)",
    "spirals": "two interleaved spirals, 2-D, 2 classes (synthetic, --noise)",
    "xor": "XOR quadrants, 2-D, 2 classes (synthetic, --noise)",
}
SYNTHETIC = ("moons", "circles", "spirals", "xor")
# Default noise per synthetic set: enough to make the task non-trivial, small enough to keep it
# learnable.
DEFAULT_NOISE = {"moons": 0.2, "circles": 0.1, "spirals": 0.1, "xor": 0.1}
SYNTHETIC_ROWS = 1000

# Values treated as missing in CSV files (compared case-insensitively, after stripping spaces).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"})
# A target of integers with at most this many distinct values is read as class labels.
MAX_INTEGER_CLASSES = 20


@dataclass(frozen=True, eq=False)
class Dataset:
    """Raw data: ``X`` float64 (rows, features); ``y`` int64 class ids or float64 targets."""

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    name: str
    target: str = "target"
    source: str = "builtin"  # "builtin", "synthetic" or the CSV path

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


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    return {"breastcancer": "breast_cancer", "cancer": "breast_cancer"}.get(key, key)


def load(name: str, *, noise: float | None = None, seed: int = 0) -> Dataset:
    """A built-in dataset by name (see ``DATASETS``); ``noise`` only for the synthetic 2-D sets."""
    key = _canonical_name(name)
    if key not in DATASETS:
        raise ActlabError(
            f"unknown dataset '{name}'{suggest(key, DATASETS)} "
            f"(built-in: {', '.join(DATASETS)}; or use a CSV file with --csv PATH --target COLUMN)"
        )
    if key in SYNTHETIC:
        level = DEFAULT_NOISE[key] if noise is None else _check_noise(noise)
        return _synthetic(key, level, seed)
    if noise is not None:
        raise ActlabError(
            f"noise applies only to the synthetic datasets ({', '.join(SYNTHETIC)}), not to '{key}'"
        )
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{key}")()
    X = np.asarray(bunch.data, dtype=np.float64)
    names = tuple(
        str(f) for f in getattr(bunch, "feature_names", [f"x{i}" for i in range(X.shape[1])])
    )
    if key == "diabetes":
        y = np.asarray(bunch.target, dtype=np.float64)
        return Dataset(X, y, "regression", names, (), key, "progression")
    y = np.asarray(bunch.target, dtype=np.int64)
    classes = tuple(str(c) for c in bunch.target_names)
    return Dataset(X, y, "classification", names, classes, key, "class")


def _check_noise(noise: float) -> float:
    try:
        value = float(noise)
    except (TypeError, ValueError):
        raise ActlabError(f"noise must be a number between 0 and 2, got {noise!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 2.0):
        raise ActlabError(
            f"noise must be between 0 and 2 (standard deviation of added Gaussian noise), got "
            f"{noise}"
        )
    return value


def _synthetic(name: str, noise: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    n = SYNTHETIC_ROWS
    if name == "moons":
        from sklearn.datasets import make_moons

        X, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    elif name == "circles":
        from sklearn.datasets import make_circles

        X, y = make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    elif name == "spirals":
        # Two arms of 1.75 turns, the second rotated by half a turn; the radius grows with the
        # angle. sqrt spreads points evenly along each arm; the arms are ~0.3 apart, so the noise
        # is halved to keep a given --noise comparable with moons and circles.
        half = n // 2
        t = np.sqrt(rng.uniform(0.02, 1.0, size=(2, half)))
        angle = t * 1.75 * 2 * np.pi + np.array([[0.0], [np.pi]])
        X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1).reshape(-1, 2)
        X = X + rng.normal(scale=noise, size=X.shape) * 0.5
        y = np.repeat([0, 1], half)
    else:  # xor: label = sign of x1 * x2; points kept a little off the axes, as in the Playground
        X = rng.uniform(-1.0, 1.0, size=(n, 2))
        X = X + np.sign(X) * 0.05
        y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
        X = X + rng.normal(scale=noise, size=X.shape)
    return Dataset(
        np.asarray(X, dtype=np.float64),
        np.asarray(y, dtype=np.int64),
        "classification",
        ("x1", "x2"),
        ("0", "1"),
        name,
        "class",
        "synthetic",
    )


# --------------------------------------------------------------------------------------------------
# -- CSV


def _is_missing(value: str) -> bool:
    return value.strip().lower() in MISSING


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.exists():
        raise ActlabError(
            f"CSV file '{path}' does not exist; check the path (relative to {Path.cwd()})"
        )
    if path.is_dir():
        raise ActlabError(f"'{path}' is a directory; --csv needs a CSV file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ActlabError(
            f"CSV file '{path}' is not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ActlabError(f"cannot read CSV file '{path}': {exc.strerror}") from None
    if not text.strip():
        raise ActlabError(f"CSV file '{path}' is empty; it needs a header row and data rows")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:65536], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    rows = [
        row for row in csv.reader(text.splitlines(), dialect) if any(cell.strip() for cell in row)
    ]
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise ActlabError(f"CSV file '{path}' has a header but no data rows")
    for i, h in enumerate(header):
        if not h:
            raise ActlabError(
                f"CSV file '{path}': column {i + 1} has an empty name; give every column a header"
            )
    dupes = [h for h, c in Counter(header).items() if c > 1]
    if dupes:
        raise ActlabError(
            f"CSV file '{path}': column name {dupes[0]!r} appears more than once; rename it"
        )
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ActlabError(
                f"CSV file '{path}': a data row has {len(row)} fields but the header has "
                f"{len(header)} "
                f"(row {line} of the file, counting the header as row 1); fix or remove that row"
            )
    return header, body


def load_csv(path: str | os.PathLike[str], target: str, *, task: str | None = None) -> Dataset:
    """Read a CSV file: ``target`` is the column to predict, every other column is a feature.

    Numeric columns are used as they are; text columns are one-hot encoded (``column=value``). The
    task is inferred from the target unless given: text, or few distinct integers (at most 20),
    means classification.
    """
    if task is not None and task not in TASKS:
        raise ActlabError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    p = Path(path)
    header, body = _read_rows(p)
    if target not in header:
        by_lower = {h.lower(): h for h in header}
        hint = (
            f"; did you mean '{by_lower[target.lower()]}'?"
            if target.lower() in by_lower
            else suggest(target, header)
        )
        raise ActlabError(
            f"target column '{target}' is not in CSV file '{p}'{hint} (columns: "
            f"{', '.join(header)})"
        )
    columns = {h: [row[i].strip() for row in body] for i, h in enumerate(header)}
    for h, values in columns.items():
        bad = [i + 2 for i, v in enumerate(values) if _is_missing(v)]
        if bad:
            rows = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
            raise ActlabError(
                f"column '{h}' has {len(bad)} missing value(s) (rows {rows} of '{p}'); actlab "
                "does not guess "
                "values: fill them in or drop those rows (or drop the column)"
            )
    y, y_task, classes = _target(columns.pop(target), target, task)
    if not columns:
        raise ActlabError(f"CSV file '{p}' has no feature columns besides the target '{target}'")
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for h, values in columns.items():
        numbers = [_as_float(v) for v in values]
        if all(x is not None for x in numbers):
            arr = np.array(numbers, dtype=np.float64)
            if not np.isfinite(arr).all():
                raise ActlabError(
                    f"column '{h}' contains inf or NaN; replace those values with numbers"
                )
            blocks.append(arr[:, None])
            names.append(h)
            continue
        levels = sorted(set(values))
        if len(levels) > 100 and len(levels) > len(values) // 2:
            raise ActlabError(
                f"column '{h}' is text with {len(levels)} distinct values in {len(values)} rows "
                "(an identifier?); "
                "one-hot encoding it would not generalise: drop the column"
            )
        index = {v: i for i, v in enumerate(levels)}
        onehot = np.zeros((len(values), len(levels)), dtype=np.float64)
        onehot[np.arange(len(values)), [index[v] for v in values]] = 1.0
        blocks.append(onehot)
        names.extend(f"{h}={v}" for v in levels)
    X = np.concatenate(blocks, axis=1)
    return Dataset(X, y, y_task, tuple(names), classes, p.stem, target, str(p))


def _target(
    values: list[str], name: str, task: str | None
) -> tuple[np.ndarray, str, tuple[str, ...]]:
    distinct = set(values)
    if len(distinct) < 2:
        raise ActlabError(
            f"target column '{name}' has the same value {values[0]!r} in every row; there is "
            "nothing to learn: "
            "choose another --target or add rows with other values"
        )
    numbers = [_as_float(v) for v in values]
    numeric = all(x is not None and math.isfinite(x) for x in numbers)
    if task is None:
        integral = numeric and all(float(x).is_integer() for x in numbers)  # type: ignore[arg-type]
        task = (
            "classification"
            if not numeric or (integral and len(distinct) <= MAX_INTEGER_CLASSES)
            else "regression"
        )
    if task == "regression":
        if not numeric:
            example = next(
                v for v, x in zip(values, numbers, strict=True) if x is None or not math.isfinite(x)
            )
            raise ActlabError(
                f"target column '{name}' has the non-numeric value {example!r}, so it cannot be "
                "a regression "
                "target; use --task classification or pick a numeric column"
            )
        return np.array(numbers, dtype=np.float64), "regression", ()
    if numeric:  # "1" and "1.0" are one class; sort numerically and label as "1" rather than "1.0"
        keys = sorted({float(v) for v in values})
        pos = {k: i for i, k in enumerate(keys)}
        y = np.array([pos[float(v)] for v in values], dtype=np.int64)
        labels = tuple(str(int(k)) if k.is_integer() else repr(k) for k in keys)
        return y, "classification", labels
    order = sorted(distinct)
    index = {v: i for i, v in enumerate(order)}
    y = np.array([index[v] for v in values], dtype=np.int64)
    return y, "classification", tuple(order)


# --------------------------------------------------------------------------------------------------
# -- split


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> float:
    low = "0 <=" if allow_zero else "0 <"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ActlabError(f"{name} must be a number {low} F < 1, got {value!r}")
    if not ((float(value) >= 0.0 if allow_zero else float(value) > 0.0) and float(value) < 1.0):
        raise ActlabError(f"{name} must be a number {low} F < 1 (e.g. 0.2), got {value}")
    return float(value)


def split(
    dataset: Dataset, *, val_fraction: float = 0.2, seed: int = 0, test_fraction: float = 0.0
) -> Split:
    """Split into training, validation and (optional) test parts, the same given the same ``seed``.

    ``val_fraction`` and ``test_fraction`` are shares of all rows. The test part is cut first, then
    validation from the rest; with ``test_fraction=0`` the split is exactly the two-way split of
    earlier versions (same rows, same fingerprint). Classification splits are stratified. Features
    (and regression targets) are standardised with the training part's mean and standard deviation
    only, so nothing about the validation or test rows leaks into training.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise ActlabError(
            f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}"
        )
    if not (0.0 < float(val_fraction) < 1.0):
        raise ActlabError(
            f"val_fraction must be strictly between 0 and 1 (e.g. 0.2), got {val_fraction}"
        )
    test_fraction = _check_fraction("test_fraction", test_fraction, allow_zero=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ActlabError(f"split seed must be a non-negative integer, got {seed!r}")
    from sklearn.model_selection import train_test_split

    n = len(dataset.y)
    n_val = math.ceil(float(val_fraction) * n)
    n_test = math.ceil(test_fraction * n) if test_fraction > 0 else 0
    if n_val < 1 or n - n_val - n_test < 1:
        raise ActlabError(
            f"{n} rows with val_fraction {val_fraction} and test_fraction {test_fraction} leave an "
            "empty training or validation part; add rows or lower --val-fraction / --test-fraction"
        )
    stratify = None
    if dataset.task == "classification":
        counts = np.bincount(dataset.y, minlength=dataset.n_classes)
        parts = 3 if n_test else 2
        for cls, count in enumerate(counts):
            if count < parts:
                label = dataset.class_names[cls] if cls < len(dataset.class_names) else str(cls)
                raise ActlabError(
                    f"class '{label}' of target column '{dataset.target}' has {count} row(s); a "
                    f"stratified split needs at least {parts} rows of every class (one for "
                    "training, one for validation" + (", one for test" if n_test else "")
                    + "): add rows of that class or remove it"
                )
        k = int((counts > 0).sum())
        small = min(
            (size, part)
            for size, part in ((n_val, "validation"), (n - n_val - n_test, "training"),
                               *(((n_test, "test"),) if n_test else ()))
        )  # fmt: skip
        if small[0] < k:
            raise ActlabError(
                f"with val_fraction {val_fraction} and test_fraction {test_fraction}, the "
                f"{small[1]} part would have {small[0]} rows for {k} classes of "
                f"'{dataset.target}'; every class needs a row in each part: change "
                "--val-fraction / --test-fraction or add rows"
            )
        stratify = dataset.y
    rest = np.arange(n)
    idx_test = rest[:0]
    if n_test:
        rest, idx_test = train_test_split(
            rest, test_size=n_test, random_state=int(seed), shuffle=True, stratify=stratify
        )
        stratify = None if stratify is None else dataset.y[rest]
    idx_train, idx_val = train_test_split(
        rest, test_size=n_val, random_state=int(seed), shuffle=True, stratify=stratify
    )
    X_train, X_val = dataset.X[idx_train], dataset.X[idx_val]
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0  # a constant training column stays 0 instead of becoming NaN
    X_train = ((X_train - mean) / std).astype(np.float32)
    X_val = ((X_val - mean) / std).astype(np.float32)
    X_test = ((dataset.X[idx_test] - mean) / std).astype(np.float32)
    if dataset.task == "classification":
        y_train = dataset.y[idx_train].astype(np.int64)
        y_val = dataset.y[idx_val].astype(np.int64)
        y_test = dataset.y[idx_test].astype(np.int64)
        t_mean, t_scale = 0.0, 1.0
    else:
        raw = dataset.y.astype(np.float64)
        t_mean = float(raw[idx_train].mean())
        t_scale = float(raw[idx_train].std()) or 1.0
        y_train = ((raw[idx_train] - t_mean) / t_scale).astype(np.float32)[:, None]
        y_val = ((raw[idx_val] - t_mean) / t_scale).astype(np.float32)[:, None]
        y_test = ((raw[idx_test] - t_mean) / t_scale).astype(np.float32)[:, None]
    digest = hashlib.sha256()
    # the test part enters the fingerprint only when there is one: two-way splits keep theirs
    for arr in (X_train, y_train, X_val, y_val, *((X_test, y_test) if n_test else ())):
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update(f"{dataset.task}|{t_mean!r}|{t_scale!r}".encode())
    return Split(
        X_train=X_train,
        y_train=y_train,
        X_val=X_val,
        y_val=y_val,
        task=dataset.task,
        n_classes=dataset.n_classes,
        feature_names=dataset.feature_names,
        class_names=dataset.class_names,
        name=dataset.name,
        fingerprint=digest.hexdigest(),
        target=dataset.target,
        target_mean=t_mean,
        target_scale=t_scale,
        val_fraction=float(val_fraction),
        seed=int(seed),
        X_test=X_test,
        y_test=y_test,
        test_fraction=test_fraction,
    )
