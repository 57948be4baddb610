"""GELU, exact (x Phi(x)) and its tanh approximation."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab._consts import ERFC_Q, GELU_K, INV_SQRT_2PI, SQRT_2_OVER_PI, SQRT_HALF, TWO_SQRT2
from actlab.activations._prose import define
from actlab.activations._route import (
    _EXP_SAFE,
    _INF,
    _elementwise,
    _log_space_product,
    _scratch,
    _sig_and_comp,
    _special,
    _t_factor,
    _via_torch,
    _ViaCompiled,
    _wide,
    _x_sigmoid,
)
from actlab.errors import ActlabError
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = ["gelu", "gelu_derivative"]

# -1/sqrt 2 as float32 + the float32 nearest the rest (the rest is 1.7e-8 relative: it matters)
_GELU_C = float(np.float32(-SQRT_HALF))
_GELU_C_LO = float(np.float32(-SQRT_HALF - _GELU_C))


@functools.cache
def _fused_add(tm: Any) -> bool:
    """Whether PyTorch's vectorised add(a, b, alpha) is one fused multiply-add (_t_gelu needs
    it): (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24, and only a fused sub keeps the 2^-24."""
    a = tm.full((64,), 1.0 + 2.0**-12, dtype=tm.float32)
    return bool((tm.sub(a * a, a, alpha=1.0 + 2.0**-12) != 0).all())


def _t_gelu(tm: Any, x: Any, o: Any) -> None:
    # x Phi(x) = x erfc(z) / 2, z = -x / sqrt 2, by PyTorch's float32 erfc (Sleef, 0.9 ulp).
    # Rounding z to zh = fl(x C) would cost erfc 2 z (zh - z) relative (196 ulp near x = -13), so
    # it is put back: erfc(z) = erfc(zh) (1 + 2 relu(zh) r), r = zh - z (2 relu(zh) for
    # -d log erfc / dz: < 0.5 ulp off), r from one fused multiply-add (calls are whole vectors,
    # see _TORCH_VEC) and the float32 rest of 1/sqrt 2 (46 ulp at x = -13 if left out).
    # Every float32 with 2^-20 <= |x| < 2^7 against SciPy's float64 ndtr: 3.4 ulp for x < 0,
    # 2.0 for x > 0, 6.1 for the subnormal results near x = -13.1 (bound 8).
    # CPU time per 2^15-element call, one thread, F.gelu = 1 (AVX-512 / AVX2): this 1.7-2.1 / 2.0;
    # the float64 erfc it replaces 2.9-3.2 / 3.5; a Dekker split of x for r (11 passes) 2.7 / 3.2;
    # no correction 1.0-1.2 (196 ulp); no correction above x = -2.5 (6.9 ulp) and float64 below
    # 4.9 on N(0, 3^2) data (20% below). erfc alone is 0.5: eight passes cannot match PyTorch's
    # one; at 10M elements both sides also pay for fresh output pages (benchmarks/kernels.py).
    n = x.shape[0]
    if not _fused_add(tm):  # PyTorch's generic (no-SIMD) build: the NumPy kernel
        _gelu_f32(x.numpy(), o.numpy(), [b[:n] for b in _scratch(np.dtype(np.float32), 3, "t")])
        return
    zh, r = (tm.from_numpy(s[:n]) for s in _scratch(np.dtype(np.float32), 2, "t32"))
    tm.mul(x, _t_factor(tm, _GELU_C, tm.float32), out=zh)
    tm.sub(zh, x, alpha=_GELU_C, out=r)  # fma(x, -C, zh): the rounding error of zh, exactly
    r.sub_(x, alpha=_GELU_C_LO)  # zh - z, z = -x / sqrt 2
    tm.special.erfc(zh, out=o)
    zh.relu_()
    tm.addcmul(_t_factor(tm, 0.5, tm.float32), zh, r, out=r)
    r.mul_(x)
    o.mul_(r)


def _t_gelu_tanh(tm: Any, x: Any, o: Any) -> None:
    # x sigmoid(2u), 2u = 2 sqrt(2/pi) (1 + 0.044715 x^2) x, in float64 as the NumPy kernel does:
    # cast, 2u by one addcmul (its 0-d float64 addend broadcasts) and a multiply, sigmoid,
    # times x while storing (2^15 elements, best of 300: 61 us; 83 us in 8 passes; F.gelu 30 us)
    d, z = (tm.from_numpy(s[: x.shape[0]]) for s in _scratch(np.dtype(np.float64), 2, "t64"))
    d.copy_(x)
    tm.addcmul(_t_factor(tm, 2.0 * SQRT_2_OVER_PI), d, d,
               value=2.0 * SQRT_2_OVER_PI * GELU_K, out=z)  # fmt: skip
    z.mul_(d)
    z.sigmoid_()
    tm.mul(z, d, out=o)


# GELU, exact: x * Phi(x) = max(x, 0) - |x| * Phi(-|x|), which needs no select and has no
# cancellation. float64 data: Phi(-|x|) = scipy.special.ndtr (accurate to the last bit; below
# -37.5 it is subnormal, so that far tail is redone in log space with log_ndtr).
# float32/float16 data: scipy's ndtr is a scalar loop (~15 ns/element), so Phi(-|x|) is computed
# with vectorised ufuncs. The derivative (not speed-critical) does it in float64 as
# t * exp(-x^2/2 + P(t)) / 2 with t = 1 / (1 + |x| / (2 sqrt 2)): that is
# erfc(z) = t exp(-z^2 + P(t)), z = |x|/sqrt 2. P is our own least-squares Chebyshev fit
# (degree 11, in the power basis of t) of log(erfcx(z) / t) against scipy.special.erfcx on
# t in (0, 1]; its max error 1.1e-8 is far below float32's 6e-8 ulp. The forward pass uses the
# float32 form below (_gelu_f32).
_ERFC_P = (
    -1.2655121242806604 - math.log(2.0),  # the 1/2 of Phi = erfc / 2 folded in
    0.9999999277959327,
    0.3750201788469842,
    0.08259274678261763,
    -0.07473676214370661,
    -0.23369548817003905,
    0.3355027049853927,
    -1.2253521295184258,
    2.398642352166488,
    -2.2050365382548676,
    0.9913264774241977,
    -0.17875135606656503,
)
_GELU_TAIL = -37.0


def _phi_neg(a: np.ndarray, h: np.ndarray, u: np.ndarray, w: np.ndarray) -> None:
    """h = Phi(-a) for float64 a = |x| >= 0 (fitted erfc, relative error < 1e-8)."""
    np.multiply(a, 0.5 / math.sqrt(2.0), out=u)
    np.add(u, 1.0, out=u)
    np.divide(1.0, u, out=u)  # t in (0, 1]
    h.fill(_ERFC_P[-1])
    for coef in _ERFC_P[-2::-1]:
        np.multiply(h, u, out=h)
        np.add(h, coef, out=h)
    np.multiply(a, a, out=w)
    np.multiply(w, 0.5, out=w)
    np.subtract(h, w, out=h)
    np.exp(h, out=h)
    np.multiply(h, u, out=h)


def _k_gelu(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    if x.dtype == np.float64:
        a, h = t[0], t[1]
        np.abs(x, out=a)
        np.negative(a, out=h)
        _special().ndtr(h, out=h)
        np.clip(a, 0.0, 1e300, out=a)  # inf * 0 would be NaN; the limit is 0
        np.multiply(a, h, out=h)
        np.clip(x, 0.0, _INF, out=o)
        np.subtract(o, h, out=o)
        if np.fmin.reduce(x) < _GELU_TAIL:
            idx = np.flatnonzero(x < _GELU_TAIL)
            o[idx] = _log_space_product(x[idx], _special().log_ndtr(x[idx]))
        return
    _gelu_f32(x, o, t)


# float32 forward: the same erfc identity with a rational-free form that float32 can carry,
# erfc(z) = t Q(t) exp(-z^2), t = 1 / (1 + z/2), Q a degree-10 polynomial (our own
# relative-weighted Chebyshev least-squares fit of erfcx(z) / t on t in (0, 1], max relative
# error 1.2e-8; halved here for Phi = erfc / 2). Its float32 Horner sum is well conditioned
# (Q in [0.28, 1]); a degree-8 fit on |x| <= 13.5 was 10% faster but reached 8.6 ulp.
# exp(-x^2/2) would lose |x|^2 2^-24 relative to the rounding of x^2 in float32, so x is split
# as ah + al with ah holding 12 bits: ah^2 is exact and exp(-x^2/2) = exp(-ah^2/2) exp(-d/2),
# d = (x - ah)(x + ah) = x^2 - ah^2 small. Max error 7 ulp (test_kernels_accuracy.py).


def _gelu_f32(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a, u, h = t
    (w,) = (b[: x.size] for b in _scratch(x.dtype, 1, "gelu32"))
    np.abs(x, out=a)
    np.clip(a, 0.0, 1e4, out=a)  # Phi(-1e4) = 0; keeps inf out of the split (inf - inf)
    np.add(a, TWO_SQRT2, out=u)
    np.divide(TWO_SQRT2, u, out=u)  # t = 1 / (1 + |x| / (2 sqrt 2))
    np.multiply(u, ERFC_Q[-1], out=h)
    np.add(h, ERFC_Q[-2], out=h)
    for coef in ERFC_Q[-3::-1]:
        np.multiply(h, u, out=h)
        np.add(h, coef, out=h)
    np.multiply(h, u, out=h)  # t Q(t) / 2
    np.bitwise_and(a.view(np.int32), np.int32(-4096), out=u.view(np.int32))  # ah: 12 bits
    np.subtract(a, u, out=w)
    np.add(a, u, out=o)
    np.multiply(w, o, out=w)  # d = (a - ah)(a + ah)
    np.multiply(u, u, out=u)  # ah^2, exact
    np.multiply(u, -0.5, out=u)
    np.exp(u, out=u)
    np.multiply(h, u, out=h)
    np.multiply(w, -0.5, out=w)
    np.exp(w, out=w)
    np.multiply(h, w, out=h)  # Phi(-|x|)
    np.multiply(a, h, out=h)
    np.clip(x, 0.0, _INF, out=o)
    np.subtract(o, h, out=o)  # max(x, 0) - |x| Phi(-|x|)
    if np.fmin.reduce(x) < -13.0:  # exp(-x^2/2) is subnormal here: redo the few in float64
        idx = np.flatnonzero(x < -13.0)
        xs = np.clip(x[idx].astype(np.float64), -40.0, 0.0)
        o[idx] = xs * _special().ndtr(xs)


def _k_gelu_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # Phi(x) + x phi(x); Phi(x) = m + (1 - 2m) Phi(-|x|), m = [x >= 0] (no cancellation);
    # x clipped to +-40 in x phi(x), which is 0 beyond
    n = x.size
    a, h, u, w = (b[:n] for b in _scratch(np.dtype(np.float64), 4, "gelu"))
    np.copyto(a, x)
    np.abs(a, out=a)
    if x.dtype == np.float64:
        np.negative(a, out=h)
        _special().ndtr(h, out=h)
    else:
        _phi_neg(a, h, u, w)
    np.greater_equal(x, 0.0, out=u)
    np.multiply(u, -2.0, out=w)
    np.add(w, 1.0, out=w)
    np.multiply(w, h, out=h)
    np.add(h, u, out=h)  # Phi(x)
    np.copyto(a, x)
    np.clip(a, -40.0, 40.0, out=a)
    np.multiply(a, a, out=w)
    np.multiply(w, -0.5, out=w)
    np.exp(w, out=w)
    np.multiply(w, a, out=w)
    np.multiply(w, INV_SQRT_2PI, out=w)
    np.add(h, w, out=h)
    np.copyto(o, h, casting="same_kind")


def _gelu_tanh_z(x: np.ndarray, z: np.ndarray, xc: np.ndarray) -> None:
    """xc = clip(x, +-1e4) (beyond it the sigmoid is exactly 0 or 1); z = 2u of the tanh form."""
    np.clip(x, -1e4, 1e4, out=xc)
    np.square(xc, out=z)
    np.multiply(z, GELU_K, out=z)
    np.add(z, 1.0, out=z)
    np.multiply(z, xc, out=z)
    np.multiply(z, 2.0 * SQRT_2_OVER_PI, out=z)


def _k_gelu_tanh(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # 0.5 * x * (1 + tanh(u)) == x * sigmoid(2u): no cancellation for x << 0
    _gelu_tanh_z(x, t[1], t[2])
    _x_sigmoid(x, t[1], o, t[0])


def _k_gelu_tanh_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    # s + x * s * (1 - s) * z'(x) with s = sigmoid(z); tail (z < -C): exp(z) * (1 + x z')
    c = _EXP_SAFE[x.dtype.char]
    z, xc, e = t[1], t[2], t[0]
    _gelu_tanh_z(x, z, xc)
    tail = np.fmin.reduce(z) < -c
    np.clip(z, -c, c, out=z)
    _sig_and_comp(z, o, e)  # o = s, e = 1 - s
    np.multiply(e, o, out=e)  # s (1 - s)
    np.multiply(e, xc, out=e)
    np.square(xc, out=z)
    np.multiply(z, 3.0 * GELU_K, out=z)
    np.add(z, 1.0, out=z)
    np.multiply(z, 2.0 * SQRT_2_OVER_PI, out=z)  # z'(x)
    np.multiply(e, z, out=e)
    np.add(o, e, out=o)
    if tail:
        idx = np.flatnonzero(x < -1.0)
        xs = np.clip(x[idx].astype(np.float64), -1e4, 1e4)
        zs = 2.0 * SQRT_2_OVER_PI * xs * (1.0 + GELU_K * xs * xs)
        far = zs < -c
        zp = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_K * xs * xs)
        o[idx[far]] = _log_space_product(1.0 + xs[far] * zp[far], zs[far])


_k_gelu_tanh_w, _k_gelu_tanh_d_w = _wide(_k_gelu_tanh), _wide(_k_gelu_tanh_d)
_k_gelu_t = _ViaCompiled(  # torch route: +-inf give inf - inf and inf * 0, redone
    _via_torch(_k_gelu, _t_gelu, redo_nan=True), "gelu"
)
_k_gelu_tanh_t = _ViaCompiled(_via_torch(_k_gelu_tanh_w, _t_gelu_tanh, redo_nan=True), "gelu_tanh")
_k_gelu_d_c = _ViaCompiled(_k_gelu_d, "gelu_d")
_k_gelu_tanh_d_c = _ViaCompiled(_k_gelu_tanh_d_w, "gelu_tanh_d")


def _check_approximate(approximate: Any, func: str) -> str:
    if approximate not in ("none", "tanh"):
        raise ActlabError(
            f"{func}: approximate must be 'none' (exact, erf) or 'tanh', got {approximate!r}"
        )
    return str(approximate)


def gelu(x: ArrayLike, approximate: str = "none", *, out: Any = None) -> Any:
    """GELU.

    approximate="none": f(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2))), computed as
    max(x, 0) - |x| Phi(-|x|): float64 with SciPy's ndtr; float32/float16 compiled with float64
    inside when numba is installed (within 1 ulp; actlab._compiled), else with our vectorised
    erfc fit (within 8 ulp; SciPy's scalar loop would be ~6x slower than PyTorch).
    approximate="tanh": f(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), computed as
    x * sigmoid(2u) so that the negative tail does not cancel. f(-inf) = 0, f(inf) = inf.
    """
    if _check_approximate(approximate, "gelu") == "tanh":
        return _elementwise(_k_gelu_tanh_t, x, out)
    return _elementwise(_k_gelu_t, x, out)


def gelu_derivative(x: ArrayLike, approximate: str = "none", *, out: Any = None) -> Any:
    """GELU's derivative.

    "none": f'(x) = Phi(x) + x * phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
    "tanh": f'(x) = s + x * s * (1 - s) * sqrt(2/pi) * 2 * (1 + 3 * 0.044715 x^2),
    s = sigmoid(2u), u = sqrt(2/pi) * (x + 0.044715 x^3). Smooth: no kink.
    """
    if _check_approximate(approximate, "gelu_derivative") == "tanh":
        return _elementwise(_k_gelu_tanh_d_c, x, out)
    return _elementwise(_k_gelu_d_c, x, out)


def _fast_gelu(a: Any, m: Any) -> Any:
    ap = m.approximate
    return (
        lambda z, o: a.gelu.out(z, approximate=ap, out=o),
        lambda g, z, h, o: a.gelu_backward.grad_input(g, z, approximate=ap, grad_input=o),
    )


SPECS = (
    define(
        name="gelu",
        numpy_forward=gelu,
        numpy_derivative=gelu_derivative,
        torch=TorchModule("GELU", {"approximate": "approximate"}),
        fast=_fast_gelu,
        range_closed=(True, False),
        display_name="GELU",
        params=(
            Param(
                "approximate",
                "none",
                str,
                "'none': exact x*Phi(x) with erf; 'tanh': the tanh approximation",
                choices=("none", "tanh"),
            ),
        ),
        formula="f(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)));  tanh approximation: "
        "x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
        formula_latex=r"f(x) = x\,\Phi(x) = \frac{x}{2}\Bigl(1 + \operatorname{erf}"
        r"\bigl(\tfrac{x}{\sqrt{2}}\bigr)\Bigr)",
        derivative_formula="f'(x) = Phi(x) + x * phi(x)",
        derivative_latex=r"f'(x) = \Phi(x) + x\,\varphi(x)",
        output_range=(-0.16997120747078038, INF),
        properties=Properties(False, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-1.0, 5.0),
        ),
    ),
)
