"""Softmax and log-softmax (along an axis) and their vector-Jacobian products."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from actlab.activations._prose import define
from actlab.activations._route import (
    _BLOCK,
    _INF,
    _as_float,
    _check_out,
    _compute_dtype,
    _finish,
    _parallel,
    _same_view,
    _scratch,
    _torch_module,
)
from actlab.errors import ActlabError
from actlab.spec import INF, Param, PlotDefaults, Properties, TorchModule

__all__ = ["log_softmax", "log_softmax_vjp", "softmax", "softmax_vjp"]


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
        (tm._log_softmax if log else tm._softmax)(tm.from_numpy(x), 1, False, out=tm.from_numpy(o))
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


def _read_axis(m: Any) -> dict[str, Any]:
    # dim=None is PyTorch's deprecated implicit choice; we report the catalog default (last axis)
    return {"axis": -1 if m.dim is None else int(m.dim)}


_AXIS = Param("axis", -1, int, "axis along which the probabilities sum to 1")


SPECS = (
    define(
        name="softmax",
        numpy_forward=softmax,
        torch=TorchModule("Softmax", {"dim": "axis"}, read=_read_axis),
        layer="Softmax",
        display_name="Softmax",
        elementwise=False,
        params=(_AXIS,),
        formula="f(z)_i = exp(z_i) / sum_k exp(z_k)  (computed as exp(z_i - max z) / sum ...)",
        formula_latex=r"f(z)_i = \frac{e^{z_i}}{\sum_{k} e^{z_k}}",
        derivative_formula="df_i/dz_j = f_i * (delta_ij - f_j);  VJP: f * (g - sum(g * f))",
        derivative_latex=r"\frac{\partial f_i}{\partial z_j} = f_i(\delta_{ij} - f_j)",
        output_range=(0.0, 1.0),
        properties=Properties(True, "Cinf", False, True, True, "both"),
        family="probability",
        recommended_init="glorot",
        plot=PlotDefaults(
            xlabel="Class",
            in_article=True,
        ),
    ),
    define(
        name="log_softmax",
        numpy_forward=log_softmax,
        torch=TorchModule("LogSoftmax", {"dim": "axis"}, read=_read_axis),
        layer="LogSoftmax",
        range_closed=(False, True),
        aliases=("logsoftmax",),
        display_name="Log-softmax",
        elementwise=False,
        params=(_AXIS,),
        formula="f(z)_i = z_i - log(sum_k exp(z_k))  (computed with the max subtracted)",
        formula_latex=r"f(z)_i = z_i - \log \sum_{k} e^{z_k}",
        derivative_formula="df_i/dz_j = delta_ij - softmax(z)_j;  VJP: g - softmax(z) * sum(g)",
        derivative_latex=r"\frac{\partial f_i}{\partial z_j} = \delta_{ij} - \mathrm{softmax}(z)_j",
        output_range=(-INF, 0.0),
        properties=Properties(True, "Cinf", False, False, True, "none"),
        family="probability",
        recommended_init="glorot",
        plot=PlotDefaults(
            xlabel="Class",
        ),
    ),
)
