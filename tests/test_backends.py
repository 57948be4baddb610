"""Backends: the local one, and Ray on one small local instance (2 CPUs) shared by these tests.

The Ray backend must give the same store as the local one (same seeds, same groups), retry a group
whose worker is killed from its last checkpoint, leave the driver as the store's only writer, and
leave a resumable store when the driver is interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import actlab.compare as compare
from actlab import data
from actlab.cli import main
from actlab.compare import backends
from actlab.compare import training as engine
from actlab.compare.backends import GroupEpoch, GroupTask, LocalBackend
from actlab.compare.store import Store
from actlab.errors import ActlabError

TINY = {"activations": ["relu", "tanh"], "seeds": 2, "epochs": 4, "width": 8, "depth": 1,
        "report": False}  # fmt: skip


def _store_rows(directory: Path) -> dict[str, list[tuple]]:
    """Everything a run stored that training decides (not wall times, sessions or paths)."""
    with sqlite3.connect(Store.path(directory)) as conn:
        return {
            "models": conn.execute("SELECT * FROM models ORDER BY id").fetchall(),
            "epochs": conn.execute(
                "SELECT model_id, epoch, train_loss, val_loss, metrics, grad_norms, dead_fraction, "
                "saturated_fraction, diverged FROM epochs ORDER BY model_id, epoch"
            ).fetchall(),
            "checkpoint": conn.execute("SELECT epoch, blob FROM checkpoint").fetchall(),
        }


# ------------------------------------------------------------------ without Ray


def test_make_checks_the_name_and_the_address() -> None:
    assert isinstance(backends.make("local"), LocalBackend)
    with pytest.raises(ActlabError, match=r"backend must be one of local, ray.*'ray'"):
        backends.make("rey")
    with pytest.raises(ActlabError, match="--ray-address goes with --backend ray"):
        backends.make("local", ray_address="10.0.0.1:6379")


def test_ray_missing_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ActlabError, match=r'pip install "actlab\[ray\]"'):
        backends.make("ray")
    out = tmp_path / "run"
    code = main(["compare", "--dataset", "iris", "--backend", "ray", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and err.count("\n") == 1 and "actlab[ray]" in err


def test_local_backend_trains_each_group_as_one_engine_call() -> None:
    split = data.split(data.load("iris"))
    groups = [
        GroupTask((engine.Job("relu", 0), engine.Job("relu", 1)),
              engine.TrainConfig(epochs=2, width=4)),
        GroupTask((engine.Job("tanh", 3),), engine.TrainConfig(epochs=3, width=4, lr=1e-2)),
    ]  # fmt: skip
    got: list[GroupEpoch] = []
    blobs: list[bytes | None] = []

    def on_epoch(update: GroupEpoch) -> None:
        got.append(update)
        blobs.append(update.checkpoint())  # here: locally it is the state right now

    LocalBackend().train(groups, split, on_epoch=on_epoch, device="cpu")
    assert [(u.group, u.epoch) for u in got] == [(0, 1), (0, 2), (1, 1), (1, 2), (1, 3)]
    # a checkpoint for every epoch but a group's last; it resumes the group where it stopped
    assert [b is None for b in blobs] == [False, True, False, False, True]
    alone = engine.train(list(groups[1].jobs), split, groups[1].config)
    assert [r.val_loss for r in alone[0]] == [u.records[0].val_loss for u in got[2:]]
    tail = engine.train(list(groups[1].jobs), split, groups[1].config, resume_from=blobs[3])
    assert tail[0][0].val_loss == got[4].records[0].val_loss
    assert "pid" in got[0].worker and got[0].device.startswith("cpu (")


# ------------------------------------------------------------------ Ray


@pytest.fixture(scope="session")
def ray_local() -> Any:
    """One small local Ray instance for every Ray test (starting one costs seconds)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # address="local": a fresh instance of our own, never someone else's cluster
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def two_threads() -> Any:
    """Local runs with 2 threads (2 stacks), as a Ray group on the 2-CPU instance gets: on a
    machine with more cores the two would stack the models differently (last-bit differences)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class _Hooked(backends.RayBackend):
    """A Ray backend whose driver-side epoch hand-over runs ``hook`` after the caller's."""

    def __init__(self, hook: Any, **options: Any) -> None:
        super().__init__(**options)
        self.hook = hook

    def train(self, groups, split, *, on_epoch, **kwargs) -> None:  # type: ignore[override]
        def both(update: GroupEpoch) -> None:
            on_epoch(update)
            self.hook(update)

        super().train(groups, split, on_epoch=both, **kwargs)


def test_ray_gives_the_same_store_as_local(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = compare.run("iris", out=tmp_path / "local", **TINY)
    writers: list[tuple[int, str]] = []
    real_save = Store.save_epoch

    def save(self: Store, *args: Any, **kwargs: Any) -> None:
        writers.append((os.getpid(), threading.current_thread().name))
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(Store, "save_epoch", save)
    remote = compare.run("iris", out=tmp_path / "ray", backend="ray", **TINY)
    assert remote.complete and local.complete
    assert _store_rows(tmp_path / "ray") == _store_rows(tmp_path / "local")
    # the driver alone wrote the store: every epoch from this process's main thread
    assert writers == [(os.getpid(), threading.main_thread().name)] * TINY["epochs"]
    session = remote.sessions[0]["versions"]
    assert session["backend"].startswith("Ray (2 CPUs") and session["device"].startswith("cpu (")


def test_a_grid_on_ray_gives_the_same_store_as_local(ray_local: Any, tmp_path: Path) -> None:
    grid = {**TINY, "lr": [1e-3, 1e-2], "depth": [1, 2], "epochs": 2}  # 4 groups
    local = compare.run("iris", out=tmp_path / "local", **grid)
    remote = compare.run("iris", out=tmp_path / "ray", backend="ray", **grid)
    with Store.open(tmp_path / "ray") as store:
        assert len({m["group"] for m in store.models()}) == 4
    assert _store_rows(tmp_path / "ray") == _store_rows(tmp_path / "local")
    assert remote.summary == local.summary and remote.headline == local.headline


def test_ray_groups_equal_local_groups_and_share_the_work(ray_local: Any) -> None:
    iris = data.load("iris")
    splits = {0: data.split(iris), "other": data.split(iris, seed=1)}
    cfg = engine.TrainConfig(epochs=3, width=8, depth=1)
    groups = [
        GroupTask((engine.Job("relu", 0), engine.Job("relu", 1)), cfg),
        GroupTask((engine.Job("tanh", 0), engine.Job("gelu", 0)), cfg),
        GroupTask((engine.Job("elu", 0),), engine.TrainConfig(epochs=2, width=8, depth=1, lr=0.01),
                  split="other"),
    ]  # fmt: skip

    def collect(backend: Any) -> tuple[dict, set]:
        got, workers = {}, set()

        def on_epoch(u: GroupEpoch) -> None:
            got[u.group, u.epoch] = [(r.job, r.train_loss, r.val_loss, r.metrics, r.grad_norms)
                                     for r in u.records]  # fmt: skip
            workers.add(u.worker)

        backend.train(groups, splits, on_epoch=on_epoch, device="cpu")
        return got, workers

    local, _ = collect(LocalBackend())
    remote, workers = collect(backends.RayBackend())
    assert remote == local and len(local) == 8
    alone = engine.train(list(groups[2].jobs), splits["other"], groups[2].config)
    assert [r.metrics for r in alone[0]] == [remote[2, e][0][3] for e in (1, 2)]  # its own split
    assert f"pid {os.getpid()}" not in " ".join(workers)  # trained in Ray's worker processes


def test_a_killed_worker_is_retried_from_its_checkpoint(ray_local: Any, tmp_path: Path) -> None:
    long = {**TINY, "epochs": 40}  # the worker cannot finish before the kill reaches it
    local = compare.run("iris", out=tmp_path / "local", **long)
    killed: list[int] = []
    workers: list[str] = []

    def kill_once(update: GroupEpoch) -> None:  # after epoch 2 is stored: kill the worker
        workers.append(update.worker)
        if update.epoch == 2 and not killed:
            killed.append(int(update.worker.rsplit(" ", 1)[1]))
            os.kill(killed[0], signal.SIGKILL)

    remote = compare.run("iris", out=tmp_path / "ray", backend=_Hooked(kill_once), **long)
    assert killed and remote.complete
    # each epoch reached the store once; the first ones from the killed worker, the last from
    # the one that took the group over (epochs the killed one sent before dying are kept)
    assert len(workers) == long["epochs"] and workers[0] == workers[1] != workers[-1]
    assert workers[0].endswith(f"pid {killed[0]}")
    assert _store_rows(tmp_path / "ray") == _store_rows(tmp_path / "local")
    assert remote.summary == local.summary


def test_interrupting_the_driver_leaves_a_resumable_store(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTLAB_CHECKPOINT_S", "0")  # a checkpoint with every epoch
    compare.run("iris", out=tmp_path / "local", **TINY)

    def interrupt(update: GroupEpoch) -> None:  # Ctrl-C on the driver after epoch 2 is stored
        if update.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare.run("iris", out=tmp_path / "ray", backend=_Hooked(interrupt), **TINY)
    with Store.open(tmp_path / "ray") as store:
        (key,) = {m["group"] for m in store.models()}  # one group: one checkpoint
        assert store.checkpoint(key)[0] == 2
        assert {m["epochs_done"] for m in store.models()} == {2}
        assert store.sessions()[-1]["outcome"] == "interrupted"
    resumed = compare.run(out=tmp_path / "ray", resume=True, backend="ray", report=False)
    assert resumed.complete
    assert _store_rows(tmp_path / "ray") == _store_rows(tmp_path / "local")


def test_ray_refuses_devices_it_cannot_give(ray_local: Any) -> None:
    ray_backend = backends.RayBackend()
    with pytest.raises(ActlabError, match="the Ray cluster has no GPU"):
        ray_backend.prepare("cuda")
    with pytest.raises(ActlabError, match="Ray assigns each task its GPU: use --device cuda"):
        ray_backend.prepare("cuda:1")
    assert "2 CPUs per group" in ray_backend.prepare("auto")  # as many as local threads (2)
    assert "1 CPU per group" in backends.RayBackend(cpus_per_group=1).prepare("cpu")


def test_a_users_mistake_on_a_worker_stays_a_one_line_error(ray_local: Any) -> None:
    split = data.split(data.load("iris"))
    bad = GroupTask((engine.Job("relu", 0),), engine.TrainConfig(epochs=2, width=4),
                resume_from=b"not a checkpoint")  # fmt: skip
    with pytest.raises(ActlabError, match="resume_from is not a readable actlab checkpoint"):
        backends.RayBackend().train([bad], split, on_epoch=lambda u: None, device="cpu")


def test_cli_backend_ray_runs_and_records_it(
    ray_local: Any, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    code = main(["compare", "--dataset", "iris", "--activations", "relu", "--seeds", "2",
                 "--epochs", "2", "--width", "4", "--backend", "ray", "--device", "auto",
                 "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    assert body["complete"] and len(body["models"]) == 2
    with Store.open(out) as store:
        (session,) = store.sessions()
    assert session["outcome"] == "complete" and session["versions"]["backend"].startswith("Ray")


def test_the_time_budget_reaches_the_workers(ray_local: Any, tmp_path: Path) -> None:
    cut = compare.run("iris", out=tmp_path / "ray", backend="ray", time_budget=1e-6, **TINY)
    assert not cut.complete and cut.sessions[-1]["outcome"] == "stopped"
    with Store.open(tmp_path / "ray") as store:
        assert {m["epochs_done"] for m in store.models()} == {0}
    done = compare.run(out=tmp_path / "ray", resume=True, report=False)  # locally, this time
    assert done.complete and len(done.history) == 4 * TINY["epochs"]


def test_sigterm_on_the_driver_leaves_a_resumable_store(
    ray_local: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray installs a SIGTERM handler of its own that ends the process on the spot; the backend
    keeps actlab's, so `kill` (like Ctrl-C) closes the store cleanly."""
    import subprocess
    import time

    monkeypatch.setenv("ACTLAB_CHECKPOINT_S", "0")  # a checkpoint with every epoch

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "actlab", "compare", "--dataset", "iris", "--activations", "relu",
           "--seeds", "2", "--width", "4", "--epochs", "100000", "--backend", "ray",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        done = 0
        while done < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if Store.exists(out):
                with sqlite3.connect(Store.path(out)) as conn:
                    done = conn.execute("SELECT min(epochs_done) FROM models").fetchone()[0] or 0
        assert done >= 2, proc.communicate(timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "--resume" in err
    with Store.open(out) as store:
        models = store.models()
        epochs = {m["epochs_done"] for m in models}
        (key,) = {m["group"] for m in models}
        assert len(epochs) == 1 and store.checkpoint(key)[0] == epochs.pop() >= 2
        assert store.sessions()[-1]["outcome"] == "interrupted"


def test_a_group_that_keeps_losing_workers_stops_with_a_clear_error(
    ray_local: Any, tmp_path: Path
) -> None:
    def kill(update: GroupEpoch) -> None:
        if update.epoch == 1:
            os.kill(int(update.worker.rsplit(" ", 1)[1]), signal.SIGKILL)

    long = {**TINY, "epochs": 200}  # the worker cannot finish before the kill reaches it
    with pytest.raises(ActlabError, match=r"group 1 lost its Ray worker 1 time \(last: .*--resume"):
        compare.run("iris", out=tmp_path / "ray", backend=_Hooked(kill, max_retries=0), **long)
    with Store.open(tmp_path / "ray") as store:  # what arrived before the kill is stored
        (done,) = {m["epochs_done"] for m in store.models()}
        assert 1 <= done < 200 and store.sessions()[-1]["outcome"] == "failed"
