"""The ReLU family: relu, leaky_relu, prelu (learned slope), relu6."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab.activations._prose import define
from actlab.activations._route import (
    _INF,
    _as_float,
    _check_out,
    _compute_dtype,
    _elementwise,
    _finish,
    _keep_nan,
    _real,
    _step,
)
from actlab.activations.sigmoidal import _fast_hardtanh
from actlab.errors import ActlabError
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = [
    "leaky_relu",
    "leaky_relu_derivative",
    "prelu",
    "prelu_derivative",
    "prelu_weight_derivative",
    "relu",
    "relu6",
    "relu6_derivative",
    "relu_derivative",
]


def _k_relu(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.clip(x, 0.0, _INF, out=o)  # clip propagates NaN (and is faster than maximum with a scalar)


def _k_relu_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    _step(x, o)
    _keep_nan(x, o)


def _k_leaky(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], slope: float) -> None:
    if slope == 0.0:  # 0 * (-inf) would be NaN; the limit is 0
        np.clip(x, 0.0, _INF, out=o)
        return
    np.multiply(x, slope, out=o)
    # slope <= 1: x >= slope*x exactly when x >= 0, so the max picks the right branch
    (np.maximum if slope <= 1.0 else np.minimum)(x, o, out=o)


def _k_leaky_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], slope: float) -> None:
    # m + (1 - m) * slope with m = [x > 0]: exactly 1 or exactly slope
    m = t[0]
    _step(x, m)
    np.subtract(1.0, m, out=o)
    np.multiply(o, slope, out=o)
    np.add(o, m, out=o)
    _keep_nan(x, o)


def _k_relu6(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.clip(x, 0.0, 6.0, out=o)


def _k_relu6_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a = t[0]
    np.greater(x, 0.0, out=o)
    np.less(x, 6.0, out=a)
    np.multiply(o, a, out=o)
    _keep_nan(x, o)


def relu(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = max(x, 0)."""
    return _elementwise(_k_relu, x, out)


def relu_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 if x > 0 else 0. Kink: relu'(0) = 0 (PyTorch, JAX)."""
    return _elementwise(_k_relu_d, x, out)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01, *, out: Any = None) -> Any:
    """f(x) = x if x > 0 else negative_slope * x.

    The limit at -inf is -inf (0 when negative_slope = 0).
    """
    s = _real(negative_slope, "negative_slope", "leaky_relu")
    return _elementwise(_k_leaky, x, out, s)


def leaky_relu_derivative(x: ArrayLike, negative_slope: float = 0.01, *, out: Any = None) -> Any:
    """f'(x) = 1 if x > 0 else negative_slope. Kink: f'(0) = negative_slope (PyTorch)."""
    s = _real(negative_slope, "negative_slope", "leaky_relu_derivative")
    return _elementwise(_k_leaky_d, x, out, s)


def relu6(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = min(max(x, 0), 6)."""
    return _elementwise(_k_relu6, x, out)


def relu6_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 if 0 < x < 6 else 0. Kinks: f'(0) = 0 and f'(6) = 0 (PyTorch's hardtanh)."""
    return _elementwise(_k_relu6_d, x, out)


# ---- PReLU: a weight that broadcasts per channel (axis 1), so it is not a block kernel ---------


def _prelu_scalar(weight: Any, func: str) -> float | None:
    """The weight as a float when it is one number (or a 1-element array), else None."""
    if isinstance(weight, np.ndarray) and weight.size == 1 and weight.dtype.kind in "fiu":
        weight = weight.reshape(()).item()
    if isinstance(weight, (int, float, np.integer, np.floating, bool)):
        return _real(weight, "weight", func)
    return None


def _prelu_weight(weight: Any, x: np.ndarray, func: str) -> np.ndarray | float:
    """A scalar, or the weight array shaped to broadcast against x (per channel on axis 1)."""
    if isinstance(weight, (int, float, np.integer, np.floating)) and not isinstance(weight, bool):
        return _real(weight, "weight", func)
    try:
        w = np.asarray(weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ActlabError(
            f"{func}: weight must be a number or an array of numbers, got {type(weight).__name__}"
        ) from None
    if not np.all(np.isfinite(w)):
        raise ActlabError(f"{func}: weight must be finite, got non-finite values")
    if w.size == 1:
        return float(w.reshape(()))
    if w.ndim == 1 and x.ndim >= 2 and w.shape[0] == x.shape[1]:
        w = w.reshape((-1,) + (1,) * (x.ndim - 2))  # PyTorch: one slope per channel (axis 1)
    try:
        shape = np.broadcast_shapes(w.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ActlabError(
            f"{func}: weight of shape {np.shape(weight)} does not fit x of shape {x.shape}; "
            "use a scalar, one slope per channel (length x.shape[1]), or an array that "
            "broadcasts to x's shape"
        )
    return w


def _prelu_apply(
    fn: Callable[[np.ndarray, Any], np.ndarray], x: ArrayLike, weight: Any, out: Any, func: str
) -> Any:
    a = _as_float(x)
    dtype = a.dtype
    comp = _compute_dtype(dtype)
    w = _prelu_weight(weight, a, func)
    if isinstance(w, np.ndarray):
        w = w.astype(comp)
    o = np.empty(a.shape, dtype) if out is None else _check_out(out, a.shape, dtype)
    np.copyto(o, fn(a.astype(comp, copy=False), w), casting="same_kind")
    return _finish(o, out is None and a.ndim == 0)


def _prelu_f(x: np.ndarray, w: Any) -> np.ndarray:
    # max(x, 0) + w * min(x, 0); w * (-inf) is skipped where w == 0 (the limit there is 0)
    neg = np.clip(x, -_INF, 0.0)
    if np.ndim(w) == 0:
        prod = neg * w if w != 0.0 else np.zeros_like(neg)
    else:
        wb = np.broadcast_to(w, x.shape)
        prod = np.zeros_like(neg)
        np.multiply(wb, neg, out=prod, where=wb != 0)
    return np.clip(x, 0.0, _INF) + prod  # NaN reaches the result through the clip


def _prelu_d(x: np.ndarray, w: Any) -> np.ndarray:
    m = (x > 0).astype(x.dtype)
    d = m + (1.0 - m) * w
    return np.where(np.isnan(x), x, d)


def prelu(x: ArrayLike, weight: Any = 0.25, *, out: Any = None) -> Any:
    """f(x) = x if x > 0 else weight * x.

    ``weight`` is a scalar or an array: a 1-D array of length x.shape[1] is one slope per channel
    (axis 1, as in PyTorch's nn.PReLU); otherwise it must broadcast to x's shape.
    """
    w = _prelu_scalar(weight, "prelu")
    if w is not None:  # one shared slope: the same block kernel as leaky_relu
        return _elementwise(_k_leaky, x, out, w)
    return _prelu_apply(_prelu_f, x, weight, out, "prelu")


def prelu_derivative(x: ArrayLike, weight: Any = 0.25, *, out: Any = None) -> Any:
    """df/dx = 1 if x > 0 else weight. Kink: f'(0) = weight (PyTorch)."""
    w = _prelu_scalar(weight, "prelu_derivative")
    if w is not None:
        return _elementwise(_k_leaky_d, x, out, w)
    return _prelu_apply(_prelu_d, x, weight, out, "prelu_derivative")


def prelu_weight_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """df/dweight = min(x, 0) elementwise (sum it over the axes a weight is shared on)."""
    a = _as_float(x)
    o = np.empty(a.shape, a.dtype) if out is None else _check_out(out, a.shape, a.dtype)
    np.clip(a, -_INF, 0.0, out=o)
    return _finish(o, out is None and a.ndim == 0)


def _prelu(x: Any, init: float = 0.25, *, out: Any = None) -> Any:
    return prelu(x, weight=init, out=out)  # the kernel calls the slope 'weight'


def _prelu_derivative(x: Any, init: float = 0.25, *, out: Any = None) -> Any:
    return prelu_derivative(x, weight=init, out=out)


def _read_prelu(m: Any) -> dict[str, Any]:
    # nn.PReLU remembers its initial slope in .init; the learned slopes live in .weight
    init = getattr(m, "init", None)
    if init is None:
        init = float(m.weight.detach().mean())
    return {"num_parameters": int(m.num_parameters), "init": float(init)}


def _fast_relu(a: Any, m: Any) -> Any:
    return (
        lambda z, o: a.clamp_min.out(z, 0, out=o),  # what relu runs, minus a copy
        lambda g, z, h, o: a.threshold_backward.grad_input(g, h, 0.0, grad_input=o),
    )


def _fast_leaky_relu(a: Any, m: Any) -> Any:
    s = m.negative_slope
    return (
        lambda z, o: a.leaky_relu.out(z, s, out=o),
        lambda g, z, h, o: a.leaky_relu_backward.grad_input(g, z, s, False, grad_input=o),
    )


SPECS = (
    define(
        name="relu",
        numpy_forward=relu,
        numpy_derivative=relu_derivative,
        torch=TorchModule("ReLU"),
        fast=_fast_relu,
        range_closed=(True, False),
        aliases=("rectifier",),
        display_name="ReLU",
        formula="f(x) = max(0, x)",
        formula_latex=r"f(x) = \max(0, x)",
        derivative_formula="f'(x) = 1 if x > 0 else 0",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ 0 & x \le 0\end{cases}",
        output_range=(0.0, INF),
        properties=Properties(True, "C0", False, True, False, "left"),
        family="relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-100.0, 100.0, 1000),
            ylim=(-0.5, 5.0),
            linewidth=5.0,
            in_article=True,
        ),
    ),
    define(
        name="leaky_relu",
        numpy_forward=leaky_relu,
        numpy_derivative=leaky_relu_derivative,
        torch=TorchModule("LeakyReLU", {"negative_slope": "negative_slope"}),
        fast=_fast_leaky_relu,
        kaiming=lambda p: ("leaky_relu", float(p["negative_slope"])),
        aliases=("leakyrelu", "lrelu"),
        display_name="Leaky ReLU",
        params=(
            Param(
                "negative_slope",
                0.01,
                float,
                "slope for x < 0 (the article calls it alpha)",
                low=0.0,
                synonyms=("alpha", "slope"),
            ),
        ),
        formula="f(x) = x if x > 0 else negative_slope * x",
        formula_latex=r"f(x) = \begin{cases}x & x > 0\\ \alpha x & x \le 0\end{cases}",
        derivative_formula="f'(x) = 1 if x > 0 else negative_slope",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ \alpha & x \le 0\end{cases}",
        output_range=(-INF, INF),
        properties=Properties(True, "C0", False, False, False, "none"),
        family="relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-0.5, 5.0),
            linewidth=5.0,
            params={"negative_slope": 0.01},  # PyTorch's default, as in `list` and `eval`
            in_article=True,
        ),
    ),
    define(
        name="prelu",
        numpy_forward=_prelu,
        numpy_derivative=_prelu_derivative,
        torch=TorchModule(
            "PReLU", {"num_parameters": "num_parameters", "init": "init"}, read=_read_prelu
        ),
        layer="PReLU",
        aliases=("parametric_relu",),
        display_name="PReLU",
        params=(
            Param(
                "init",
                0.25,
                float,
                "initial value of the learnable negative slope",
                synonyms=("alpha", "negative_slope"),
            ),
            Param(
                "num_parameters",
                1,
                int,
                "1 (one shared slope) or the number of channels (one slope each)",
                low=1,
                torch_only=True,
            ),
        ),
        formula="f(x) = x if x > 0 else a * x, with a learned",
        formula_latex=r"f(x) = \begin{cases}x & x > 0\\ a x & x \le 0\end{cases},"
        r"\ a \text{ learned}",
        derivative_formula="f'(x) = 1 if x > 0 else a;  df/da = 0 if x > 0 else x",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ a & x \le 0\end{cases}",
        output_range=(-INF, INF),
        properties=Properties(True, "C0", False, False, False, "none"),
        family="relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-2.0, 5.0),
        ),
    ),
    define(
        name="relu6",
        numpy_forward=relu6,
        numpy_derivative=relu6_derivative,
        torch=TorchModule("ReLU6"),
        fast=_fast_hardtanh,
        range_closed=(True, True),
        display_name="ReLU6",
        formula="f(x) = min(max(0, x), 6)",
        formula_latex=r"f(x) = \min(\max(0, x), 6)",
        derivative_formula="f'(x) = 1 if 0 < x < 6 else 0",
        derivative_latex=r"f'(x) = \begin{cases}1 & 0 < x < 6\\ 0 & \text{otherwise}\end{cases}",
        output_range=(0.0, 6.0),
        properties=Properties(True, "C0", False, True, True, "both"),
        family="relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 2001),
            xlim=(-3.0, 9.0),
            ylim=(-0.5, 7.0),
        ),
    ),
)
