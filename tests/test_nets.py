"""nets: the one list of inits, the initialisation, MLP and loss (compare, diagnose, explore)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from actlab import advice, compare, diagnose, layers, nets
from actlab.catalog import parse
from actlab.nets import init_linear, init_scheme
from actlab.spec import INITS as SPEC_INITS

PSERF = Path(__file__).resolve().parents[1] / "examples" / "pserf.py"


@pytest.mark.parametrize(
    ("spec", "init", "scheme"),
    [("relu", "auto", "he"), ("tanh", "auto", "glorot"), ("selu", "auto", "lecun"),
     ("softsign", "he", "he"), (f"{PSERF}:pserf", "auto", "glorot"), ("relu", "paper", "he"),
     ("tanh", "paper", "standard"), ("tanh", "torch", "torch")],
)  # fmt: skip
def test_scheme(spec: str, init: str, scheme: str) -> None:
    assert init_scheme(parse(spec), init) == scheme


def test_he_keeps_the_leaky_slope_in_compare_and_in_diagnose() -> None:
    act = parse("leaky_relu:negative_slope=0.5")
    w, ref = torch.empty(64, 32), torch.empty(64, 32)
    init_linear(w, None, "he", act, torch.Generator().manual_seed(3))
    nn.init.kaiming_normal_(
        ref, a=0.5, nonlinearity="leaky_relu", generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(w, ref)
    # diagnose's demo networks: the same first layer (it used to ignore the slope)
    net = nets.mlp(32, 64, 3, [act, act], "he", seed=3)
    assert torch.equal(net[0].weight, ref)


def test_one_list_of_inits_with_each_consumers_extras() -> None:
    assert layers.Linear.INITS == SPEC_INITS
    assert ("auto", *SPEC_INITS, "torch") == compare.INITS
    assert (*SPEC_INITS, "torch") == advice.INITS
    assert ("paper", "standard", *SPEC_INITS) == diagnose.INITS


def test_mlp_layout_initialisation_and_output_layer() -> None:
    relu, tanh = parse("relu"), parse("tanh")
    net = nets.mlp(5, 7, 2, [relu, tanh], "auto", seed=1, bias=0.5, output_init="glorot")
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "Tanh", "Linear"]
    assert [tuple(net[i].weight.shape) for i in (0, 2, 4)] == [(7, 5), (7, 7), (2, 7)]
    assert torch.all(net[0].bias == 0.5) and torch.all(net[4].bias == 0)
    # the same weights layer by layer from one generator: He, then Glorot, then Glorot
    g, w = torch.Generator().manual_seed(1), [torch.empty(7, 5), torch.empty(7, 7)]
    nn.init.kaiming_normal_(w[0], nonlinearity="relu", generator=g)
    nn.init.xavier_uniform_(w[1], generator=g)
    assert torch.equal(net[0].weight, w[0]) and torch.equal(net[2].weight, w[1])
    std = nets.mlp(5, 7, 2, [tanh], "standard", seed=1)[0].weight
    assert float(std.detach().abs().max()) <= 1 / 5**0.5 and not torch.equal(std, net[0].weight)


def test_loss_is_cross_entropy_or_mse_per_model() -> None:
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(3, 20, 4, generator=g), torch.randint(0, 4, (3, 20), generator=g)
    per_model = nets.loss(out, y, True)
    assert per_model.shape == (3,)
    assert torch.allclose(per_model[1], nn.functional.cross_entropy(out[1], y[1]))
    assert torch.equal(nets.loss(out[1], y[1], True), nn.functional.cross_entropy(out[1], y[1]))
    r, t = torch.randn(20, 1, generator=g), torch.randn(20, 1, generator=g)
    assert torch.equal(nets.loss(r, t, False), nn.functional.mse_loss(r, t))
