"""Devices: choosing one (availability mocked: no GPU is needed), the clear errors, and the engine's
``.to(device)`` plumbing checked on PyTorch's ``meta`` device (any tensor left on the CPU makes an
op between it and a meta tensor fail, which is what would break on a GPU)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import torch

import actlab.compare as compare
from actlab import catalog, data, devices
from actlab.cli import main
from actlab.compare import training as engine
from actlab.compare.store import Store
from actlab.compare.training.checkpoint import _to_cpu
from actlab.compare.training.data import _Data
from actlab.compare.training.generic import (
    _build_net,
    _generic_trainer,
    _OneByOne,
    _plain_mlp,
    _Vmapped,
)
from actlab.compare.training.metrics import _val_metrics
from actlab.compare.training.mlp import _MLP
from actlab.errors import ActlabError


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Pretend the machine has ``cuda`` GPUs and MPS or not (only the availability checks)."""

    def set_up(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake GPU {i}")
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_up


@pytest.mark.parametrize(
    ("cuda", "mps", "want"),
    [(0, False, "cpu"), (0, True, "mps"), (2, True, "cuda:0"), (1, False, "cuda:0")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda: int, mps: bool, want: str) -> None:
    machine(cuda=cuda, mps=mps)
    assert str(devices.resolve("auto")) == want
    assert str(devices.resolve(None)) == want


def test_explicit_devices_when_present(machine) -> None:
    machine(cuda=2, mps=True)
    assert devices.resolve("cuda") == torch.device("cuda", 0)
    assert devices.resolve(" CUDA:1 ") == torch.device("cuda", 1)
    assert devices.resolve("mps") == torch.device("mps")
    assert devices.resolve("cpu") == torch.device("cpu")
    assert devices.describe("cuda:1")["name"] == "Fake GPU 1"
    assert "cuda:1 (Fake GPU 1)" in devices.available()


@pytest.mark.parametrize(
    ("cuda", "mps", "asked", "says"),
    [
        (0, False, "cuda", "no CUDA GPU; found cpu ("),
        (0, True, "cuda:0", "no CUDA GPU; found cpu, mps ("),
        (1, False, "cuda:1", "there is 1 CUDA GPU(s); found cpu, cuda:0 (Fake GPU 0)"),
        (1, False, "mps", "no Apple MPS backend; found cpu, cuda:0 (Fake GPU 0)"),
    ],
)
def test_missing_device_is_one_line_naming_what_was_found(
    machine, cuda: int, mps: bool, asked: str, says: str
) -> None:
    machine(cuda=cuda, mps=mps)
    with pytest.raises(ActlabError) as err:
        devices.resolve(asked)
    text = str(err.value)
    assert "\n" not in text
    assert f"device '{asked}' is not available" in text and says in text
    assert "PyTorch " in text and "use --device auto or --device cpu" in text


@pytest.mark.parametrize(("asked", "hint"), [("gpu", "'cuda'"), ("cuda:x", "cuda:N"), (3, "int")])
def test_unknown_device_names_the_choices(asked: object, hint: str) -> None:
    with pytest.raises(ActlabError, match="auto, cpu, cuda, cuda:N, mps") as err:
        devices.resolve(asked)  # type: ignore[arg-type]
    assert hint in str(err.value)


def test_cli_missing_device_exits_2_and_creates_nothing(
    machine, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    machine(cuda=0, mps=False)
    out = tmp_path / "run"
    code = main(["compare", "--dataset", "iris", "--epochs", "1", "--device", "cuda",
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "device 'cuda' is not available" in err and "found cpu" in err


def test_diagnose_refuses_a_missing_device(machine, capsys: pytest.CaptureFixture) -> None:
    machine(cuda=0, mps=False)
    code = main(["diagnose", "--demo", "vanishing", "--epochs", "0", "--device", "mps"])
    err = capsys.readouterr().err
    assert code == 2 and "device 'mps' is not available" in err


# ------------------------------------------------------------------ the engine on other devices


META = torch.device("meta")


def _on(device: torch.device, *tensors: torch.Tensor) -> bool:
    return all(t.device == device for t in tensors)


def test_data_move_once_to_the_device_after_the_checks() -> None:
    split = data.split(data.load("iris"))
    d = _Data(split, META)
    assert _on(META, d.X_train, d.y_train, d.X_val, d.y_val)
    assert d.fingerprint == _Data(split).fingerprint  # computed on the CPU values


def test_stacked_mlp_keeps_every_tensor_on_the_device() -> None:
    split = data.split(data.load("iris"))
    d = _Data(split, META)
    # fused Adam has no meta kernel; SGD runs the same code path up to the update
    cfg = engine.TrainConfig(width=8, depth=2, optimizer="sgd")
    acts = [catalog.parse(a) for a in ("relu", "relu", "tanh", "gelu", "sigmoid")]
    mlp = _MLP(acts, [0, 1, 0, 0, 0], d, cfg)
    assert _on(META, mlp.flat, mlp.flat.grad, mlp.mask, mlp.saturation_scale, *mlp.params)
    perms = torch.stack([torch.randperm(d.n_train) for _ in acts]).to(META)
    for _ in range(2):  # the second epoch runs on the prepared plans and buffers
        loss, norms = mlp.run_epoch(perms, lambda: None)
    out, dead, sat = mlp.evaluate()
    val_loss, metrics = _val_metrics(out, d)
    assert _on(META, loss, norms, out, dead, sat, val_loss, *metrics.values())
    mlp.freeze(torch.tensor([1]))  # indices come back from the CPU-side divergence check
    assert mlp.frozen.device.type == "cpu" and bool(mlp.frozen[1])
    assert _on(META, *mlp.state()["params"])


def test_torch_func_path_and_user_networks_run_on_the_device() -> None:
    split = data.split(data.load("iris"))
    d = _Data(split, META)
    cfg = engine.TrainConfig(width=8, depth=1, optimizer="sgd")
    nets = [_plain_mlp(catalog.parse("prelu"), s, d, cfg) for s in (0, 1)]
    assert all(_on(META, *n.parameters()) for n in nets)
    trainer = _generic_trainer(nets, d, cfg)
    assert isinstance(trainer, _Vmapped)  # batched with torch.func, on the device
    perms = torch.stack([torch.randperm(d.n_train) for _ in nets]).to(META)
    loss, norms = trainer.run_epoch(perms, lambda: None)
    assert _on(META, loss, norms, *trainer.params.values())


def test_user_network_is_initialised_on_the_cpu_then_moved(tmp_path: Path) -> None:
    split = data.split(data.load("iris"))
    d = _Data(split, META)
    cfg = engine.TrainConfig(init="he", model="x:y")
    net = _build_net(
        lambda spec: torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(),
                                         torch.nn.Linear(5, 3)),
        catalog.parse("relu"), 0, d, cfg,
    )  # fmt: skip
    assert all(p.device == META for p in net.parameters())


def test_checkpoints_hold_cpu_tensors() -> None:
    state = {"a": torch.zeros(2, device=META), "b": [torch.ones(1, device=META)], "c": 3}
    with pytest.raises(NotImplementedError):  # meta tensors have no data to copy out...
        _to_cpu(state)
    cpu = _to_cpu({"a": torch.zeros(2), "b": (torch.ones(1),), "c": 3})
    assert cpu["c"] == 3 and isinstance(cpu["b"], tuple) and cpu["a"].device.type == "cpu"


def test_train_passes_the_device_and_refuses_a_missing_one(machine) -> None:
    machine(cuda=0, mps=False)
    split = data.split(data.load("iris"))
    jobs = [engine.Job("relu", 0)]
    with pytest.raises(ActlabError, match="device 'cuda' is not available"):
        engine.train(jobs, split, engine.TrainConfig(epochs=1, width=4), device="cuda")
    a = engine.train(jobs, split, engine.TrainConfig(epochs=2, width=4), device="auto")
    b = engine.train(jobs, split, engine.TrainConfig(epochs=2, width=4))
    assert a[0][-1].val_loss == b[0][-1].val_loss


# ------------------------------------------------------------------ what the store records


def test_sessions_record_the_device_and_a_resume_elsewhere_is_reported(tmp_path: Path) -> None:
    res = compare.run("iris", activations=["relu"], seeds=1, epochs=1, width=4,
                      out=tmp_path / "r", device="cpu", report=False)  # fmt: skip
    label = devices.label(devices.describe("cpu"))
    session = res.sessions[0]["versions"]
    assert session["device"] == label and session["backend"] == "local (this process)"
    assert "torch" in session and "PyTorch" in label
    assert not any("more than one device" in n for n in res.notes)
    # a second session on a GPU (written as a resumed run on another machine would)
    gpu = {**session, "device": "cuda:0 (NVIDIA H200, PyTorch 2.13.0 with CUDA 12.8)"}
    with sqlite3.connect(Store.path(tmp_path / "r")) as conn:
        conn.execute(
            "INSERT INTO sessions (started, finished, outcome, versions) VALUES (?, ?, ?, ?)",
            (time.time(), time.time(), "complete", json.dumps(gpu)),
        )
    res = compare.load(tmp_path / "r")
    note = next(n for n in res.notes if "more than one device" in n)
    assert label in note and "NVIDIA H200" in note
    from actlab.compare import report

    md, page = report.markdown(res), report.html_page(res)
    assert f"- session 1: {label}, local (this process), complete" in md
    assert "- session 2: cuda:0 (NVIDIA H200" in md and "more than one device" in md
    assert "NVIDIA H200" in page and "local (this process)" in page


def test_one_model_at_a_time_path_runs_on_the_device() -> None:
    split = data.split(data.load("iris"))
    d = _Data(split, META)
    cfg = engine.TrainConfig(optimizer="sgd", model="x:y")

    def factory(spec: str) -> torch.nn.Module:  # dropout: vmap refuses it, one model at a time
        return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                   torch.nn.Linear(6, 3))  # fmt: skip

    nets = []
    for seed in (0, 1):
        net = _build_net(factory, catalog.parse("relu"), seed, d, cfg)
        net._actlab_seed = seed
        nets.append(net)
    trainer = _generic_trainer(nets, d, cfg)
    assert isinstance(trainer, _OneByOne)
    perms = torch.stack([torch.randperm(d.n_train) for _ in nets]).to(META)
    loss, norms = trainer.run_epoch(perms, lambda: None)
    assert _on(META, loss, norms, *nets[0].parameters())
    assert trainer.dev_rng is None and "device_rng" not in trainer.state()  # meta: no generator
