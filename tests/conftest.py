"""Shared fixtures: the fake engine (compare tests) and both kernel routes (kernel tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actlab import compare
from actlab.activations import _route as R

sys.path.insert(0, str(Path(__file__).parent))
import _fake_engine as fake


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> fake.Behaviour:
    """compare.run with the fake engine (tests/_fake_engine.py) in place of the real one."""
    behaviour = fake.Behaviour()
    monkeypatch.setattr("actlab.compare.backends.engine", fake)  # first: imports the real one
    monkeypatch.setattr(fake, "BEHAVIOUR", behaviour)
    monkeypatch.setitem(sys.modules, "actlab.compare.engine", fake)
    monkeypatch.setattr(compare, "engine", fake, raising=False)
    return behaviour


@pytest.fixture(scope="module", params=["numpy", "torch", "numba"])
def kernel_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a module's tests on every route of the float32 kernels: NumPy alone; PyTorch's
    kernels on zero-copy views (used when torch is loaded; see _route._via_torch); and the
    compiled kernels (numba, actlab[fast]; see _route._ViaCompiled) with PyTorch's route for the
    rest, as in a program that has both. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("kernel_path")``."""
    if request.param == "numba":
        pytest.importorskip("numba", reason="the compiled route needs numba (actlab[fast])")
    before = R._torch_mode, R._numba_mode
    R._torch_mode = "0" if request.param == "numpy" else "1"
    R._numba_mode = "1" if request.param == "numba" else "0"
    yield request.param
    R._torch_mode, R._numba_mode = before
