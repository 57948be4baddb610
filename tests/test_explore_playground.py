"""The Playground as users ask (issue 23, item 5): multiclass data with softmax and cross-entropy,
digits without a surface, learning-rate schedules, weight decay and dropout changed while training,
the initialisation scheme and each layer's pre-activations at initialisation.

Session tests need only torch; the last test drives a real server (its control channel).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from actlab.compare.config import settings as compare_settings
from actlab.errors import ActlabError
from actlab.explore.session import SETTINGS, Session, lr_at, validate, validate_live


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_multiclass_trains_softmax_cross_entropy_and_its_probabilities_sum_to_1():
    for name, k in (("spirals3", 3), ("blobs", 4)):
        body = {"dataset": name, "layers": ["relu", "relu"], "width": 16, "optimizer": "adam",
                "lr": 0.02, "grid": 12, "batch_size": 32}  # fmt: skip
        s = Session(validate(body))
        assert s.linears[-1].out_features == k and s.points()["classes"] == k
        first = s.advance(False)
        with torch.no_grad():
            logits, _ = s._forward(s.X_train)
            ce = float(F.cross_entropy(logits, s.y_train))
            mse = float(((torch.softmax(logits, 1) - F.one_hot(s.y_train, k)) ** 2).mean())
        assert first["train_loss"] == pytest.approx(ce, rel=1e-3)  # cross-entropy...
        assert abs(first["train_loss"] - mse) > 0.1  # ...not the squared error
        frames = [s.advance() for _ in range(6)]
        assert frames[-1]["train_loss"] < 0.7 * first["train_loss"]  # it learns
        with torch.no_grad():
            grid = torch.softmax(s._forward(s.grid_points)[0], dim=1)
        torch.testing.assert_close(grid.sum(1), torch.ones(len(grid)))
        f = frames[-1]
        assert f["surface"] is None  # P(class 1) is for two classes only
        winner = np.asarray(f["surface_class"])
        assert winner.shape == (12, 12) and set(np.unique(winner)) <= set(range(k))
        np.testing.assert_array_equal(winner.ravel(), grid.argmax(1).numpy())
        conf = np.asarray(f["surface_confidence"])
        assert (conf >= 1 / k - 1e-3).all() and (conf <= 1).all()
        assert len(f["class_accuracy"]) == k


def test_two_classes_keep_their_surface_of_p_class_1():
    s = Session(validate({"grid": 10}))
    f = s.advance(False)
    with torch.no_grad():
        p1 = torch.softmax(s._forward(s.grid_points)[0], dim=1)[:, 1].reshape(10, 10)
    np.testing.assert_allclose(f["surface"], p1.numpy(), rtol=5e-3)  # 3 significant digits
    assert "surface_class" not in f  # the frame stays as small as before for two classes


def test_digits_trains_without_a_surface():
    s = Session(validate({"dataset": "digits", "layers": ["relu"], "width": 32,
                          "batch_size": 64, "optimizer": "adam", "lr": 0.01}))  # fmt: skip
    data = s.points()
    assert data["features"] == 64 and data["classes"] == 10 and data["planar"] is False
    assert "train" not in data and "grid_x" not in data and "no plane" in data["note"]
    first = s.advance(False)
    f = [s.advance() for _ in range(3)][-1]
    assert f["surface"] is None and "surface_class" not in f
    assert f["train_loss"] < 0.5 * first["train_loss"] and f["val_accuracy"] > 0.8
    assert len(f["class_accuracy"]) == 10 and len(f["dead"]) == 1


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("constant", [0.1] * 7),
        ("step", [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]),
        ("cosine", [0.1 * 0.5 * (1 + math.cos(math.pi * min(e, 4) / 4)) for e in range(7)]),
    ],
)
def test_schedules_give_each_epoch_its_learning_rate(schedule, expected):
    every = 2 if schedule == "step" else 4
    c = validate({"schedule": schedule, "schedule_epochs": every, "schedule_gamma": 0.5,
                  "lr": 0.1, "batch_size": 800, "layers": ["tanh"]})  # fmt: skip
    assert [lr_at(c, e) for e in range(7)] == pytest.approx(expected, abs=0, rel=1e-15)
    s = Session(c)
    assert s.points()["lr_plan"][:7] == pytest.approx(expected, rel=1e-3)
    used = []
    step = s.optimizer.step

    def spy(*args, **kwargs):
        used.append(s.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    s.optimizer.step = spy
    lrs = [s.advance()["lr"] for _ in range(7)]
    assert used == expected  # the optimiser stepped with exactly these (one step per epoch)
    assert lrs == pytest.approx(expected, rel=1e-3)  # and the frames say so (4 digits)
    late = {"constant": 0.1, "step": 0.1 * 0.5**50, "cosine": 0.0}[schedule]
    assert lr_at(c, 100) == pytest.approx(late, abs=1e-18)  # cosine stays at 0 after its length


def test_weight_decay_changes_mid_training_from_the_next_step_without_reset():
    body = {"layers": ["relu"], "width": 8, "batch_size": 800, "lr": 0.5}  # one step per epoch
    a, b = Session(validate(body)), Session(validate(body))
    for _ in range(2):
        a.advance(), b.advance()
    w = a.linears[0].weight.detach().clone()
    a.set(weight_decay=0.1)
    fa, fb = a.advance(), b.advance()
    assert fa["epoch"] == fb["epoch"] == 3 and fa["weight_decay"] == 0.1  # no reset
    # SGD with weight decay: the same gradient step, plus -lr * wd * w
    diff = a.linears[0].weight.detach() - b.linears[0].weight.detach()
    torch.testing.assert_close(diff, -0.5 * 0.1 * w, atol=1e-6, rtol=1e-4)
    a.set(weight_decay=0.0)
    assert a.optimizer.param_groups[0]["weight_decay"] == 0.0


def test_dropout_changes_mid_training_from_the_next_step_without_reset():
    body = {"layers": ["relu", "relu"], "width": 16, "batch_size": 800, "lr": 0.1}
    a, b = Session(validate(body)), Session(validate(body))
    a.advance(), b.advance()
    a.set(dropout=0.5)
    x = a.X_train[:200]
    with torch.no_grad():
        train_out, _ = a._forward(x, train=True)
        eval_out, _ = a._forward(x)
        torch.testing.assert_close(eval_out, b._forward(x)[0])  # evaluation is unaffected
    assert not torch.equal(train_out, eval_out)  # masks are drawn in training only
    fa, fb = a.advance(), b.advance()
    assert fa["epoch"] == fb["epoch"] == 2 and fa["dropout"] == 0.5
    assert not torch.equal(a.linears[0].weight, b.linears[0].weight)  # the step differed
    a.set(dropout=0.0)
    with torch.no_grad():
        torch.testing.assert_close(a._forward(x, train=True)[0], a._forward(x)[0])  # off again


def test_live_changes_are_validated():
    assert validate_live({"action": "set", "weight_decay": 0.01}) == {"weight_decay": 0.01}
    for body, words in [
        ({"action": "set"}, "changes only weight_decay and dropout"),
        ({"action": "set", "lr": 0.1}, "'lr' (change it by starting a new session)"),
        ({"action": "set", "dropout": 0.95}, "dropout must be a number from 0 to 0.9"),
        ({"action": "set", "weight_decay": "1"}, "weight_decay must be a number"),
        ({"action": "set", "weight_decay": float("nan")}, "weight_decay"),
        ([1], "JSON object"),
    ]:
        with pytest.raises(ActlabError, match=words.replace("(", r"\(").replace(")", r"\)")):
            validate_live(body)


@pytest.mark.parametrize(
    ("init", "std"),
    [("he", math.sqrt(2 / 64)), ("glorot", math.sqrt(2 / (64 + 32))), ("lecun", 1 / 8)],
)
def test_init_schemes_give_the_theorys_weight_spread(init, std):
    s = Session(validate({"dataset": "digits", "layers": ["relu", "relu"], "width": 32,
                          "init": init}))  # fmt: skip
    w = s.linears[0].weight.detach()  # 32 x 64: fan_in 64, fan_out 32 (2048 weights: ~1.6% se)
    assert float(w.std()) == pytest.approx(std, rel=0.06)
    assert float(w.mean()) == pytest.approx(0.0, abs=0.1 * std)


def test_init_preactivation_histograms_describe_each_layer_at_the_start():
    s = Session(validate({"layers": ["sigmoid", "tanh", "relu"], "width": 16, "init": "glorot"}))
    hists = s.points()["preactivations"]
    assert [h["activation"] for h in hists] == ["sigmoid", "tanh", "relu"]
    _, pre = s._forward(s.X_train, keep=True)
    for h, z in zip(hists, pre, strict=True):
        assert sum(h["counts"]) == z.numel() == 800 * 16
        assert len(h["edges"]) == len(h["counts"]) + 1 and h["edges"][0] == -h["edges"][-1]
        assert h["std"] == pytest.approx(float(z.double().std()), rel=1e-3)
    s.advance()
    assert s.points()["preactivations"] == hists  # at the start: training does not change it
    big = Session(validate({"layers": ["sigmoid"] * 3, "width": 64, "init": "he"}))
    assert big.points()["preactivations"][2]["std"] > hists[1]["std"]  # He is wider than Glorot


def test_settings_are_compares_declarations_with_the_explorers_bounds():
    compare = compare_settings()
    for mine, theirs in [("layers", "depth"), ("width", "width"), ("lr", "lr"),
                         ("batch_size", "batch_size"), ("weight_decay", "weight_decay"),
                         ("init", "init"), ("optimizer", "optimizer")]:  # fmt: skip
        assert SETTINGS[mine].help == compare[theirs][2].help
        assert SETTINGS[mine].kind == compare[theirs][2].kind
    assert (SETTINGS["width"].low, SETTINGS["width"].high) == (1, 64)
    assert SETTINGS["init"].choices == compare["init"][2].choices
    with pytest.raises(ActlabError, match="init must be one of auto, he, glorot, lecun, torch"):
        validate({"init": "kaiming"})
