"""The train / validation / test split every model of a comparison shares: stratified, seeded,
standardised with the training part's statistics only, fingerprinted."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from actlab.data.base import Dataset, Split
from actlab.errors import ActlabError

#: The split function's version, stored with every run (``split_version`` in the run's meta) so a
#: later change of the function never moves an old run's rows: ``--resume`` splits with the
#: version the run was made with. 1: scikit-learn's ``train_test_split`` (``ShuffleSplit`` /
#: ``StratifiedShuffleSplit``), which since then :func:`_shuffle_split` reproduces row for row in
#: NumPy (importing scikit-learn took ~1 s of every run's start-up).
SPLIT_VERSION = 1
SPLIT_VERSIONS = (1,)


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows per class in a part of ``n_draws`` rows: the floor of each class's share, then one
    more for the largest remainders, ties broken by ``rng`` (scikit-learn's rule and draws)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def _shuffle_split(
    n: int, n_test: int, seed: int, y: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions of ``n`` rows, ``n_test`` of them test, stratified by ``y`` if
    given: the same positions, in the same order, as scikit-learn's ``train_test_split(...,
    test_size=n_test, random_state=seed, shuffle=True, stratify=y)`` (split version 1; the
    tests compare them on many cases)."""
    rng = np.random.RandomState(seed)
    n_train = n - n_test
    if y is None:
        perm = rng.permutation(n)
        return perm[n_test:n], perm[:n_test]
    _, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(y_idx, kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i, rows in enumerate(members):
        shuffled = rows.take(rng.permutation(counts[i]), mode="clip")
        train.append(shuffled[: n_i[i]])
        test.append(shuffled[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> float:
    low = "0 <=" if allow_zero else "0 <"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ActlabError(f"{name} must be a number {low} F < 1, got {value!r}")
    if not ((float(value) >= 0.0 if allow_zero else float(value) > 0.0) and float(value) < 1.0):
        raise ActlabError(f"{name} must be a number {low} F < 1 (e.g. 0.2), got {value}")
    return float(value)


def split(
    dataset: Dataset,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    test_fraction: float = 0.0,
    version: int = SPLIT_VERSION,
) -> Split:
    """Split into training, validation and (optional) test parts, the same given the same ``seed``.

    ``val_fraction`` and ``test_fraction`` are shares of all rows. The test part is cut first, then
    validation from the rest; with ``test_fraction=0`` the split is exactly the two-way split of
    earlier versions (same rows, same fingerprint). Classification splits are stratified. Features
    (and regression targets) are standardised with the training part's mean and standard deviation
    only, so nothing about the validation or test rows leaks into training. ``version``: the
    split function's (:data:`SPLIT_VERSION`, the newest, unless a stored run says otherwise).
    """
    if version not in SPLIT_VERSIONS:
        raise ActlabError(
            f"split version {version!r} is not one this actlab knows "
            f"({', '.join(map(str, SPLIT_VERSIONS))}): the run was made by a newer actlab; "
            "upgrade actlab to resume it"
        )
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
        keep, test = _shuffle_split(n, n_test, int(seed), stratify)
        rest, idx_test = rest[keep], rest[test]
        stratify = None if stratify is None else dataset.y[rest]
    train, val = _shuffle_split(len(rest), n_val, int(seed), stratify)
    idx_train, idx_val = rest[train], rest[val]
    parts = (idx_train, idx_val, idx_test)
    mean = dataset.X[idx_train].mean(axis=0)
    std = dataset.X[idx_train].std(axis=0)
    std[std == 0] = 1.0  # a constant training column stays 0 instead of becoming NaN
    X_train, X_val, X_test = (((dataset.X[i] - mean) / std).astype(np.float32) for i in parts)
    if dataset.task == "classification":
        y_train, y_val, y_test = (dataset.y[i].astype(np.int64) for i in parts)
        t_mean, t_scale = 0.0, 1.0
    else:
        raw = dataset.y.astype(np.float64)
        t_mean = float(raw[idx_train].mean())
        t_scale = float(raw[idx_train].std()) or 1.0
        y_train, y_val, y_test = (
            ((raw[i] - t_mean) / t_scale).astype(np.float32)[:, None] for i in parts
        )
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
