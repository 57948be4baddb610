"""nets: the one initialisation, used by the compare engine, diagnose's demos and explore."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from actlab.catalog import parse
from actlab.diagnose.demos import _mlp
from actlab.nets import init_linear, init_scheme

PSERF = Path(__file__).resolve().parents[1] / "examples" / "pserf.py"


@pytest.mark.parametrize(
    ("spec", "init", "scheme"),
    [("relu", "auto", "he"), ("tanh", "auto", "glorot"), ("selu", "auto", "lecun"),
     ("softsign", "he", "he"), (f"{PSERF}:pserf", "auto", "glorot")],
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
    net = _mlp(32, 3, 2, 64, act, "he", seed=3)
    assert torch.equal(net[0].weight, ref)
