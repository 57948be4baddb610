"""Float32 accuracy of every kernel, in ulps, against mpmath at 40 digits.

Error = |actlab_float32(x) - f(x)| / ulp_float32(f(x)) on ~1100 float32 inputs (a grid over
[-25, 25], log-spaced magnitudes 1e-7 .. 112, random normals, and the far tails around the exp
clamps). The bounds below are the measured maxima rounded up with a little margin, so a
regression of one ulp in a formula fails the test.

| function           | forward | derivative | note |
|--------------------|---------|------------|------|
| identity, relu, relu6, hard_tanh, prelu | 0 | 0  | exact |
| leaky_relu (0.1)   | 1       | 1          | |
| sigmoid            | 3       | 4          | |
| tanh               | 2       | 4          | NumPy's SIMD tanh |
| elu                | 2       | 2          | |
| selu               | 2       | 3          | |
| celu (alpha=2)     | 1       | 1          | float64 inside |
| gelu (exact)       | 8       | 4 *        | float32 erfc fit (7 ulp max, dense grid) |
| gelu (tanh)        | 1       | 1          | float64 inside |
| silu               | 2       | 1          | silu' in float64 inside |
| swish (beta=1.7)   | 1       | 1          | float64 inside |
| mish               | 4       | 1          | mish' in float64 inside |
| softplus           | 3       | 3          | |
| softplus (beta=2)  | 1       | 1          | float64 inside |
| softsign           | 2       | 4          | |
| log_sigmoid        | 3       | 4          | 2.7 and 3.1 on a dense grid of [-30, 30] |
| hard_sigmoid       | 1       | 1          | |
| hard_swish         | 2       | 1          | |

softmax: 3 + |x_i - max| ulp (see test_softmax_float32_ulp_bounds); log_softmax: 2 ulp of
max(|result|, 1).

(*) gelu' crosses zero at x = -0.7518 where Phi(x) + x phi(x) cancels: within 0.25 of the root
its error is counted in ulps of max(|f'(x)|, 2^-12).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest

from actlab import kernels as K

mp.mp.dps = 40
_SA = mp.mpf("1.6732632423543772848170429916717")
_SS = mp.mpf("1.0507009873554804934193349852946")
_C = mp.sqrt(2 / mp.pi)
_K = mp.mpf("0.044715")
_B = mp.mpf(1.7)  # the float64 nearest 1.7, as the kernel receives it

# Every test here runs on both routes of the float32 kernels (conftest.kernel_path).
pytestmark = pytest.mark.usefixtures("kernel_path")



def _sig(z: Any) -> Any:
    return 1 / (1 + mp.exp(-z))


def _sp(z: Any) -> Any:
    return mp.log1p(mp.exp(z))


def _u(x: Any) -> Any:
    return 2 * _C * (x + _K * x**3)


Fn = Callable[[Any], Any]
# id: (kernel name, kwargs, f, f', forward ulp bound, derivative ulp bound)
TABLE: dict[str, tuple[str, dict[str, Any], Fn, Fn, float, float]] = {
    "identity": ("identity", {}, lambda x: x, lambda x: 1, 0, 0),
    "relu": ("relu", {}, lambda x: max(x, 0), lambda x: 1 if x > 0 else 0, 0, 0),
    "relu6": ("relu6", {}, lambda x: min(max(x, 0), 6), lambda x: 1 if 0 < x < 6 else 0, 0, 0),
    "hard_tanh": (
        "hard_tanh",
        {"min_val": -1.0, "max_val": 1.0},
        lambda x: min(max(x, -1), 1),
        lambda x: 1 if -1 < x < 1 else 0,
        0,
        0,
    ),
    "prelu": (
        "prelu",
        {"weight": 0.25},
        lambda x: x if x > 0 else x / 4,
        lambda x: 1 if x > 0 else mp.mpf(0.25),
        0,
        0,
    ),
    "leaky_relu": (
        "leaky_relu",
        {"negative_slope": 0.1},
        lambda x: x if x > 0 else mp.mpf(0.1) * x,
        lambda x: 1 if x > 0 else mp.mpf(0.1),
        1,
        1,
    ),
    "sigmoid": ("sigmoid", {}, _sig, lambda x: _sig(x) * _sig(-x), 3, 4),
    "tanh": ("tanh", {}, mp.tanh, lambda x: mp.sech(x) ** 2, 2, 4),
    "elu": (
        "elu",
        {},
        lambda x: x if x > 0 else mp.expm1(x),
        lambda x: 1 if x > 0 else mp.exp(x),
        2,
        2,
    ),
    "selu": (
        "selu",
        {},
        lambda x: _SS * x if x > 0 else _SS * _SA * mp.expm1(x),
        lambda x: _SS if x > 0 else _SS * _SA * mp.exp(x),
        2,
        3,
    ),
    "celu_2": (
        "celu",
        {"alpha": 2.0},
        lambda x: x if x > 0 else 2 * mp.expm1(x / 2),
        lambda x: 1 if x > 0 else mp.exp(x / 2),
        1,
        1,
    ),
    "gelu": ("gelu", {}, lambda x: x * mp.ncdf(x), lambda x: mp.ncdf(x) + x * mp.npdf(x), 8, 4),
    "gelu_tanh": (
        "gelu",
        {"approximate": "tanh"},
        lambda x: x * _sig(_u(x)),
        lambda x: _sig(_u(x)) * (1 + x * _sig(-_u(x)) * 2 * _C * (1 + 3 * _K * x**2)),
        1,
        1,
    ),
    "silu": ("silu", {}, lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * _sig(-x)), 2, 1),
    "swish_1.7": (
        "silu",
        {"beta": 1.7},
        lambda x: x * _sig(_B * x),
        lambda x: _sig(_B * x) * (1 + _B * x * _sig(-_B * x)),
        1,
        1,
    ),
    "mish": (
        "mish",
        {},
        lambda x: x * mp.tanh(_sp(x)),
        lambda x: mp.tanh(_sp(x)) + x * mp.sech(_sp(x)) ** 2 * _sig(x),
        4,
        1,
    ),
    "softplus": (
        "softplus",
        {},
        lambda x: x if x > 20 else _sp(x),
        lambda x: 1 if x > 20 else _sig(x),
        3,
        3,
    ),
    "softplus_b2": (
        "softplus",
        {"beta": 2.0, "threshold": 30.0},
        lambda x: x if 2 * x > 30 else _sp(2 * x) / 2,
        lambda x: 1 if 2 * x > 30 else _sig(2 * x),
        1,
        1,
    ),
    "softsign": ("softsign", {}, lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2, 2, 4),
    "log_sigmoid": ("log_sigmoid", {}, lambda x: -_sp(-x), lambda x: _sig(-x), 3, 4),
    "hard_sigmoid": (
        "hard_sigmoid",
        {},
        lambda x: min(max(x + 3, 0), 6) / 6,
        lambda x: mp.mpf(1) / 6 if -3 < x < 3 else 0,
        1,
        1,
    ),
    "hard_swish": (
        "hard_swish",
        {},
        lambda x: x * min(max(x + 3, 0), 6) / 6,
        lambda x: 0 if x <= -3 else (1 if x >= 3 else x / 3 + mp.mpf(0.5)),
        2,
        1,
    ),
}
ROOTS = {"gelu": -0.75179}  # derivative roots measured with a floor (see the docstring)


def _inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            np.linspace(-25, 25, 501),
            -np.logspace(-7, 2.05, 150),
            np.logspace(-7, 2.05, 150),
            rng.standard_normal(250) * 5,
            [-3.0, 3.0, 6.0, 0.0, -87.5, -88.9, -95.0, -103.0, -104.0, 1e-30, -1e-30, 3e4, -3e4],
        ]
    ).astype(np.float32)


X = _inputs()


def ulp_error(got: np.ndarray, ref: np.ndarray, floor: np.ndarray | float = 0.0) -> np.ndarray:
    scale = np.maximum(np.abs(ref), floor).astype(np.float32)
    return np.abs(got.astype(np.float64) - ref) / np.spacing(scale).astype(np.float64)


@pytest.mark.parametrize("fid", list(TABLE))
def test_float32_forward_and_derivative_within_ulp_bound(fid: str) -> None:
    name, kw, f, d, fwd_bound, der_bound = TABLE[fid]
    ref = np.array([float(f(mp.mpf(float(v)))) for v in X])
    dref = np.array([float(d(mp.mpf(float(v)))) for v in X])
    got = getattr(K, name)(X, **kw)
    dgot = getattr(K, f"{name}_derivative")(X, **kw)
    assert got.dtype == np.float32 and dgot.dtype == np.float32
    fe = ulp_error(got, ref)
    floor = 0.0
    if fid in ROOTS:
        floor = np.where(np.abs(X - ROOTS[fid]) < 0.25, 2.0**-12, 0.0)
    de = ulp_error(dgot, dref, floor)
    assert fe.max() <= fwd_bound, f"{fid}: {fe.max():.2f} ulp at x = {X[fe.argmax()]!r}"
    assert de.max() <= der_bound, f"{fid}': {de.max():.2f} ulp at x = {X[de.argmax()]!r}"


def test_softmax_float32_ulp_bounds() -> None:
    """softmax: 3 + |x_i - max| ulp. Like PyTorch, the kernel rounds x - max in float32, which
    alone costs up to |x - max| * 2^-24 relative after the exp (computing in float64 instead would
    double the time). log-softmax: 2 ulp of max(|result|, 1)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((20, 30)) * 8).astype(np.float32)
    y, ly = K.softmax(x), K.log_softmax(x)
    for i in range(x.shape[0]):
        row = [mp.mpf(float(v)) for v in x[i]]
        s = mp.fsum(mp.exp(v) for v in row)
        ref = np.array([float(mp.exp(v) / s) for v in row])
        lref = np.array([float(v - mp.log(s)) for v in row])
        spread = (x[i].max() - x[i]).astype(np.float64)
        assert np.all(ulp_error(y[i], ref) <= 3 + spread)
        assert ulp_error(ly[i], lref, 1.0).max() <= 2


def test_gelu_float32_dense_grid() -> None:
    """The float32 GELU uses our own erfc fit: check it densely against SciPy in float64."""
    from scipy import special

    x = np.concatenate([np.linspace(-16, 16, 200_001), -np.logspace(-7, 1.2, 20_000)])
    x = x.astype(np.float32)
    x64 = x.astype(np.float64)
    ref = x64 * special.ndtr(x64)
    assert ulp_error(K.gelu(x), ref).max() <= 8
    h = x.astype(np.float16)
    h = h[np.isfinite(h)]
    h64 = h.astype(np.float64)
    ref16 = h64 * special.ndtr(h64)
    err16 = np.abs(K.gelu(h).astype(np.float64) - ref16) / np.spacing(
        np.abs(ref16).astype(np.float16)
    ).astype(np.float64)
    assert err16.max() <= 0.51  # float16: correctly rounded (computed in float32)
