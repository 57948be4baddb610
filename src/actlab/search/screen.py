"""Screening at initialisation: thousands of candidates, no training, a few stacked computations.

Per candidate (all candidates of a chunk in one :class:`~actlab.search.primitives.Program` call):

* ``finite``: f is finite on N(0,1) samples and on the probe grid where a user activation is checked
  (97 points in [-6, 6], :mod:`actlab.usercode`), so every finalist loads as a user activation;
* ``grad_finite``: f' (autograd) is finite there too;
* ``mean``, ``second``: E f(z) and E f(z)^2 for z ~ N(0,1) (AQuaSurF's output moments);
* ``nonlinearity``: 1 - R^2 of the best straight line through (z, f(z)): 0 for a linear f, whose
  network collapses to one linear map;
* ``forward``, ``backward``: how signal propagates through the study's network at initialisation
  (depth hidden layers of width units plus the output layer, every layer Glorot-uniform like the
  racing models): var(last pre-activation) / var(first), and var(gradient at the first
  pre-activation) / var(gradient at the last) for a N(0,1) output gradient (the Fisher-style
  backward feature). 1 is signal kept; the score is ``-(|log forward| + |log backward|)``.

Refused (score -inf, ``reason`` says why): non-finite values or gradients, constant (std < 1e-3),
linear (nonlinearity < 1e-4), or signal that overflows through the depth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from actlab.search.primitives import Program, one_thread

__all__ = ["FEATURES", "propagate", "screen"]

FEATURES = ("mean", "second", "nonlinearity", "forward", "backward", "score")
_GRID = torch.linspace(-6.0, 6.0, 97)  # = actlab.usercode._PROBE


def propagate(
    prog: Program, beta: torch.Tensor, h0: torch.Tensor, weights: Sequence[torch.Tensor],
    g: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Forward and backward variance ratios per candidate through ``weights`` (each ``(M, w, w)``;
    the activation follows every layer but the last), from inputs ``h0 (rows, w)`` and output
    gradient ``g (M, rows, w)``."""
    zs = []
    h: torch.Tensor = h0.detach().requires_grad_(True)
    for k, w in enumerate(weights):
        z = torch.matmul(h, w)
        z.retain_grad()
        zs.append(z)
        h = prog(z, beta) if k < len(weights) - 1 else z
    h.backward(g)
    first, last = zs[0], zs[-1]
    forward = last.detach().var((1, 2)) / first.detach().var((1, 2))
    backward = first.grad.var((1, 2)) / last.grad.var((1, 2))  # type: ignore[union-attr]
    return forward, backward


def _glorot(m: int, w: int, gen: torch.Generator) -> torch.Tensor:
    bound = math.sqrt(6.0 / (w + w))
    return (torch.rand(m, w, w, generator=gen) * 2 - 1) * bound


def _chunk(slot_list: Sequence[tuple[str, str, str]], depth: int, width: int, seed: int,
           samples: int, rows: int) -> list[dict[str, Any]]:  # fmt: skip
    prog = Program(slot_list)
    m = prog.m
    beta = prog.initial_beta()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, generator=gen)
    both = torch.cat([z, _GRID]).expand(m, -1).clone().requires_grad_(True)
    y = prog(both, beta)
    y.backward(torch.ones_like(y))
    y = y.detach()
    grad = both.grad
    finite = torch.isfinite(y).all(1)
    grad_finite = torch.isfinite(grad).all(1)  # type: ignore[arg-type]
    ys = torch.where(torch.isfinite(y[:, :samples]), y[:, :samples], 0.0).double()
    zz = z.double()
    mean, second, std = ys.mean(1), ys.square().mean(1), ys.std(1)
    cov = ((ys - mean[:, None]) * (zz - zz.mean())).mean(1)
    r2 = cov.square() / (ys.var(1, unbiased=False) * zz.var(unbiased=False)).clamp_min(1e-300)
    nonlin = (1 - r2).clamp(0, 1)
    h0 = torch.randn(rows, width, generator=gen)
    weights = [_glorot(m, width, gen) for _ in range(depth + 1)]
    g = torch.randn(m, rows, width, generator=gen)
    with torch.enable_grad():
        fwd, bwd = propagate(prog, beta, h0, weights, g)
    out = []
    for i in range(m):
        reason = ""
        if not finite[i]:
            reason = "NaN or inf on N(0,1) inputs or on [-6, 6]"
        elif not grad_finite[i]:
            reason = "NaN or inf derivative"
        elif std[i] < 1e-3:
            reason = "constant"
        elif nonlin[i] < 1e-4:
            reason = "linear (the network would collapse to one linear map)"
        elif not (math.isfinite(fwd[i]) and math.isfinite(bwd[i]) and fwd[i] > 0 and bwd[i] > 0):
            reason = f"signal vanishes or overflows through {depth} layers"
        f, b = float(fwd[i]), float(bwd[i])
        score = -(abs(math.log(f)) + abs(math.log(b))) if not reason else -math.inf
        out.append({
            "mean": float(mean[i]), "second": float(second[i]), "nonlinearity": float(nonlin[i]),
            "forward": f, "backward": b, "score": score, "reason": reason,
        })  # fmt: skip
    return out


def screen(
    slot_list: Sequence[tuple[str, str, str]],
    *,
    depth: int = 2,
    width: int = 64,
    seed: int = 0,
    samples: int = 2048,
    rows: int = 128,
    chunk: int = 256,
) -> list[dict[str, Any]]:
    """The features of every candidate (see the module docstring), in order.

    Deterministic for a ``seed``: every chunk draws its inputs and weights from a generator seeded
    with ``seed`` (the same draws for every candidate, so scores compare like with like).
    """
    out: list[dict[str, Any]] = []
    with one_thread():
        for lo in range(0, len(slot_list), chunk):
            part = slot_list[lo : lo + chunk]
            with torch.enable_grad():
                out += _chunk(part, depth, min(width, 256), seed, samples, rows)
    return out
