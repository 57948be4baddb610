"""The compiled route of the float32 kernels (numba, actlab[fast]; kernels._ViaCompiled): taken
when numba is installed, imported on first use only, cached outside the package, and tighter than
the ulp bounds every route must meet (test_kernels_accuracy runs all three routes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from actlab import kernels as K
from actlab.activations import _route as R
from actlab.errors import ActlabError

numba = pytest.importorskip("numba", reason="the compiled route needs numba (actlab[fast])")
from actlab import _compiled as C  # noqa: E402  (after the skip: it imports numba)

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def route(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def use(mode: str) -> None:
        monkeypatch.setattr(R, "_numba_mode", mode)
        monkeypatch.setattr(R, "_torch_mode", "0")

    return use


# public call -> the compiled kernel it must reach on float32 (params after x, o)
ROUTED: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[..., None], tuple]] = {
    "gelu": (K.gelu, C.gelu, ()),
    "gelu_tanh": (lambda x: K.gelu(x, approximate="tanh"), C.gelu_tanh, ()),
    "gelu_d": (K.gelu_derivative, C.gelu_d, ()),
    "gelu_tanh_d": (lambda x: K.gelu_derivative(x, approximate="tanh"), C.gelu_tanh_d, ()),
    "silu_d": (K.silu_derivative, C.silu_d, (1.0,)),
    "swish_d": (lambda x: K.silu_derivative(x, beta=1.7), C.silu_d, (1.7,)),
    "sigmoid_d": (K.sigmoid_derivative, C.sigmoid_d, ()),
    "tanh_d": (K.tanh_derivative, C.tanh_d, ()),
    "mish_d": (K.mish_derivative, C.mish_d, ()),
    "hard_swish_d": (K.hard_swish_derivative, C.hard_swish_d, ()),
}
EDGES = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 3.0, -3.0, 1e30, -1e30, 1e-40, -200.0])


@pytest.mark.parametrize("name", list(ROUTED))
def test_float32_goes_through_the_compiled_kernel_when_on(
    name: str, route: Callable[[str], None]
) -> None:
    public, compiled, params = ROUTED[name]
    x = np.concatenate([np.linspace(-30, 30, 3001), EDGES]).astype(np.float32)
    direct = np.empty_like(x)
    compiled(x, direct, *params)
    route("1")
    np.testing.assert_array_equal(public(x), direct)
    ro = x.copy()
    ro.flags.writeable = False  # numba compiles a read-only variant: same results
    np.testing.assert_array_equal(public(ro), direct)
    h = x[:3004].astype(np.float16)  # computed in float32, so it takes the route too
    h32, d16 = h.astype(np.float32), np.empty(h.size, np.float32)
    compiled(h32, d16, *params)
    np.testing.assert_array_equal(public(h), d16.astype(np.float16))
    route("0")
    numpy_route = public(x)
    # the NumPy route is a different formula: equal to a few ulp, not bit for bit
    fin = np.isfinite(direct) & (np.abs(direct) > 1e-30)
    assert np.all(np.isnan(numpy_route) == np.isnan(direct))
    np.testing.assert_allclose(numpy_route[fin], direct[fin], rtol=2e-6)


@pytest.mark.parametrize("name", list(ROUTED))
def test_float64_never_takes_the_compiled_route(name: str, route: Callable[[str], None]) -> None:
    public = ROUTED[name][0]
    x = np.linspace(-10, 10, 1001)
    route("0")
    expect = public(x)
    route("1")
    np.testing.assert_array_equal(public(x), expect)


def _dense() -> np.ndarray:
    return np.concatenate(
        [np.linspace(-16, 16, 200_001), -np.logspace(-7, 1.2, 10_000), np.logspace(-7, 1.2, 10_000)]
    ).astype(np.float32)


def test_compiled_gelu_is_within_one_ulp_everywhere(route: Callable[[str], None]) -> None:
    """float64 inside: the exact GELU and its derivative within 1 ulp of SciPy on a dense grid
    (the NumPy route's float32 erfc fit needs 8; the derivative's root x = -0.7518 is counted in
    ulps of max(|f'|, 2^-12), as in test_kernels_accuracy)."""
    from scipy import special

    route("1")
    x = _dense()
    x64 = x.astype(np.float64)
    ref = x64 * special.ndtr(x64)
    dref = special.ndtr(x64) + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    err = np.abs(K.gelu(x) - ref) / np.spacing(np.abs(ref).astype(np.float32))
    scale = np.maximum(np.abs(dref), np.where(np.abs(x + 0.7518) < 0.25, 2.0**-12, 0.0))
    derr = np.abs(K.gelu_derivative(x) - dref) / np.spacing(scale.astype(np.float32))
    assert err.max() <= 1.0, f"{err.max():.2f} ulp at x = {x[err.argmax()]!r}"
    assert derr.max() <= 1.0, f"{derr.max():.2f} ulp at x = {x[derr.argmax()]!r}"


@pytest.mark.parametrize("name", list(ROUTED))
def test_compiled_kernels_are_within_one_ulp_of_float64(
    name: str, route: Callable[[str], None]
) -> None:
    """Each compiled kernel against the same function in float64 (the NumPy float64 kernels,
    never routed) on a dense grid and the far tails: within 1 float32 ulp. Near a derivative's
    root (|f'| < 2^-12 with |x| < 3) the ulp is that of 2^-12, as in test_kernels_accuracy."""
    public = ROUTED[name][0]
    x = np.concatenate([_dense(), -np.linspace(16, 120, 5001), np.linspace(16, 120, 5001)])
    x = x.astype(np.float32)
    route("1")
    got = public(x).astype(np.float64)
    ref = public(x.astype(np.float64))
    floor = np.where((np.abs(ref) < 2.0**-12) & (np.abs(x) < 3), 2.0**-12, 0.0)
    scale = np.maximum(np.abs(ref), floor).astype(np.float32)
    err = np.abs(got - ref) / np.spacing(scale).astype(np.float64)
    assert err.max() <= 1.0, f"{name}: {err.max():.2f} ulp at x = {x[err.argmax()]!r}"


def test_compiled_route_absent_or_off(
    route: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.linspace(-5, 5, 101).astype(np.float32)
    route("0")
    expect = K.gelu(x), K.gelu_derivative(x)
    monkeypatch.setattr(R, "_load_compiled", lambda: None)  # as if numba were not installed
    route("auto")
    np.testing.assert_array_equal(K.gelu(x), expect[0])  # auto: the fallback, silently
    np.testing.assert_array_equal(K.gelu_derivative(x), expect[1])
    route("1")
    with pytest.raises(ActlabError, match=r"numba cannot be imported.*actlab\[fast\]"):
        K.gelu(x)


def _run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ACTLAB_KERNELS", "NUMBA_"))}
    res = subprocess.run(
        [sys.executable, "-c", code], env={**base, "PYTHONPATH": str(SRC), **env},
        capture_output=True, text=True, timeout=180, check=True,
    )
    return res.stdout.strip()


def test_numba_is_imported_only_by_a_large_routed_float32_call() -> None:
    """"auto": float64 and small float32 calls never import numba (a light command such as
    `actlab eval gelu 1 --dtype float32` must not pay ~1 s for it); a call of _COMPILED_MIN
    elements does, and from then on small calls take the compiled route too."""
    code = (
        "import sys, numpy as np\n"
        "import actlab, actlab.catalog\n"
        "from actlab import kernels as K\n"
        "a = 'numba' in sys.modules\n"
        "small = np.linspace(-9, 3, 1000, dtype=np.float32)\n"
        "K.gelu(1.0); K.gelu_derivative(np.ones(10)); K.elu(np.ones(10**6, np.float32))\n"
        "before = K.gelu(small)\n"
        "b = 'numba' in sys.modules\n"
        "K.gelu(np.ones(K._COMPILED_MIN, np.float32))\n"
        "c = 'numba' in sys.modules\n"
        "from actlab import _compiled as C\n"
        "o = np.empty_like(small); C.gelu(small, o)\n"
        "print(a, b, c, bool((K.gelu(small) == o).all()), bool((before == o).all()))\n"
    )
    assert _run(code) == "False False True True False"
    probe = "import sys, numpy as np; from actlab import kernels as K\n"
    probe += "K.gelu(np.ones({n}, np.float32)); print('numba' in sys.modules)"
    assert _run(probe.format(n=10**6), ACTLAB_KERNELS_NUMBA="0") == "False"
    assert _run(probe.format(n=3), ACTLAB_KERNELS_NUMBA="1") == "True"


def test_compiled_code_is_cached_in_the_user_cache_not_the_package(tmp_path: Path) -> None:
    code = (
        "import numpy as np; from actlab import kernels as K\n"
        "K.hard_swish_derivative(np.ones(K._COMPILED_MIN, np.float32))"
    )
    before = set((SRC / "actlab").rglob("*.nb[ic]"))
    _run(code, XDG_CACHE_HOME=str(tmp_path))
    cached = list((tmp_path / "actlab" / "numba").rglob("*.nbi"))
    assert cached, "no numba index file in $XDG_CACHE_HOME/actlab/numba"
    assert set((SRC / "actlab").rglob("*.nb[ic]")) == before  # nothing beside the source
    own = tmp_path / "own"
    _run(code, XDG_CACHE_HOME=str(tmp_path / "unused"), NUMBA_CACHE_DIR=str(own))
    assert list(own.rglob("*.nbi")), "NUMBA_CACHE_DIR, when set, is where numba caches"
    # an unwritable cache folder: compiled anew in each process, still nothing beside the source
    _run(code + "\nassert K.gelu(np.ones(K._COMPILED_MIN, np.float32))[0] > 0.84",
         XDG_CACHE_HOME="/proc/actlab-no-such-dir")  # fmt: skip
    assert set((SRC / "actlab").rglob("*.nb[ic]")) == before


def test_user_numba_functions_keep_their_own_cache_setting() -> None:
    """_compiled sets numba.config.CACHE_DIR only while decorating its own kernels."""
    assert os.environ.get("NUMBA_CACHE_DIR", "") == numba.config.CACHE_DIR
