"""``--strategy learn``: learn a rational curve per layer, then name the nearest expressions.

An MLP of the study's shape with a learnable ``rational`` activation (PAU, P(x) / (1 + |Q(x)|),
degrees 5/4, initialised to fit relu; ``actlab.torch.Rational``) in every hidden layer trains on
the training rows (Adam at the race's learning rate, the study's epochs, batch size and seed).
Each layer's learned curve is then compared with every screened candidate of the search space by
least squares over the inputs that layer saw (its pre-activations on the training rows):
``mean (f_cand(z) - r_layer(z))^2``, averaged over layers after dividing by the curve's own
variance. The nearest candidates are the finalists that go to the confirmation, like the race's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from actlab import catalog
from actlab.nets import loss, mlp
from actlab.search.primitives import Program, one_thread
from actlab.search.race import race_lr

__all__ = ["match", "run", "train_rational"]

FIT = "relu"  # the built-in the rational curves start from
_ROWS = 2048  # inputs per layer used for the match


def train_rational(
    data: dict[str, Any], *, depth: int, width: int, epochs: int, lr: float, batch_size: int,
    seed: int, deadline: float | None = None,
) -> tuple[Any, list[torch.Tensor], float]:
    """The trained network, each hidden layer's inputs (pre-activations on the training rows) and
    its validation score (accuracy, or -RMSE)."""
    act = catalog.parse(f"rational:fit={FIT}:learnable=true")
    net = mlp(data["X_train"].shape[1], width, data["n_out"], [act] * depth, "he", seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    X, y = data["X_train"], data["y_train"]
    for epoch in range(epochs):
        if deadline is not None and time.monotonic() > deadline:
            break
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed + epoch))
        for lo in range(0, len(X), batch_size):
            idx = order[lo : lo + batch_size]
            opt.zero_grad()
            loss(net(X[idx]), y[idx], data["classification"]).backward()
            opt.step()
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append(a[0].detach().reshape(-1)))
             for m in net if type(m).__name__ == "Rational"]  # fmt: skip
    with torch.no_grad():
        net(X)
        for h in hooks:
            h.remove()
        out = net(data["X_val"])
    if data["classification"]:
        score = float((out.argmax(-1) == data["y_val"]).double().mean())
    else:
        score = -float((out - data["y_val"]).square().mean().sqrt())
    return net, seen, score


def match(curves: list[tuple[torch.Tensor, torch.Tensor]], slots: list[tuple[str, str, str]],
          chunk: int = 512) -> torch.Tensor:  # fmt: skip
    """Mean over layers of ``mean (f(z) - r(z))^2 / var(r(z))`` per candidate (``curves``: each
    layer's inputs z and learned values r(z)); non-finite values count as infinitely far."""
    errs = torch.zeros(len(slots), dtype=torch.float64)
    with torch.no_grad(), one_thread():
        for lo in range(0, len(slots), chunk):
            prog = Program(slots[lo : lo + chunk])
            beta = prog.initial_beta()
            for z, r in curves:
                f = prog(z.expand(prog.m, -1), beta).double()
                e = (f - r.double()).square().mean(1) / r.double().var().clamp_min(1e-12)
                errs[lo : lo + chunk] += torch.where(torch.isfinite(e), e, math.inf) / len(curves)
    return errs


def run(directory: Path, st: Any, data: dict[str, Any], c: Any, cands: list[dict[str, Any]], *,
        seed: int, finalists: int, deadline: float,
        say: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    """Train (once; stored), match, and give the rows the finalists are chosen from."""
    stored = st.get("learn")
    valid = [x for x in cands if x["score"] > -1e300]
    if stored is None:
        say(f"training a rational activation per layer ({c.model.depth[0]} layers)")
        t0 = time.perf_counter()
        net, seen, score = train_rational(
            data, depth=c.model.depth[0], width=c.model.width[0], epochs=c.model.epochs,
            lr=race_lr(c), batch_size=c.model.batch_size[0], seed=seed, deadline=deadline,
        )  # fmt: skip
        g = torch.Generator().manual_seed(seed)
        curves = []
        rational = [m for m in net if type(m).__name__ == "Rational"]
        for z, m in zip(seen, rational, strict=True):
            z = z[torch.randperm(len(z), generator=g)[:_ROWS]]
            with torch.no_grad():
                curves.append((z, m(z)))
        say(f"matching the learned curves to {len(valid)} expressions")
        errs = match(curves, [tuple(x["slots"]) for x in valid])
        order = sorted(range(len(valid)), key=lambda i: (float(errs[i]), valid[i]["id"]))
        stored = {
            "val_score": score,
            "coefficients": [[m.a.detach().tolist(), m.b.detach().tolist()] for m in rational],
            "ranked": [[valid[i]["id"], float(errs[i])] for i in order[: max(20, finalists)]],
            "seconds": time.perf_counter() - t0,
            "matched": len(valid),
        }
        st.set("learn", stored)
    rows = [{"rung": 0, "cand": cid, "epochs": c.model.epochs, "val_score": -err,
             "val_loss": err, "curve": [], "betas": _initial(cands, cid)}
            for cid, err in stored["ranked"] if math.isfinite(err)]  # fmt: skip
    return {"rows": rows, "ids": [r["cand"] for r in rows], "learn": stored}


def _initial(cands: list[dict[str, Any]], cid: int) -> list[float]:
    prog = Program([tuple(next(x["slots"] for x in cands if x["id"] == cid))])
    return prog.initial_beta()[0].tolist()
