"""How fast is ``actlab search``? Every figure comes from one run of this script.

    .venv/bin/python benchmarks/search_speed.py [--models 64] [--epochs 3] [--budget 600]
        [--space default] [--skip-race-count]

Printed:

* screening: candidates per minute over the whole space (``--space``, after dedup), features of
  :mod:`actlab.search.screen` at depth 2, width 64 (a warm-up chunk first, not counted; goal:
  >= 2,000 a minute);
* racing cost per model-epoch on digits (depth 2, width 64, batch 64): ``--models`` copies of
  x*sigmoid(x) through the generic expression path (:class:`actlab.search.race.Stack`), against
  the compare engine's built-in SiLU fast path (``actlab.compare.engine.train``, ATen's own SiLU
  kernels, the same number of models), both timed here, best of two (goal: generic <= 2x), plus
  a mixed stack of as many *different* candidates (the real racing case: one group per primitive);
* how many candidates the racing phase of a ``--budget`` search would race on this machine now
  (the plan's entrants from the measured cost, as :func:`actlab.search.runner.run` decides; the
  race gets half of the budget).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import summary


def _digits():
    import torch

    from actlab import data

    split = data.split(data.load("digits"), val_fraction=0.2, seed=0, test_fraction=0.2)
    tensors = {
        "X_train": torch.from_numpy(split.X_train), "y_train": torch.from_numpy(split.y_train),
        "X_val": torch.from_numpy(split.X_val), "y_val": torch.from_numpy(split.y_val),
        "classification": True, "n_out": split.n_classes,
    }  # fmt: skip
    return split, tensors


def screening(space: str) -> float:
    from actlab.search import expr, primitives, screen

    slots = expr.candidates(expr.load_space(space))
    keep, _ = primitives.dedup(slots)
    slots = [slots[i] for i in keep]
    screen.screen(slots[:256], depth=2, width=64)  # warm-up
    t0 = time.perf_counter()
    screen.screen(slots, depth=2, width=64)
    dt = time.perf_counter() - t0
    rate = len(slots) / dt * 60
    print(f"screening: {len(slots)} candidates in {dt:.2f} s = {rate:,.0f} candidates/minute "
          f"(goal >= 2,000: {'MET' if rate >= 2000 else 'MISSED'})")  # fmt: skip
    return rate


def generic(tensors, slots, epochs: int) -> float:
    from actlab.search.race import Stack

    best = float("inf")
    for _ in range(2):
        stack = Stack(slots, tensors, depth=2, width=64, seed=0, lr=1e-3, batch_size=64)
        stack.run_epoch()  # warm-up
        t0 = time.perf_counter()
        for _ in range(epochs):
            stack.run_epoch()
            stack.evaluate()
        best = min(best, (time.perf_counter() - t0) / (epochs * len(slots)))
    return best


def fast(split, models: int, epochs: int) -> float:
    from actlab.compare import engine

    config = engine.TrainConfig(depth=2, width=64, epochs=epochs, batch_size=64, lr=1e-3,
                                init="glorot")  # fmt: skip
    jobs = [engine.Job("silu", s) for s in range(models)]
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        engine.train(jobs, split, config)
        best = min(best, (time.perf_counter() - t0) / (epochs * models))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--budget", type=float, default=600.0)
    ap.add_argument("--space", default="default")
    ap.add_argument("--skip-race-count", action="store_true")
    args = ap.parse_args(argv)
    print(summary())
    rate = screening(args.space)
    split, tensors = _digits()
    silu_expr = [("mul", "x", "sigmoid")] * args.models
    g = generic(tensors, silu_expr, args.epochs)
    f = fast(split, args.models, args.epochs)
    print(f"racing, digits 2x64, {args.models} models: generic x*sigmoid(x) {g * 1e3:.2f} ms per "
          f"model-epoch; engine SiLU fast path {f * 1e3:.2f} ms; ratio {g / f:.2f}x (goal <= 2x: "
          f"{'MET' if g / f <= 2 else 'MISSED'})")
    from actlab.search import expr

    mixed = expr.candidates(expr.load_space(args.space))[: args.models]
    m = generic(tensors, mixed, args.epochs)
    groups = len({s[1] for s in mixed}) + len({s[2] for s in mixed}) + len({s[0] for s in mixed})
    print(f"racing, {args.models} different candidates ({groups} primitive groups): "
          f"{m * 1e3:.2f} ms per model-epoch ({m / f:.2f}x the fast path)")
    if not args.skip_race_count:
        from actlab.search import race, runner

        per = max(g, m)
        k = runner._entrants(args.budget * runner.RACE_SHARE, per, 10**6, 3, 20)
        rungs = race.plan(k, 3, 20)
        print(f"estimate from these {args.models}-model stacks (larger mixed stacks cost more per "
              f"model-epoch): a {args.budget:.0f} s search would race {k} candidates here (rungs "
              f"{[(r.size, r.epochs) for r in rungs]}, {race.cost(rungs)} model-epochs at "
              f"{per * 1e3:.2f} ms; the space holds fewer: it races them all)")  # fmt: skip
    return 0 if rate > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
