"""The exponential family: elu, selu, celu (one ATen kernel, elu(alpha, scale, input_scale))."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab.activations._prose import define
from actlab.activations._route import (
    _INF,
    _elementwise,
    _real,
    _step,
    _via_torch,
    _wide,
)
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = [
    "SELU_ALPHA",
    "SELU_SCALE",
    "celu",
    "celu_derivative",
    "elu",
    "elu_derivative",
    "selu",
    "selu_derivative",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _t_elu(tm: Any, x: Any, o: Any, alpha: float, scale: float) -> None:
    tm._C._nn.elu(x, alpha, scale, 1.0, out=o)


def _k_elu(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], alpha: float, scale: float) -> None:
    # scale * (max(x, 0) + alpha * expm1(min(x, 0))): expm1 of a masked input never overflows
    a = t[0]
    np.clip(x, -_INF, 0.0, out=a)
    np.expm1(a, out=a)
    if alpha * scale != 1.0:
        np.multiply(a, alpha * scale, out=a)
    np.clip(x, 0.0, _INF, out=o)
    if scale != 1.0:
        np.multiply(o, scale, out=o)
    np.add(o, a, out=o)


def _k_elu_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], alpha: float, scale: float) -> None:
    # scale if x > 0 else scale * alpha * exp(x); written as m*scale + (1-m)*scale*alpha*e
    a, m = t[0], t[1]
    np.clip(x, -_INF, 0.0, out=a)
    np.exp(a, out=a)  # NaN stays NaN and reaches o below
    np.multiply(a, alpha * scale, out=a)
    _step(x, m)
    np.subtract(1.0, m, out=o)
    np.multiply(o, a, out=o)
    if scale != 1.0:
        np.multiply(m, scale, out=m)
    np.add(o, m, out=o)


def _k_celu(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], alpha: float) -> None:
    a = t[0]
    np.clip(x, -_INF, 0.0, out=a)
    if alpha != 1.0:
        np.divide(a, alpha, out=a)
    np.expm1(a, out=a)
    if alpha != 1.0:
        np.multiply(a, alpha, out=a)
    np.clip(x, 0.0, _INF, out=o)
    np.add(o, a, out=o)


def _k_celu_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], alpha: float) -> None:
    a, m = t[0], t[1]
    np.clip(x, -_INF, 0.0, out=a)
    if alpha != 1.0:
        np.divide(a, alpha, out=a)
    np.exp(a, out=a)
    _step(x, m)
    np.subtract(1.0, m, out=o)
    np.multiply(o, a, out=o)
    np.add(o, m, out=o)


_k_celu_w, _k_celu_d_w = _wide(_k_celu), _wide(_k_celu_d)
_k_elu_t = _via_torch(_k_elu, _t_elu)
_k_celu1_t = _via_torch(_k_celu, lambda tm, x, o, alpha: _t_elu(tm, x, o, 1.0, 1.0))


def elu(x: ArrayLike, alpha: float = 1.0, *, out: Any = None) -> Any:
    """f(x) = x if x > 0 else alpha * (exp(x) - 1).

    Computed as max(x, 0) + alpha * expm1(min(x, 0)): expm1 keeps small negative x accurate and
    never sees a positive argument. f(-inf) = -alpha.
    """
    a = _real(alpha, "alpha", "elu")
    return _elementwise(_k_elu_t, x, out, a, 1.0)


def elu_derivative(x: ArrayLike, alpha: float = 1.0, *, out: Any = None) -> Any:
    """f'(x) = 1 if x > 0 else alpha * exp(x). Kink: f'(0) = alpha (PyTorch's x <= 0 branch)."""
    a = _real(alpha, "alpha", "elu_derivative")
    return _elementwise(_k_elu_d, x, out, a, 1.0)


def selu(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = scale * (x if x > 0 else alpha * (exp(x) - 1)).

    PyTorch's constants: alpha = 1.6732632423543772, scale = 1.0507009873554805.
    """
    return _elementwise(_k_elu_t, x, out, SELU_ALPHA, SELU_SCALE)


def selu_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = scale if x > 0 else scale * alpha * exp(x). Kink: f'(0) = scale * alpha (PyTorch)."""
    return _elementwise(_k_elu_d, x, out, SELU_ALPHA, SELU_SCALE)


def celu(x: ArrayLike, alpha: float = 1.0, *, out: Any = None) -> Any:
    """f(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), alpha > 0 (expm1 on min(x, 0))."""
    a = _real(alpha, "alpha", "celu", positive=True)
    return _elementwise(_k_celu1_t if a == 1.0 else _k_celu_w, x, out, a)


def celu_derivative(x: ArrayLike, alpha: float = 1.0, *, out: Any = None) -> Any:
    """f'(x) = 1 if x > 0 else exp(x / alpha). f'(0) = 1 for every alpha (CELU is C1)."""
    a = _real(alpha, "alpha", "celu_derivative", positive=True)
    return _elementwise(_k_celu_d if a == 1.0 else _k_celu_d_w, x, out, a)


def _elu_family(a: Any, alpha: float, scale: float, inner: float) -> Any:
    """aten.elu(alpha, scale, input_scale): ELU, SELU and CELU (their definitions call it)."""
    return (
        lambda z, o: a.elu.out(z, alpha, scale, inner, out=o),
        lambda g, z, h, o: a.elu_backward.grad_input(
            g, alpha, scale, inner, False, z, grad_input=o
        ),
    )


_ALPHA_ELU = Param(
    "alpha",
    1.0,
    float,
    "scale of the negative branch, which saturates at -alpha",
    low=0.0,
    low_open=True,
)


SPECS = (
    define(
        name="elu",
        numpy_forward=elu,
        numpy_derivative=elu_derivative,
        torch=TorchModule("ELU", {"alpha": "alpha"}),
        fast=lambda a, m: _elu_family(a, m.alpha, 1.0, 1.0),
        display_name="ELU",
        params=(_ALPHA_ELU,),
        formula="f(x) = x if x > 0 else alpha * (exp(x) - 1)",
        formula_latex=r"f(x) = \begin{cases}x & x > 0\\ \alpha\,(e^{x} - 1) & x \le 0\end{cases}",
        derivative_formula="f'(x) = 1 if x > 0 else alpha * exp(x)",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ \alpha e^{x} & x \le 0\end{cases}",
        output_range=(-1.0, INF),
        properties=Properties(True, "C1", True, True, False, "left"),
        family="exponential",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-2.0, 5.0),
            linewidth=5.0,
            params={"alpha": 1.0},
            in_article=True,
        ),
    ),
    define(
        name="selu",
        numpy_forward=selu,
        numpy_derivative=selu_derivative,
        torch=TorchModule("SELU"),
        fast=lambda a, m: _elu_family(a, SELU_ALPHA, SELU_SCALE, 1.0),
        display_name="SELU",
        formula="f(x) = scale * (x if x > 0 else alpha * (exp(x) - 1)), "
        "alpha = 1.6732632423543772, scale = 1.0507009873554805",
        formula_latex=r"f(x) = \lambda \begin{cases}x & x > 0\\ \alpha (e^{x} - 1) & x \le 0"
        r"\end{cases},\ \alpha \approx 1.6733,\ \lambda \approx 1.0507",
        derivative_formula="f'(x) = scale if x > 0 else scale * alpha * exp(x)",
        derivative_latex=r"f'(x) = \lambda \begin{cases}1 & x > 0\\ \alpha e^{x} & x \le 0"
        r"\end{cases}",
        output_range=(-1.7580993408473766, INF),
        properties=Properties(True, "C0", True, True, False, "left", self_normalising=True),
        family="exponential",
        recommended_init="lecun",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-2.0, 5.0),
        ),
    ),
    define(
        name="celu",
        numpy_forward=celu,
        numpy_derivative=celu_derivative,
        torch=TorchModule("CELU", {"alpha": "alpha"}),
        fast=lambda a, m: _elu_family(a, m.alpha, 1.0, 1.0 / m.alpha),
        display_name="CELU",
        params=(_ALPHA_ELU,),
        formula="f(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        formula_latex=r"f(x) = \max(0, x) + \min\bigl(0, \alpha (e^{x/\alpha} - 1)\bigr)",
        derivative_formula="f'(x) = 1 if x > 0 else exp(x / alpha)",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ e^{x/\alpha} & x \le 0\end{cases}",
        output_range=(-1.0, INF),
        properties=Properties(True, "C1", True, True, False, "left"),
        family="exponential",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-2.0, 5.0),
        ),
    ),
)
