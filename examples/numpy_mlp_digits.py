"""Train a small MLP written from scratch in NumPy (actlab.layers) on scikit-learn's digits.

    python examples/numpy_mlp_digits.py                        # ReLU, 20 epochs
    python examples/numpy_mlp_digits.py --activation elu:alpha=0.5 --epochs 10 --seed 1

8x8 images (64 features) -> Linear(64, 128) -> activation -> Linear(128, 10) -> softmax
cross-entropy, trained with Adam on mini-batches; prints the validation accuracy after every epoch.
Every gradient comes from the layers' hand-written backward passes (no autograd).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from actlab import layers
from actlab.catalog import parse
from actlab.errors import ActlabError


def load(seed: int = 0, val_fraction: float = 0.2) -> tuple[np.ndarray, ...]:
    """Stratified split of digits, standardised with the training set's statistics."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_val, y_tr, y_val = train_test_split(
        X, y, test_size=val_fraction, stratify=y, random_state=seed
    )
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0  # some corner pixels are always 0
    return (X_tr - mean) / std, y_tr, (X_val - mean) / std, y_val


def make_model(activation: str, hidden: int, rng: np.random.Generator) -> layers.Sequential:
    act = parse(activation)
    # the catalog knows which initialisation suits the activation (He for ReLU-like, ...)
    init = (
        act.spec.recommended_init if act.spec.recommended_init in layers.Linear.INITS else "glorot"
    )
    return layers.Sequential(
        layers.Linear(64, hidden, init=init, rng=rng),
        layers.build(act),
        layers.Linear(hidden, 10, init="glorot", rng=rng),
    )


def accuracy(model: layers.Layer, X: np.ndarray, y: np.ndarray) -> float:
    return float((model.forward(X).argmax(axis=1) == y).mean())


def train(
    activation: str = "relu",
    epochs: int = 20,
    seed: int = 0,
    *,
    hidden: int = 128,
    lr: float = 1e-3,
    batch_size: int = 32,
    log: Callable[[str], None] | None = None,
) -> list[float]:
    """Train and return the validation accuracy after each epoch."""
    if epochs < 1 or hidden < 1 or batch_size < 1:
        raise ActlabError("epochs, hidden and batch_size must be positive integers")
    rng = np.random.default_rng(seed)
    X_tr, y_tr, X_val, y_val = load(seed)
    model = make_model(activation, hidden, rng)
    opt = layers.Adam(model, lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(X_tr))
        losses = []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss, grad = layers.softmax_cross_entropy(model.forward(X_tr[idx]), y_tr[idx])
            model.backward(grad)
            opt.step()
            losses.append(loss)
        history.append(accuracy(model, X_val, y_val))
        if log is not None:
            log(
                f"epoch {epoch:3d}  train loss {np.mean(losses):.4f}  "
                f"val accuracy {history[-1]:.2%}"
            )
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--activation", default="relu", help="catalog spec, e.g. relu, elu:alpha=0.5"
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.hidden < 1 or not args.lr > 0:
        parser.error("--epochs and --hidden must be >= 1 and --lr > 0")
    try:
        act = parse(args.activation)
    except ActlabError as err:
        parser.error(str(err))
    print(f"digits, MLP 64-{args.hidden}-10, activation {act.label}, seed {args.seed}")
    t0 = time.perf_counter()
    history = train(str(act), args.epochs, args.seed, hidden=args.hidden, lr=args.lr, log=print)
    print(
        f"best val accuracy {max(history):.2%}, final {history[-1]:.2%} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
