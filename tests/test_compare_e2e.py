"""End to end with the real training engine: tiny networks, a few epochs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import actlab.compare as compare
from actlab.cli import main
from actlab.compare.store import Store

TINY = {"activations": ["relu", "tanh"], "seeds": 2, "epochs": 3, "width": 16, "depth": 1}


def _final(res: compare.Results) -> list[tuple]:
    keys = ("activation", "seed", "status", "epoch", "train_loss", "val_loss", "val_accuracy")
    return [tuple(row.get(k) for k in keys) for row in res.table]


def test_interrupted_real_run_resumes_to_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTLAB_CHECKPOINT_S", "0")  # a checkpoint with every epoch
    full = compare.run("iris", out=tmp_path / "full", report=False, **TINY)
    assert full.complete and len(full.table) == 4
    assert all(0.0 <= row["val_accuracy"] <= 1.0 for row in full.table)
    assert all(len(r["grad_norms"]) == 2 and len(r["dead_fraction"]) == 1 for r in full.history)

    real_save = Store.save_epoch

    def save_then_interrupt(self, epoch, *args, **kwargs):  # Ctrl-C right after epoch 1 committed
        real_save(self, epoch, *args, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Store, "save_epoch", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        compare.run("iris", out=tmp_path / "cut", report=False, **TINY)
    monkeypatch.setattr(Store, "save_epoch", real_save)
    with Store.open(tmp_path / "cut") as store:
        assert store.checkpoint(store.models()[0]["group"])[0] == 1  # one group: one checkpoint
        assert {m["epochs_done"] for m in store.models()} == {1}
    resumed = compare.run(out=tmp_path / "cut", resume=True, report=False)
    assert resumed.complete
    assert _final(resumed) == _final(full)  # bit-identical continuation
    assert resumed.summary == full.summary


def test_epochs_retrained_after_an_older_checkpoint_are_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints come on a time interval: a cut run resumes from an older one, retrains the
    epochs after it and stores them again; the engine is deterministic, so they are the same."""
    full = compare.run("iris", out=tmp_path / "full", report=False, **TINY)
    real_on_epoch, real_save = compare.GroupRun.on_epoch, Store.save_epoch

    def only_after_epoch_1(self, epoch, records, checkpoint):
        self.every = 0.0 if epoch == 1 else math.inf
        real_on_epoch(self, epoch, records, checkpoint)

    def save_then_interrupt(self, epoch, *args, **kwargs):  # Ctrl-C after epoch 2 is committed
        real_save(self, epoch, *args, **kwargs)
        if epoch == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(compare.GroupRun, "on_epoch", only_after_epoch_1)
        m.setattr(Store, "save_epoch", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            compare.run("iris", out=tmp_path / "cut", report=False, **TINY)
    with Store.open(tmp_path / "cut") as store:
        assert store.checkpoint(store.models()[0]["group"])[0] == 1
        first = [r for r in store.epochs() if r["epoch"] == 2]
    resumed = compare.run(out=tmp_path / "cut", resume=True, report=False)
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert rows == [{k: v for k, v in r.items() if k != "seconds"} for r in full.history]
    again = [r for r in resumed.history if r["epoch"] == 2]
    assert [r["seconds"] for r in again] != [r["seconds"] for r in first]  # really retrained
    assert _final(resumed) == _final(full) and resumed.summary == full.summary


def test_default_style_cli_run_writes_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "compare",
            "--dataset",
            "moons",
            "--noise",
            "0.2",
            "--activations",
            "relu,sigmoid",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--width",
            "8",
            "--out",
            str(out),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["complete"] and doc["epoch"] == 2 and len(doc["models"]) == 4
    assert all(math.isfinite(m["val_accuracy"]) for m in doc["models"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "relu" in page and "sigmoid" in page and "data:image/png;base64," in page
    assert (out / "report.md").exists()
