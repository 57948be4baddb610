"""--track / report --to: each tracker's own reader finds what the store holds."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest

from actlab import compare
from actlab.cli import main
from actlab.compare import trackers
from actlab.errors import ActlabError

TINY = {"activations": ["relu", "tanh"], "seeds": 2, "epochs": 2, "width": 8, "report": False}


def _stored(directory: Path, by_lr: bool = False) -> dict[tuple, dict[str, float]]:
    """(activation, seed, [lr,] epoch) -> the stored metrics (losses included)."""
    conn = sqlite3.connect(directory / "results.sqlite")
    try:
        rows = conn.execute(
            "SELECT m.activation, m.seed, m.cell, e.epoch, e.train_loss, e.val_loss, e.metrics "
            "FROM epochs e JOIN models m ON m.id = e.model_id"
        ).fetchall()
    finally:
        conn.close()
    return {(a, s, *((json.loads(c)["lr"],) if by_lr else ()), e):
            {"train_loss": tl, "val_loss": vl, **json.loads(m)}
            for a, s, c, e, tl, vl, m in rows}  # fmt: skip


def _tensorboard_scalars(directory: Path) -> dict[tuple[str, int, int], dict[str, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[tuple[str, int, int], dict[str, float]] = {}
    for run in sorted((directory / "tensorboard").iterdir()):
        if run.name == "summary":
            continue
        acc = EventAccumulator(str(run))
        acc.Reload()
        act, seed = run.name.split("_seed")
        for tag in acc.Tags()["scalars"]:
            for ev in acc.Scalars(tag):
                out.setdefault((act, int(seed), ev.step), {})[tag] = ev.value
    return out


def _close(a: dict, b: dict) -> bool:
    """Same keys, same values to float32 precision (TensorBoard stores float32)."""
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys()
        and all(abs(a[k][m] - b[k][m]) <= 1e-6 * max(1.0, abs(b[k][m])) for m in a[k])
        for k in a
    )


def test_tensorboard_reads_back_every_epoch(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    compare.run("iris", out=tmp_path / "o", track="tensorboard", **TINY)
    stored = _stored(tmp_path / "o")
    assert len(stored) == 2 * 2 * 2 and _close(_tensorboard_scalars(tmp_path / "o"), stored)
    assert (tmp_path / "o" / "tensorboard" / "summary").is_dir()


def test_report_exports_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("tensorboard")
    compare.run("iris", out=tmp_path / "o", **TINY)
    assert not (tmp_path / "o" / "tensorboard").exists()
    assert main(["report", str(tmp_path / "o"), "--to", "tensorboard"]) == 0
    assert "exported 4 models to tensorboard" in capsys.readouterr().err
    assert _close(_tensorboard_scalars(tmp_path / "o"), _stored(tmp_path / "o"))


def test_mlflow_reads_back_params_and_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    compare.run("iris", out=tmp_path / "o", track="mlflow", lr=[1e-3, 1e-2], **TINY)
    stored = _stored(tmp_path / "o", by_lr=True)
    client = MlflowClient(tracking_uri=(tmp_path / "o" / "mlruns").resolve().as_uri())
    runs = client.search_runs([client.get_experiment_by_name("o").experiment_id])
    models = [r for r in runs if r.info.run_name != "comparison"]
    assert len(models) == 2 * 2 * 2  # activations x seeds x learning rates
    seen = set()
    for r in models:
        p = r.data.params
        assert set(p) >= {"activation", "seed", "lr", "depth", "width"}
        assert r.data.tags["actlab.status"] == "done" and r.info.status == "FINISHED"
        seen.add((p["activation"], p["seed"], p["lr"]))
        history = client.get_metric_history(r.info.run_id, "val_accuracy")
        assert sorted(h.step for h in history) == [1, 2]
        for h in history:
            key = (p["activation"], int(p["seed"]), float(p["lr"]), h.step)
            assert h.value == stored[key]["val_accuracy"]
    assert len(seen) == 8
    parent = next(r for r in runs if r.info.run_name == "comparison")
    assert parent.data.tags["actlab.metric"] == "test_accuracy"
    assert any(k.endswith("test_accuracy_mean") for k in parent.data.metrics)


def _wandb_records(path: Path) -> list[Any]:
    """The records of an offline ``.wandb`` file: W&B's LevelDB-style log (32 KiB blocks of
    checksum, length, type, data) parsed with W&B's own protobuf ``Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    buf = path.read_bytes()
    assert buf[:4] == b":W&B"
    pos, block, out, pending = 7, 32768, [], b""
    while pos + 7 <= len(buf):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos : pos + 7])
        data, pos = buf[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


@pytest.mark.slow
def test_wandb_offline_runs_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    wandb = pytest.importorskip("wandb")
    compare.run("iris", out=tmp_path / "o", track="wandb", **{**TINY, "activations": ["relu"]})
    wandb.teardown()  # W&B's service process finishes writing the files
    stored = _stored(tmp_path / "o")
    files = sorted((tmp_path / "o" / "wandb").glob("offline-run-*/run-*.wandb"))
    got: dict[tuple[str, int, int], dict[str, float]] = {}
    for f in files:
        name, history = None, []
        for r in _wandb_records(f):
            kind = r.WhichOneof("record_type")
            if kind == "run" and r.run.display_name:
                name = r.run.display_name
            elif kind == "history":
                history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                for i in r.history.item})
        if name == "summary":
            continue
        act, seed = str(name).split("_seed")
        for h in history:
            got[(act, int(seed), h["epoch"])] = {k: v for k, v in h.items()
                                                 if not k.startswith("_") and k != "epoch"}
    assert len(files) == 3 and got == stored  # two models and the summary


def test_a_failing_tracker_never_loses_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorboard")

    def broken(self: Any, *args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(trackers._TensorBoard, "epoch", broken)
    res = compare.run("iris", out=tmp_path / "o", track="tensorboard", **TINY)
    assert res.complete and len(_stored(tmp_path / "o")) == 8
    notes = [line for line in capfd.readouterr().err.splitlines() if "tracker failed" in line]
    assert len(notes) == 1 and "OSError: disk full" in notes[0] and "--to tensorboard" in notes[0]


def test_a_missing_tracker_is_one_line_before_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))  # fmt: skip
    out = tmp_path / "o"
    assert main(["compare", "--dataset", "iris", "--track", "mlflow", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "actlab[track]"' in err and not out.exists()
    with pytest.raises(ActlabError, match="did you mean 'tensorboard'"):
        compare.run("iris", out=out, track="tensorbord")
