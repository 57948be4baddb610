"""actlab.torch: native modules, kernels/PyTorch agreement, identify round trips, swap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit, ndtr
from torch import nn

from actlab import catalog, kernels, layers
from actlab.errors import ActlabError, UnknownActivationError
from actlab.torch import (
    ACTIVATION_TYPES,
    Rational,
    Swish,
    build,
    catalog_name,
    identify,
    is_activation,
    swap,
)

VARIANTS = [
    "leaky_relu:alpha=0.1",
    "prelu:init=0.1",
    "prelu:init=-0.3:num_parameters=5",
    "elu:alpha=0.5",
    "celu:alpha=2",
    "gelu:approximate=tanh",
    "silu:beta=1.5",
    "silu:beta=0",
    "silu:beta=0.5:learnable=true",
    "softplus:beta=2:threshold=5",
    "softmax:axis=0",
    "log_softmax:axis=0",
]
SPECS = [*catalog.names(), *VARIANTS]

NATIVE = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "rational": Rational,
    "relu6": nn.ReLU6,
    "hard_sigmoid": nn.Hardsigmoid,
    "hard_swish": nn.Hardswish,
    "hard_tanh": nn.Hardtanh,
    "log_sigmoid": nn.LogSigmoid,
    "softmax": nn.Softmax,
    "log_softmax": nn.LogSoftmax,
}

# finite inputs from PyTorch's edge sets, the kinks, and a random sample; 5 columns (prelu channels)
EDGES = [
    0.0,
    -0.0,
    0.001,
    -0.001,
    0.25,
    -0.25,
    1.0,
    -1.0,
    np.pi,
    -np.pi,
    3.0,
    -3.0,
    6.0,
    -6.0,
    2.5,
    10.0,
    -10.0,
    25.0,
    -25.0,
    501.0,
    -501.0,
    1001.2,
    -1001.2,
]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-15)}
# PyTorch's float64 hardsigmoid backward multiplies by float32(1/6): relative error 3e-8
GRAD_TOL = {("hard_sigmoid", np.float64): dict(rtol=1e-7, atol=1e-15)}


def inputs(dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.concatenate([EDGES, rng.normal(scale=3, size=60 - len(EDGES))])
    return x.reshape(12, 5).astype(dtype)


def test_every_catalog_entry_has_its_native_module() -> None:
    assert set(NATIVE) == set(catalog.names())
    for name, cls in NATIVE.items():
        assert type(build(name)) is cls, name


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("leaky_relu:alpha=0.1", nn.LeakyReLU(negative_slope=0.1)),
        ("prelu:num_parameters=8:init=0.1", nn.PReLU(num_parameters=8, init=0.1)),
        ("elu:alpha=0.5", nn.ELU(alpha=0.5)),
        ("celu:alpha=2", nn.CELU(alpha=2.0)),
        ("gelu:approximate=tanh", nn.GELU(approximate="tanh")),
        ("softplus:beta=2:threshold=5", nn.Softplus(beta=2.0, threshold=5.0)),
        ("softmax:axis=0", nn.Softmax(dim=0)),
        ("logsoftmax:axis=1", nn.LogSoftmax(dim=1)),
        ("swish", nn.SiLU()),
        ("silu:beta=1", nn.SiLU()),
    ],
)
def test_build_passes_parameters_to_native_modules(spec: str, expected: nn.Module) -> None:
    module = build(spec)
    assert type(module) is type(expected)
    assert repr(module) == repr(expected)
    if isinstance(module, nn.PReLU):
        assert torch.equal(module.weight, expected.weight)


def test_swish_is_ours_only_where_pytorch_has_none() -> None:
    fixed = build("silu:beta=1.5")
    assert type(fixed) is Swish and not list(fixed.parameters())
    assert repr(fixed) == "Swish(beta=1.5, learnable=False)"
    learnable = build("swish:learnable=true")
    assert type(learnable) is Swish
    assert repr(learnable) == "Swish(beta=1, learnable=True)"
    (beta,) = learnable.parameters()
    x = torch.linspace(-3, 3, 7, dtype=torch.float64, requires_grad=True)
    y = learnable(x)
    assert y.dtype == torch.float64
    y.sum().backward()
    # d/dbeta sum(x * sigmoid(beta x)) = sum(x^2 s (1 - s)) at beta = 1
    s = torch.sigmoid(x.detach())
    assert beta.grad is not None
    assert float(beta.grad) == pytest.approx(float((x.detach() ** 2 * s * (1 - s)).sum()), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("spec", SPECS)
def test_kernels_and_modules_agree(spec: str, dtype) -> None:
    act = catalog.parse(spec)
    module = build(act)
    x = inputs(dtype)
    if act.name == "prelu":
        # PyTorch's PReLU computes in its weight's dtype; nn.PReLU stores init as float32
        module = module.to(torch.from_numpy(x).dtype)
        with torch.no_grad():
            module.weight.fill_(act.params["init"])
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = module(xt)
    y = catalog.forward(act, x)
    assert y.dtype == dtype and yt.dtype == xt.dtype
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype], err_msg=f"forward {spec}")

    # gradients: the elementwise derivative, or the VJP for softmax / log_softmax
    g = np.random.default_rng(1).normal(size=x.shape).astype(dtype)
    (gt,) = torch.autograd.grad(yt, xt, torch.from_numpy(g))
    if act.spec.elementwise:
        dx = g * catalog.derivative(act, x)
    else:
        vjp = kernels.softmax_vjp if act.name == "softmax" else kernels.log_softmax_vjp
        dx = vjp(y, g, axis=act.params["axis"])
    tol = GRAD_TOL.get((act.name, dtype), TOL[dtype])
    np.testing.assert_allclose(dx, gt.numpy(), **tol, err_msg=f"gradient {spec}")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_tail_is_why_float32_needs_an_absolute_tolerance(approximate: str) -> None:
    """For x < -2 PyTorch's float32 GELU loses relative accuracy (1 + erf(x) cancels; up to ~1e-3
    relative on this grid), so the float32 comparison above has atol=1e-6. The kernels stay close
    to an independent float64 reference (SciPy) there."""
    act = catalog.parse(f"gelu:approximate={approximate}")
    x32 = np.linspace(-10, -2, 801, dtype=np.float32)
    x = x32.astype(np.float64)  # the reference at exactly the float32 inputs
    if approximate == "none":
        ref = x * ndtr(x)
    else:  # x/2 (1 + tanh(u)) = x * sigmoid(2u), without the cancellation
        ref = x * expit(2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))
    ours = catalog.forward(act, x32).astype(np.float64)
    theirs = build(act)(torch.from_numpy(x32)).numpy().astype(np.float64)
    # exact form: within 8 ulp (the kernels' float32 bound); tanh form: its cubic makes the
    # tail ill-conditioned (|2u| ~ 50 times float32 rounding), so a few 1e-6
    np.testing.assert_allclose(ours, ref, rtol=1e-6 if approximate == "none" else 2e-5, atol=0)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("spec", ["prelu:num_parameters=5:init=0.2", "prelu:init=-0.4"])
def test_numpy_prelu_layer_matches_torch(spec: str) -> None:
    rng = np.random.default_rng(2)
    ours, theirs = layers.build(spec), build(spec).double()
    slopes = rng.uniform(-0.5, 0.5, size=ours.weight.shape)
    ours.weight[...] = slopes
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(slopes))
    x = rng.normal(size=(4, 5))
    g = rng.normal(size=(4, 5))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.forward(x), yt.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(ours.grad_weight, theirs.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("spec", SPECS)
def test_identify_round_trips_build(spec: str) -> None:
    act = catalog.parse(spec)
    module = build(spec)
    assert is_activation(module)
    assert catalog_name(module) == act.name
    found = identify(module)
    assert found is not None
    assert str(found) == str(act)
    assert dict(found.params) == dict(act.params)


def test_identify_reads_hand_made_modules_and_subclasses() -> None:
    class MyReLU(nn.ReLU):
        pass

    class ScaledGELU(nn.GELU):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    assert str(identify(MyReLU())) == "relu"
    assert str(identify(ScaledGELU(approximate="tanh"))) == "gelu:approximate=tanh"
    assert str(identify(nn.LeakyReLU(0.2, inplace=True))) == "leaky_relu:negative_slope=0.2"
    assert str(identify(nn.Softmax())) == "softmax"  # dim=None: reported as the default last axis
    assert str(identify(nn.ELU(alpha=0.3))) == "elu:alpha=0.3"
    assert str(identify(Swish(beta=2.0))) == "silu:beta=2"
    assert identify(nn.Linear(2, 2)) is None
    assert identify(nn.Sequential(nn.ReLU())) is None
    # ReLU6 is Hardtanh's subclass, not the reverse: each is its own catalog entry
    assert str(identify(nn.Hardtanh())) == "hard_tanh" and str(identify(nn.ReLU6())) == "relu6"
    assert not is_activation(nn.Conv2d(1, 1, 3))
    assert all(issubclass(t, nn.Module) for t in ACTIVATION_TYPES)
    with pytest.raises(ActlabError, match=r"catalog rejects.*alpha"):
        identify(nn.ELU(alpha=-1.0))


class Block(nn.Module):
    def __init__(self, shared: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = shared
        self.extra = nn.ModuleList(
            [nn.ReLU(), nn.Tanh(), nn.Sequential(nn.Linear(4, 4), nn.ReLU())]
        )
        self.heads = nn.ModuleDict({"a": nn.LeakyReLU(0.1), "b": nn.ReLU6()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc(x))
        for m in self.extra:
            x = m(x)
        return self.heads["a"](x) + self.heads["b"](x)


def make_model() -> nn.Module:
    shared = nn.ReLU(inplace=True)
    return nn.Sequential(nn.Linear(3, 4), shared, Block(shared), shared, nn.Softmax(dim=-1))


def test_swap_relu_to_silu_everywhere() -> None:
    model = make_model()
    # ReLU positions: Sequential[1], Block.act, extra[0], extra[2][1], Sequential[3] = 5
    assert swap(model, to="silu", only=("relu",)) == 5
    kinds = [type(m) for m in model.modules() if is_activation(m)]
    assert nn.ReLU not in kinds
    assert kinds.count(nn.SiLU) == 5
    assert kinds.count(nn.LeakyReLU) == kinds.count(nn.Tanh) == kinds.count(nn.ReLU6) == 1
    swapped = [model[1], model[2].act, model[2].extra[0], model[2].extra[2][1], model[3]]
    assert len({id(m) for m in swapped}) == 5  # the shared ReLU became separate modules
    assert model(torch.randn(2, 3)).shape == (2, 4)


def test_swap_filters_counts_and_aliases() -> None:
    model = make_model()
    assert swap(model, to="swish:beta=1.5", only="lrelu,relu6") == 2
    assert isinstance(model[2].heads["a"], Swish) and isinstance(model[2].heads["b"], Swish)
    assert model[2].heads["a"] is not model[2].heads["b"]
    assert swap(model, to="elu", only=["relu6"]) == 0  # none left
    # no filter: every activation, the softmax included
    assert swap(model, to="gelu:approximate=tanh") == 5 + 1 + 2 + 1
    assert all(
        isinstance(m, nn.GELU) and m.approximate == "tanh"
        for m in model.modules()
        if is_activation(m)
    )


def test_swap_to_parametric_follows_model_dtype_and_mode() -> None:
    model = make_model().double().eval()
    assert swap(model, to="prelu", only=("relu",)) == 5
    assert model[1].weight.dtype == torch.float64
    assert not model[1].training
    assert model(torch.randn(2, 3, dtype=torch.float64)).dtype == torch.float64


def test_swap_errors() -> None:
    model = make_model()
    with pytest.raises(UnknownActivationError, match="did you mean 'relu'"):
        swap(model, to="rleu")
    with pytest.raises(UnknownActivationError, match="unknown activation 'rleu'"):
        swap(model, only=("rleu",))
    with pytest.raises(ActlabError, match="unknown parameter 'alpah'"):
        swap(model, to="elu:alpah=1")
    with pytest.raises(ActlabError, match="the model itself is an activation"):
        swap(nn.ReLU(), to="elu")
    with pytest.raises(ActlabError, match=r"model must be a torch\.nn\.Module"):
        swap("model", to="elu")  # type: ignore[arg-type]
    with pytest.raises(ActlabError, match="only= takes activation names"):
        swap(model, only=(nn.ReLU,))  # type: ignore[arg-type]
    # nothing was replaced by the failing calls
    assert (
        sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3
    )  # shared, extra[0], extra[2][1]


def test_hard_tanh_bounds_round_trip_and_relu6_stays_relu6() -> None:
    act = identify(nn.Hardtanh(-2.0, 0.5))
    assert act is not None and str(act) == "hard_tanh:min_val=-2:max_val=0.5"
    assert isinstance(build(act), nn.Hardtanh) and build(act).min_val == -2.0
    assert catalog_name(nn.ReLU6()) == "relu6"  # nn.ReLU6 subclasses nn.Hardtanh
    with pytest.raises(ActlabError, match=r"min_val \(0\) must be below max_val \(0\)"):
        catalog.parse("hard_tanh:min_val=0:max_val=0")
