"""Learnable: the rational (Padé) activation P(x) / (1 + |Q(x)|) of PAU."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab.activations._prose import define
from actlab.activations._route import (
    _as_float,
    _check_out,
)
from actlab.activations.gaussian import gelu
from actlab.activations.linear import identity
from actlab.activations.rectifiers import leaky_relu, relu
from actlab.activations.sigmoidal import sigmoid, tanh
from actlab.activations.smooth import silu
from actlab.errors import ActlabError
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = ["RATIONAL_FITS", "rational", "rational_coefficients", "rational_derivative"]

RATIONAL_FITS = ("relu", "leaky_relu", "tanh", "sigmoid", "silu", "gelu", "identity")
_RATIONAL_RANGE = (-3.0, 3.0, 1201)  # where the initial coefficients are fitted (PAU's range)


@functools.cache
def rational_coefficients(fit: str = "relu") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(a0..a5, b1..b4)`` of P(x) / (1 + |Q(x)|) closest to the built-in ``fit`` on [-3, 3].

    Least squares in two steps: the linearised problem P(x) - f(x) Q(x) = f(x) (exact where
    Q > -1), then SciPy's trust-region least squares on the true residual from there.
    """
    if fit not in RATIONAL_FITS:
        raise ActlabError(f"rational: fit must be one of {', '.join(RATIONAL_FITS)}, got {fit!r}")
    from scipy.optimize import least_squares

    x = np.linspace(*_RATIONAL_RANGE)
    target = {"relu": relu, "leaky_relu": leaky_relu, "tanh": tanh, "sigmoid": sigmoid,
              "silu": silu, "gelu": gelu, "identity": identity}[fit](x)  # fmt: skip
    powers = np.vander(x, 6, increasing=True)  # 1, x, ..., x^5
    design = np.hstack([powers, -target[:, None] * powers[:, 1:5]])
    start = np.linalg.lstsq(design, target, rcond=None)[0]

    def residual(c: np.ndarray) -> np.ndarray:
        return _rational64(x, c[:6], c[6:]) - target

    c = least_squares(residual, start, method="trf", x_scale="jac").x
    return tuple(float(v) for v in c[:6]), tuple(float(v) for v in c[6:])


def _rational64(x: np.ndarray, a: Any, b: Any, derivative: bool = False) -> np.ndarray:
    """P/(1+|Q|) (or its derivative) in float64; |x| > 1 is evaluated in powers of 1/x so that
    nothing overflows (f(+-inf) is the limit a5 x / |b4| when b4 != 0)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) <= 1.0
    with np.errstate(all="ignore"):
        xs = x[small]
        p = np.polyval(a[::-1], xs)
        q = np.polyval([*b[::-1], 0.0], xs)
        d = 1.0 + np.abs(q)
        if derivative:
            dp = np.polyval([k * a[k] for k in range(5, 0, -1)], xs)
            dq = np.polyval([k * b[k - 1] for k in range(4, 0, -1)], xs)
            out[small] = (dp * d - p * np.sign(q) * dq) / (d * d)
        else:
            out[small] = p / d
        xl = x[~small]
        u = 1.0 / xl  # 0 at +-inf
        pu = np.polyval(a, u)  # a5 + a4 u + ... + a0 u^5 = P / x^5
        qu = b[3] + b[2] * u + b[1] * u**2 + b[0] * u**3  # Q / x^4
        du = u**4 + np.abs(qu)  # (1 + |Q|) / x^4
        if derivative:
            dpu = 5 * a[5] + 4 * a[4] * u + 3 * a[3] * u**2 + 2 * a[2] * u**3 + a[1] * u**4
            dqu = 4 * b[3] + 3 * b[2] * u + 2 * b[1] * u**2 + b[0] * u**3  # Q' / x^3
            # f' = (P' D - P sign(Q) Q') / D^2, every term divided by x^8
            out[~small] = (dpu * du - pu * np.sign(qu) * dqu) / (du * du)
        else:
            lead = np.where(pu == 0.0, 0.0, pu * xl)  # P / x^4 = x * pu (0 * inf -> 0)
            out[~small] = lead / du
    return out


def _rational(x: ArrayLike, fit: str, out: Any, derivative: bool) -> Any:
    a = _as_float(x)
    a_, b_ = rational_coefficients(fit)
    y = _rational64(a, a_, b_, derivative).astype(a.dtype)
    y[np.isnan(a)] = np.nan
    if out is None:
        return y[()] if y.ndim == 0 else y
    o = _check_out(out, a.shape, a.dtype)
    np.copyto(o, y)
    return o


def rational(x: ArrayLike, fit: str = "relu", *, out: Any = None) -> Any:
    """f(x) = P(x) / (1 + |Q(x)|), P of degree 5, Q of degree 4 with no constant term, with the
    coefficients that best fit the built-in ``fit`` on [-3, 3] (:func:`rational_coefficients`).
    Computed in float64, returned in x's dtype."""
    return _rational(x, fit, out, False)


def rational_derivative(x: ArrayLike, fit: str = "relu", *, out: Any = None) -> Any:
    """f'(x) = (P' (1 + |Q|) - P sign(Q) Q') / (1 + |Q|)^2 (sign(0) = 0 at Q's zeros)."""
    return _rational(x, fit, out, True)


SPECS = (
    define(
        name="rational",
        numpy_forward=rational,
        numpy_derivative=rational_derivative,
        torch=TorchModule("Rational", args={"fit": "fit", "learnable": "learnable"}),
        display_name="Rational (PAU)",
        params=(
            Param(
                "fit",
                "relu",
                str,
                "the built-in its initial coefficients fit on [-3, 3]",
                choices=RATIONAL_FITS,
            ),
            Param(
                "learnable",
                False,
                bool,
                "PyTorch only: train the 10 coefficients per layer",
                torch_only=True,
            ),
        ),
        formula="f(x) = P(x) / (1 + |Q(x)|), P = a0 + ... + a5 x^5, Q = b1 x + ... + b4 x^4",
        formula_latex=r"f(x) = \frac{\sum_{k=0}^{5} a_k x^k}"
        r"{1 + \left|\sum_{k=1}^{4} b_k x^k\right|}",
        derivative_formula="f'(x) = (P' (1 + |Q|) - P sign(Q) Q') / (1 + |Q|)^2",
        derivative_latex=r"f'(x) = \frac{P'(1 + |Q|) - P\,\mathrm{sign}(Q)\,Q'}{(1 + |Q|)^2}",
        output_range=(-INF, INF),
        properties=Properties(False, "C0", False, False, False, "none"),
        family="learnable",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-4.0, 4.0, 801),
            xlim=(-4.0, 4.0),
            ylim=(-1.5, 4.0),
        ),
    ),
)
