"""Identity (linear): f(x) = x."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab.activations._prose import define
from actlab.activations._route import (
    _elementwise,
    _keep_nan,
)
from actlab.spec import INF, PlotDefaults, Properties, TorchModule

__all__ = ["identity", "identity_derivative"]


def _k_identity(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.copyto(o, x)


def _k_identity_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    o.fill(1.0)
    _keep_nan(x, o)


def identity(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x (a copy, in the kernels' dtype rules)."""
    return _elementwise(_k_identity, x, out)


def identity_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 (NaN at NaN)."""
    return _elementwise(_k_identity_d, x, out)


def _fast_identity(a: Any, m: Any) -> Any:
    return (lambda z, o: o.copy_(z), lambda g, z, h, o: o.copy_(g))


SPECS = (
    define(
        name="identity",
        numpy_forward=identity,
        numpy_derivative=identity_derivative,
        torch=TorchModule("Identity"),
        fast=_fast_identity,
        aliases=("linear", "none"),
        display_name="Identity",
        formula="f(x) = x",
        formula_latex=r"f(x) = x",
        derivative_formula="f'(x) = 1",
        derivative_latex=r"f'(x) = 1",
        output_range=(-INF, INF),
        properties=Properties(True, "Cinf", True, False, False, "none"),
        family="linear",
        recommended_init="glorot",
        plot=PlotDefaults(
            ylim=(-5.0, 5.0),
        ),
    ),
)
