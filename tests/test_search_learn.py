"""The rational (PAU) activation and ``actlab search --strategy learn``'s curve matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actlab import catalog, kernels
from actlab.search import expr, learn
from actlab.torch import Rational, build


# identity's Q is ~0 everywhere: |Q| has its kink at every point, where finite differences of the
# coefficients disagree with any one-sided derivative
@pytest.mark.parametrize("fit", [f for f in kernels.RATIONAL_FITS if f != "identity"])
def test_gradcheck_float64(fit: str) -> None:
    m = Rational(fit, learnable=True).double()
    x = torch.linspace(-4, 4, 17, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, a, b: _f(x, a, b), (x, m.a, m.b))


def _f(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    m = Rational("relu", learnable=True).double()
    return torch.func.functional_call(m, {"a": a, "b": b}, (x,))


@pytest.mark.parametrize("fit", ["relu", "tanh", "silu"])
def test_numpy_derivative_against_finite_differences(fit: str) -> None:
    x = np.concatenate([np.linspace(-6, 6, 241), [-1e3, 1e3, 0.999, 1.001]])
    x = x[np.abs(np.polyval([*kernels.rational_coefficients(fit)[1][::-1], 0.0], x)) > 1e-3]
    h = 1e-6 * np.maximum(1, np.abs(x))
    fd = (kernels.rational(x + h, fit) - kernels.rational(x - h, fit)) / (2 * h)
    assert np.allclose(kernels.rational_derivative(x, fit), fd, rtol=1e-5, atol=1e-6)


def test_forward_matches_torch_module_and_extremes() -> None:
    x = np.linspace(-5, 5, 101)
    for fit in ("relu", "gelu"):
        y = build(f"rational:fit={fit}")(torch.from_numpy(x)).numpy()
        assert np.allclose(kernels.rational(x, fit), y, rtol=1e-12, atol=1e-14)
    big = kernels.rational(np.array([-np.inf, -1e300, 1e300, np.inf, np.nan]), "relu")
    a, b = kernels.rational_coefficients("relu")
    slope = a[5] / abs(b[3])
    assert np.isinf(big[0]) and np.isinf(big[3]) and np.isnan(big[4])
    assert big[2] == pytest.approx(slope * 1e300, rel=1e-9)
    for dtype in (np.float16, np.float32, np.float64):
        assert kernels.rational(np.ones(3, dtype), "tanh").dtype == dtype


def test_fit_to_relu_and_tanh_at_initialisation() -> None:
    x = np.linspace(-3, 3, 601)
    assert np.abs(kernels.rational(x, "relu") - kernels.relu(x)).max() < 0.05
    assert np.abs(kernels.rational(x, "tanh") - np.tanh(x)).max() < 1e-4
    # the catalog and the learnable module start from the same curve
    m = build("rational:fit=tanh:learnable=true")
    assert sum(p.numel() for p in m.parameters()) == 10
    ref = catalog.parse("rational:fit=tanh").forward(x)
    assert np.allclose(m(torch.from_numpy(x).float()).detach().numpy(), ref, atol=1e-5)


def test_unknown_fit_is_refused() -> None:
    from actlab.errors import ActlabError

    with pytest.raises(ActlabError, match="fit"):
        catalog.parse("rational:fit=elu")


def test_match_names_the_curve() -> None:
    z = torch.randn(512, generator=torch.Generator().manual_seed(0)) * 2
    slots = [expr.slots(expr.parse(s)) for s in ("max(x, 0)", "tanh(x)", "x*sigmoid(x)", "erf(x)")]
    err = learn.match([(z, torch.tanh(z)), (z, torch.tanh(z) * 1.001)], slots)
    assert int(err.argmin()) == 1 and float(err[1]) < 1e-5
    err = learn.match([(z, torch.nn.functional.silu(z))], slots)
    assert int(err.argmin()) == 2


def test_strategy_learn_end_to_end(tmp_path) -> None:
    from actlab.search import runner

    sp = tmp_path / "space.txt"
    sp.write_text("tanh relu sigmoid abs softplus\nmul max add\n")
    res = runner.run("iris", out=tmp_path / "s", strategy="learn", space=str(sp), budget=60,
                     epochs=3, seeds=3, lr=1e-2, width=16, finalists=2)  # fmt: skip
    learned = res.raced["learn"]
    assert len(learned["coefficients"]) == 2  # one rational per hidden layer, trained
    assert learned["coefficients"][0][0] != list(kernels.rational_coefficients("relu")[0])
    assert len(res.finalists) == 2 and all(f["test_mean"] is not None for f in res.finalists)
    errs = dict(learned["ranked"])
    cands = {f["candidate"]: f for f in res.finalists}
    assert all(errs[c] <= sorted(errs.values())[len(errs) // 2] for c in cands)  # nearest ones
    assert (tmp_path / "s" / "report.html").is_file()
