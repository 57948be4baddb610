"""Networks: the one list of initialisations, the schemes, the MLP builder and the loss.

Used by the compare engine, diagnose's demos, explore, advice and the NumPy layers. torch is
imported inside the functions, so that advice and the NumPy layers read the lists without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from actlab.spec import ADVICE_INITS, COMPARE_INITS, DEMO_INITS, INITS, Activation

if TYPE_CHECKING:
    import torch
    from torch import nn

# the lists live with the definition types (actlab.spec, no torch); re-exported here for now
__all__ = ["ADVICE_INITS", "COMPARE_INITS", "DEMO_INITS", "INITS", "init_linear", "init_scheme",
           "loss", "mlp"]  # fmt: skip



def init_scheme(act: Activation, init: str) -> str:
    """The scheme ``init`` names; ``"auto"``: the activation's recommended one (else Glorot);
    ``"paper"``: He for the ReLU family, else ``"standard"``."""
    rec = act.spec.recommended_init
    if init == "auto":
        return rec if rec in INITS else "glorot"
    if init == "paper":
        return "he" if rec == "he" else "standard"
    return init


def init_linear(
    w: torch.Tensor,
    b: torch.Tensor | None,
    scheme: str,
    act: Activation | None,
    g: torch.Generator,
    bias: float = 0.0,
) -> None:
    """Initialise a Linear layer's weight ``(out, in)`` and bias (``bias``, except for "torch")
    in place; ``act`` None: the linear output layer."""
    from torch.nn import init

    if scheme == "torch":
        init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
        if b is not None:
            bound = 1 / math.sqrt(w.shape[1]) if w.shape[1] > 0 else 0.0
            init.uniform_(b, -bound, bound, generator=g)
        return
    if scheme == "standard":
        bound = 1.0 / math.sqrt(w.shape[1])
        w.uniform_(-bound, bound, generator=g)
    elif scheme == "he" and act is not None:  # the definition's gain (leaky_relu: its slope)
        gain = act.spec.kaiming(act.params) if act.spec.kaiming else ("relu", 0.0)
        init.kaiming_normal_(w, a=gain[1], nonlinearity=gain[0], generator=g)
    elif scheme == "glorot":
        init.xavier_uniform_(w, generator=g)
    else:  # lecun, and he for the linear output layer
        init.kaiming_normal_(w, nonlinearity="linear", generator=g)
    if b is not None:
        b.fill_(bias)


def mlp(
    n_in: int,
    width: int,
    n_out: int,
    acts: Sequence[Activation],
    init: str = "auto",
    *,
    seed: int,
    bias: float = 0.0,
    output_init: str | None = None,
    output_act: Activation | None = None,
) -> nn.Sequential:
    """``Linear, act, ..., Linear``: one hidden layer of ``width`` per activation in ``acts``, on
    the CPU, initialised from ``seed`` layer by layer (hidden biases ``bias``).

    The output layer takes ``output_init`` (default: the last activation's scheme) with the gain
    of ``output_act`` (default None: linear; diagnose's demos give it the hidden activation's).
    """
    import torch
    from torch import nn

    from actlab.torch import build

    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    with torch.no_grad():
        for i, act in enumerate(acts):
            lin = nn.Linear(n_in if i == 0 else width, width)
            init_linear(lin.weight, lin.bias, init_scheme(act, init), act, g, bias)
            layers += [lin, build(act)]
        out = nn.Linear(width if acts else n_in, n_out)
        scheme = output_init or init_scheme(acts[-1], init)
        init_linear(out.weight, out.bias, scheme, output_act, g)
    return nn.Sequential(*layers, out)


def loss(out: torch.Tensor, y: torch.Tensor, classification: bool) -> torch.Tensor:
    """Mean loss per model for outputs ``(..., batch, n_out)``: cross-entropy on logits, or the
    mean squared error (``F.mse_loss`` for one model, bit for bit)."""
    from torch.nn import functional

    if classification and out.ndim == 2:  # one model
        return functional.cross_entropy(out, y)
    if classification:
        return functional.cross_entropy(out.transpose(-1, -2), y, reduction="none").mean(-1)
    return (out - y).square().mean((-2, -1))
