"""Initialisation, one implementation for the compare engine, diagnose's demos and explore.

``init_scheme(act, init)`` resolves ``"auto"`` to the activation's recommended scheme;
``init_linear`` initialises one Linear layer's weight and bias in place, He with the leaky
slope for leaky_relu.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["init_linear", "init_scheme"]


def init_scheme(act: Any, init: str) -> str:
    """The scheme ``init`` names; ``"auto"``: the activation's recommended one (else Glorot)."""
    if init != "auto":
        return init
    rec = act.spec.recommended_init
    return rec if rec in ("he", "glorot", "lecun") else "glorot"


def init_linear(
    w: torch.Tensor, b: torch.Tensor | None, scheme: str, act: Any | None, g: torch.Generator
) -> None:
    """Initialise a Linear layer's weight ``(out, in)`` and bias in place (act None: output)."""
    init = nn.init
    if scheme == "torch":
        init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
        if b is not None:
            bound = 1 / math.sqrt(w.shape[1]) if w.shape[1] > 0 else 0.0
            init.uniform_(b, -bound, bound, generator=g)
        return
    if scheme == "he" and act is not None:
        if act.name == "leaky_relu":
            slope = float(act.params["negative_slope"])
            init.kaiming_normal_(w, a=slope, nonlinearity="leaky_relu", generator=g)
        else:
            init.kaiming_normal_(w, nonlinearity="relu", generator=g)
    elif scheme == "glorot":
        init.xavier_uniform_(w, generator=g)
    else:  # lecun, and he for the linear output layer
        init.kaiming_normal_(w, nonlinearity="linear", generator=g)
    if b is not None:
        b.zero_()
