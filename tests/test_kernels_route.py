"""The PyTorch route of the float32 kernels (kernels._via_torch): taken when torch is loaded,
never importing torch itself, and falling back to NumPy where it must."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actlab import kernels as K
from actlab.activations import _route as R
from actlab.activations import gaussian


@pytest.fixture
def route(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def use(mode: str) -> None:
        monkeypatch.setattr(R, "_torch_mode", mode)
        monkeypatch.setattr(R, "_numba_mode", "0")  # this file tests the PyTorch route alone

    return use


def test_float32_goes_through_torch_when_on(route: Callable[[str], None]) -> None:
    x = (np.random.default_rng(0).standard_normal(1024) * 4).astype(np.float32)
    route("1")
    # whole vectors only (1024 = 16 x 64): PyTorch's own call is all vector code too
    np.testing.assert_array_equal(K.elu(x), F.elu(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(K.tanh(x), torch.tanh(torch.from_numpy(x)).numpy())
    route("0")
    numpy_elu = K.elu(x)
    np.testing.assert_array_equal(numpy_elu[x > 0], x[x > 0])
    np.testing.assert_array_equal(numpy_elu[x <= 0], np.expm1(x[x <= 0]))


def test_fallbacks_read_only_float64_and_no_warnings(route: Callable[[str], None]) -> None:
    x = np.linspace(-100, 20, 4099).astype(np.float32)
    route("0")
    expect = K.sigmoid(x)
    route("1")
    ro = x.copy()
    ro.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.from_numpy on a read-only array would warn
        np.testing.assert_array_equal(K.sigmoid(ro), expect)  # the NumPy route, bit for bit
        got = K.sigmoid(x)
    # PyTorch flushes sigmoid's subnormal results; the route redoes that tail with NumPy
    tail = x < K._TORCH_SIGMOID_TAIL
    assert tail.any()
    np.testing.assert_array_equal(got[tail], expect[tail])
    assert (got[x < -88.8] > 0).all()
    x64 = x.astype(np.float64)
    route("0")
    e64 = K.elu(x64)
    route("1")
    np.testing.assert_array_equal(K.elu(x64), e64)  # float64 is never routed


def test_kernels_never_import_torch() -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    code = (
        "import sys, numpy as np\n"
        "from actlab import kernels as K\n"
        "K.elu(np.ones(10**6, np.float32)); K.gelu(np.ones(10, np.float32))\n"
        "print('torch' in sys.modules)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**{k: v for k, v in os.environ.items() if k != "ACTLAB_KERNELS_TORCH"},
             "PYTHONPATH": str(src)},
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert res.stdout.strip() == "False"


def test_gelu_route_needs_a_fused_multiply_add(
    route: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the float32 GELU takes its argument's rounding error from PyTorch's fused add(alpha); a
    # build without FMA (no SIMD) would lose it (196 ulp), so the NumPy kernel steps in
    x = np.concatenate([np.linspace(-15, 5, 4099), [np.inf, -np.inf, np.nan]]).astype(np.float32)
    route("0")
    expect = K.gelu(x)
    route("1")
    with monkeypatch.context() as m:
        m.setattr(gaussian, "_fused_add", lambda tm: False)
        np.testing.assert_array_equal(K.gelu(x), expect)
    got = K.gelu(x)  # the PyTorch route: inf - inf at +-inf is redone, NaN stays NaN
    np.testing.assert_array_equal(got[-3:], [np.inf, 0.0, np.nan])
    # each route is within 8 ulp of the truth (test_kernels_accuracy), so within 16 of each other
    assert (np.abs(got[:-3] - expect[:-3]) <= 16 * np.spacing(np.abs(expect[:-3]))).all()
