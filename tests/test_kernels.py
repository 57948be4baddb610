"""NumPy kernels: forward vs PyTorch/SciPy, derivatives vs autograd and finite differences,
PyTorch's edge values, limits at +-inf, NaN, dtypes, out=, threads, dispatch and errors.

Float32 accuracy in ulps against mpmath is in test_kernels_accuracy.py; softmax in
test_kernels_softmax.py.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

from actlab import catalog
from actlab import kernels as K
from actlab.errors import ActlabError

# Every test here runs on both routes of the float32 kernels (conftest.kernel_path).
pytestmark = pytest.mark.usefixtures("kernel_path")


INF, NAN = math.inf, math.nan
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


@dataclass
class Case:
    """One activation with fixed parameters and its independent references."""

    id: str
    name: str  # catalog / kernel name
    kw: dict[str, Any]
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    limits: tuple[float, float]  # f(-inf), f(inf)
    d_limits: tuple[float, float]  # f'(-inf), f'(inf)
    kinks: tuple[float, ...] = ()  # points where f' jumps (skipped by finite differences)
    kink_values: dict[float, float] = field(default_factory=dict)  # documented f'(kink)
    ref: Callable[[np.ndarray], np.ndarray] | None = None  # float64 reference if not torch's
    d_rtol: float = 1e-9  # vs torch autograd in float64

    def f(self, x: Any, **extra: Any) -> Any:
        return getattr(K, self.name)(x, **self.kw, **extra)

    def d(self, x: Any, **extra: Any) -> Any:
        return getattr(K, f"{self.name}_derivative")(x, **self.kw, **extra)


def _prelu_t(w: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: F.prelu(t, torch.tensor([w], dtype=t.dtype))


CASES = [
    Case("identity", "identity", {}, lambda t: t * 1, (-INF, INF), (1, 1)),
    Case("sigmoid", "sigmoid", {}, torch.sigmoid, (0, 1), (0, 0)),
    Case("tanh", "tanh", {}, torch.tanh, (-1, 1), (0, 0)),
    Case("relu", "relu", {}, F.relu, (0, INF), (0, 1), (0.0,), {0.0: 0.0}),
    Case(
        "leaky_relu",
        "leaky_relu",
        {"negative_slope": 0.1},
        lambda t: F.leaky_relu(t, 0.1),
        (-INF, INF),
        (0.1, 1),
        (0.0,),
        {0.0: 0.1},
    ),
    Case(
        "leaky_relu_default",
        "leaky_relu",
        {},
        F.leaky_relu,
        (-INF, INF),
        (0.01, 1),
        (0.0,),
        {0.0: 0.01},
    ),
    Case(
        "prelu",
        "prelu",
        {"weight": 0.25},
        _prelu_t(0.25),
        (-INF, INF),
        (0.25, 1),
        (0.0,),
        {0.0: 0.25},
    ),
    Case(
        "prelu_neg",
        "prelu",
        {"weight": -0.3},
        _prelu_t(-0.3),
        (INF, INF),
        (-0.3, 1),
        (0.0,),
        {0.0: -0.3},
    ),
    Case("elu", "elu", {}, F.elu, (-1, INF), (0, 1), (), {0.0: 1.0}),
    Case(
        "elu_0.5",
        "elu",
        {"alpha": 0.5},
        lambda t: F.elu(t, 0.5),
        (-0.5, INF),
        (0, 1),
        (0.0,),
        {0.0: 0.5},
    ),
    Case(
        "selu",
        "selu",
        {},
        F.selu,
        (-SELU_A * SELU_S, INF),
        (0, SELU_S),
        (0.0,),
        {0.0: SELU_A * SELU_S},
    ),
    Case(
        "celu_2",
        "celu",
        {"alpha": 2.0},
        lambda t: F.celu(t, 2.0),
        (-2, INF),
        (0, 1),
        (),
        {0.0: 1.0},
    ),
    # PyTorch's GELU computes 1 + erf / 1 + tanh and cancels for x << 0: reference from SciPy
    Case("gelu", "gelu", {}, F.gelu, (0, INF), (0, 1), ref=lambda x: x * special.ndtr(x)),
    Case(
        "gelu_tanh",
        "gelu",
        {"approximate": "tanh"},
        lambda t: F.gelu(t, approximate="tanh"),
        (0, INF),
        (0, 1),
        ref=lambda x: (
            x
            * special.expit(
                2 * math.sqrt(2 / math.pi) * (x + 0.044715 * np.clip(x, -1e5, 1e5) ** 3)
            )
        ),
    ),
    Case("silu", "silu", {}, F.silu, (0, INF), (0, 1)),
    Case(
        "swish_1.7", "silu", {"beta": 1.7}, lambda t: t * torch.sigmoid(1.7 * t), (0, INF), (0, 1)
    ),
    Case("mish", "mish", {}, F.mish, (0, INF), (0, 1)),
    Case("softplus", "softplus", {}, F.softplus, (0, INF), (0, 1)),
    Case(
        "softplus_b2_t3",
        "softplus",
        {"beta": 2.0, "threshold": 3.0},
        lambda t: F.softplus(t, beta=2.0, threshold=3.0),
        (0, INF),
        (0, 1),
        (1.5,),
    ),
    Case("softsign", "softsign", {}, F.softsign, (-1, 1), (0, 0)),
    Case("log_sigmoid", "log_sigmoid", {}, F.logsigmoid, (-INF, 0), (1, 0)),
    Case("relu6", "relu6", {}, F.relu6, (0, 6), (0, 0), (0.0, 6.0), {0.0: 0.0, 6.0: 0.0}),
    Case(
        "hard_tanh",
        "hard_tanh",
        {},
        F.hardtanh,
        (-1, 1),
        (0, 0),
        (-1.0, 1.0),
        {-1.0: 0.0, 1.0: 0.0},
    ),
    Case(
        "hard_tanh_bounds",
        "hard_tanh",
        {"min_val": -2.0, "max_val": 0.5},
        lambda t: F.hardtanh(t, -2.0, 0.5),
        (-2, 0.5),
        (0, 0),
        (-2.0, 0.5),
        {-2.0: 0.0, 0.5: 0.0},
    ),
    # PyTorch's hardsigmoid_backward multiplies by 1/6 rounded to float32: 3e-8 relative off
    Case(
        "hard_sigmoid",
        "hard_sigmoid",
        {},
        F.hardsigmoid,
        (0, 1),
        (0, 0),
        (-3.0, 3.0),
        {-3.0: 0.0, 3.0: 0.0},
        d_rtol=1e-7,
    ),
    Case(
        "hard_swish",
        "hard_swish",
        {},
        F.hardswish,
        (0, INF),
        (0, 1),
        (-3.0, 3.0),
        {-3.0: 0.0, 3.0: 1.0},
    ),
]
IDS = [c.id for c in CASES]

# PyTorch's edge value sets (test_unary_ufuncs / reference_numerics_extremal and _large)
_BASE = [0.0, -0.0, 0.001, -0.001, 0.25, -0.25, 1.0, -1.0, math.pi, -math.pi]
_LARGE16 = [501.0, -501.0, 1001.2, -1001.2, 13437.7, -13437.7]
EDGE = {
    np.float16: np.array(_BASE + _LARGE16, np.float16),
    np.float32: np.array(_BASE + _LARGE16 + [4988429.2, -4988429.2, 1e20, -1e20], np.float32),
    np.float64: np.array(_BASE + _LARGE16 + [4988429.2, -4988429.2, 1e20, -1e20], np.float64),
}
SPECIAL_PAIRS = [np.array([a, b]) for a in (INF, -INF, NAN) for b in (INF, -INF, NAN)]
TOL = {np.float16: (1e-3, 6e-8), np.float32: (1e-6, 1e-44), np.float64: (2e-13, 1e-300)}


def _torch_f(case: Case, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return case.torch_fn(torch.from_numpy(x.copy())).numpy()


def _torch_d(case: Case, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    case.torch_fn(t).backward(torch.ones_like(t))
    return t.grad.numpy()


def _random(n: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal(n) * 4, rng.uniform(-60, 60, n // 4)])


# ---------------------------------------------------------------- forward vs independent refs


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_forward_matches_torch_on_edge_and_random_values(case: Case, dtype: type) -> None:
    x = np.concatenate([EDGE[dtype], _random().astype(dtype)])
    got = case.f(x)
    assert got.dtype == dtype
    x64 = x.astype(np.float64)
    torch_ref = _torch_f(case, x64)  # in float64: PyTorch's float32 GELU is 1e-7 off absolutely
    ref = torch_ref if case.ref is None else case.ref(x64)
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol, atol)
    np.testing.assert_allclose(got.astype(np.float64), torch_ref, max(rtol, 1e-7), max(atol, 1e-15))


def test_gelu_exact_matches_scipy_erf_in_float64() -> None:
    # SciPy's erfc returns 0 once z^2 > 709 (x < -37.6); the far tail is checked with mpmath
    x = np.concatenate([_random(2000), -np.logspace(-3, np.log10(37.0), 300)])
    x = x[x >= -37.0]
    ref = 0.5 * x * special.erfc(-x / math.sqrt(2))
    # 4e-13: the tail's inherent conditioning (x / sqrt 2 is rounded before erfc: z^2 eps)
    np.testing.assert_allclose(K.gelu(x), ref, rtol=4e-13, atol=0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_limits_at_infinity_and_nan_propagation(case: Case) -> None:
    for x in SPECIAL_PAIRS:
        for dtype in (np.float16, np.float32, np.float64):
            xs = x.astype(dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                y, d = case.f(xs), case.d(xs)
            for v, fy, dy in zip(x, y, d, strict=True):
                if math.isnan(v):
                    assert np.isnan(fy) and np.isnan(dy), (v, fy, dy)
                else:
                    side = int(v > 0)
                    assert fy == case.limits[side], (v, fy)
                    assert dy == case.d_limits[side], (v, dy)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_in_every_third_element_stays_put(case: Case, dtype: type) -> None:
    x = _random(300, seed=3).astype(dtype)
    x[::3] = np.nan
    y, d = case.f(x), case.d(x)
    assert np.isnan(y[::3]).all() and np.isnan(d[::3]).all()
    keep = np.ones(x.size, bool)
    keep[::3] = False
    assert not np.isnan(y[keep]).any() and not np.isnan(d[keep]).any()
    np.testing.assert_array_equal(y[keep], case.f(x[keep]))
    np.testing.assert_array_equal(d[keep], case.d(x[keep]))


# ---------------------------------------------------------------- derivatives


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_derivative_matches_torch_autograd(case: Case) -> None:
    """Edge values (including the kinks, which must follow PyTorch's convention) and random."""
    x = np.concatenate([EDGE[np.float64], _random(), list(case.kink_values), case.kinks])
    got = case.d(x)
    ref = _torch_d(case, x)
    np.testing.assert_allclose(got, ref, rtol=case.d_rtol, atol=1e-12)
    for k, v in case.kink_values.items():
        assert case.d(np.array([k]))[0] == pytest.approx(v, abs=1e-15), k


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_derivative_matches_central_differences(case: Case) -> None:
    x = _random(600, seed=1)
    x = x[np.abs(x) < 40]
    for k in case.kinks:
        x = x[np.abs(x - k) > 1e-3]
    h = 1e-6 * np.maximum(1.0, np.abs(x))
    fd = (case.f(x + h) - case.f(x - h)) / (2 * h)
    np.testing.assert_allclose(case.d(x), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_derivative_in_low_precision_matches_float64(case: Case, dtype: type) -> None:
    x = np.concatenate([EDGE[dtype], _random(200, seed=5).astype(dtype)])
    got = case.d(x)
    assert got.dtype == dtype
    ref = case.d(x.astype(np.float64)).astype(dtype).astype(np.float64)
    rtol = 2e-3 if dtype == np.float16 else 4e-6
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=rtol, atol=rtol * 1e-3)


# ---------------------------------------------------------------- stability at extremes


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sigmoid_extremes_without_warnings(dtype: type) -> None:
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = K.sigmoid(np.array([-1000, 1000, -1e4, 1e4], dtype))
        d = K.sigmoid_derivative(np.array([-1000, 1000], dtype))
    np.testing.assert_array_equal(y, [0, 1, 0, 1])
    np.testing.assert_array_equal(d, [0, 0])


def test_far_tails_keep_subnormal_precision() -> None:
    """Below the exp clamp the kernels switch to log-space/float64 forms, not to 0."""
    x = np.array([-95.0, -100.0], np.float32)
    sub = 1.5e-45  # one float32 subnormal step
    np.testing.assert_allclose(K.sigmoid(x), np.exp(x.astype(np.float64)), rtol=1e-3, atol=sub)
    np.testing.assert_allclose(K.silu(x), x * np.exp(x.astype(np.float64)), rtol=1e-3, atol=sub)
    np.testing.assert_allclose(K.mish(x), x * np.exp(x.astype(np.float64)), rtol=1e-3, atol=sub)
    x64 = np.array([-720.0, -740.0])
    np.testing.assert_allclose(K.silu(x64), -np.exp(np.log(-x64) + x64), rtol=1e-6)
    for v in (-38.0, -38.5):
        ref = float(mpmath.mpf(v) * mpmath.ncdf(v))
        assert K.gelu(np.array([v]))[0] == pytest.approx(ref, rel=1e-6, abs=5e-324)


def test_log_sigmoid_stays_finite_where_log_of_sigmoid_does_not() -> None:
    x = np.array([-120.0, -104.5, -20.0, 0.0, 30.0, 90.0], np.float32)
    with np.errstate(divide="ignore"):
        assert np.isneginf(np.log(K.sigmoid(x[:1])))[0]  # the naive form: log(0)
    y = K.log_sigmoid(x)
    ref = np.array([-mpmath.log1p(mpmath.exp(-mpmath.mpf(float(v)))) for v in x], np.float64)
    # -exp(-90) is subnormal in float32: its precision is the subnormal spacing 2^-149
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=2.5e-7, atol=2.0**-149)
    assert y[0] == np.float32(-120.0) and y[-1] < 0  # -exp(-90): tiny, not 0
    np.testing.assert_allclose(K.log_sigmoid_derivative(x), K.sigmoid(-x), rtol=1e-6, atol=0)


def test_softplus_uses_the_linear_branch_above_threshold() -> None:
    x = np.array([19.0, 20.0, 20.5, 1e4, 1e30])
    y = K.softplus(x)
    assert y[2:].tolist() == x[2:].tolist()  # exactly x, PyTorch's switch
    assert y[0] == pytest.approx(math.log1p(math.exp(19.0)), rel=1e-15)
    y2 = K.softplus(np.array([1.0, 2.0]), beta=2.0, threshold=3.0)
    assert y2[1] == 2.0 and y2[0] == pytest.approx(math.log1p(math.exp(2.0)) / 2, rel=1e-15)


def test_elu_celu_small_negative_inputs_are_accurate() -> None:
    """expm1: elu(-1e-10) is -1e-10 to full precision (exp(x) - 1 would lose 6 digits)."""
    x = np.array([-1e-10, -1e-20], np.float64)
    np.testing.assert_allclose(K.elu(x), np.expm1(x), rtol=1e-15)
    np.testing.assert_allclose(K.celu(x, alpha=0.5), 0.5 * np.expm1(x / 0.5), rtol=1e-15)


# ---------------------------------------------------------------- properties (hypothesis)

finite64 = hnp.arrays(
    np.float64,
    st.integers(1, 60),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=40, deadline=None)
@given(finite64)
def test_monotonic_where_the_catalog_claims_it(x: np.ndarray) -> None:
    xs = np.sort(x)
    checked = 0
    for case in CASES:
        spec = catalog.get(case.name)
        if spec.properties.monotonic and not (case.name == "prelu" and case.kw["weight"] < 0):
            y = case.f(xs)
            assert np.all(np.diff(y) >= 0), case.id
            checked += 1
    assert checked >= 15  # relu, sigmoid, tanh, elu, softplus... are all claimed monotonic


@settings(max_examples=40, deadline=None)
@given(finite64)
def test_outputs_stay_in_the_catalog_range(x: np.ndarray) -> None:
    for case in CASES:
        lo, hi = catalog.get(case.name).output_range
        if case.name in ("elu", "celu"):  # the catalog's range is for the default alpha
            lo = -case.kw.get("alpha", 1.0)
        if case.name == "hard_tanh":  # ... and for the default bounds
            lo, hi = case.kw.get("min_val", -1.0), case.kw.get("max_val", 1.0)
        y = case.f(x)
        assert np.all(y >= lo) and np.all(y <= hi), case.id


@settings(max_examples=40, deadline=None)
@given(finite64)
def test_symmetries(x: np.ndarray) -> None:
    np.testing.assert_array_equal(K.tanh(-x), -K.tanh(x))
    np.testing.assert_array_equal(K.softsign(-x), -K.softsign(x))
    np.testing.assert_allclose(K.sigmoid(x) + K.sigmoid(-x), 1.0, rtol=0, atol=4.5e-16)
    np.testing.assert_array_equal(K.sigmoid_derivative(-x), K.sigmoid_derivative(x))
    # zero-centred ones vanish at 0
    for name in ("tanh", "softsign", "gelu", "silu", "mish", "elu", "selu", "hard_swish"):
        assert getattr(K, name)(0.0) == 0.0


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 40), elements=st.floats(-1e4, 1e4, width=32)))
def test_no_warnings_and_dtype_for_any_float32_input(x: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for case in CASES:
            assert case.f(x).dtype == np.float32
            assert case.d(x).dtype == np.float32


# ---------------------------------------------------------------- dtypes, shapes, out=


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_int_bool_scalars_0d_empty_noncontiguous(case: Case) -> None:
    ints = np.array([-3, 0, 2])
    assert case.f(ints).dtype == np.float64
    np.testing.assert_array_equal(case.f(ints), case.f(ints.astype(np.float64)))
    assert case.f(np.array([True, False])).dtype == np.float64
    s = case.f(1.5)
    assert isinstance(s, np.float64) and s == case.f(np.array([1.5]))[0]
    assert isinstance(case.d(np.float32(-0.5)), np.float32)
    assert case.f(np.array(2.0, np.float16)).dtype == np.float16
    assert case.f(np.empty((0, 3), np.float32)).shape == (0, 3)
    base = _random(200)[:200].reshape(20, 10)
    view = base[::2, ::3].T  # neither C- nor F-contiguous
    np.testing.assert_array_equal(case.f(view), case.f(view.copy()))
    np.testing.assert_array_equal(case.d(view), case.d(view.copy()))
    f_order = np.asfortranarray(base)
    np.testing.assert_array_equal(case.f(f_order), case.f(base))


@pytest.mark.parametrize(
    "bad", [np.array([1 + 2j]), np.array(["a"]), np.array([None]), np.array([1.0], np.longdouble)]
)
def test_unsupported_dtypes_raise_type_error_naming_accepted(bad: np.ndarray) -> None:
    if bad.dtype == np.float64:  # platforms where longdouble is double
        pytest.skip("longdouble is float64 here")
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        K.sigmoid(bad)
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        K.softmax(bad)


def test_ragged_input_is_an_actlab_error() -> None:
    with pytest.raises(ActlabError, match="array of numbers"):
        K.relu([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_out_argument(case: Case) -> None:
    x = _random(100).astype(np.float32).reshape(5, -1)
    out = np.empty_like(x)
    assert case.f(x, out=out) is out
    np.testing.assert_array_equal(out, case.f(x))
    assert case.d(x, out=out) is out
    np.testing.assert_array_equal(out, case.d(x))
    inplace = x.copy()
    case.f(inplace, out=inplace)  # out may be x itself
    np.testing.assert_array_equal(inplace, case.f(x))
    strided = np.empty((5, 50), np.float32)[:, ::2]
    case.f(x, out=strided)
    np.testing.assert_array_equal(strided, case.f(x))
    half = x.astype(np.float16)
    out16 = np.empty_like(half)
    case.f(half, out=out16)
    np.testing.assert_array_equal(out16, case.f(half))


def test_out_partial_overlap_is_safe() -> None:
    buf = np.linspace(-5, 5, 101)
    expect = K.elu(buf[:-1])
    K.elu(buf[:-1], out=buf[1:])
    np.testing.assert_array_equal(buf[1:], expect)


def test_out_errors_are_clear() -> None:
    x = np.zeros(4, np.float32)
    with pytest.raises(ActlabError, match=r"shape \(3,\).*\(4,\)"):
        K.relu(x, out=np.empty(3, np.float32))
    with pytest.raises(TypeError, match="dtype float64 but the result has dtype float32"):
        K.relu(x, out=np.empty(4, np.float64))
    with pytest.raises(TypeError, match="NumPy array"):
        K.relu(x, out=[0.0] * 4)
    ro = np.empty(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ActlabError, match="read-only"):
        K.relu(x, out=ro)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_large_arrays_use_blocks_and_threads_consistently(case: Case) -> None:
    """Results across block and thread boundaries equal the small-array path exactly."""
    n = K._PARALLEL_MIN + 3 * K._BLOCK + 17
    x = np.random.default_rng(7).standard_normal(n).astype(np.float32) * 30
    x[:: K._BLOCK + 1] = [INF, -INF, NAN, -200.0][0]  # special values in many blocks
    x[5 :: 2 * K._BLOCK + 3] = -200.0  # far tails trigger the slow paths
    x[9 :: 3 * K._BLOCK + 1] = NAN
    y, d = case.f(x), case.d(x)
    idx = np.r_[0:2000, K._BLOCK - 5 : K._BLOCK + 5, n - 300 : n]
    np.testing.assert_array_equal(y[idx], case.f(x[idx]))
    np.testing.assert_array_equal(d[idx], case.d(x[idx]))
    for j in (0, 5, 9):
        np.testing.assert_array_equal(y[j], case.f(x[j : j + 1])[0])


def test_set_num_threads() -> None:
    old = K.get_num_threads()
    x = np.random.default_rng(0).standard_normal(K._PARALLEL_MIN * 2).astype(np.float32)
    try:
        K.set_num_threads(1)
        one = K.silu(x)
        K.set_num_threads(3)
        np.testing.assert_array_equal(K.silu(x), one)
    finally:
        K.set_num_threads(old)
    with pytest.raises(ActlabError, match="positive integer"):
        K.set_num_threads(0)


# ---------------------------------------------------------------- PReLU weights


def test_prelu_per_channel_weight_matches_torch() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    w = np.array([0.1, -0.2, 0.5])
    tw = torch.from_numpy(w)
    np.testing.assert_allclose(K.prelu(x, weight=w), F.prelu(torch.from_numpy(x), tw).numpy())
    t = torch.from_numpy(x).requires_grad_(True)
    F.prelu(t, tw).backward(torch.ones_like(t))
    np.testing.assert_allclose(K.prelu_derivative(x, weight=w), t.grad.numpy())
    np.testing.assert_array_equal(K.prelu_weight_derivative(x), np.minimum(x, 0))
    assert K.prelu(np.array([-INF]), weight=0.0)[0] == 0.0
    with pytest.raises(ActlabError, match="does not fit x of shape"):
        K.prelu(x, weight=np.ones(4))
    with pytest.raises(ActlabError, match="finite"):
        K.prelu(x, weight=np.array([np.nan, 1.0, 1.0]))


# ---------------------------------------------------------------- parameters and dispatch


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: K.leaky_relu(1.0, negative_slope="a"), "negative_slope must be a finite real"),
        (lambda: K.elu(1.0, alpha=INF), "alpha must be a finite number"),
        (lambda: K.celu(1.0, alpha=0.0), "alpha must be a finite number > 0"),
        (lambda: K.softplus(1.0, beta=-1.0), "beta must be a finite number > 0"),
        (lambda: K.gelu(1.0, approximate="erf"), "approximate must be 'none'"),
        (lambda: K.silu(1.0, beta=True), "beta must be a finite real"),
    ],
)
def test_bad_parameters_raise_actlab_error(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ActlabError, match=match):
        call()


def test_every_catalog_activation_dispatches() -> None:
    x = np.linspace(-4, 4, 9)
    for name in [s.name for s in catalog.SPECS]:  # each definition points at its kernels
        y = catalog.forward(name, x)
        assert y.shape == x.shape and y.dtype == np.float64
        np.testing.assert_array_equal(y, getattr(K, name)(x))
        np.testing.assert_array_equal(catalog.parse(name).forward(x), y)
        if catalog.get(name).elementwise:
            np.testing.assert_array_equal(
                catalog.derivative(name, x), getattr(K, f"{name}_derivative")(x)
            )
        else:
            with pytest.raises(ActlabError, match=f"{name}_vjp"):
                catalog.derivative(name, x)


def test_dispatch_passes_parameters_and_drops_torch_only_ones() -> None:
    x = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(catalog.forward("leaky_relu:alpha=0.1", x), K.leaky_relu(x, 0.1))
    np.testing.assert_array_equal(
        catalog.derivative("softplus:beta=2:threshold=3", x), K.softplus_derivative(x, 2.0, 3.0)
    )
    np.testing.assert_array_equal(
        catalog.forward("prelu:init=0.3:num_parameters=4", x), K.prelu(x, weight=0.3)
    )
    np.testing.assert_array_equal(
        catalog.forward("swish:beta=1.5:learnable=true", x), K.silu(x, beta=1.5)
    )
    np.testing.assert_array_equal(
        catalog.forward(catalog.parse("gelu:approximate=tanh"), x), K.gelu(x, approximate="tanh")
    )
    out = np.empty_like(x)
    assert catalog.forward("elu", x, out=out) is out
    with pytest.raises(ActlabError, match="did you mean 'relu'"):
        catalog.forward("rleu", x)
