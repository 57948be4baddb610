"""Your own activation through actlab: Pserf, a parametric smooth activation from a recent paper.

Biswas, Banerjee & Pandey, "ErfAct and Pserf: Non-monotonic Smooth Trainable Activation
Functions", AAAI 2022: Pserf(x) = x * erf(gamma * softplus(delta * x)). The paper trains gamma
and delta; here they are fixed parameters you set in the spec string.

Any spec accepts ``path/to/file.py:function[:key=value...]``; the function's keyword arguments
are the activation's parameters. Try, from the repository root:

    actlab eval examples/pserf.py:pserf -- -2 0 2
    actlab plot examples/pserf.py:pserf:gamma=1.5 gelu silu --derivative -o pserf.png
    actlab compare --dataset moons --activations relu,gelu,examples/pserf.py:pserf --epochs 5
    actlab diagnose --demo dying-relu --activations relu,examples/pserf.py:pserf --epochs 2

or in Python: ``actlab.register("pserf", pserf, params={"gamma": 1.0, "delta": 1.0})``, then
``"pserf:gamma=1.5"`` works like a built-in name.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def pserf(x: torch.Tensor, gamma: float = 1.0, delta: float = 1.0) -> torch.Tensor:
    """f(x) = x * erf(gamma * softplus(delta * x))"""
    return x * torch.erf(gamma * F.softplus(delta * x))


if __name__ == "__main__":
    import actlab

    actlab.register("pserf", pserf, params={"gamma": 1.0, "delta": 1.0})
    act = actlab.parse("pserf:gamma=1.5")
    print(act.label, act.forward([-2.0, 0.0, 2.0]), act.derivative([-2.0, 0.0, 2.0]))
