"""The built-in datasets: scikit-learn's bundled sets and TensorFlow-Playground-style 2-D sets
(two-class and multiclass), made here from a seed; nothing is downloaded."""

from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path

import numpy as np

from actlab.data.base import Dataset
from actlab.errors import ActlabError, suggest

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
    "spirals3": "three interleaved spiral arms, 2-D, 3 classes (synthetic, --noise)",
    "blobs": "four Gaussian blobs on a circle, 2-D, 4 classes (synthetic, --noise: their spread)",
}
SYNTHETIC = ("moons", "circles", "spirals", "xor", "spirals3", "blobs")
# Default noise per synthetic set: enough to make the task non-trivial, small enough to keep it
# learnable.
DEFAULT_NOISE = {"moons": 0.2, "circles": 0.1, "spirals": 0.1, "xor": 0.1, "spirals3": 0.1,
                 "blobs": 0.4}  # fmt: skip
SYNTHETIC_ROWS = 1000


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
    if noise is not None:
        noise = _check_noise(noise, key)
    if key in SYNTHETIC:
        return _synthetic(key, DEFAULT_NOISE[key] if noise is None else noise, seed)
    if key == "digits":
        fast = _digits()
        if fast is not None:
            return fast
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


def _digits() -> Dataset | None:
    """scikit-learn's digits read from its package file, as ``load_digits`` reads it (the same
    numbers, names and classes; the tests compare them), without importing scikit-learn: that
    import was ~0.6 s of the default ``actlab compare``'s start-up. None when the file is not
    where scikit-learn keeps it (then ``load_digits`` is asked)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        table = np.loadtxt(f, delimiter=",")
    X = np.asarray(table[:, :-1], dtype=np.float64)
    y = table[:, -1].astype(np.int64)
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return Dataset(X, y, "classification", names, tuple(str(c) for c in range(10)), "digits",
                   "class")  # fmt: skip


def _check_noise(noise: float, name: str) -> float:
    """The noise level of the synthetic dataset ``name``; any other dataset takes none."""
    if name not in SYNTHETIC:
        raise ActlabError(
            f"noise applies only to the synthetic datasets ({', '.join(SYNTHETIC)}), "
            f"not to '{name}'"
        )
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
    elif name == "spirals3":
        # Three arms of 1.5 turns, a third of a turn apart (rows 334/333/333), as spirals: sqrt
        # spreads points along each arm, noise halved.
        y = np.repeat([0, 1, 2], [n - 2 * (n // 3), n // 3, n // 3])
        t = np.sqrt(rng.uniform(0.02, 1.0, size=n))
        angle = t * 1.5 * 2 * np.pi + y * (2 * np.pi / 3)
        X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1)
        X = X + rng.normal(scale=noise, size=X.shape) * 0.5
    elif name == "blobs":
        # Four round Gaussian clouds with centres on the unit circle (at 45, 135, 225, 315
        # degrees), 250 rows each; noise is their standard deviation (0.4: neighbours touch).
        y = np.repeat(np.arange(4), n // 4)
        angle = np.pi / 4 + y * (np.pi / 2)
        X = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        X = X + rng.normal(scale=noise, size=X.shape)
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
        tuple(str(c) for c in range(int(np.max(y)) + 1)),
        name,
        "class",
        "synthetic",
    )
