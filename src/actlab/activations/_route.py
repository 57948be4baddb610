"""The kernels' shared rules: dtypes, ``out=``, blocks and threads, and the PyTorch and compiled
routes of float32 blocks (see ``actlab.kernels`` for the rules every kernel follows)."""

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

from actlab._blocks import BLOCK, PARALLEL_MIN
from actlab._blocks import parallel as _parallel
from actlab._blocks import scratch as _scratch
from actlab.errors import ActlabError

_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_ACCEPTED = "float16, float32 or float64 (integer and bool arrays are promoted to float64)"
# exp(-x) is finite and exp(x) is a normal number for |x| <= _EXP_SAFE[dtype.char]
_EXP_SAFE = {"f": 87.0, "d": 708.0}
_FMAX = {"f": float(np.finfo(np.float32).max), "d": float(np.finfo(np.float64).max)}
_INF = math.inf


class KernelDTypeError(ActlabError, TypeError):
    """An array of a dtype the kernels do not compute with (complex, object, string...)."""


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


def _step(x: np.ndarray, o: np.ndarray) -> None:
    """o = 1.0 where x > 0 else 0.0 (NaN -> 0; callers restore NaN)."""
    np.greater(x, 0.0, out=o)


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


_T_FACTORS: dict[tuple[float, Any], Any] = {}


def _t_factor(tm: Any, value: float, dtype: Any = None) -> Any:
    """A 0-d tensor (float64 unless ``dtype``) holding ``value``, created once: 1-1.5 us faster
    per call than a Python float (wrapped anew each call) or a 1-element tensor (broadcast)."""
    factor = _T_FACTORS.get((value, dtype))
    if factor is None:
        factor = _T_FACTORS[value, dtype] = tm.tensor(value, dtype=dtype or tm.float64)
    return factor


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
