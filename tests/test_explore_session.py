"""The Playground's training session without the server: settings, diagnosis, the article's claim.

Only torch is needed (not the explore extra): the session is plain actlab + PyTorch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actlab.errors import ActlabError
from actlab.explore.session import LIMITS, PlaygroundConfig, Session, validate


@pytest.fixture(autouse=True)
def one_thread():
    """As ``actlab explore`` runs (explore.serve): one intra-op thread. These networks are tiny; on
    a loaded 2-core machine two threads made a frame 5x slower (0.21 s vs 0.045 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_defaults_validate_and_canonicalise_specs():
    assert validate({}) == PlaygroundConfig()
    c = validate({"layers": "leaky_relu:alpha=0.2, Swish", "optimizer": "adam"})
    assert c.layers == ("leaky_relu:negative_slope=0.2", "silu")
    with pytest.raises(ActlabError, match="layer 2: unknown activation 'rleu'"):
        validate({"layers": ["relu", "rleu"]})
    with pytest.raises(ActlabError, match=r"width must be an integer from 1 to 64, got 65"):
        validate({"width": LIMITS["width"][1] + 1})
    assert validate({"width": 3.0}).width == 3  # JSON numbers
    for bad in (float("nan"), float("inf"), 2.5, True):  # NaN/inf were a ValueError/OverflowError
        with pytest.raises(ActlabError, match="width must be an integer from 1 to 64"):
            validate({"width": bad})


def test_frames_follow_the_unit_health_rule():
    s = Session(validate({"layers": ["relu", "sigmoid"], "width": 8, "grid": 10}))
    with torch.no_grad():
        s.linears[0].bias.fill_(-100.0)  # every first-layer pre-activation < 0: all ReLUs dead
        s.linears[1].weight.mul_(1000.0)  # huge pre-activations: sigmoid flat on every row
        s.linears[1].bias.fill_(50.0)
    f = s.advance(train=False)
    assert f["dead"] == [1.0, 0.0]
    assert f["saturated"][0] is None  # ReLU: not measured (diagnose.measures_saturation)
    assert f["saturated"][1] == 1.0
    assert np.asarray(f["surface"]).shape == (10, 10)
    assert f["epoch"] == 0 and f["grad_norm"] == [None, None, None]
    f = s.advance()
    assert f["grad_norm"][0] == 0.0  # no gradient reaches weights behind dead units
    assert f["epoch"] == 1 and f["steps"] == math.ceil(800 / 16)


def test_reset_repeats_the_same_run():
    s = Session(validate({"dataset": "xor", "layers": ["prelu", "elu"]}))
    first = [s.advance()["train_loss"] for _ in range(3)]
    s.reset()
    assert [s.advance()["train_loss"] for _ in range(3)] == first


def test_divergence_is_flagged_and_training_stops():
    s = Session(validate({"layers": ["relu"] * 4, "width": 64, "lr": 3.0, "optimizer": "sgd"}))
    s.linears[0].weight.data.mul_(1e6)
    for _ in range(5):
        f = s.advance()
        if f["diverged"]:
            break
    assert f["diverged"] and s.diverged
    epoch = s.epoch
    assert s.advance()["epoch"] == epoch  # a diverged model is not trained further


@pytest.mark.slow
def test_deep_sigmoid_stalls_while_deep_relu_learns():
    """The article's claim with the Playground's defaults (the page's two 'Try' buttons)."""
    runs = {}
    for act in ("sigmoid", "relu"):
        s = Session(
            validate(
                {
                    "dataset": "spirals",
                    "noise": 0.1,
                    "layers": [act] * 8,
                    "width": 16,
                    "lr": 0.03,
                    "optimizer": "sgd",
                    "batch_size": 16,
                }
            )
        )
        for _ in range(60):
            f = s.advance()
        runs[act] = f
    sig, relu = runs["sigmoid"], runs["relu"]
    assert sig["train_loss"] > 0.68 and sig["val_accuracy"] < 0.6  # chance level: ln 2 = 0.693
    assert sig["grad_norm"][0] / sig["grad_norm"][-1] < 1e-3  # vanishing gradients
    assert relu["train_loss"] < 0.2 and relu["val_accuracy"] > 0.9
