"""What ``--objective`` costs per model beyond the user's own ``fit`` (issue 22 item 2).

    .venv/bin/python benchmarks/objective_overhead.py              # 40 models, 10 epochs each
    .venv/bin/python benchmarks/objective_overhead.py --models 8   # smoke (CI)

Two training functions: ``empty`` reports every epoch and returns at once (what is left is
actlab's own work: seeding, the guards, building records, one SQLite commit per model), and
``small``, a 64-unit MLP trained for a few epochs on iris in a plain loop (a realistic cheap
model). Each is timed called directly, ``models`` times in a loop with a ``Trial`` stand-in, and
through ``compare.run(objective=fit)`` (its ``train_s`` phase: the grid's training, store writes
included; the one-off set-up, analysis and report are printed apart). The ratio and the overhead
per model in milliseconds are measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import summary

from actlab import compare, data
from actlab.compare import objective


def empty(trial: Any) -> dict[str, float]:
    """No training: the reports and the return value only."""
    for epoch in range(1, trial.epochs + 1):
        trial.report(epoch, val_accuracy=0.5, train_loss=1.0)
    return {"test_accuracy": 0.5}


def small(trial: Any) -> dict[str, float]:
    """A 64-unit MLP on iris in a plain PyTorch loop."""
    import torch
    from torch import nn

    d = trial.data
    X, y = torch.tensor(d.X_train), torch.tensor(d.y_train)
    Xv, yv = torch.tensor(d.X_val), torch.tensor(d.y_val)
    net = nn.Sequential(nn.Linear(X.shape[1], 64), trial.activation(), nn.Linear(64, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for epoch in range(1, trial.epochs + 1):
        for i in range(0, len(X), 32):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(X[i : i + 32]), y[i : i + 32])
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (net(Xv).argmax(1) == yv).float().mean().item()
        trial.report(epoch, val_accuracy=acc, train_loss=loss.item())
    with torch.no_grad():
        return {"test_accuracy": (net(torch.tensor(d.X_test)).argmax(1)
                                  == torch.tensor(d.y_test)).float().mean().item()}  # fmt: skip


def direct(fn: Any, n_models: int, epochs: int, split: Any) -> float:
    """Seconds for calling ``fn`` ``n_models`` times with a bare Trial (no guards, no store)."""
    start = time.perf_counter()
    for k in range(n_models):
        fn(objective.Trial("relu", k, {}, epochs, split, "cpu", "bench"))
    return time.perf_counter() - start


def through_actlab(fn: Any, n_models: int, epochs: int, out: Path) -> tuple[float, dict]:
    res = compare.run("iris", out=out, objective=fn, activations=["relu", "tanh"],
                      seeds=n_models // 2, epochs=epochs, report=False)  # fmt: skip
    return res.phases["train_s"], res.phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.models - args.models % 2
    split = data.split(data.load("iris"), test_fraction=0.2)
    print(summary())
    print(f"{n} models x {args.epochs} epochs; median of {args.repeats} repeats")
    print(f"{'fit':<7} {'direct s':>9} {'actlab s':>9} {'ratio':>6} {'overhead/model':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: the first run pays one-off imports (torch.optim, the store's libraries)
        direct(small, 2, 1, split)
        through_actlab(small, 2, 1, Path(tmp) / "warm")
        for fn in (empty, small):
            mine, theirs = [], []
            for r in range(args.repeats):
                mine.append(direct(fn, n, args.epochs, split))
                out = Path(tmp) / f"{fn.__name__}{r}"
                seconds, phases = through_actlab(fn, n, args.epochs, out)
                theirs.append(seconds)
            a, b = statistics.median(mine), statistics.median(theirs)
            per = (b - a) / n * 1e3
            print(f"{fn.__name__:<7} {a:9.3f} {b:9.3f} {b / a:6.2f} {per:12.2f} ms")
        print(f"one-off per run (last): prepare {phases['prepare_s']:.2f} s, analysis "
              f"{phases['analysis_s']:.2f} s (report not written)")


if __name__ == "__main__":
    main()
