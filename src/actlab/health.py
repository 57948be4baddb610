"""Unit health: the one definition of dead and saturated units, and its one threshold.

A unit is *dead* when f'(pre-activation) is exactly 0 for every sample (no gradient can reach
it); *saturated* when ``|f'| < SATURATION`` for more than ``MAJORITY`` of the samples without
being dead, and saturation is only called where it means something (activations bounded on both
sides). The compare engine, ``diagnose``, the plots' shaded bands and ``explore`` all use this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from actlab.spec import Activation

if TYPE_CHECKING:  # torch only where a PyTorch model is measured: `actlab plot` never loads it
    import torch
    from torch import nn

__all__ = ["MAJORITY", "SATURATION", "derivative_fn", "measures_saturation", "unit_health"]

SATURATION = 0.01  # |f'| below this counts as saturated
MAJORITY = 0.5  # ... for more than this fraction of the samples


def unit_health(
    derivative: torch.Tensor, threshold: float = SATURATION, majority: float = MAJORITY
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractions of dead and saturated units from f'(pre-activation).

    ``derivative`` has shape ``(..., samples, units)``. A unit is *dead* when its derivative is
    exactly zero for every sample (no gradient can reach it); it is *saturated* when
    ``|f'| < threshold`` for more than ``majority`` of the samples without being dead. Returns two
    tensors of shape ``(...)``.
    """
    if derivative.ndim < 2:
        raise ValueError("derivative must have shape (..., samples, units)")
    small = derivative.abs() < threshold
    dead = (derivative == 0).all(dim=-2)
    saturated = (small.float().mean(dim=-2) > majority) & ~dead
    return dead.float().mean(dim=-1), saturated.float().mean(dim=-1)


def measures_saturation(act: Activation | None) -> bool:
    """Whether 'saturated' is meaningful for ``act`` (a catalog Activation, or None if unknown).

    Saturation is the flat tails of activations bounded on both sides (sigmoid, tanh, softsign,
    relu6, hard_sigmoid). A ReLU-family unit with f' = 0 on most rows is merely off there (and
    *dead* if off everywhere), so it is not called saturated. Unknown (user) modules are measured.
    """
    return act is None or act.spec.properties.saturating == "both"


def derivative_fn(
    module: nn.Module, act: Activation | None
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """f'(x) elementwise: the catalog's kernel for known parameter-free activations; autograd
    through the module itself for learnable (PReLU) and user activations; None for softmax."""
    import torch

    if act is not None and not act.spec.elementwise:
        return None
    if act is not None and not any(True for _ in module.parameters(recurse=False)):

        def catalog(x: torch.Tensor) -> torch.Tensor:
            arr = x.detach().to("cpu", torch.float32 if x.dtype != torch.float64 else x.dtype)
            return torch.from_numpy(np.asarray(act.derivative(arr.numpy()))).to(x.device)

        return catalog

    def autograd(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            y = module.forward(xg.clone())  # .forward: no hooks; clone: in-place modules are fine
            (g,) = torch.autograd.grad(y, xg, torch.ones_like(y))
        return g

    return autograd
