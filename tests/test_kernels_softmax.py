"""Softmax / log-softmax kernels and their vector-Jacobian products."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from actlab import catalog
from actlab import kernels as K
from actlab.errors import ActlabError

# Every test here runs on both routes of the float32 kernels (conftest.kernel_path).
pytestmark = pytest.mark.usefixtures("kernel_path")


INF, NAN = math.inf, math.nan


def test_article_example() -> None:
    z = [1, 2, 3, 4, 1, 2, 3]
    expect = [0.02364054, 0.06426166, 0.1746813, 0.474833, 0.02364054, 0.06426166, 0.1746813]
    y = K.softmax(z)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expect, rtol=5e-7)
    assert y.sum() == pytest.approx(1.0, abs=1e-15)


def test_huge_and_minus_inf_inputs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(
            K.softmax([1000.0, 1001.0]), [1 / (1 + math.e), 1 / (1 + 1 / math.e)]
        )
        np.testing.assert_allclose(
            K.softmax(np.array([1000, 1001], np.float32)), [0.26894142, 0.73105858], rtol=1e-6
        )
        np.testing.assert_allclose(K.softmax([-INF, 0.0, 0.0]), [0.0, 0.5, 0.5])
        np.testing.assert_allclose(
            K.log_softmax([-INF, 0.0, 0.0]), [-INF, -math.log(2), -math.log(2)]
        )
        big = np.finfo(np.float32).max
        np.testing.assert_array_equal(K.softmax(np.array([-big, big], np.float32)), [0, 1])
        assert K.log_softmax(np.array([-big, big], np.float32))[0] == -INF  # -6.8e38 rounds to -inf


@pytest.mark.parametrize("a", [INF, -INF, NAN])
@pytest.mark.parametrize("b", [INF, -INF, NAN])
def test_every_pair_of_infinities_and_nan(a: float, b: float) -> None:
    """Documented rule: NaN anywhere -> NaN row; otherwise the entries equal to an infinite
    maximum share the mass equally (all -inf -> uniform; PyTorch gives NaN there)."""
    x = np.array([a, b, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, ly = K.softmax(x), K.log_softmax(x)
    if math.isnan(a) or math.isnan(b):
        assert np.isnan(y).all() and np.isnan(ly).all()
        return
    top = max(a, b, 1.0)
    hits = x == top
    expect = hits / hits.sum()
    np.testing.assert_array_equal(y, expect)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(ly, np.log(expect))
    t = torch.softmax(torch.from_numpy(x), 0).numpy()
    finite_t = ~np.isnan(t)
    np.testing.assert_array_equal(y[finite_t], t[finite_t])  # agree wherever torch is defined


def test_all_minus_inf_row_is_uniform_and_nan_row_is_nan() -> None:
    x = np.array([[-INF, -INF, -INF, -INF], [0.0, NAN, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    y = K.softmax(x, axis=1)
    np.testing.assert_array_equal(y[0], 0.25)
    assert np.isnan(y[1]).all()
    np.testing.assert_allclose(y[2], torch.softmax(torch.from_numpy(x[2]), 0).numpy())
    np.testing.assert_allclose(K.log_softmax(x)[0], -math.log(4))


probs = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
    elements=st.floats(-500, 500, allow_nan=False),
)


@settings(max_examples=50, deadline=None)
@given(probs, st.floats(-1e3, 1e3, allow_nan=False), st.integers(0, 2))
def test_softmax_properties(x: np.ndarray, shift: float, ax: int) -> None:
    ax = ax % x.ndim
    y = K.softmax(x, axis=ax)
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y.sum(axis=ax), 1.0, atol=1e-14)
    np.testing.assert_allclose(K.softmax(x + shift, axis=ax), y, rtol=1e-9, atol=1e-15)
    ly = K.log_softmax(x, axis=ax)
    ok = y > 1e-300
    np.testing.assert_allclose(ly[ok], np.log(y[ok]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        y, torch.softmax(torch.from_numpy(x), ax).numpy(), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(
        ly, torch.log_softmax(torch.from_numpy(x), ax).numpy(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes_axes_shapes_and_out(dtype: type) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(dtype)
    for ax in (0, 1, -1, -2):
        y = K.softmax(x, axis=ax)
        assert y.dtype == dtype
        ref = torch.softmax(torch.from_numpy(x.astype(np.float64)), ax).numpy()
        np.testing.assert_allclose(
            y.astype(np.float64), ref, rtol=2e-3 if dtype == np.float16 else 1e-6
        )
        out = np.empty_like(x)
        assert K.log_softmax(x, axis=ax, out=out) is out
        np.testing.assert_array_equal(out, K.log_softmax(x, axis=ax))
    inplace = x.copy()
    K.softmax(inplace, out=inplace)
    np.testing.assert_array_equal(inplace, K.softmax(x))
    view = x.transpose(2, 0, 1)[:, ::2]
    np.testing.assert_array_equal(K.softmax(view, axis=1), K.softmax(view.copy(), axis=1))
    assert K.softmax(np.empty((0, 3), dtype)).shape == (0, 3)
    assert K.softmax(np.array(5.0, dtype)) == 1.0
    assert K.softmax([3, 4]).dtype == np.float64


def test_long_rows_and_many_rows_match_the_simple_path() -> None:
    rng = np.random.default_rng(1)
    long = rng.standard_normal(3 * K._BLOCK + 11).astype(np.float32) * 10
    ref = torch.softmax(torch.from_numpy(long.astype(np.float64)), 0).numpy()
    # subnormal float32 results carry only absolute accuracy: atol = the smallest normal number
    np.testing.assert_allclose(K.softmax(long), ref, rtol=2e-5, atol=np.finfo(np.float32).tiny)
    lref = torch.log_softmax(torch.from_numpy(long.astype(np.float64)), 0).numpy()
    np.testing.assert_allclose(K.log_softmax(long), lref, rtol=2e-6, atol=2e-5)
    long[7] = -INF
    assert K.softmax(long)[7] == 0
    long[K._BLOCK : 2 * K._BLOCK] = -INF  # a whole block of -inf
    y = K.softmax(long)
    assert (y[K._BLOCK : 2 * K._BLOCK] == 0).all() and y.sum() == pytest.approx(1.0, abs=1e-5)
    inplace = long.copy()
    K.softmax(inplace, out=inplace)
    np.testing.assert_array_equal(inplace, y)
    long[9] = INF
    assert K.softmax(long)[9] == 1.0 and K.softmax(long).sum() == 1.0
    inplace = long.copy()
    K.log_softmax(inplace, out=inplace)
    np.testing.assert_array_equal(inplace, K.log_softmax(long))
    many = rng.standard_normal((K._PARALLEL_MIN // 50 + 7, 50))
    many[3, 4] = NAN
    many[100, :] = -INF
    y = K.softmax(many)
    np.testing.assert_array_equal(y[:500], K.softmax(many[:500]))
    np.testing.assert_array_equal(y[-300:], K.softmax(many[-300:]))


def test_axis_errors() -> None:
    with pytest.raises(ActlabError, match=r"axis 2 is out of range.*\[-2, 1\]"):
        K.softmax(np.zeros((2, 2)), axis=2)
    with pytest.raises(ActlabError, match="axis must be an integer"):
        K.log_softmax(np.zeros(3), axis=0.5)


# ---------------------------------------------------------------- vector-Jacobian products


def _jacobian(y: np.ndarray) -> np.ndarray:
    return np.diag(y) - np.outer(y, y)


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-30, 30)),
    hnp.arrays(np.float64, 8, elements=st.floats(-5, 5)),
)
def test_softmax_vjp_equals_explicit_jacobian_product(x: np.ndarray, g8: np.ndarray) -> None:
    g = g8[: x.size]
    y = K.softmax(x)
    np.testing.assert_allclose(K.softmax_vjp(y, g), _jacobian(y).T @ g, atol=1e-12)
    ly = K.log_softmax(x)
    jl = np.eye(x.size) - y[None, :]  # d log_softmax_i / d x_j
    np.testing.assert_allclose(K.log_softmax_vjp(ly, g), jl.T @ g, atol=1e-12)


@pytest.mark.parametrize("ax", [0, 1, -1])
def test_vjps_match_torch_autograd(ax: int) -> None:
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    for fn, vjp, tfn in (
        (K.softmax, K.softmax_vjp, torch.softmax),
        (K.log_softmax, K.log_softmax_vjp, torch.log_softmax),
    ):
        t = torch.from_numpy(x).requires_grad_(True)
        tfn(t, ax).backward(torch.from_numpy(g))
        np.testing.assert_allclose(vjp(fn(x, axis=ax), g, axis=ax), t.grad.numpy(), atol=1e-13)
    y32 = K.softmax(x.astype(np.float32), axis=ax)
    assert K.softmax_vjp(y32, g.astype(np.float32), axis=ax).dtype == np.float32
    assert (
        K.log_softmax_vjp(y32.astype(np.float16), g.astype(np.float16), axis=ax).dtype == np.float16
    )


def test_vjp_errors_and_derivative_refusal() -> None:
    with pytest.raises(ActlabError, match="same shape"):
        K.softmax_vjp(np.ones(3) / 3, np.ones(4))
    with pytest.raises(ActlabError, match="softmax_vjp"):
        catalog.derivative("softmax", np.zeros(3))
    with pytest.raises(ActlabError, match="log_softmax_vjp"):
        catalog.derivative("log_softmax:axis=0", np.zeros(3))
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        K.softmax_vjp(np.ones(2), np.array(["a", "b"]))
