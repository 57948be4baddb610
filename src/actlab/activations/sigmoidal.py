"""The sigmoid family: sigmoid, tanh, softsign, hard sigmoid, hard tanh, log-sigmoid."""

from __future__ import annotations

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
    _real,
    _via_torch,
    _ViaCompiled,
)
from actlab.errors import ActlabError
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = [
    "hard_sigmoid",
    "hard_sigmoid_derivative",
    "hard_tanh",
    "hard_tanh_derivative",
    "log_sigmoid",
    "log_sigmoid_derivative",
    "sigmoid",
    "sigmoid_derivative",
    "softsign",
    "softsign_derivative",
    "tanh",
    "tanh_derivative",
]


def _k_sigmoid(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # 1 / (1 + exp(-x)); below -c (where exp(-x) may overflow) sigmoid(x) = exp(x) to working
    # precision, so those few entries are recomputed
    c = _EXP_SAFE[x.dtype.char]
    np.negative(x, out=o)
    with np.errstate(over="ignore"):  # exp(-x) = inf only where x < -c, recomputed below
        np.exp(o, out=o)
    np.add(o, 1.0, out=o)
    np.divide(1.0, o, out=o)
    if np.fmin.reduce(x) < -c:
        idx = np.flatnonzero(x < -c)
        o[idx] = np.exp(x[idx])


def _sigmoid_prime(x: np.ndarray, o: np.ndarray, a: np.ndarray) -> None:
    # e / (1 + e)^2 with e = exp(-|x|) in (0, 1]: symmetric, never overflows
    np.abs(x, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    np.add(a, 1.0, out=o)
    np.divide(a, o, out=a)
    np.divide(a, o, out=o)


def _k_sigmoid_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    _sigmoid_prime(x, o, t[0])


def _k_tanh(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.tanh(x, out=o)


def _k_tanh_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # sech(x)^2 = 4e / (1 + e)^2 with e = exp(-2|x|): no cancellation, unlike 1 - tanh(x)^2
    a = t[0]
    np.abs(x, out=a)
    np.multiply(a, -2.0, out=a)
    np.exp(a, out=a)
    np.add(a, 1.0, out=o)
    np.divide(a, o, out=a)
    np.divide(a, o, out=o)
    np.multiply(o, 4.0, out=o)


def _k_softsign(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a = t[0]
    fmax = _FMAX[x.dtype.char]
    np.clip(x, -fmax, fmax, out=o)  # inf / inf would be NaN; the limit is +-1
    np.abs(o, out=a)
    np.add(a, 1.0, out=a)
    np.divide(o, a, out=o)


def _k_softsign_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.abs(x, out=o)
    np.add(o, 1.0, out=o)
    np.divide(1.0, o, out=o)
    np.multiply(o, o, out=o)  # (1/(1+|x|))^2: squaring first would overflow for |x| > 1e19


def _k_hard_tanh(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], lo: float, hi: float) -> None:
    np.clip(x, lo, hi, out=o)


def _k_hard_tanh_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], lo: float, hi: float) -> None:
    a = t[0]
    np.greater(x, lo, out=o)
    np.less(x, hi, out=a)
    np.multiply(o, a, out=o)
    _keep_nan(x, o)


def _k_hard_sigmoid(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.add(x, 3.0, out=o)
    np.clip(o, 0.0, 6.0, out=o)
    np.divide(o, 6.0, out=o)


def _k_hard_sigmoid_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a = t[0]
    np.abs(x, out=a)
    np.less(a, 3.0, out=o)
    np.divide(o, 6.0, out=o)
    _keep_nan(x, o)


def _k_log_sigmoid(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # min(x, 0) - log1p(exp(-|x|)): exp of a non-positive argument never overflows, and the two
    # terms have the same sign (no cancellation); log(sigmoid(x)) would be log(0) below -104
    a = t[0]
    np.abs(x, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    np.log1p(a, out=a)
    np.clip(x, -_INF, 0.0, out=o)
    np.subtract(o, a, out=o)


def _k_log_sigmoid_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.negative(x, out=t[1])
    _k_sigmoid(t[1], o, t[:1])  # sigmoid(-x): 1 - sigmoid(x) would round to 0 for x > 17


_k_sigmoid_t = _via_torch(_k_sigmoid, lambda tm, x, o: tm.sigmoid(x, out=o), _TORCH_SIGMOID_TAIL)
_k_tanh_t = _via_torch(_k_tanh, lambda tm, x, o: tm.tanh(x, out=o))
# derivatives: compiled (one pass, float64 inside) when numba is on, else NumPy. PyTorch's
# backward kernels are not used: they multiply by a gradient, and sigmoid/tanh_backward take the
# forward output (1 - y cancels: 0 for x > 17), gelu_backward cancels like F.gelu for x < 0
_k_sigmoid_d_c = _ViaCompiled(_k_sigmoid_d, "sigmoid_d")
_k_tanh_d_c = _ViaCompiled(_k_tanh_d, "tanh_d")


def sigmoid(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = 1 / (1 + exp(-x)).

    Below x = -87 (float32) / -708 (float64), where exp(-x) can overflow, the entries are
    recomputed as exp(x) (equal to sigmoid(x) at working precision, subnormals included), so
    no warning is raised. sigmoid(-1000) = 0, sigmoid(1000) = 1, sigmoid(+-inf) = 1 or 0.
    """
    return _elementwise(_k_sigmoid_t, x, out)


def sigmoid_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = sigmoid(x) * (1 - sigmoid(x)), computed as e / (1 + e)^2 with e = exp(-|x|).

    Accurate in both tails (1 - sigmoid(x) would round to 0 for x > 17 in float32).
    """
    return _elementwise(_k_sigmoid_d_c, x, out)


def tanh(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = tanh(x) = (e^x - e^-x) / (e^x + e^-x) (NumPy's vectorised tanh)."""
    return _elementwise(_k_tanh_t, x, out)


def tanh_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 - tanh(x)^2 = sech(x)^2, computed as 4e / (1 + e)^2 with e = exp(-2|x|)."""
    return _elementwise(_k_tanh_d_c, x, out)


def softsign(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x / (1 + |x|). f(+-inf) = +-1."""
    return _elementwise(_k_softsign, x, out)


def softsign_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 / (1 + |x|)^2. Smooth (C1; f'' jumps at 0)."""
    return _elementwise(_k_softsign_d, x, out)


def _hard_tanh_bounds(min_val: Any, max_val: Any, func: str) -> tuple[float, float]:
    lo, hi = _real(min_val, "min_val", func), _real(max_val, "max_val", func)
    if not lo < hi:
        raise ActlabError(f"{func}: min_val must be below max_val, got {lo:g} and {hi:g}")
    return lo, hi


def hard_tanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, *, out: Any = None) -> Any:
    """f(x) = min(max(x, min_val), max_val) (PyTorch's hardtanh; relu6 is min_val=0, max_val=6)."""
    return _elementwise(_k_hard_tanh, x, out, *_hard_tanh_bounds(min_val, max_val, "hard_tanh"))


def hard_tanh_derivative(
    x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, *, out: Any = None
) -> Any:
    """f'(x) = 1 if min_val < x < max_val else 0. Kinks: f'(min_val) = f'(max_val) = 0 (PyTorch)."""
    lo, hi = _hard_tanh_bounds(min_val, max_val, "hard_tanh_derivative")
    return _elementwise(_k_hard_tanh_d, x, out, lo, hi)


def hard_sigmoid(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = relu6(x + 3) / 6 (PyTorch's hardsigmoid)."""
    return _elementwise(_k_hard_sigmoid, x, out)


def hard_sigmoid_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1/6 if -3 < x < 3 else 0. Kinks: f'(-3) = f'(3) = 0 (PyTorch)."""
    return _elementwise(_k_hard_sigmoid_d, x, out)


def log_sigmoid(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = log(sigmoid(x)) = -softplus(-x), computed as min(x, 0) - log1p(exp(-|x|)).

    f(-inf) = -inf, f(inf) = 0; f(x) = x to working precision below x = -17 (float32).
    """
    return _elementwise(_k_log_sigmoid, x, out)


def log_sigmoid_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = sigmoid(-x) = 1 - sigmoid(x), taken as sigmoid(-x) (accurate for x > 0). Smooth."""
    return _elementwise(_k_log_sigmoid_d, x, out)


def _bounds_in_order(p: Mapping[str, Any]) -> str | None:
    if p["min_val"] < p["max_val"]:
        return None
    return (
        f"min_val ({p['min_val']:g}) must be below max_val ({p['max_val']:g}), "
        "e.g. hard_tanh:min_val=-2:max_val=2"
    )


_fast_sigmoid = pointwise("sigmoid", "sigmoid_backward", of_output=True)
_fast_tanh = pointwise("tanh", "tanh_backward", of_output=True)
_fast_hard_sigmoid = pointwise("hardsigmoid", "hardsigmoid_backward")
# nn.ReLU6 is an nn.Hardtanh(0, 6)
_fast_hardtanh = pointwise("hardtanh", "hardtanh_backward", lambda m: (m.min_val, m.max_val))


SPECS = (
    define(
        name="sigmoid",
        numpy_forward=sigmoid,
        numpy_derivative=sigmoid_derivative,
        torch=TorchModule("Sigmoid"),
        fast=_fast_sigmoid,
        aliases=("logistic",),
        display_name="Sigmoid",
        formula="f(x) = 1 / (1 + exp(-x))",
        formula_latex=r"f(x) = \frac{1}{1 + e^{-x}}",
        derivative_formula="f'(x) = f(x) * (1 - f(x))",
        derivative_latex=r"f'(x) = f(x)\,\bigl(1 - f(x)\bigr)",
        output_range=(0.0, 1.0),
        properties=Properties(True, "Cinf", False, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        plot=PlotDefaults(
            x=(-100.0, 100.0, 1000),
            xlim=(-10.0, 10.0),
            ylim=(0.0, 1.0),
            linewidth=5.0,
            in_article=True,
        ),
    ),
    define(
        name="tanh",
        numpy_forward=tanh,
        numpy_derivative=tanh_derivative,
        torch=TorchModule("Tanh"),
        fast=_fast_tanh,
        aliases=("hyperbolic_tangent",),
        display_name="Tanh",
        formula="f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))",
        formula_latex=r"f(x) = \tanh x = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
        derivative_formula="f'(x) = 1 - f(x)^2",
        derivative_latex=r"f'(x) = 1 - \tanh^2 x",
        output_range=(-1.0, 1.0),
        properties=Properties(True, "Cinf", True, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        plot=PlotDefaults(
            x=(-100.0, 100.0, 1000),
            xlim=(-10.0, 10.0),
            ylim=(-1.0, 1.0),
            linewidth=5.0,
            in_article=True,
        ),
    ),
    define(
        name="softsign",
        numpy_forward=softsign,
        numpy_derivative=softsign_derivative,
        torch=TorchModule("Softsign"),
        display_name="Softsign",
        formula="f(x) = x / (1 + |x|)",
        formula_latex=r"f(x) = \frac{x}{1 + |x|}",
        derivative_formula="f'(x) = 1 / (1 + |x|)^2",
        derivative_latex=r"f'(x) = \frac{1}{(1 + |x|)^2}",
        output_range=(-1.0, 1.0),
        properties=Properties(True, "C1", True, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        plot=PlotDefaults(
            x=(-20.0, 20.0, 1001),
            xlim=(-10.0, 10.0),
            ylim=(-1.0, 1.0),
        ),
    ),
    define(
        name="hard_sigmoid",
        numpy_forward=hard_sigmoid,
        numpy_derivative=hard_sigmoid_derivative,
        torch=TorchModule("Hardsigmoid"),
        fast=_fast_hard_sigmoid,
        range_closed=(True, True),
        aliases=("hardsigmoid",),
        display_name="Hard sigmoid",
        formula="f(x) = relu6(x + 3) / 6",
        formula_latex=r"f(x) = \frac{\min(\max(0, x + 3), 6)}{6}",
        derivative_formula="f'(x) = 1/6 if -3 < x < 3 else 0",
        derivative_latex=r"f'(x) = \begin{cases}1/6 & -3 < x < 3\\ 0 & \text{otherwise}\end{cases}",
        output_range=(0.0, 1.0),
        properties=Properties(True, "C0", False, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 2001),
            xlim=(-6.0, 6.0),
            ylim=(-0.1, 1.1),
        ),
    ),
    define(
        name="hard_tanh",
        numpy_forward=hard_tanh,
        numpy_derivative=hard_tanh_derivative,
        torch=TorchModule("Hardtanh", {"min_val": "min_val", "max_val": "max_val"}),
        fast=_fast_hardtanh,
        check=_bounds_in_order,
        aliases=("hardtanh",),
        display_name="Hard tanh",
        params=(
            # the linear part holds 0 (as every activation here passes through the origin)
            Param(
                "min_val",
                -1.0,
                float,
                "lower end of the linear part: the smallest output",
                high=0.0,
            ),
            Param(
                "max_val", 1.0, float, "upper end of the linear part: the largest output", low=0.0
            ),
        ),
        formula="f(x) = min(max(x, min_val), max_val)",
        formula_latex=r"f(x) = \min\bigl(\max(x, a), b\bigr)",
        derivative_formula="f'(x) = 1 if min_val < x < max_val else 0",
        derivative_latex=r"f'(x) = \begin{cases}1 & a < x < b\\ 0 & \text{otherwise}\end{cases}",
        output_range=(-1.0, 1.0),
        range_closed=(True, True),
        properties=Properties(True, "C0", True, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        plot=PlotDefaults(
            ylim=(-1.5, 1.5),
        ),
    ),
    define(
        name="log_sigmoid",
        numpy_forward=log_sigmoid,
        numpy_derivative=log_sigmoid_derivative,
        torch=TorchModule("LogSigmoid"),
        aliases=("logsigmoid",),
        display_name="Log-sigmoid",
        formula="f(x) = log(sigmoid(x)) = -log(1 + exp(-x))",
        formula_latex=r"f(x) = \log \sigma(x) = -\ln\bigl(1 + e^{-x}\bigr)",
        derivative_formula="f'(x) = sigmoid(-x) = 1 - sigmoid(x)",
        derivative_latex=r"f'(x) = \sigma(-x) = 1 - \sigma(x)",
        output_range=(-INF, 0.0),
        properties=Properties(True, "Cinf", False, False, True, "right"),
        family="sigmoid",
        recommended_init="glorot",
        plot=PlotDefaults(x=(-10.0, 10.0, 1001), xlim=(-10.0, 10.0), ylim=(-6.0, 1.0)),
    ),
)
