"""Compiled float32 kernels (numba): each element in one pass, float64 inside.

Why compiled (issue 24): an accurate exact GELU needs erfc with its argument's rounding put back,
and the tanh-GELU and the derivatives need float64 (or error-free tricks) inside; composed of
NumPy or PyTorch ufuncs that is 8-20 passes over memory, while PyTorch's own kernels are one.
A compiled loop reads float32, computes in float64 in registers and writes float32: the
accuracy of the float64 formulas at the memory traffic of one pass.

Why numba and not a C extension: wheels for every platform PyTorch supports, LLVM inside (no
compiler at install or at run time), and the kernels stay readable Python next to the NumPy
ones they mirror. The cost is the import (0.4-0.7 s) and compiling on first use, paid only
by a process that calls one of these kernels on float32 data, never by ``import actlab``.

numba's ``math.exp`` is a scalar libm call in a loop (no SVML here), so LLVM cannot vectorise
it; ``_exp`` below is plain arithmetic (Cody-Waite reduction, a degree-8 Taylor polynomial,
2^k built in the exponent bits), which LLVM turns into AVX2/AVX-512 code like the rest.
``error_model="numpy"`` drops the ZeroDivisionError check that otherwise blocks
vectorisation (measured: exact GELU 61 ms -> 7.4 ms per 10M elements on one thread).
``fastmath={"contract"}`` allows fused multiply-adds only: no reassociation, which would fold
the ``+ _SHIFT - _SHIFT`` rounding trick away.

Every kernel has the signature ``kernel(x, o, *params)`` on 1-D float32 arrays (the block runner
of :mod:`actlab.activations._route` hands them blocks; ``nogil`` lets its threads run them in
parallel).
NaN in -> NaN out; +-inf give the limits; no floating-point exception is ever raised.

Compiled code is cached on disk (numba's ``cache=True``) in ``$NUMBA_CACHE_DIR`` when set, else
``$XDG_CACHE_HOME/actlab/numba`` (``~/.cache/actlab/numba``): never beside the installed
package (where that folder cannot be written, each process compiles on first use instead).
Measured (2 shared cores at load 9): compiling all nine kernels took 6.6 s in the first
process; later processes load each in ~0.01 s after numba's import (0.7 s).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from actlab._consts import ERFC_Q, GELU_K, INV_SQRT_2PI, TWO_SQRT2

__all__ = [
    "gelu",
    "gelu_d",
    "gelu_tanh",
    "gelu_tanh_d",
    "hard_swish_d",
    "mish_d",
    "sigmoid_d",
    "silu_d",
    "tanh_d",
]


def _cache_dir() -> str | None:
    """Where compiled kernels are cached: the user's cache folder, not site-packages; None when
    it cannot be written (numba would then fall back to the package's own folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "actlab" / "numba"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(path) if os.access(path, os.W_OK) else None


_CACHE_DIR = numba.config.CACHE_DIR or _cache_dir()


def _jit(fn: Callable[..., Any]) -> Any:
    """njit with the options above, cached in NUMBA_CACHE_DIR or _cache_dir(); not cached (each
    process compiles on first use) when neither can be written.

    numba chooses a function's cache folder when it is decorated, from numba.config.CACHE_DIR;
    it is set for that moment only, so the user's own numba functions are not affected.
    """
    options: dict[str, Any] = {"fastmath": {"contract"}, "error_model": "numpy", "nogil": True}
    if _CACHE_DIR is None:
        return njit(**options)(fn)
    before = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = _CACHE_DIR
    try:
        return njit(cache=True, **options)(fn)
    finally:
        numba.config.CACHE_DIR = before


# ---- float64 bit tricks and exp ------------------------------------------------------------


@intrinsic
def _bits(typingctx: Any, x: Any) -> Any:
    """The IEEE bits of a float64 as an int64 (a register move)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx: Any, i: Any) -> Any:
    """The float64 whose IEEE bits are the int64 i."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


_LOG2E = 1.4426950408889634
_SHIFT = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer held in the low bits
_LN2_HI = 0.6931471803691238  # ln 2 with 32 trailing zero bits: k * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10
_C2 = 2.0 * math.sqrt(2.0 / math.pi)  # the tanh-GELU's z = 2u = _C2 (x + 0.044715 x^3)


@njit(fastmath={"contract"}, error_model="numpy")
def _exp(v: float) -> float:
    """exp(v) for float64 v in [-708, 708] (callers clamp), relative error < 3e-10.

    v = k ln 2 + r, |r| <= ln(2) / 2; exp(r) by Taylor to degree 8 (remainder 2.8e-10, which is
    0.005 float32 ulp); 2^k from its exponent bits: bits(v log2e + 1.5 * 2^52) = bits(1.5 *
    2^52) + k, whose low 12 bits are k + 1023 after adding 1023, shifted into the exponent.
    """
    kf = v * _LOG2E + _SHIFT
    k = kf - _SHIFT
    r = v - k * _LN2_HI
    r = r - k * _LN2_LO
    p = 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _from_bits((_bits(kf) + 1023) << 52)


# erfc(z) = t Q(t) exp(-z^2), t = 1 / (1 + z / 2): the fit of actlab._consts.ERFC_Q (relative
# error 1.2e-8, halved there for Phi = erfc / 2), here evaluated in float64
_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6, _Q7, _Q8, _Q9, _Q10 = ERFC_Q


@njit(fastmath={"contract"}, error_model="numpy")
def _phi_neg_over_exp(a: float) -> float:
    """Phi(-a) / exp(-a^2 / 2) for 0 <= a: t Q(t) with t = 1 / (1 + a / (2 sqrt 2))."""
    t = TWO_SQRT2 / (a + TWO_SQRT2)
    h = _Q10
    h = h * t + _Q9
    h = h * t + _Q8
    h = h * t + _Q7
    h = h * t + _Q6
    h = h * t + _Q5
    h = h * t + _Q4
    h = h * t + _Q3
    h = h * t + _Q2
    h = h * t + _Q1
    h = h * t + _Q0
    return h * t


# The same form fitted anew in float64 to degree 16 (our relative-weighted Chebyshev
# least-squares fit of erfcx(a / sqrt 2) / (2t) against scipy.special.erfcx on 4000 Chebyshev
# nodes of t in (0, 1]; max relative error 9.1e-12 against mpmath). GELU's derivative needs it:
# Phi(x) + x phi(x) cancels at its root x = -0.7518, where _Q's 1.2e-8 cost 3.8 of the test's
# 4 ulp (of 2^-12); this one 0.07. The forward pass does not cancel and keeps the cheaper _Q.
_P = (
    0.14104739588824786,
    0.14104739508747988,
    0.12341655303750979,
    0.08815134119430329,
    0.04194232779172839,
    -0.0030728694318683247,
    -0.021233241549927902,
    -0.06685107680540232,
    0.15655412843202626,
    -0.4191756250672422,
    0.9023168292236178,
    -1.1760723391375951,
    0.9375860389384103,
    -0.4552410557529427,
    0.12347834895731996,
    -0.01348248515078003,
    -0.0004116656580105483,
)


@njit(fastmath={"contract"}, error_model="numpy")
def _phi_neg_over_exp_fine(a: float) -> float:
    """Phi(-a) / exp(-a^2 / 2) for 0 <= a, relative error < 1e-11 (the degree-16 fit _P)."""
    t = TWO_SQRT2 / (a + TWO_SQRT2)
    h = _P[16]
    for k in range(15, -1, -1):  # a constant trip count: LLVM unrolls it, then vectorises
        h = h * t + _P[k]
    return h * t


# ---- the kernels -----------------------------------------------------------------------------
# |x| is capped where the float32 result has reached its limit (GELU: Phi(-37) = 6e-300 keeps
# exp's argument above -708; the sigmoids: e^-200 is far below float32's smallest subnormal
# times any factor these formulas apply); infinities then come out as limits, not inf * 0.


@_jit
def gelu(x: Any, o: Any) -> None:
    """x Phi(x) = max(x, 0) - |x| Phi(-|x|): no cancellation, no select on the slow part."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        a = abs(xi)
        a = a if a < 37.0 else 37.0
        h = _phi_neg_over_exp(a) * _exp(-0.5 * a * a)
        r = (xi if xi > 0.0 else 0.0) - a * h
        o[i] = np.float32(xi if xi != xi else r)


@_jit
def gelu_d(x: Any, o: Any) -> None:
    """Phi(x) + x phi(x) = m + (1 - 2m) Phi(-|x|) + x exp(-x^2 / 2) / sqrt(2 pi), m = [x >= 0]:
    one exp serves both terms."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        xc = xi if xi < 37.0 else 37.0
        xc = xc if xc > -37.0 else -37.0
        a = abs(xc)
        e = _exp(-0.5 * a * a)
        h = _phi_neg_over_exp_fine(a) * e
        big = 1.0 - h if xi >= 0.0 else h
        r = big + xc * e * INV_SQRT_2PI
        o[i] = np.float32(xi if xi != xi else r)


@_jit
def gelu_tanh(x: Any, o: Any) -> None:
    """x sigmoid(z), z = 2 sqrt(2/pi) (x + 0.044715 x^3): no cancellation for x << 0."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        xc = xi if xi > -1e4 else -1e4
        xc = xc if xc < 1e4 else 1e4
        z = _C2 * xc * (1.0 + GELU_K * xc * xc)
        z = z if z > -200.0 else -200.0
        z = z if z < 200.0 else 200.0
        s = 1.0 / (1.0 + _exp(-z))
        r = (xc if xi < 0.0 else xi) * s  # xc at -inf: -1e4 * e^-200 is -0, the limit
        o[i] = np.float32(r)


@njit(fastmath={"contract"}, error_model="numpy")
def _sig_parts(z: float) -> tuple[float, float]:
    """(sigmoid(z), sigmoid(z) (1 - sigmoid(z))) from e = exp(-|z|), |z| <= 200: no
    cancellation in either tail."""
    e = _exp(-abs(z))
    inv = 1.0 / (1.0 + e)
    s = inv if z >= 0.0 else e * inv
    return s, e * inv * inv


@_jit
def gelu_tanh_d(x: Any, o: Any) -> None:
    """s + x s (1 - s) z'(x), s = sigmoid(z), z' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        xc = xi if xi > -1e4 else -1e4
        xc = xc if xc < 1e4 else 1e4
        x2 = xc * xc
        z = _C2 * xc * (1.0 + GELU_K * x2)
        z = z if z > -200.0 else -200.0
        z = z if z < 200.0 else 200.0
        s, ss = _sig_parts(z)
        r = s + xc * ss * (_C2 * (1.0 + 3.0 * GELU_K * x2))
        o[i] = np.float32(xi if xi != xi else r)


@_jit
def silu_d(x: Any, o: Any, beta: float) -> None:
    """s + z s (1 - s), s = sigmoid(z), z = beta x (beta != 0: the caller handles 0)."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        z = beta * xi
        z = z if z > -200.0 else -200.0
        z = z if z < 200.0 else 200.0
        s, ss = _sig_parts(z)
        r = s + z * ss
        o[i] = np.float32(xi if xi != xi else r)


@_jit
def sigmoid_d(x: Any, o: Any) -> None:
    """e / (1 + e)^2, e = exp(-|x|)."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        a = abs(xi)
        a = a if a < 200.0 else 200.0
        e = _exp(-a)
        inv = 1.0 / (1.0 + e)
        o[i] = np.float32(xi if xi != xi else e * inv * inv)


@_jit
def tanh_d(x: Any, o: Any) -> None:
    """sech(x)^2 = 4e / (1 + e)^2, e = exp(-2|x|): no cancellation, unlike 1 - tanh(x)^2."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        a = abs(xi)
        a = a if a < 100.0 else 100.0
        e = _exp(-2.0 * a)
        inv = 1.0 / (1.0 + e)
        o[i] = np.float32(xi if xi != xi else 4.0 * e * inv * inv)


@_jit
def mish_d(x: Any, o: Any) -> None:
    """p / q + 4 x n (1 + n) / q^2, n = e^x, p = n (n + 2), q = p + 2 (x capped to [-700, 40]:
    past 40 the second term is < 1e-32; below -700 the result is below float32's range)."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        xc = xi if xi > -700.0 else -700.0
        xc = xc if xc < 40.0 else 40.0
        n = _exp(xc)
        p = n * (n + 2.0)
        inv = 1.0 / (p + 2.0)
        r = p * inv + 4.0 * xc * (p - n) * inv * inv
        o[i] = np.float32(xi if xi != xi else r)


@_jit
def hard_swish_d(x: Any, o: Any) -> None:
    """0 for x <= -3, (x + 3/2) / 3 for -3 < x < 3, 1 for x >= 3 (PyTorch 2.x)."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        r = (xi + 1.5) / 3.0 if xi > -3.0 else 0.0
        r = 1.0 if xi >= 3.0 else r
        o[i] = np.float32(xi if xi != xi else r)
