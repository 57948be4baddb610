"""The batched compare engine against plain one-model-at-a-time PyTorch training; edge cases."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from sklearn.metrics import f1_score, mean_squared_error, r2_score
from torch import nn

from actlab.catalog import parse
from actlab.compare.training import Job, TrainConfig, macro_f1, state_dicts, train
from actlab.compare.training.data import _Data
from actlab.compare.training.generic import _OneByOne
from actlab.compare.training.loop import _trainers
from actlab.compare.training.mlp import _MLP
from actlab.compare.training.optim import _Optimizer
from actlab.diagnose import measures_saturation, unit_health
from actlab.errors import ActlabError
from actlab.torch import build
from actlab.torch import fast_path as _fast_path


@dataclass(frozen=True)
class SmallSplit:
    """The fields of actlab.data.Split that the engine reads."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_classes: int
    fingerprint: str
    target_scale: float = 1.0
    extra: dict = field(default_factory=dict)


def _standardise(X: np.ndarray, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    mean, std = X[:n_train].mean(0), X[:n_train].std(0)
    std[std == 0] = 1
    Z = ((X - mean) / std).astype(np.float32)
    return Z[:n_train], Z[n_train:]


@pytest.fixture(scope="module")
def digits() -> SmallSplit:
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    X_train, X_val = _standardise(X, 320)
    return SmallSplit(X_train, y[:320].astype(np.int64), X_val, y[320:].astype(np.int64),
                      "classification", 10, "digits-400")  # fmt: skip


@pytest.fixture(scope="module")
def diabetes() -> SmallSplit:
    X, y = load_diabetes(return_X_y=True)
    X_train, X_val = _standardise(X, 350)
    mean, scale = y[:350].mean(), y[:350].std()
    t = ((y - mean) / scale).astype(np.float32)[:, None]
    return SmallSplit(X_train, t[:350], X_val, t[350:], "regression", 0, "diabetes", float(scale))


CONFIG = TrainConfig(depth=2, width=16, epochs=3, batch_size=32, lr=1e-2)


def _last_blob(jobs: list[Job], split: SmallSplit, config: TrainConfig) -> tuple[list, bytes]:
    blobs: list[bytes] = []
    history = train(jobs, split, config, on_epoch=lambda e, recs, ckpt: blobs.append(ckpt()))
    return history, blobs[-1]


# ------------------------------------------------------------------------------------ the plain
# reference


def _init(lin: nn.Linear, scheme: str, act, g: torch.Generator) -> None:
    """The initialisation recipe (docs/ARCHITECTURE.md), written out with torch.nn.init."""
    w, b = lin.weight.data, lin.bias.data
    if scheme == "torch":
        nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
        nn.init.uniform_(b, -1 / math.sqrt(w.shape[1]), 1 / math.sqrt(w.shape[1]), generator=g)
        return
    if scheme == "he" and act is not None:
        if act.name == "leaky_relu":
            a = act.params["negative_slope"]
            nn.init.kaiming_normal_(w, a=a, nonlinearity="leaky_relu", generator=g)
        else:
            nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
    elif scheme == "glorot":
        nn.init.xavier_uniform_(w, generator=g)
    else:
        nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g)
    b.zero_()


def plain_mlp(spec: str, seed: int, n_in: int, n_out: int, config: TrainConfig) -> nn.Sequential:
    act = parse(spec)
    scheme = config.init if config.init != "auto" else act.spec.recommended_init
    g = torch.Generator().manual_seed(seed)
    sizes = [n_in] + [config.width] * config.depth + [n_out]
    layers: list[nn.Module] = []
    for k, (i, o) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(i, o)
        hidden = k < config.depth
        _init(lin, scheme, act if hidden else None, g)
        layers.append(lin)
        if hidden:
            layers.append(build(act))
    return nn.Sequential(*layers)


def plain_train(net: nn.Module, seed: int, split: SmallSplit, config: TrainConfig) -> list[dict]:
    """One model, the ordinary way: DataLoader-free loop, torch.optim, loss.backward()."""
    X, y = torch.as_tensor(split.X_train), torch.as_tensor(split.y_train)
    Xv, yv = torch.as_tensor(split.X_val), torch.as_tensor(split.y_val)
    loss_fn = nn.CrossEntropyLoss() if split.task == "classification" else nn.MSELoss()
    opt_cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    order = torch.Generator().manual_seed(seed + 2**32)
    epochs = []
    for _ in range(config.epochs):
        perm = torch.randperm(len(X), generator=order)
        losses, norms = [], []
        net.train()
        for s in range(0, len(X), config.batch_size):
            idx = perm[s : s + config.batch_size]
            loss = loss_fn(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            losses.append(loss.item())
            norms.append([w.grad.norm().item() for w in weights])
            opt.step()
        net.eval()
        with torch.no_grad():
            out = net(Xv)
        epochs.append({"train_loss": float(np.mean(losses)), "val_loss": loss_fn(out, yv).item(),
                       "grad_norms": np.mean(norms, axis=0), "out": out})  # fmt: skip
    return epochs


# ------------------------------------------------------------------------------------ equivalence


@pytest.mark.parametrize(
    "optimizer,weight_decay,init", [("adam", 1e-3, "auto"), ("sgd", 1e-2, "torch")]
)
def test_batched_equals_one_model_at_a_time(digits, optimizer, weight_decay, init):
    lr = 1e-2 if optimizer == "adam" else 0.1
    config = TrainConfig(depth=2, width=16, epochs=3, batch_size=32, lr=lr,
                         optimizer=optimizer, weight_decay=weight_decay, init=init)  # fmt: skip
    # interleaved activations: the engine groups them internally, the records stay in job order
    jobs = [Job("relu", 0), Job("tanh", 1), Job("relu", 2), Job("leaky_relu:negative_slope=0.1", 3),
            Job("gelu", 4)]  # fmt: skip
    history, blob = _last_blob(jobs, digits, config)
    states = state_dicts(blob)
    for k, job in enumerate(jobs):
        net = plain_mlp(job.activation, job.seed, 64, 10, config)
        ref = plain_train(net, job.seed, digits, config)
        for key, value in net.state_dict().items():
            torch.testing.assert_close(states[k][key], value, rtol=1e-4, atol=2e-5)
        assert [r.epoch for r in history[k]] == [1, 2, 3]
        for rec, want in zip(history[k], ref, strict=True):
            assert rec.job == k and not rec.diverged
            assert rec.train_loss == pytest.approx(want["train_loss"], rel=1e-4)
            assert rec.val_loss == pytest.approx(want["val_loss"], rel=1e-4)
            np.testing.assert_allclose(rec.grad_norms, want["grad_norms"], rtol=1e-4)
        pred = ref[-1]["out"].argmax(1).numpy()
        last = history[k][-1]
        assert last.metrics["val_accuracy"] == pytest.approx(float((pred == digits.y_val).mean()))
        assert last.metrics["val_macro_f1"] == pytest.approx(
            f1_score(digits.y_val, pred, average="macro", zero_division=0), abs=1e-6
        )
        # unit health from the reference network's own pre-activations, through autograd
        pre, h = [], torch.as_tensor(digits.X_val)
        for module in net:
            h = module(h)
            if isinstance(module, nn.Linear):
                pre.append(h)
        act = build(job.activation)
        for layer, z in enumerate(pre[: config.depth]):
            z = z.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(act(z).sum(), z)
            dead, sat = unit_health(d)
            assert last.dead_fraction[layer] == pytest.approx(float(dead))
            if measures_saturation(parse(job.activation)):
                assert last.saturated_fraction[layer] == pytest.approx(float(sat))
            else:  # ReLU-family units that are merely off are not "saturated": not measured
                assert math.isnan(last.saturated_fraction[layer])


def test_regression_matches_plain_loop_and_sklearn_metrics(diabetes):
    config = TrainConfig(depth=1, width=8, epochs=2, batch_size=64, lr=1e-2)
    history, blob = _last_blob([Job("silu", 7)], diabetes, config)
    net = plain_mlp("silu", 7, 10, 1, config)
    ref = plain_train(net, 7, diabetes, config)
    torch.testing.assert_close(
        state_dicts(blob)[0]["2.weight"], net[2].weight.detach(), rtol=1e-4, atol=1e-5
    )
    rec = history[0][-1]
    pred = ref[-1]["out"].numpy() * diabetes.target_scale
    truth = diabetes.y_val * diabetes.target_scale
    assert rec.val_loss == pytest.approx(ref[-1]["val_loss"], rel=1e-4)
    assert rec.metrics["val_rmse"] == pytest.approx(
        math.sqrt(mean_squared_error(truth, pred)), rel=1e-4
    )
    assert rec.metrics["val_r2"] == pytest.approx(r2_score(truth, pred), rel=1e-4, abs=1e-5)


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, 60)
    preds = np.stack(
        [rng.integers(0, 6, 60), target, np.full(60, 2), (target + 1) % 6]
    )  # classes 5: pred only
    got = macro_f1(torch.as_tensor(preds), torch.as_tensor(target), 6)
    want = [f1_score(target, p, average="macro", zero_division=0) for p in preds]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def _fast_modules() -> list[tuple[str, nn.Module]]:
    from actlab.catalog import names

    found = [(name, build(name)) for name in names() if parse(name).spec.elementwise]
    return [(name, m) for name, m in found if _fast_path(m) is not None] + [
        ("elu:alpha=0.5", build("elu:alpha=0.5")), ("celu:alpha=2", build("celu:alpha=2")),
        ("gelu:approximate=tanh", build("gelu:approximate=tanh")),
        ("leaky_relu:negative_slope=0.2", build("leaky_relu:negative_slope=0.2")),
        ("softplus:beta=2:threshold=5", build("softplus:beta=2:threshold=5")),
    ]  # fmt: skip


@pytest.mark.parametrize("name,module", _fast_modules())
def test_fast_kernels_equal_module_and_autograd(name, module):
    fast = _fast_path(module)
    z = torch.linspace(-30, 30, 4001).reshape(1, 4001)
    z = torch.cat([z, torch.zeros(1, 4001)]).requires_grad_(True)
    h = module(z)
    g = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    (want,) = torch.autograd.grad(h, z, g)
    out_h, out_g = torch.empty_like(h), torch.empty_like(h)
    fast[0](z.detach(), out_h)
    fast[1](g, z.detach(), out_h, out_g)
    torch.testing.assert_close(out_h, h.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out_g, want, rtol=1e-6, atol=1e-7)


def test_autograd_path_for_other_activations_matches(digits, monkeypatch):
    """An activation without an ATen fast path (softsign) trains through autograd on its slice."""
    jobs = [Job("softsign", 0), Job("relu", 1)]
    history, blob = _last_blob(jobs, digits, CONFIG)
    net = plain_mlp("softsign", 0, 64, 10, CONFIG)
    ref = plain_train(net, 0, digits, CONFIG)
    torch.testing.assert_close(
        state_dicts(blob)[0]["4.weight"], net[4].weight.detach(), rtol=1e-4, atol=2e-5
    )
    assert history[0][-1].val_loss == pytest.approx(ref[-1]["val_loss"], rel=1e-4)
    # and forcing relu off its fast path gives the same model

    monkeypatch.setattr("actlab.compare.training.mlp.fast_path", lambda m: None)
    slow_history, slow_blob = _last_blob(jobs, digits, CONFIG)
    torch.testing.assert_close(
        state_dicts(slow_blob)[1]["0.weight"], state_dicts(blob)[1]["0.weight"]
    )
    assert slow_history[1][-1].val_loss == pytest.approx(history[1][-1].val_loss, rel=1e-6)


# ------------------------------------------------------------------------------------ the stacked
# MLP's shortcuts, each against the library call it replaces


def _stack(split, jobs, config):
    """The stacked-MLP trainer of ``jobs``, as one stack."""

    acts = [parse(j.activation) for j in jobs]
    ((trainer, _),) = _trainers(jobs, acts, _Data(split), config, parts=1)
    return trainer


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_engine_optimizer_equals_torch_optim_bit_for_bit(optimizer, weight_decay):

    config = TrainConfig(lr=1e-2, optimizer=optimizer, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(0)
    # a flat stack, a vmapped-style (M, in, out) tensor, and one that gets no gradient at first
    init = [torch.randn(500, generator=g), torch.randn(3, 4, 5, generator=g), torch.randn(7)]
    ours, theirs = ([p.clone().requires_grad_(True) for p in init] for _ in range(2))
    mine = _Optimizer(ours, config)
    if optimizer == "adam":
        stock = torch.optim.Adam(theirs, lr=1e-2, weight_decay=weight_decay, fused=True)
    else:
        stock = torch.optim.SGD(theirs, lr=1e-2, weight_decay=weight_decay)
    for step in range(5):
        for a, b in zip(ours, theirs, strict=True):
            if step < 2 and a is ours[2]:
                continue  # no gradient yet: skipped, no state (as torch.optim does)
            a.grad = torch.randn(a.shape, generator=g)
            b.grad = a.grad.clone()
        mine.step()
        stock.step()
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    got, want = mine.state_dict()["state"], stock.state_dict()["state"]
    assert sorted(got) == sorted(want) == ([0, 1, 2] if optimizer == "adam" else [])
    for k in want:  # the same layout: checkpoints written through torch.optim load
        assert sorted(got[k]) == sorted(want[k])
        assert all(torch.equal(got[k][n], want[k][n]) for n in want[k])
    again = _Optimizer(ours, config)
    again.load_state_dict(stock.state_dict())
    assert all(torch.equal(again.state[k][n], want[k][n]) for k in want for n in want[k])


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_stacked_adam_inside_the_backward_equals_torch_optim(digits, weight_decay):
    # the stacked MLP runs Adam layer by layer inside its backward pass; the same stack with
    # torch.optim.Adam(fused=True) stepping the flat tensor after the backward ends bit-identical
    config = TrainConfig(depth=2, width=8, batch_size=100, lr=1e-2, weight_decay=weight_decay)
    jobs = [Job("relu", 0), Job("tanh", 1)]
    ours, stock = (_stack(digits, jobs, config) for _ in range(2))
    opt = torch.optim.Adam([stock.flat], lr=1e-2, weight_decay=weight_decay, fused=True)
    stock.optimizer = SimpleNamespace(adam=False, step=opt.step)  # stepped after the backward
    perms = torch.stack([torch.randperm(len(digits.X_train)) for _ in jobs])
    for _ in range(2):
        got, want = ours.run_epoch(perms, lambda: None), stock.run_epoch(perms, lambda: None)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert torch.equal(ours.flat, stock.flat)
    got, want = ours.optimizer.state[0], opt.state[stock.flat]
    assert all(torch.equal(got[k], want[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    assert float(want["step"]) == 2 * math.ceil(len(digits.X_train) / 100)


def test_engine_does_not_import_dynamo():
    """torch.optim's optimisers import torch._dynamo on construction (~1.5 s); the engine uses
    none, on any of its paths."""
    import subprocess
    import sys

    code = (
        "import sys; from actlab import data; "
        "from actlab.compare.training import Job, TrainConfig, train; "
        "s = data.split(data.load('iris')); "
        "train([Job('relu', 0), Job('prelu', 0)], s, TrainConfig(epochs=2, width=4)); "
        "train([Job('tanh', 0)], s, TrainConfig(epochs=1, width=4, optimizer='sgd')); "
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_fast_unit_health_equals_diagnose():

    d = torch.randn(3, 50, 40, generator=torch.Generator().manual_seed(0)) * 0.02
    d[0, :, :5] = 0  # dead
    d[1] = 1.0
    d[1, :26, 5:10] = 0.001  # small on 26 of 50 rows: saturated
    d[1, :25, 10:15] = -0.001  # on exactly half: not saturated
    d[2, :, 15] = -0.005  # small everywhere, not zero: saturated
    d[2, :, 16] = torch.where(torch.arange(50) < 49, 0.0, 1e-30)  # zero but once: not dead
    want = unit_health(d)
    got = _MLP._health(d.clone(), torch.empty_like(d))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert want[0][0] == 5 / 40 and want[1][1] == 5 / 40  # the cases above are really there


def test_diverged_rows_are_zeroed_in_the_flat_buffers(digits):
    config = TrainConfig(depth=2, width=16, epochs=2, batch_size=32, lr=1e-2, init="glorot")
    jobs = [Job("leaky_relu:negative_slope=1e30", 0), Job("tanh", 0), Job("relu", 1)]
    trainer = _stack(digits, jobs, config)
    perms = torch.stack([torch.randperm(len(digits.X_train)) for _ in jobs])
    loss, _ = trainer.run_epoch(perms, lambda: None)
    assert not torch.isfinite(loss[0]) and torch.isfinite(loss[1:]).all()
    trainer.freeze(torch.tensor([0]))
    before = trainer.flat.clone()
    loss, norms = trainer.run_epoch(perms, lambda: None)
    state = trainer.optimizer.state[0]
    for flat in (trainer.flat, state["exp_avg"], state["exp_avg_sq"]):
        views = trainer._views(flat)
        assert all(torch.count_nonzero(v[0]) == 0 for v in views)  # frozen: all zero
        assert all(torch.count_nonzero(v[1:]) > 0 for v in views[: trainer.n_weights])
    assert torch.equal(norms[0], torch.zeros(3)) and not torch.equal(trainer.flat, before)


# ------------------------------------------------------------------------------------ divergence,
# resume, deadline


def test_diverged_model_is_frozen_and_others_are_untouched(digits):
    config = TrainConfig(depth=2, width=16, epochs=3, batch_size=32, lr=1e-2, init="glorot")
    # a slope of 1e30 on a Glorot-initialised net overflows to inf/NaN in the first epoch
    seen: list[list[int]] = []
    history = train([Job("leaky_relu:negative_slope=1e30", 0), Job("tanh", 0)], digits, config,
                    on_epoch=lambda e, recs, ckpt: seen.append([r.job for r in recs]))  # fmt: skip
    assert [r.epoch for r in history[0]] == [1] and history[0][0].diverged
    assert math.isnan(history[0][0].val_loss) and math.isnan(history[0][0].metrics["val_accuracy"])
    assert seen == [[0, 1], [1], [1]]  # no records for the frozen model after its epoch
    alone = train([Job("tanh", 0)], digits, config)
    assert [r.diverged for r in history[1]] == [False] * 3
    for got, want in zip(history[1], alone[0], strict=True):
        assert got.val_loss == pytest.approx(want.val_loss, rel=1e-5)
        assert got.metrics == pytest.approx(want.metrics, rel=1e-5)


def _strip(history):
    # repr() so that NaN ("not measured") compares equal to itself; still exact for floats
    return [[repr((r.epoch, r.train_loss, r.val_loss, r.metrics, r.grad_norms, r.dead_fraction,
                   r.saturated_fraction, r.diverged)) for r in h] for h in history]  # fmt: skip


@pytest.mark.parametrize(
    "jobs",
    [[Job("relu", 0), Job("elu", 1), Job("sigmoid", 2)],
     [Job("prelu", 0), Job("relu", 1), Job("prelu", 2)]],  # a generic trainer beside the stacks
    ids=["stacked", "mixed"],
)  # fmt: skip
def test_resume_is_bit_identical(digits, jobs):
    config = TrainConfig(depth=2, width=16, epochs=4, batch_size=32, lr=1e-2)
    full, full_blob = _last_blob(jobs, digits, config)

    class Killed(Exception):
        pass

    saved: list[bytes] = []

    def crash_after_two(epoch, records, checkpoint):
        saved.append(checkpoint())
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(jobs, digits, config, on_epoch=crash_after_two)
    blobs: list[bytes] = []
    rest = train(
        jobs, digits, config, resume_from=saved[-1], on_epoch=lambda e, r, c: blobs.append(c())
    )
    assert [[r.epoch for r in h] for h in rest] == [[3, 4]] * 3
    assert _strip(rest) == [h[2:] for h in _strip(full)]  # exact equality, not approx
    for a, b in zip(state_dicts(blobs[-1]), state_dicts(full_blob), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run resumed again trains nothing; a checkpoint of other settings is refused
    assert train(jobs, digits, config, resume_from=blobs[-1]) == [[], [], []]
    with pytest.raises(ActlabError, match="other jobs, data or settings"):
        train(jobs, digits, TrainConfig(depth=2, width=16, epochs=4, batch_size=32, lr=2e-2),
              resume_from=saved[-1])  # fmt: skip
    with pytest.raises(ActlabError, match="not a readable actlab checkpoint"):
        train(jobs, digits, config, resume_from=b"garbage")


def test_deadline_stops_at_an_epoch_boundary(digits):
    jobs = [Job("relu", 0)]
    assert train(jobs, digits, CONFIG, deadline=time.monotonic() - 1) == [[]]
    deadline = time.monotonic() + 0.2

    def wait_past_deadline(epoch, records, checkpoint):
        time.sleep(max(0.0, deadline - time.monotonic()) + 0.01)

    history = train(jobs, digits, CONFIG, deadline=deadline, on_epoch=wait_past_deadline)
    assert [r.epoch for r in history[0]] == [1]


def test_progress_reports_epochs_best_and_eta(digits):
    events: list[dict] = []
    train([Job("relu", 0), Job("tanh", 0)], digits, CONFIG, progress=events.append)
    ends = {
        e["epoch"]: e for e in events if e["step"] == e["steps"]
    }  # the last report of each epoch
    # a step is one optimisation step of one stack of models (one stack per worker thread)
    assert sorted(ends) == [1, 2, 3] and ends[1]["steps"] % 10 == 0 and ends[1]["epochs"] == 3
    label, value = ends[3]["best"]
    assert ("relu" in label or "tanh" in label) and 0 < value <= 1
    assert ends[3]["eta_s"] == pytest.approx(0, abs=1e-9) and ends[1]["eta_s"] > 0


# ------------------------------------------------------------------------------------ bring your
# own network

NETS = """
import torch
from torch import nn
from actlab.torch import build

def small(spec):
    return nn.Sequential(nn.Linear(64, 12), build(spec), nn.Linear(12, 10))

def dropout(spec):
    return nn.Sequential(nn.Linear(64, 12), build(spec), nn.Dropout(0.2), nn.Linear(12, 10))

def not_a_module(spec):
    return "relu"

def wrong_shape(spec):
    return nn.Linear(64, 3)
"""


@pytest.fixture()
def nets_file(tmp_path):
    path = tmp_path / "user_nets.py"
    path.write_text(NETS)
    return path


def test_byo_vmapped_seeds_equal_plain_loop(digits, nets_file):
    config = TrainConfig(epochs=2, batch_size=32, lr=1e-2, model=f"{nets_file}:small")
    jobs = [Job("relu", 0), Job("relu", 1), Job("tanh", 0)]
    history, blob = _last_blob(jobs, digits, config)
    states = state_dicts(blob)
    for k, job in enumerate(jobs):
        torch.manual_seed(job.seed)
        net = nn.Sequential(nn.Linear(64, 12), build(job.activation), nn.Linear(12, 10))
        ref = plain_train(net, job.seed, digits, config)
        for key, value in net.state_dict().items():
            torch.testing.assert_close(states[k][key], value, rtol=1e-4, atol=2e-5)
        rec = history[k][-1]
        assert rec.val_loss == pytest.approx(ref[-1]["val_loss"], rel=1e-4)
        np.testing.assert_allclose(rec.grad_norms, ref[-1]["grad_norms"], rtol=1e-4)
        assert (
            len(rec.dead_fraction) == len(rec.saturated_fraction) == 1
        )  # one activation module, hooked


def test_byo_with_dropout_trains_one_model_at_a_time(digits, nets_file):

    config = TrainConfig(epochs=2, batch_size=32, lr=1e-2, model=f"{nets_file}:dropout")
    jobs = [Job("relu", 0), Job("relu", 1)]
    trainers = _trainers(jobs, [parse("relu")] * 2, _Data(digits), config)
    assert isinstance(trainers[0][0], _OneByOne)
    history, blob = _last_blob(jobs, digits, config)
    assert all(len(h) == 2 and not h[-1].diverged for h in history)
    # the documented recipe: seed, build, seed again (the dropout stream), then the plain loop
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(64, 12), build("relu"), nn.Dropout(0.2), nn.Linear(12, 10))
    torch.manual_seed(1)
    ref = plain_train(net, 1, digits, config)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(state_dicts(blob)[1][key], value, rtol=1e-4, atol=2e-5)
    assert history[1][-1].val_loss == pytest.approx(ref[-1]["val_loss"], rel=1e-4)
    # resume works on this path too
    saved: list[bytes] = []
    train(
        jobs,
        digits,
        TrainConfig(**{**config.__dict__, "epochs": 1}),
        on_epoch=lambda e, r, c: saved.append(c()),
    )
    rest = train(jobs, digits, config, resume_from=saved[0])
    assert _strip(rest) == [h[1:] for h in _strip(history)]


@pytest.mark.parametrize(
    "model,message",
    [
        ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("{file}:missing", "has no function 'missing'"),
        ("{file}:not_a_module", "returned str; it must return a torch.nn.Module"),
        ("{file}:wrong_shape", r"must return logits of shape \(2, 10\), got \(2, 3\)"),
        ("/nonexistent/dir/nets.py:make", "does not exist"),
    ],
)
def test_byo_errors_are_clear(digits, nets_file, model, message):
    with pytest.raises(ActlabError, match=message):
        train([Job("relu", 0)], digits, TrainConfig(epochs=1, model=model.format(file=nets_file)))


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"depth": 0}, "depth must be a whole number >= 1"),
        ({"width": 2.5}, "width must be a whole number"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
        (
            {"optimizer": "adamw"},
            "optimizer must be one of adam, sgd, got 'adamw'; did you mean 'adam'",
        ),
        ({"init": "kaiming"}, "init must be one of auto, he, glorot, lecun, torch"),
        ({"model": "nocolon"}, "model must look like 'module:function'"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ActlabError, match=message):
        TrainConfig(**kwargs)
    # the one check: the study's settings refuse the same value with the same words
    from actlab.compare.config import CompareConfig

    with pytest.raises(ActlabError, match=message):
        CompareConfig.from_settings(**kwargs)


def test_train_config_is_a_cell_of_the_study():
    """TrainConfig.of: a cell's factor values, the study's other settings, its metric as select."""
    from actlab.compare.config import CompareConfig

    c = CompareConfig.from_settings(lr=[1e-3, 1e-2], depth=[1, 3], epochs=4, metric="f1_macro")
    got = [TrainConfig.of(c, cell) for cell in c.model.cells()]
    assert [(g.depth, g.lr) for g in got] == [(1, 1e-3), (1, 1e-2), (3, 1e-3), (3, 1e-2)]
    assert {(g.epochs, g.select, g.width) for g in got} == {(4, "val_macro_f1", 128)}


@pytest.mark.parametrize(
    "pairs,message",
    [
        ([], "non-empty sequence"),
        ([("relu", 0), ("relu", 0)], "repeats activation 'relu' with seed 0"),
        ([("relu", -1)], r"seed must be an integer in \[0, 2\*\*32\)"),
        ([("softmax", 0)], "not elementwise"),
        ([("relux", 0)], "relu"),
        ([(3, 0)], "activation must be a spec string"),
    ],
)
def test_bad_jobs(digits, pairs, message):
    with pytest.raises(ActlabError, match=message):
        train([Job(a, s) for a, s in pairs], digits, CONFIG)


def test_a_job_carries_its_parsed_activation_and_pickles_as_its_spec():
    import pickle

    from actlab.catalog import Activation

    job = Job("leaky_relu:alpha=0.1", 3)
    assert isinstance(job.activation, Activation) and str(job.activation) == (
        "leaky_relu:negative_slope=0.1")
    again = pickle.loads(pickle.dumps(job))
    assert str(again.activation) == str(job.activation) and again.seed == 3


def test_learnable_activations_train_beside_the_stacks_and_equal_a_plain_loop(digits):
    # PReLU's slope and a learnable Swish beta cannot live in the stacked tensors: the generic path
    # trains them, next to stacked ReLU models, with the same init, data order and optimiser
    config = TrainConfig(depth=2, width=16, epochs=2, batch_size=32, lr=1e-2)
    jobs = [Job("prelu", 0), Job("relu", 0), Job("prelu", 1), Job("silu:learnable=true", 2)]
    history, blob = _last_blob(jobs, digits, config)
    states = state_dicts(blob)
    for k, job in enumerate(jobs):
        net = plain_mlp(job.activation, job.seed, 64, 10, config)
        ref = plain_train(net, job.seed, digits, config)
        for rec, want in zip(history[k], ref, strict=True):
            assert rec.train_loss == pytest.approx(want["train_loss"], rel=1e-4)
            assert rec.val_loss == pytest.approx(want["val_loss"], rel=1e-4)
        for name, value in net.state_dict().items():
            torch.testing.assert_close(states[k][name], value, rtol=1e-4, atol=1e-5)
    slope = states[0]["1.weight"]  # the learned PReLU slope moved away from its initial 0.25
    assert slope.shape == (1,) and float(slope) != 0.25


def test_byo_vmapped_health_probe_equals_model_by_model(digits, monkeypatch):
    """The one-pass probe (hooked activations' inputs out of the vmapped validation call) gives
    the model-by-model probe's outputs and unit health exactly, on the CNN example."""
    from pathlib import Path

    from actlab.compare.training.generic import _Vmapped

    example = Path(__file__).resolve().parent.parent / "examples" / "cnn_digits.py"
    config = TrainConfig(epochs=1, model=f"{example}:build")
    jobs = [Job("relu", 0), Job("relu", 1), Job("sigmoid", 0), Job("sigmoid", 1)]
    data = _Data(digits)
    trainers = _trainers(jobs, [parse(j.activation) for j in jobs], data, config)
    for trainer, rows in trainers:
        assert isinstance(trainer, _Vmapped)
        perms = torch.stack([torch.randperm(data.n_train) for _ in rows])
        trainer.run_epoch(perms, lambda: None)
        fast = trainer._probed()
        assert fast is not None  # elementwise modules without parameters: the one-pass probe
        with monkeypatch.context() as m:
            m.setattr(trainer, "_probed", lambda: None)
            slow = trainer.evaluate()
        assert torch.equal(fast[0], slow[0])
        np.testing.assert_array_equal(np.array(fast[1]), np.array(slow[1]))
        np.testing.assert_array_equal(np.array(fast[2]), np.array(slow[2]))
        assert np.array(fast[1]).shape == (len(rows), 3)  # three activation calls per model
