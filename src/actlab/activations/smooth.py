"""Smooth gates and rectifiers: silu/swish, mish, softplus, hard swish."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab.activations._fast import pointwise
from actlab.activations._prose import define
from actlab.activations._route import (
    _EXP_SAFE,
    _FMAX,
    _INF,
    _TORCH_SIGMOID_TAIL,
    _elementwise,
    _keep_nan,
    _log_space_product,
    _real,
    _sig_and_comp,
    _via_torch,
    _ViaCompiled,
    _wide,
    _x_sigmoid,
)
from actlab.activations.sigmoidal import _k_sigmoid
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = [
    "hard_swish",
    "hard_swish_derivative",
    "mish",
    "mish_derivative",
    "silu",
    "silu_derivative",
    "softplus",
    "softplus_derivative",
]


def _t_softplus(tm: Any, x: Any, o: Any, beta: float, thr: float) -> None:
    tm._C._nn.softplus(x, beta, thr, out=o)


def _k_silu(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], beta: float) -> None:
    if beta == 0.0:
        np.multiply(x, 0.5, out=o)
        return
    z = x
    if beta != 1.0:
        z = t[1]
        np.multiply(x, beta, out=z)
    _x_sigmoid(x, z, o, t[0])


def _k_silu_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], beta: float) -> None:
    # s + z s (1 - s), z = beta x clipped to [-C, C]; tail (z < -C): exp(z) (1 + z)
    if beta == 0.0:
        o.fill(0.5)
        _keep_nan(x, o)
        return
    c = _EXP_SAFE[x.dtype.char]
    z, e = t[1], t[0]
    np.multiply(x, beta, out=z)
    tail = np.fmin.reduce(z) < -c
    np.clip(z, -c, c, out=z)
    _sig_and_comp(z, o, e)
    np.multiply(e, o, out=e)
    np.multiply(e, z, out=e)
    np.add(o, e, out=o)
    if tail:
        zs = x.astype(np.float64) * beta
        idx = np.flatnonzero(zs < -c)
        o[idx] = _log_space_product(1.0 + zs[idx], zs[idx])


def _k_mish(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # tanh(softplus(x)) = p / (p + 2), p = n (n + 2), n = exp(x): one exp, no log, no tanh.
    # n is clamped to [exp(-c), exp(20)]; past 20 the ratio is 1, below -c the tail is x * exp(x).
    c = _EXP_SAFE[x.dtype.char]
    n, p = t[0], t[1]
    np.clip(x, -c, 20.0, out=n)
    np.exp(n, out=n)
    np.add(n, 2.0, out=p)
    np.multiply(p, n, out=p)
    np.add(p, 2.0, out=n)
    np.divide(p, n, out=p)
    np.multiply(x, p, out=o)
    if np.fmin.reduce(x) < -c:
        idx = np.flatnonzero(x < -c)
        xs = x[idx]
        o[idx] = _log_space_product(xs, xs)


def _k_mish_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # d/dx x tanh(sp(x)) = p/q + 4 x n (1 + n) / q^2, n = e^x, p = n (n + 2), q = p + 2;
    # x clamped to [-C, 40] (past 40 the second term is < 1e-32); tail: exp(x) (1 + x)
    c = _EXP_SAFE[x.dtype.char]
    xc, n, p = t[0], t[1], t[2]
    np.clip(x, -c, 40.0, out=xc)
    np.exp(xc, out=n)
    np.add(n, 2.0, out=p)
    np.multiply(p, n, out=p)
    np.subtract(p, n, out=n)  # n (1 + n) = p - n
    np.add(p, 2.0, out=o)  # q
    np.divide(p, o, out=p)  # tanh(softplus(x))
    np.divide(n, o, out=n)
    np.divide(n, o, out=n)
    np.multiply(n, xc, out=n)
    np.multiply(n, 4.0, out=n)
    np.add(p, n, out=o)
    if np.fmin.reduce(x) < -c:
        idx = np.flatnonzero(x < -c)
        xs = x[idx].astype(np.float64)
        o[idx] = _log_space_product(1.0 + xs, xs)


def _k_softplus(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], beta: float, thr: float) -> None:
    # log1p(exp(min(b, thr))) / beta with b = beta x; x itself where b > thr (PyTorch)
    c = _EXP_SAFE[x.dtype.char]
    b = x if beta == 1.0 else np.multiply(x, beta, out=t[1])
    np.clip(b, -_INF, thr, out=o)
    np.exp(o, out=o)
    np.log1p(o, out=o)
    if beta != 1.0:
        np.divide(o, beta, out=o)
    if np.fmax.reduce(b) > thr:
        np.copyto(o, x, where=b > thr)
    if beta != 1.0 and np.fmin.reduce(b) < -c:  # exp(b) subnormal: divide in log space
        idx = np.flatnonzero(b < -c)
        o[idx] = np.exp(b[idx].astype(np.float64) - math.log(beta))


def _k_softplus_d(
    x: np.ndarray, o: np.ndarray, t: list[np.ndarray], beta: float, thr: float
) -> None:
    b = x if beta == 1.0 else np.multiply(x, beta, out=t[1])
    _k_sigmoid(b, o, t[:1])
    if np.fmax.reduce(b) > thr:
        np.copyto(o, 1.0, where=b > thr)


def _k_hard_swish(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a = t[0]
    np.add(x, 3.0, out=a)
    np.clip(a, 0.0, 6.0, out=a)
    if np.fmin.reduce(x) == -_INF:  # -inf * 0 would be NaN; the limit is 0
        np.clip(x, -_FMAX[x.dtype.char], _INF, out=o)
        np.multiply(o, a, out=o)
    else:
        np.multiply(x, a, out=o)
    np.divide(o, 6.0, out=o)


def _k_hard_swish_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # PyTorch 2.x: 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 for x >= 3
    a, m = t[0], t[1]
    np.clip(x, -3.0, 3.0, out=a)
    np.add(a, 1.5, out=a)  # (x + 3/2) / 3: exact sum near the zero at -3/2, unlike x/3 + 1/2
    np.divide(a, 3.0, out=a)
    np.abs(x, out=m)
    np.less(m, 3.0, out=m)
    np.multiply(a, m, out=a)
    np.greater_equal(x, 3.0, out=o)
    np.add(o, a, out=o)
    _keep_nan(x, o)


_k_silu_w, _k_silu_d_w = _wide(_k_silu), _wide(_k_silu_d)
_k_softplus_w, _k_softplus_d_w = _wide(_k_softplus), _wide(_k_softplus_d)
# silu' and mish' cancel near their roots (x = -1.28, -1.19): float64 inside keeps 0.5 ulp there
_k_mish_d_w = _wide(_k_mish_d)
_k_silu1_t = _via_torch(
    _k_silu, lambda tm, x, o, beta: tm._C._nn.silu(x, out=o), _TORCH_SIGMOID_TAIL
)
_k_softplus1_t = _via_torch(_k_softplus, _t_softplus)
_k_hard_swish_t = _via_torch(  # PyTorch: hardswish(-inf) = -inf * 0 = NaN; the limit is 0
    _k_hard_swish, lambda tm, x, o: tm._C._nn.hardswish(x, out=o), redo_nan=True
)
_k_silu_d_c = _ViaCompiled(_k_silu_d_w, "silu_d")
_k_mish_d_c = _ViaCompiled(_k_mish_d_w, "mish_d")
_k_hard_swish_d_c = _ViaCompiled(_k_hard_swish_d, "hard_swish_d")


def silu(x: ArrayLike, beta: float = 1.0, *, out: Any = None) -> Any:
    """SiLU / Swish: f(x) = x * sigmoid(beta * x) (beta = 1 is SiLU; beta = 0 gives x / 2).

    f(-inf) = 0 for beta > 0. Far tail (beta x < -87 in float32) in log space.
    """
    b = _real(beta, "beta", "silu")
    kernel = _k_silu1_t if b == 1.0 else _k_silu if b == 0.0 else _k_silu_w
    return _elementwise(kernel, x, out, b)


def silu_derivative(x: ArrayLike, beta: float = 1.0, *, out: Any = None) -> Any:
    """f'(x) = s + beta x s (1 - s), s = sigmoid(beta x). Smooth: no kink."""
    b = _real(beta, "beta", "silu_derivative")
    return _elementwise(_k_silu_d if b == 0.0 else _k_silu_d_c, x, out, b)


def mish(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x * tanh(softplus(x)) = x * tanh(log(1 + exp(x))).

    Computed as x * p / (p + 2) with p = e^x (e^x + 2), the same identity with one exp.
    f(-inf) = 0, f(inf) = inf.
    """
    return _elementwise(_k_mish, x, out)


def mish_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = tanh(sp(x)) + x * sech(sp(x))^2 * sigmoid(x), sp = softplus.

    With n = e^x, p = n (n + 2), q = p + 2: f'(x) = p / q + 4 x n (1 + n) / q^2. Smooth.
    """
    return _elementwise(_k_mish_d_c, x, out)


def softplus(x: ArrayLike, beta: float = 1.0, threshold: float = 20.0, *, out: Any = None) -> Any:
    """f(x) = log(1 + exp(beta x)) / beta, and f(x) = x where beta * x > threshold (PyTorch).

    beta > 0. The exp is taken of min(beta x, threshold), so it never overflows.
    """
    b = _real(beta, "beta", "softplus", positive=True)
    th = _real(threshold, "threshold", "softplus")
    return _elementwise(_k_softplus1_t if b == 1.0 else _k_softplus_w, x, out, b, th)


def softplus_derivative(
    x: ArrayLike, beta: float = 1.0, threshold: float = 20.0, *, out: Any = None
) -> Any:
    """f'(x) = sigmoid(beta x), and 1 where beta * x > threshold (PyTorch's switch)."""
    b = _real(beta, "beta", "softplus_derivative", positive=True)
    th = _real(threshold, "threshold", "softplus_derivative")
    return _elementwise(_k_softplus_d if b == 1.0 else _k_softplus_d_w, x, out, b, th)


def hard_swish(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x * relu6(x + 3) / 6 (PyTorch's hardswish). f(-inf) = 0."""
    return _elementwise(_k_hard_swish_t, x, out)


def hard_swish_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 0 if x <= -3, x/3 + 1/2 if -3 < x < 3, 1 if x >= 3.

    Kinks as PyTorch 2.x autograd (hardswish_backward): f'(-3) = 0 and f'(3) = 1, the outer
    branches (older PyTorch releases used the middle branch there: -1/2 and 3/2).
    """
    return _elementwise(_k_hard_swish_d_c, x, out)


def _build_silu(resolve: Any, p: Mapping[str, Any]) -> Any:
    beta, learnable = float(p["beta"]), bool(p["learnable"])
    return resolve("Swish")(beta, learnable) if learnable or beta != 1.0 else resolve("SiLU")()


def _read_silu(m: Any) -> dict[str, Any]:
    if not hasattr(m, "learnable"):  # nn.SiLU
        return {}
    beta = float(m.beta.detach()) if m.learnable else float(m.beta)
    return {"beta": beta, "learnable": bool(m.learnable)}


_fast_silu = pointwise("silu", "silu_backward")
_fast_softplus = pointwise("softplus", "softplus_backward", lambda m: (m.beta, m.threshold))


def _fast_mish(a: Any, m: Any) -> Any:
    return (
        lambda z, o: a.mish.out(z, out=o),
        lambda g, z, h, o: o.copy_(a.mish_backward(g, z)),
    )


def _fast_hard_swish(a: Any, m: Any) -> Any:
    return (
        lambda z, o: a.hardswish.out(z, out=o),
        lambda g, z, h, o: a.hardswish_backward.out(g, z, out=o),
    )


SPECS = (
    define(
        name="silu",
        numpy_forward=silu,
        numpy_derivative=silu_derivative,
        torch=TorchModule("SiLU", build=_build_silu, read=_read_silu, also=("Swish",)),
        layer=lambda p: "LearnableSwish" if p["learnable"] else "ActivationLayer",
        fast=_fast_silu,
        range_closed=(True, False),
        aliases=("swish",),
        display_name="SiLU / Swish",
        params=(
            Param("beta", 1.0, float, "slope inside the sigmoid: x * sigmoid(beta * x)", low=0.0),
            Param(
                "learnable",
                False,
                bool,
                "PyTorch only: make beta a trainable parameter",
                torch_only=True,
            ),
        ),
        formula="f(x) = x * sigmoid(beta * x)   (SiLU is beta = 1)",
        formula_latex=r"f(x) = x\,\sigma(\beta x)",
        derivative_formula="f'(x) = s + beta * x * s * (1 - s), s = sigmoid(beta * x)",
        derivative_latex=r"f'(x) = \sigma(\beta x) + \beta x\,\sigma(\beta x)"
        r"\bigl(1 - \sigma(\beta x)\bigr)",
        output_range=(-0.2784645427610738, INF),
        properties=Properties(False, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-1.5, 1.5),
            linewidth=2.0,
            in_article=True,
        ),
    ),
    define(
        name="mish",
        numpy_forward=mish,
        numpy_derivative=mish_derivative,
        torch=TorchModule("Mish"),
        fast=_fast_mish,
        range_closed=(True, False),
        display_name="Mish",
        formula="f(x) = x * tanh(softplus(x))",
        formula_latex=r"f(x) = x \tanh\bigl(\ln(1 + e^{x})\bigr)",
        derivative_formula="f'(x) = tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2), sp = softplus(x)",
        derivative_latex=r"f'(x) = \tanh(\mathrm{sp}(x)) + x\,\sigma(x)\,"
        r"\bigl(1 - \tanh^2(\mathrm{sp}(x))\bigr)",
        output_range=(-0.3088400564240522, INF),
        properties=Properties(False, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-1.0, 5.0),
        ),
    ),
    define(
        name="softplus",
        numpy_forward=softplus,
        numpy_derivative=softplus_derivative,
        torch=TorchModule("Softplus", {"beta": "beta", "threshold": "threshold"}),
        fast=_fast_softplus,
        display_name="Softplus",
        params=(
            Param(
                "beta",
                1.0,
                float,
                "sharpness: log(1 + exp(beta * x)) / beta",
                low=0.0,
                low_open=True,
            ),
            Param(
                "threshold",
                20.0,
                float,
                "above beta * x > threshold the function is taken as linear (PyTorch)",
                low=0.0,
                low_open=True,
            ),
        ),
        formula="f(x) = log(1 + exp(beta * x)) / beta  (x when beta * x > threshold)",
        formula_latex=r"f(x) = \frac{1}{\beta}\ln\bigl(1 + e^{\beta x}\bigr)",
        derivative_formula="f'(x) = sigmoid(beta * x)  (1 when beta * x > threshold)",
        derivative_latex=r"f'(x) = \sigma(\beta x)",
        output_range=(0.0, INF),
        properties=Properties(True, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-0.5, 5.0),
        ),
    ),
    define(
        name="hard_swish",
        numpy_forward=hard_swish,
        numpy_derivative=hard_swish_derivative,
        torch=TorchModule("Hardswish"),
        fast=_fast_hard_swish,
        range_closed=(True, False),
        aliases=("hardswish",),
        display_name="Hard swish",
        formula="f(x) = x * relu6(x + 3) / 6",
        formula_latex=r"f(x) = x\,\frac{\min(\max(0, x + 3), 6)}{6}",
        derivative_formula="f'(x) = 0 if x <= -3; 1 if x >= 3; (2x + 3) / 6 otherwise",
        derivative_latex=r"f'(x) = \begin{cases}0 & x \le -3\\ \frac{2x + 3}{6} & -3 < x < 3\\ "
        r"1 & x \ge 3\end{cases}",
        output_range=(-0.375, INF),
        properties=Properties(False, "C0", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 2001),
            ylim=(-1.0, 5.0),
        ),
    ),
)
