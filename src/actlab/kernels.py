"""Numerically stable NumPy kernels: every activation's forward pass and derivative.

One short public function per activation (formula in its docstring): the maths only. Each
activation's definition (:mod:`actlab.activations`) points at its forward and derivative here;
``actlab.catalog.forward(spec, x)`` and ``parse(spec).forward(x)`` dispatch on a spec string.

Rules every kernel follows (the tests check each one):

* dtype: float16/32/64 in -> same dtype out (float16 is computed in float32 inside); integer and
  bool inputs are promoted to float64; anything else raises :class:`KernelDTypeError`
  (a ``TypeError``). Python scalars and 0-d arrays give a NumPy scalar back, like a ufunc.
* Stability: no overflow, no ``inf - inf`` and no ``0 * inf`` is ever evaluated, so no NumPy
  warning is raised for any input. Exponentials are taken of clamped arguments; the few inputs
  beyond the clamp (the far tails) are recomputed on a slow path in a form that stays accurate
  (log space, or float64 for float32 data).
* ±inf gives the mathematical limit; NaN propagates, in forward *and* derivative (the
  derivative at NaN is NaN, even where PyTorch's autograd returns 0 or 1).
* Kinks follow PyTorch's autograd; each function's docstring states its convention.

Speed: an elementwise kernel is a chain of in-place ufuncs. Large arrays are cut into blocks of
``_BLOCK`` elements so that the whole chain runs in cache, and the blocks are shared among a
small thread pool (ufuncs release the GIL; the runner is :mod:`actlab._blocks`). Arrays below
``_PARALLEL_MIN`` elements never touch the pool. ``set_num_threads`` changes the pool size
(``ACTLAB_NUM_THREADS`` sets the default).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab._blocks import BLOCK, PARALLEL_MIN, get_num_threads, set_num_threads
from actlab._blocks import parallel as _parallel
from actlab._blocks import scratch as _scratch
from actlab.errors import ActlabError

__all__ = [
    "KernelDTypeError",
    "celu",
    "celu_derivative",
    "elu",
    "elu_derivative",
    "gelu",
    "gelu_derivative",
    "get_num_threads",
    "hard_sigmoid",
    "hard_sigmoid_derivative",
    "hard_swish",
    "hard_swish_derivative",
    "hard_tanh",
    "hard_tanh_derivative",
    "identity",
    "identity_derivative",
    "leaky_relu",
    "leaky_relu_derivative",
    "log_softmax",
    "log_softmax_vjp",
    "mish",
    "mish_derivative",
    "prelu",
    "prelu_derivative",
    "prelu_weight_derivative",
    "relu",
    "relu6",
    "relu6_derivative",
    "relu_derivative",
    "selu",
    "selu_derivative",
    "set_num_threads",
    "sigmoid",
    "sigmoid_derivative",
    "silu",
    "silu_derivative",
    "softmax",
    "softmax_vjp",
    "softplus",
    "softplus_derivative",
    "softsign",
    "softsign_derivative",
    "tanh",
    "tanh_derivative",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_GELU_K = 0.044715

_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_ACCEPTED = "float16, float32 or float64 (integer and bool arrays are promoted to float64)"
# exp(-x) is finite and exp(x) is a normal number for |x| <= _EXP_SAFE[dtype.char]
_EXP_SAFE = {"f": 87.0, "d": 708.0}
_FMAX = {"f": float(np.finfo(np.float32).max), "d": float(np.finfo(np.float64).max)}
_INF = math.inf


class KernelDTypeError(ActlabError, TypeError):
    """An array of a dtype the kernels do not compute with (complex, object, string...)."""


# ----------------------------------------------------------------------------------------------
# Plumbing: validation
# ----------------------------------------------------------------------------------------------

# The block runner (blocks of _BLOCK elements shared among a small thread pool) is in _blocks.
_BLOCK, _PARALLEL_MIN = BLOCK, PARALLEL_MIN


def _as_float(x: ArrayLike, name: str = "x") -> np.ndarray:
    """``x`` as an ndarray of an accepted float dtype (ints/bools promoted to float64)."""
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise ActlabError(
                f"{name} must be a number or an array of numbers; NumPy could not read it ({exc})"
            ) from None
    if a.dtype in _FLOATS:
        return a
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    raise KernelDTypeError(
        f"{name} has dtype {a.dtype}, which the kernels do not accept; use {_ACCEPTED}"
    )


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise KernelDTypeError(
            f"out must be a NumPy array of dtype {dtype} and shape {shape}, "
            f"got {type(out).__name__}"
        )
    if out.shape != shape:
        raise ActlabError(
            f"out has shape {out.shape} but the result has shape {shape}; "
            f"pass np.empty({shape}, dtype={dtype.name}) or out=None"
        )
    if out.dtype != dtype:
        raise KernelDTypeError(
            f"out has dtype {out.dtype} but the result has dtype {dtype} (the input's float dtype, "
            f"float64 for integer input); pass an out array of dtype {dtype.name} or out=None"
        )
    if not out.flags.writeable:
        raise ActlabError("out is read-only; pass a writeable array or out=None")
    return out


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    ia, ib = a.__array_interface__, b.__array_interface__
    return ia["data"][0] == ib["data"][0] and a.strides == b.strides and a.shape == b.shape


def _finish(o: np.ndarray, scalar: bool) -> Any:
    return o[()] if scalar else o


def _special() -> Any:
    """scipy.special, imported on first use: only the float64 GELU paths and the far float32
    tail need it, and importing it costs ~0.15 s that `actlab eval relu 1` must not pay."""
    from scipy import special

    return special


Kernel = Callable[..., None]  # kernel(x, o, scratch, *params) on 1-D blocks of the compute dtype


def _elementwise(kernel: Kernel, x: ArrayLike, out: Any, *params: Any) -> Any:
    """Apply a block kernel to ``x``: validation, dtypes, blocks, threads and ``out=``."""
    a = _as_float(x)
    dtype = a.dtype
    comp = _compute_dtype(dtype)
    o = np.empty(a.shape, dtype) if out is None else _check_out(out, a.shape, dtype)
    if a.size == 0:
        return _finish(o, out is None and a.ndim == 0)
    if isinstance(kernel, _ViaCompiled):  # one route for every block of this call
        kernel = kernel.for_call(comp, a.size)
    work_o = o if o.flags.c_contiguous else np.empty(a.shape, dtype)
    if np.may_share_memory(a, work_o) and not _same_view(a, work_o):
        a = a.copy()  # partial overlap: blocks would read what earlier blocks wrote
    xf = a.reshape(-1)  # copies only if a is not C-contiguous
    of = work_o.reshape(-1)
    inplace = np.may_share_memory(xf, of)
    convert = comp != dtype
    extra = 2 if convert else (1 if inplace else 0)

    def work(lo: int, hi: int) -> None:
        bufs = _scratch(comp, 3 + extra)
        for start in range(lo, hi, _BLOCK):
            stop = min(start + _BLOCK, hi)
            n = stop - start
            xb, ob = xf[start:stop], of[start:stop]
            if convert:  # float16: compute in float32 scratch
                xin, oc = bufs[3][:n], bufs[4][:n]
                np.copyto(xin, xb)
            elif inplace:  # kernels may use o as scratch, so keep a private copy of x
                xin, oc = bufs[3][:n], ob
                np.copyto(xin, xb)
            else:
                xin, oc = xb, ob
            kernel(xin, oc, [bufs[0][:n], bufs[1][:n], bufs[2][:n]], *params)
            if convert:
                np.copyto(ob, oc, casting="same_kind")

    _parallel(work, xf.size, _BLOCK)
    if work_o is not o:
        np.copyto(o, work_o)
    return _finish(o, out is None and a.ndim == 0)


def _real(value: Any, name: str, func: str, *, positive: bool = False) -> float:
    """A finite real parameter (numpy scalar, bool excluded), else ActlabError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ActlabError(f"{func}: {name} must be a finite real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        need = "a finite number > 0" if positive else "a finite number"
        raise ActlabError(f"{func}: {name} must be {need}, got {value!r}")
    return v


# ---- small helpers used inside block kernels ---------------------------------------------------


def _keep_nan(x: np.ndarray, o: np.ndarray) -> None:
    """Where x is NaN make o NaN (for derivatives built from comparisons, which drop NaN)."""
    if np.isnan(np.maximum.reduce(x)):  # maximum propagates NaN: cheap test, rare fix
        np.copyto(o, x, where=np.isnan(x))


def _x_sigmoid(x: np.ndarray, z: np.ndarray, o: np.ndarray, t: np.ndarray) -> None:
    """o = x * sigmoid(z), for silu/swish and the tanh-GELU.

    Main path x / (1 + exp(-z)). Where z < -c, exp(-z) may overflow (and x / inf be inf / inf
    for x = +-inf), so those entries, and only those, are recomputed as
    sign(x) * exp(log|x| + z): log space also keeps subnormal results accurate.
    """
    c = _EXP_SAFE[x.dtype.char]
    np.negative(z, out=t)
    with np.errstate(over="ignore", invalid="ignore"):  # only at z < -c, recomputed below
        np.exp(t, out=t)
        np.add(t, 1.0, out=t)
        np.divide(x, t, out=o)
    if np.fmin.reduce(z) < -c:
        idx = np.flatnonzero(z < -c)
        o[idx] = _log_space_product(x[idx], z[idx])


def _log_space_product(x: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """x * exp(logg) computed as sign(x) * exp(log|x| + logg) in float64 (tails only, small)."""
    x64 = np.abs(x.astype(np.float64))
    np.clip(x64, np.finfo(np.float64).tiny, _FMAX["d"], out=x64)  # inf -> max: limit is 0
    return np.copysign(np.exp(np.log(x64) + logg.astype(np.float64)), x)


def _wide(kernel: Kernel) -> Kernel:
    """Run ``kernel`` in float64 for float32 blocks.

    For kernels whose inner argument (beta x, x / alpha, the tanh-GELU's polynomial) would be
    rounded in float32: exp(z) turns a rounding of z into a relative error of |z| ulps, so the
    tails would lose digits. float64 data goes straight through.
    """

    def run(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], *params: Any) -> None:
        if x.dtype == np.float64:
            kernel(x, o, t, *params)
            return
        n = x.size
        x64, o64, *t64 = (b[:n] for b in _scratch(np.dtype(np.float64), 5, "wide"))
        np.copyto(x64, x)
        kernel(x64, o64, t64, *params)
        np.copyto(o, o64, casting="same_kind")

    return run


# ----------------------------------------------------------------------------------------------
# PyTorch's vectorised kernels on zero-copy views (float32 blocks, when torch is loaded)
# ----------------------------------------------------------------------------------------------
#
# NumPy dispatches expm1, log1p and float64 exp to SIMD code only on AVX-512 (SVML); on an AVX2
# machine they run scalar, and ELU, SELU, CELU, softplus and tanh were 2.3-2.8x PyTorch there
# (issue 14). PyTorch's CPU kernels are vectorised on both (Sleef). Where one of them meets this
# module's float32 accuracy bounds (tests/test_kernels_accuracy.py runs with and without this
# path; over a 2M-point grid on [-110, 30] against float64: tanh 0.56 ulp, elu 1.0, selu 1.5,
# softplus (beta 1) 1.5, hard_swish 1.9 but NaN at -inf; sigmoid and silu 3 ulp except below
# x = -88.7, where PyTorch flushes subnormal results: such entries are redone by the NumPy kernel)
# the float32 block kernel calls it with out= on views of the block: no copy; the same blocks,
# threads and dtype rules as every other kernel. Measured on 10M float32 elements (2 shared
# cores, loaded): ELU 21.8 ms NumPy (AVX-512) -> 14.3 ms this way; PyTorch's own F.elu 28.7 ms
# (it allocates its output, as actlab does).
#
# GELU and the tanh-GELU do not use PyTorch's GELU: it computes x (1 + erf(x / sqrt 2)) / 2 and
# 0.5 x (1 + tanh(u)), which cancel for negative x (1.7e7 ulp at x = -7.6 and -9.7). The tanh-GELU
# is composed of PyTorch's float64 primitives instead (_t_gelu_tanh), the exact GELU of float32
# ones with the argument's rounding put back (_t_gelu). Not routed: CELU with
# alpha != 1 and swish/softplus with beta != 1 (float64 inside here), mish (123 ulp in the tail),
# float64 data, derivatives, and read-only inputs (torch.from_numpy would warn).
#
# torch is never imported for this: the path is used when the process has already imported it
# (an `import torch` costs 2-3 s, more than it could save; a program comparing against PyTorch or
# training with it has it loaded). ACTLAB_KERNELS_TORCH=0 turns the path off, =1 imports torch.
_torch_mode = os.environ.get("ACTLAB_KERNELS_TORCH", "auto").strip().lower()
# sigmoid(x) < 2^-126 (subnormal, flushed by PyTorch) below this: recomputed by NumPy
_TORCH_SIGMOID_TAIL = -87.0
# Results must not depend on where an element sits (tests: large arrays equal the small-array
# path bit for bit), but PyTorch's loops give the last n % (2 * vector width) elements of a call
# to a scalar formula that may round differently, and split calls longer than its grain
# (32768) among its threads at arbitrary points. So each call is at most 32768 elements long
# (it then runs on the calling thread; the block pool supplies the parallelism) and a multiple
# of 64, and a block's last few elements go through a zero-padded 64-element call.
# Cost: 2^15-element calls were ~10% slower than whole 2^18 blocks (ELU, 10M elements).
_TORCH_CALL = 1 << 15
_TORCH_VEC = 64


def _torch_module() -> Any:
    """torch, when the fast path is on and torch is (or, with ACTLAB_KERNELS_TORCH=1, may be)
    imported; else None."""
    if _torch_mode in ("0", "off", "false", "no"):
        return None
    mod = sys.modules.get("torch")
    if mod is None and _torch_mode in ("1", "on", "true", "yes"):
        import torch as mod
    if mod is None or not hasattr(mod, "from_numpy"):  # absent, or still importing
        return None
    return mod


def _via_torch(
    kernel: Kernel, call: Callable[..., None], tail: float | None = None, *, redo_nan: bool = False
) -> Kernel:
    """``kernel`` with float32 writeable blocks computed by ``call(torch, x, o, *params)``;
    entries below ``tail`` are then recomputed by ``kernel`` itself, or with ``redo_nan`` the
    entries returned as NaN (such as inf * 0 at x = +-inf; a NaN input gives NaN again)."""

    def run(x: np.ndarray, o: np.ndarray, t: list[np.ndarray], *params: Any) -> None:
        tm = _torch_module() if x.dtype == np.float32 and x.flags.writeable else None
        if tm is None:
            kernel(x, o, t, *params)
            return
        n = x.size
        whole = n - n % _TORCH_VEC
        for lo in range(0, whole, _TORCH_CALL):  # from_numpy of a slice: 1 us; a torch slice: 2
            hi = min(lo + _TORCH_CALL, whole)
            call(tm, tm.from_numpy(x[lo:hi]), tm.from_numpy(o[lo:hi]), *params)
        if whole < n:  # the last few, padded to a whole vector (see _TORCH_VEC)
            pad = np.zeros(2 * _TORCH_VEC, np.float32)
            pad[: n - whole] = x[whole:]
            tp = tm.from_numpy(pad)
            call(tm, tp[:_TORCH_VEC], tp[_TORCH_VEC:], *params)
            o[whole:] = pad[_TORCH_VEC : _TORCH_VEC + n - whole]
        if redo_nan:  # maximum propagates NaN: one cheap pass finds whether there is any
            idx = np.flatnonzero(np.isnan(o)) if np.isnan(np.maximum.reduce(o)) else None
        elif tail is not None and np.fmin.reduce(x) < tail:
            idx = np.flatnonzero(x < tail)
        else:
            idx = None
        if idx is not None:
            k = idx.size
            xs, os_ = x[idx], np.empty(k, x.dtype)
            kernel(xs, os_, [b[:k] for b in t], *params)
            o[idx] = os_

    return run


def _t_elu(tm: Any, x: Any, o: Any, alpha: float, scale: float) -> None:
    tm._C._nn.elu(x, alpha, scale, 1.0, out=o)


def _t_softplus(tm: Any, x: Any, o: Any, beta: float, thr: float) -> None:
    tm._C._nn.softplus(x, beta, thr, out=o)


_T_FACTORS: dict[tuple[float, Any], Any] = {}


def _t_factor(tm: Any, value: float, dtype: Any = None) -> Any:
    """A 0-d tensor (float64 unless ``dtype``) holding ``value``, created once: 1-1.5 us faster
    per call than a Python float (wrapped anew each call) or a 1-element tensor (broadcast)."""
    factor = _T_FACTORS.get((value, dtype))
    if factor is None:
        factor = _T_FACTORS[value, dtype] = tm.tensor(value, dtype=dtype or tm.float64)
    return factor


# -1/sqrt 2 as float32 + the float32 nearest the rest (the rest is 1.7e-8 relative: it matters)
_GELU_C = float(np.float32(-_SQRT_HALF))
_GELU_C_LO = float(np.float32(-_SQRT_HALF - _GELU_C))


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
    tm.addcmul(_t_factor(tm, 2.0 * _SQRT_2_OVER_PI), d, d,
               value=2.0 * _SQRT_2_OVER_PI * _GELU_K, out=z)  # fmt: skip
    z.mul_(d)
    z.sigmoid_()
    tm.mul(z, d, out=o)


# ----------------------------------------------------------------------------------------------
# Compiled kernels (numba, the optional extra actlab[fast]; float32 blocks): actlab._compiled
# ----------------------------------------------------------------------------------------------
#
# Where composition cannot win (issue 24): the exact GELU needs erfc with its argument's rounding
# put back (8 PyTorch passes, _t_gelu) and the tanh-GELU and every derivative below need float64
# inside; a compiled loop does float64 in registers at float32 memory traffic, one pass.
# CPU time per element, 2^18 float32 in cache, one thread, ns (AMD EPYC 2-core VM, AVX-512 /
# AVX2 via NUMBA_CPU_NAME=haswell + ATEN_CPU_CAPABILITY=avx2; load 9 from other sessions, best of
# 200): exact GELU compiled 0.67 / 0.67 (0.68 ulp), our PyTorch composition _t_gelu 2.25 / 2.23,
# NumPy 3.3 / 3.7, F.gelu 0.21 / 0.22 (its float32 erf form cancels for x < 0); GELU' 0.94 /
# 0.95, NumPy 7.3 / 12.6, gelu_backward 0.60 / 0.43; tanh-GELU 0.67 / 0.68 vs F.gelu(tanh) 1.16 /
# 2.18; SiLU' 0.62 / 0.64 vs silu_backward 0.27 / 0.52. float64 costs ~3x float32 in registers
# (exp alone is 0.31 ns: 8 lanes at the FMA ports' limit), so in cache PyTorch's float32 kernels
# stay ahead by up to 3x; at 10M elements both sides stream memory and pay for fresh output
# pages, and the compiled kernels are within the 1.5x goal (benchmarks/kernels.py).
# Threads: the compiled loops release the GIL (nogil) and run on the block runner's threads like
# every other kernel (set_num_threads applies). numba's parallel=True with prange over the same
# blocks measured the same (10M exact GELU, 2 threads, median of 15: 27.7 ms vs 29.1 ms blocks,
# 38.9 ms one thread, at load 9) but costs 2 s more compile and starts a second thread pool.
#
# Not at import: numba's import and the compile are paid by the first float32 call of a kernel
# routed here. Measured at load 9 (benchmarks/kernels.py prints it each run): with an empty cache
# the first exact GELU call took 2.7 s (numba's import 0.7 s of it) and all nine kernels 6.6 s;
# from numba's on-disk cache (see actlab._compiled) 1.3 s for the first call, 0.01 s each next.
# So with ACTLAB_KERNELS_NUMBA unset ("auto") a call loads numba only if it has at least
# _COMPILED_MIN elements; once loaded, calls of every size use it. `actlab eval gelu 1 --dtype
# float32` then stays on NumPy (0.4 s at load 10; 4.4 s when any call loaded numba), like the
# PyTorch route, which waits for torch to be imported. Each call takes one route for all its blocks.
# ACTLAB_KERNELS_NUMBA=1 uses numba for every size (a missing numba is then an error); =0 never
# (the NumPy/PyTorch routes run, as without numba installed).
_numba_mode = os.environ.get("ACTLAB_KERNELS_NUMBA", "auto").strip().lower()
_OFF, _ON = ("0", "off", "false", "no"), ("1", "on", "true", "yes")
_COMPILED_MIN = 1 << 16  # NumPy's exact GELU takes ~0.2 ms here: 1 s of start-up would be 5000x
_compiled_lock = threading.Lock()  # the block runner's threads may all ask at once


@functools.cache
def _load_compiled() -> Any:
    """actlab._compiled (importing numba), or None when numba is not installed."""
    with _compiled_lock:
        try:
            from actlab import _compiled
        except ImportError:
            return None
        return _compiled


def _compiled_module(n: int = _COMPILED_MIN) -> Any:
    """The compiled kernels for a call of ``n`` elements, or None: the route is off, numba is
    not installed, or ("auto") numba is not loaded yet and the call is too small to load it."""
    if _numba_mode in _OFF:
        return None
    if _numba_mode not in _ON and n < _COMPILED_MIN and "actlab._compiled" not in sys.modules:
        return None
    mod = _load_compiled()
    if mod is None and _numba_mode in _ON:
        raise ActlabError(
            "ACTLAB_KERNELS_NUMBA=1 asks for the compiled kernels, but numba cannot be imported; "
            "install it (pip install 'actlab[fast]') or set ACTLAB_KERNELS_NUMBA=0"
        )
    return mod


class _ViaCompiled:
    """A block kernel whose float32 calls go to ``actlab._compiled.<name>(x, o, *params)`` when
    that route is on (chosen once per call by ``for_call``); everything else to ``kernel``."""

    def __init__(self, kernel: Kernel, name: str) -> None:
        self.kernel, self.name = kernel, name

    def for_call(self, dtype: np.dtype, n: int) -> Kernel:
        """The block kernel for a call of ``n`` elements computed in ``dtype``."""
        mod = _compiled_module(n) if dtype == np.float32 else None
        if mod is None:
            return self.kernel
        compiled = getattr(mod, self.name)
        return lambda x, o, t, *params: compiled(x, o, *params)

    def __call__(self, x: np.ndarray, o: np.ndarray, t: list[np.ndarray], *params: Any) -> None:
        self.for_call(x.dtype, x.size)(x, o, t, *params)


# ----------------------------------------------------------------------------------------------
# Block kernels (x: 1-D input block, o: output block, t: three scratch blocks)
# ----------------------------------------------------------------------------------------------


def _k_identity(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.copyto(o, x)


def _k_identity_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    o.fill(1.0)
    _keep_nan(x, o)


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


def _k_relu(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.clip(x, 0.0, _INF, out=o)  # clip propagates NaN (and is faster than maximum with a scalar)


def _step(x: np.ndarray, o: np.ndarray) -> None:
    """o = 1.0 where x > 0 else 0.0 (NaN -> 0; callers restore NaN)."""
    np.greater(x, 0.0, out=o)


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
_ERFC_Q = (
    0.14104739759910467,
    0.1410468765411259,
    0.12344229555809275,
    0.0876579040709294,
    0.04673168314165646,
    -0.02960722039795355,
    0.06609169088056871,
    -0.2274910744858732,
    0.24685066393110572,
    -0.11736818952650574,
    0.021597974977737387,
)


_TWO_SQRT2 = 2.0 * math.sqrt(2.0)


def _gelu_f32(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a, u, h = t
    (w,) = (b[: x.size] for b in _scratch(x.dtype, 1, "gelu32"))
    np.abs(x, out=a)
    np.clip(a, 0.0, 1e4, out=a)  # Phi(-1e4) = 0; keeps inf out of the split (inf - inf)
    np.add(a, _TWO_SQRT2, out=u)
    np.divide(_TWO_SQRT2, u, out=u)  # t = 1 / (1 + |x| / (2 sqrt 2))
    np.multiply(u, _ERFC_Q[-1], out=h)
    np.add(h, _ERFC_Q[-2], out=h)
    for coef in _ERFC_Q[-3::-1]:
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
    np.multiply(w, _INV_SQRT_2PI, out=w)
    np.add(h, w, out=h)
    np.copyto(o, h, casting="same_kind")


def _gelu_tanh_z(x: np.ndarray, z: np.ndarray, xc: np.ndarray) -> None:
    """xc = clip(x, +-1e4) (beyond it the sigmoid is exactly 0 or 1); z = 2u of the tanh form."""
    np.clip(x, -1e4, 1e4, out=xc)
    np.square(xc, out=z)
    np.multiply(z, _GELU_K, out=z)
    np.add(z, 1.0, out=z)
    np.multiply(z, xc, out=z)
    np.multiply(z, 2.0 * _SQRT_2_OVER_PI, out=z)


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
    np.multiply(z, 3.0 * _GELU_K, out=z)
    np.add(z, 1.0, out=z)
    np.multiply(z, 2.0 * _SQRT_2_OVER_PI, out=z)  # z'(x)
    np.multiply(e, z, out=e)
    np.add(o, e, out=o)
    if tail:
        idx = np.flatnonzero(x < -1.0)
        xs = np.clip(x[idx].astype(np.float64), -1e4, 1e4)
        zs = 2.0 * _SQRT_2_OVER_PI * xs * (1.0 + _GELU_K * xs * xs)
        far = zs < -c
        zp = 2.0 * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_K * xs * xs)
        o[idx[far]] = _log_space_product(1.0 + xs[far] * zp[far], zs[far])


def _sig_and_comp(zc: np.ndarray, s: np.ndarray, c: np.ndarray) -> None:
    """s = sigmoid(zc), c = 1 - s = exp(-zc) * s, both to full relative precision.

    zc must already be clipped to [-C, C] (C = _EXP_SAFE) so exp(-zc) is finite; callers
    recompute the tail zc = -C themselves, and beyond +C the terms they use are negligible.
    """
    np.negative(zc, out=c)
    np.exp(c, out=c)  # E = exp(-z)
    np.add(c, 1.0, out=s)
    np.divide(1.0, s, out=s)
    np.multiply(c, s, out=c)


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


def _k_relu6(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    np.clip(x, 0.0, 6.0, out=o)


def _k_relu6_d(x: np.ndarray, o: np.ndarray, t: list[np.ndarray]) -> None:
    a = t[0]
    np.greater(x, 0.0, out=o)
    np.less(x, 6.0, out=a)
    np.multiply(o, a, out=o)
    _keep_nan(x, o)


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


_k_gelu_tanh_w, _k_gelu_tanh_d_w = _wide(_k_gelu_tanh), _wide(_k_gelu_tanh_d)
_k_silu_w, _k_silu_d_w = _wide(_k_silu), _wide(_k_silu_d)
_k_celu_w, _k_celu_d_w = _wide(_k_celu), _wide(_k_celu_d)
_k_softplus_w, _k_softplus_d_w = _wide(_k_softplus), _wide(_k_softplus_d)
# silu' and mish' cancel near their roots (x = -1.28, -1.19): float64 inside keeps 0.5 ulp there
_k_mish_d_w = _wide(_k_mish_d)
_k_sigmoid_t = _via_torch(_k_sigmoid, lambda tm, x, o: tm.sigmoid(x, out=o), _TORCH_SIGMOID_TAIL)
_k_tanh_t = _via_torch(_k_tanh, lambda tm, x, o: tm.tanh(x, out=o))
_k_gelu_t = _ViaCompiled(  # torch route: +-inf give inf - inf and inf * 0, redone
    _via_torch(_k_gelu, _t_gelu, redo_nan=True), "gelu"
)
_k_gelu_tanh_t = _ViaCompiled(
    _via_torch(_k_gelu_tanh_w, _t_gelu_tanh, redo_nan=True), "gelu_tanh"
)
_k_elu_t = _via_torch(_k_elu, _t_elu)
_k_celu1_t = _via_torch(_k_celu, lambda tm, x, o, alpha: _t_elu(tm, x, o, 1.0, 1.0))
_k_silu1_t = _via_torch(
    _k_silu, lambda tm, x, o, beta: tm._C._nn.silu(x, out=o), _TORCH_SIGMOID_TAIL
)
_k_softplus1_t = _via_torch(_k_softplus, _t_softplus)
_k_hard_swish_t = _via_torch(  # PyTorch: hardswish(-inf) = -inf * 0 = NaN; the limit is 0
    _k_hard_swish, lambda tm, x, o: tm._C._nn.hardswish(x, out=o), redo_nan=True
)
# derivatives: compiled (one pass, float64 inside) when numba is on, else NumPy. PyTorch's
# backward kernels are not used: they multiply by a gradient, and sigmoid/tanh_backward take the
# forward output (1 - y cancels: 0 for x > 17), gelu_backward cancels like F.gelu for x < 0
_k_sigmoid_d_c = _ViaCompiled(_k_sigmoid_d, "sigmoid_d")
_k_tanh_d_c = _ViaCompiled(_k_tanh_d, "tanh_d")
_k_gelu_d_c = _ViaCompiled(_k_gelu_d, "gelu_d")
_k_gelu_tanh_d_c = _ViaCompiled(_k_gelu_tanh_d_w, "gelu_tanh_d")
_k_silu_d_c = _ViaCompiled(_k_silu_d_w, "silu_d")
_k_mish_d_c = _ViaCompiled(_k_mish_d_w, "mish_d")
_k_hard_swish_d_c = _ViaCompiled(_k_hard_swish_d, "hard_swish_d")


# ----------------------------------------------------------------------------------------------
# Public elementwise kernels
# ----------------------------------------------------------------------------------------------


def identity(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x (a copy, in the kernels' dtype rules)."""
    return _elementwise(_k_identity, x, out)


def identity_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 (NaN at NaN)."""
    return _elementwise(_k_identity_d, x, out)


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


def softsign(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x / (1 + |x|). f(+-inf) = +-1."""
    return _elementwise(_k_softsign, x, out)


def softsign_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 / (1 + |x|)^2. Smooth (C1; f'' jumps at 0)."""
    return _elementwise(_k_softsign_d, x, out)


def relu6(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = min(max(x, 0), 6)."""
    return _elementwise(_k_relu6, x, out)


def relu6_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 1 if 0 < x < 6 else 0. Kinks: f'(0) = 0 and f'(6) = 0 (PyTorch's hardtanh)."""
    return _elementwise(_k_relu6_d, x, out)


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


def hard_swish(x: ArrayLike, *, out: Any = None) -> Any:
    """f(x) = x * relu6(x + 3) / 6 (PyTorch's hardswish). f(-inf) = 0."""
    return _elementwise(_k_hard_swish_t, x, out)


def hard_swish_derivative(x: ArrayLike, *, out: Any = None) -> Any:
    """f'(x) = 0 if x <= -3, x/3 + 1/2 if -3 < x < 3, 1 if x >= 3.

    Kinks as PyTorch 2.x autograd (hardswish_backward): f'(-3) = 0 and f'(3) = 1, the outer
    branches (older PyTorch releases used the middle branch there: -1/2 and 3/2).
    """
    return _elementwise(_k_hard_swish_d_c, x, out)


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


# ----------------------------------------------------------------------------------------------
# Softmax and log-softmax (along an axis) and their vector-Jacobian products
# ----------------------------------------------------------------------------------------------


def _check_axis(axis: Any, ndim: int, func: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ActlabError(f"{func}: axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ActlabError(
            f"{func}: axis {axis} is out of range for an array with {ndim} dimension(s); "
            f"use an axis in [{-ndim}, {ndim - 1}] (default -1, the last)"
        )
    return int(axis) % ndim


def _softmax_rows(x: np.ndarray, o: np.ndarray, t: np.ndarray, log: bool) -> None:
    """Softmax/log-softmax of each row of the 2-D block x into o (t: scratch like x).

    Computed in x's dtype, as PyTorch does: rounding x - m costs softmax a relative error of up
    to |x - m| / 2 ulp (the tests state it); log-softmax keeps ~1 ulp of max(|result|, 1).
    """
    m = np.maximum.reduce(x, axis=1, keepdims=True)  # NaN propagates
    finite = np.isfinite(m[:, 0])
    if not finite.all():
        _softmax_special_rows(x, o, m[:, 0], log)
        good = np.flatnonzero(finite)
        if good.size:
            xs, os_ = x[good], np.empty((good.size, x.shape[1]), x.dtype)
            _softmax_rows(xs, os_, np.empty_like(xs), log)
            o[good] = os_
        return
    tm = _torch_module() if x.dtype == np.float32 and x.flags.writeable else None
    if tm is not None:  # the same algorithm, vectorised on AVX2 too (see _via_torch)
        (tm._log_softmax if log else tm._softmax)(
            tm.from_numpy(x), 1, False, out=tm.from_numpy(o)
        )
        return
    # x - m overflows to -inf only when the true difference is below -max_float: exp then
    # gives the exact 0, and for log-softmax -inf is the correctly rounded result
    with np.errstate(over="ignore"):
        np.subtract(x, m, out=t)
    np.exp(t, out=o)
    s = np.add.reduce(o, axis=1, keepdims=True)
    if log:
        np.log(s, out=s)  # s >= 1: the row maximum contributes exp(0)
        np.subtract(t, s, out=o)
    else:
        np.divide(o, s, out=o)


def _softmax_special_rows(x: np.ndarray, o: np.ndarray, m: np.ndarray, log: bool) -> None:
    """Rows whose maximum is NaN (-> NaN row) or +-inf: the entries equal to the infinite
    maximum share the mass equally (the limit when they grow together); so a row of all -inf
    gives the uniform distribution 1/n (PyTorch returns NaN there)."""
    for i in np.flatnonzero(~np.isfinite(m)):
        row = x[i]
        if np.isnan(m[i]):
            o[i] = np.nan
            continue
        hits = row == m[i]
        k = np.count_nonzero(hits)
        if log:
            o[i] = -_INF
            o[i, hits] = -math.log(k)
        else:
            o[i] = 0.0
            o[i, hits] = 1.0 / k


def _softmax_long_row(x: np.ndarray, o: np.ndarray, log: bool) -> None:
    """One row longer than a block, in two passes over memory ("online" softmax).

    Pass 1 (blocks in parallel): each block's max m_b, exp(x - m_b) and its sum s_b. Then
    M = max m_b and S = sum s_b exp(m_b - M). Pass 2 scales each block by exp(m_b - M) / S
    (log-softmax: x - M - log S). No separate pass for the maximum.
    """
    dt = x.dtype

    def pass1(lo: int, hi: int) -> list[tuple[float, float]]:
        t = _scratch(dt, 1, "smx")[0]
        parts = []
        for s in range(lo, hi, _BLOCK):
            e = min(s + _BLOCK, hi)
            mb = float(np.maximum.reduce(x[s:e]))
            if not math.isfinite(mb):  # NaN or an infinite max: settled after the pass
                parts.append((mb, 0.0))
                continue
            eb = t[: e - s] if log else o[s:e]
            with np.errstate(over="ignore"):  # see _softmax_rows
                np.subtract(x[s:e], dt.type(mb), out=eb)
            np.exp(eb, out=eb)
            parts.append((mb, float(np.add.reduce(eb))))  # pairwise: accurate in float32
        return parts

    parts = [p for chunk in _parallel(pass1, x.size, _BLOCK) for p in chunk]
    maxima = np.array([m for m, _ in parts])
    top = float(np.maximum.reduce(maxima))  # NaN if any block had a NaN
    if not math.isfinite(top):
        # in place, pass 1 overwrote only blocks with a finite max: never entries equal to top
        _softmax_special_rows(x[None, :], o[None, :], np.array([top]), log)
        return
    total = math.fsum(sb * math.exp(mb - top) for mb, sb in parts)
    log_total = math.log(total)

    def pass2(lo: int, hi: int) -> None:
        for s in range(lo, hi, _BLOCK):
            e = min(s + _BLOCK, hi)
            ob = o[s:e]
            mb = parts[s // _BLOCK][0]
            if log:
                with np.errstate(over="ignore"):
                    np.subtract(x[s:e], dt.type(top), out=ob)
                np.subtract(ob, dt.type(log_total), out=ob)
            elif mb == -_INF:  # a block of only -inf (pass 1 skipped it)
                ob.fill(0.0)
            else:
                np.multiply(ob, dt.type(math.exp(mb - top) / total), out=ob)

    _parallel(pass2, x.size, _BLOCK)


def _softmax_like(x: ArrayLike, axis: Any, out: Any, log: bool) -> Any:
    func = "log_softmax" if log else "softmax"
    a = _as_float(x)
    dtype = a.dtype
    comp = _compute_dtype(dtype)
    o = np.empty(a.shape, dtype) if out is None else _check_out(out, a.shape, dtype)
    scalar = out is None and a.ndim == 0
    a1, o1 = (a.reshape(1), o.reshape(1)) if a.ndim == 0 else (a, o)
    ax = _check_axis(axis, a1.ndim, func)
    if a1.size == 0:
        return _finish(o, scalar)
    xm = np.moveaxis(a1, ax, -1)
    om = np.moveaxis(o1, ax, -1)
    n = xm.shape[-1]
    rows = xm.size // n
    direct = om.flags.c_contiguous and dtype == comp
    res = om.reshape(rows, n) if direct else np.empty((rows, n), comp)
    if np.may_share_memory(xm, res) and not _same_view(xm, om):
        xm = xm.copy()
    x2 = np.ascontiguousarray(xm, dtype=comp).reshape(rows, n)

    if n > _BLOCK:
        for r in range(rows):
            _softmax_long_row(x2[r], res[r], log)
    else:
        per = max(1, _BLOCK // n)

        def work(lo: int, hi: int) -> None:
            t = _scratch(comp, 1, "smx")[0]
            for s in range(lo, hi, per):
                e = min(s + per, hi)
                tb = t[: (e - s) * n].reshape(e - s, n)
                _softmax_rows(x2[s:e], res[s:e], tb, log)

        _parallel(lambda lo, hi: work(lo // n, hi // n), rows * n, per * n)
    if not direct:
        np.copyto(om, res.reshape(om.shape), casting="same_kind")
    return _finish(o, scalar)


def softmax(x: ArrayLike, axis: int = -1, *, out: Any = None) -> Any:
    """f(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j (along ``axis``).

    Subtracting the maximum makes it exact for huge inputs (softmax([1000, 1001]) works).
    -inf entries get probability 0. When the maximum is +inf the +inf entries share the mass
    equally; a row of only -inf gives the uniform distribution 1/n (the limit of equal entries;
    PyTorch returns NaN). A NaN anywhere in a row makes the whole row NaN. A 0-d input is a
    one-element vector (result 1). Not elementwise: use ``softmax_vjp`` for gradients.
    """
    return _softmax_like(x, axis, out, log=False)


def log_softmax(x: ArrayLike, axis: int = -1, *, out: Any = None) -> Any:
    """f(x)_i = x_i - m - log(sum_j exp(x_j - m)), m = max_j x_j (along ``axis``).

    Never log(0): -inf entries give -inf, a row of only -inf gives -log(n) (see ``softmax``).
    """
    return _softmax_like(x, axis, out, log=True)


def _vjp_inputs(
    y: ArrayLike, grad: ArrayLike, axis: Any, func: str
) -> tuple[np.ndarray, np.ndarray, int, np.dtype]:
    ya, ga = _as_float(y, "y"), _as_float(grad, "grad")
    if ya.shape != ga.shape:
        raise ActlabError(
            f"{func}: y has shape {ya.shape} but grad has shape {ga.shape}; grad must be the "
            "gradient of the loss with respect to y, of the same shape"
        )
    dtype = np.result_type(ya.dtype, ga.dtype)
    comp = _compute_dtype(dtype)
    ax = _check_axis(axis, max(ya.ndim, 1), func)
    return ya.astype(comp, copy=False), ga.astype(comp, copy=False), ax, dtype


def softmax_vjp(y: ArrayLike, grad: ArrayLike, axis: int = -1) -> Any:
    """Vector-Jacobian product of softmax: J^T g = y * (g - sum(g * y)), y = softmax(x).

    The Jacobian is diag(y) - y y^T (symmetric). ``y`` is the forward output, ``grad`` the
    gradient of the loss with respect to y; the result is the gradient with respect to x.
    """
    ya, ga, ax, dtype = _vjp_inputs(y, grad, axis, "softmax_vjp")
    if ya.ndim == 0:
        return (ya * (ga - ga * ya)).astype(dtype)[()]
    # in one array (one allocation, not three: fresh pages were most of the time at 10M
    # elements); the same operations in the same order as ya * (ga - sum(ga * ya)): same bits
    o = np.multiply(ga, ya)
    dot = np.sum(o, axis=ax, keepdims=True)
    np.subtract(ga, dot, out=o)
    np.multiply(ya, o, out=o)
    return o.astype(dtype, copy=False)


def log_softmax_vjp(y: ArrayLike, grad: ArrayLike, axis: int = -1) -> Any:
    """Vector-Jacobian product of log-softmax: J^T g = g - exp(y) * sum(g), y = log_softmax(x)."""
    ya, ga, ax, dtype = _vjp_inputs(y, grad, axis, "log_softmax_vjp")
    if ya.ndim == 0:
        return (ga - np.exp(ya) * ga).astype(dtype)[()]
    total = np.sum(ga, axis=ax, keepdims=True)
    o = np.exp(ya)  # then in place: ga - exp(ya) * total with one allocation, same bits
    np.multiply(o, total, out=o)
    np.subtract(ga, o, out=o)
    return o.astype(dtype, copy=False)


# ---- rational (Padé) activation: P(x) / (1 + |Q(x)|), degrees 5 / 4 (PAU) ------------------------

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
