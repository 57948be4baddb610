"""The study around the engine: factor grids, three-way splits, selection on validation, one test,
tidy export, old stores, and the config declared once (issue 9).

The grid tests use ``tests/_fake_engine.py`` (deterministic scores, milliseconds per run); the test
metric check at the end uses the real engine against a plain PyTorch evaluation.
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
from dataclasses import field, fields, make_dataclass
from pathlib import Path

import numpy as np
import pytest

import actlab.compare as compare
from actlab import data
from actlab.cli import main
from actlab.compare import config as cfg
from actlab.compare.store import Store
from actlab.errors import ActlabError

sys.path.insert(0, str(Path(__file__).parent))
import _fake_engine as fake

FIXTURE_0_1_0 = Path(__file__).parent / "data" / "store-0.1.0.sql"


GRID = {
    "activations": ["relu", "tanh", "elu"],
    "seeds": 3,
    "epochs": 3,
    "width": 8,
    "lr": [1e-3, 1e-2],
    "depth": [1, 2],
    "report": False,
}


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------- one declaration


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in parser._actions for o in a.option_strings}


def test_every_compare_option_comes_from_the_dataclasses() -> None:
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser)
    options = _options(parser)
    declared = {}
    for typ in cfg.SECTIONS.values():
        for f in fields(typ):
            s = f.metadata["setting"]
            declared["--" + f.name.replace("_", "-")] = (f, s)
    assert set(options) - {"-h", "--help"} == set(declared)
    for flag, (f, s) in declared.items():
        action = options[flag]
        assert action.dest == f.name and action.help == s.help and action.default is None
        if s.kind == "choice":
            assert tuple(action.choices) == s.choices
    # the real `actlab compare` has exactly these, plus the run options
    real = _options(
        next(
            p
            for a in main.__globals__["build_parser"]()._actions
            if isinstance(a, argparse._SubParsersAction)
            for name, p in a.choices.items()
            if name == "compare"
        )
    )
    assert set(declared) <= set(real)
    compute = {"--" + f.name.replace("_", "-") for f in fields(cfg.ComputeConfig)}
    assert compute == {"--device", "--backend", "--ray-address", "--max-models", "--max-memory",
                       "--objective-timeout", "--track"}  # declared once, never stored
    assert set(real) - set(declared) == {"-h", "--help", "--out", "--resume", "--time-budget",
                                         "--json", *compute}  # fmt: skip
    # factors take lists; the parsed values are what validation normalises
    ns = parser.parse_args(["--lr", "1e-3,1e-2", "--depth", "2,8", "--resample-split"])
    assert ns.lr == (1e-3, 1e-2) and ns.depth == (2, 8) and ns.resample_split is True


def test_a_new_setting_is_one_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # adding a factor = adding one field: the option, its check and the stored config follow
    extended = make_dataclass(
        "ModelConfig",
        [
            (
                "momentum",
                tuple,
                field(
                    default=(0.9,),
                    metadata={
                        "setting": cfg.Setting(
                            help="SGD momentum", kind="float", low=0.0, high=1.0, listable=True
                        )
                    },
                ),
            )
        ],
        bases=(cfg.ModelConfig,),
        frozen=True,
    )
    monkeypatch.setitem(cfg.SECTIONS, "model", extended)
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser)
    assert parser.parse_args(["--momentum", "0.5,0.9"]).momentum == (0.5, 0.9)
    with pytest.raises(SystemExit):
        parser.parse_args(["--momentum", "1.5"])
    with pytest.raises(ActlabError, match=r"momentum must be a finite number >= 0 and < 1"):
        extended(momentum=[2.0])
    assert extended(momentum=0.5).momentum == (0.5,)


def test_config_validation_and_lists() -> None:
    c = cfg.CompareConfig.from_settings(lr="1e-3, 1e-2", depth=[2, 8], activations="relu,tanh")
    assert c.model.lr == (1e-3, 1e-2) and c.model.depth == (2, 8)
    assert c.tuned == ("lr",) and c.studied == ("depth",)
    assert len(c.model.cells()) == 4
    with pytest.raises(ActlabError, match="depth: 2 listed twice"):
        cfg.CompareConfig.from_settings(depth=[2, 2])
    with pytest.raises(ActlabError, match="lr must be a finite number > 0, got -1"):
        cfg.CompareConfig.from_settings(lr=[1e-3, -1])
    with pytest.raises(ActlabError, match="tune: 'momentum' is not a factor"):
        cfg.CompareConfig.from_settings(tune="momentum")
    with pytest.raises(ActlabError, match=r"unknown setting 'seed'.*did you mean 'seeds'"):
        cfg.CompareConfig.from_settings(seed=3)
    with pytest.raises(ActlabError, match="leave no training rows"):
        cfg.CompareConfig.from_settings(val_fraction=0.5, test_fraction=0.5)
    tuned_depth = cfg.CompareConfig.from_settings(depth=[2, 8], lr=[1e-3, 1e-2], tune="lr,depth")
    assert tuned_depth.tuned == ("depth", "lr") and tuned_depth.studied == ()
    assert cfg.CompareConfig.from_settings(lr=[1e-3, 1e-2], tune="none").studied == ("lr",)


def test_reproduce_command_round_trips(tmp_path: Path) -> None:
    c = cfg.CompareConfig.from_settings(
        dataset="spirals", lr=[1e-3, 1e-2], depth=[2, 8], seeds=4, resample_split=True,
        activations=["relu", "leaky_relu:negative_slope=0.2"],
    )  # fmt: skip
    line = cfg.command(c, tmp_path / "out")
    assert "--lr 0.001,0.01" in line and "--depth 2,8" in line and "--resample-split" in line
    import shlex

    argv = shlex.split(line)[2:]
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser)
    parser.add_argument("--out")
    again = cfg.CompareConfig.from_settings(cfg.from_namespace(parser.parse_args(argv)))
    assert again == c


# ---------------------------------------------------------------------------- splits


def test_three_way_split_is_stratified_disjoint_and_standardised_on_train() -> None:
    ds = data.load("iris")
    s = data.split(ds, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert len(s.y_val) == 30 and len(s.y_test) == 30 and len(s.y_train) == 90
    for y in (s.y_train, s.y_val, s.y_test):
        assert sorted(np.bincount(y)) == [len(y) // 3] * 3  # stratified: 3 balanced classes
    rows = [tuple(r) for part in (s.X_train, s.X_val, s.X_test) for r in part]
    assert len(set(rows)) == len(rows) - (len(rows) - len(set(map(tuple, ds.X))))  # disjoint
    assert np.allclose(s.X_train.mean(0), 0, atol=1e-5)
    two = data.split(ds, val_fraction=0.2, seed=1)
    assert two.fingerprint == data.split(ds, val_fraction=0.2, seed=1, test_fraction=0).fingerprint
    assert len(two.y_test) == 0 and two.fingerprint != s.fingerprint
    with pytest.raises(ActlabError, match="test_fraction must be a number 0 <= F < 1"):
        data.split(ds, test_fraction=1.0)


# ---------------------------------------------------------------------------- grid


def test_every_cell_is_trained_once_in_one_call_per_shape(
    tmp_path: Path, engine: fake.Behaviour
) -> None:
    res = compare.run("iris", out=tmp_path / "r", **GRID)
    assert len(engine.calls) == 4  # 2 depths x 2 learning rates, each one batched call
    seen = [
        (str(j.activation), j.seed, c["config"].depth, c["config"].lr)
        for c in engine.calls
        for j in c["jobs"]
    ]
    assert len(seen) == len(set(seen)) == 3 * 3 * 2 * 2
    assert all(len(c["jobs"]) == 9 for c in engine.calls)
    assert len(res.table) == 36 and len(res.history) == 36 * 3
    assert [c.values for c in res.studies] == [{"depth": 1}, {"depth": 2}]


def test_interrupted_grid_finishes_only_what_is_missing(
    tmp_path: Path, engine: fake.Behaviour, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTLAB_CHECKPOINT_S", "0")  # a checkpoint with every epoch
    full = compare.run("iris", out=tmp_path / "full", **GRID)
    real_save = Store.save_epoch
    calls = {"n": 0}

    def save_then_interrupt(self, epoch, *args, **kwargs):  # Ctrl-C in the 2nd group, epoch 2
        real_save(self, epoch, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3 + 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Store, "save_epoch", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        compare.run("iris", out=tmp_path / "cut", **GRID)
    monkeypatch.setattr(Store, "save_epoch", real_save)
    engine.calls.clear()
    resumed = compare.run(out=tmp_path / "cut", resume=True)
    # group 1 is not retrained; group 2 continues from its checkpoint; groups 3 and 4 start
    assert [c["start"] for c in engine.calls] == [2, 0, 0]
    assert engine.calls[0]["config"].lr == GRID["lr"][1] and engine.calls[0]["config"].depth == 1
    drop = ("seconds", "model")
    strip = [{k: v for k, v in r.items() if k not in drop} for r in resumed.table]
    assert strip == [{k: v for k, v in r.items() if k not in drop} for r in full.table]
    assert resumed.summary == full.summary
    with pytest.raises(ActlabError, match=r"--lr: stored \[0.001, 0.01\], now 0.1"):
        compare.run(out=tmp_path / "cut", resume=True, lr=0.1)


def test_selection_never_reads_test_metrics(tmp_path: Path, engine: fake.Behaviour) -> None:
    engine.best_lr = {"relu": 1e-2, "tanh": 1e-3, "elu": 1e-2}
    res = compare.run("iris", out=tmp_path / "r", **GRID)
    chosen = [c.chosen for c in res.studies]
    assert chosen[0] == {"relu": {"lr": 1e-2}, "tanh": {"lr": 1e-3}, "elu": {"lr": 1e-2}}
    assert res.metric == "test_accuracy" and res.analysis.on_test
    # poison the test metrics: the settings that lost on validation now win on test by far
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as db:
        rows = db.execute(
            "SELECT e.model_id, e.epoch, e.metrics, m.activation, m.cell FROM epochs e "
            "JOIN models m ON m.id = e.model_id"
        ).fetchall()
        for mid, epoch, metrics, act, cell in rows:
            m = json.loads(metrics)
            if "test_accuracy" in m:
                lost = json.loads(cell)["lr"] != engine.best_lr[act]
                m["test_accuracy"] = 1.0 if lost else 0.0
                db.execute("UPDATE epochs SET metrics = ? WHERE model_id = ? AND epoch = ?",
                           (json.dumps(m), mid, epoch))  # fmt: skip
    poisoned = compare.load(tmp_path / "r")
    assert [c.chosen for c in poisoned.studies] == chosen  # the choice did not move
    assert all(r.mean == 0.0 for c in poisoned.studies for r in c.summary.rows)  # reported: test
    assert "scored once" in poisoned.analysis.selection


def test_resample_split_pairs_by_seed(tmp_path: Path, engine: fake.Behaviour) -> None:
    res = compare.run("iris", out=tmp_path / "r", resample_split=True,
                      **{**GRID, "lr": 1e-3, "depth": 2})  # fmt: skip
    assert len(engine.calls) == 3  # one group per seed: its own split, every activation
    prints = []
    for c in engine.calls:
        assert {j.seed for j in c["jobs"]} == {c["jobs"][0].seed}
        assert [str(j.activation) for j in c["jobs"]] == ["relu", "tanh", "elu"]
        prints.append(c["split"])
    assert len(set(prints)) == 3  # every seed its own split
    seeds = [sorted(r.values) for r in res.stats.rows]
    assert seeds == [[0, 1, 2]] * 3  # paired by seed across activations
    assert res.config.data.split_seed_for(2) == 2
    rows = res.rows()
    assert {(r["seed"], r["split_seed"]) for r in rows} == {(0, 0), (1, 1), (2, 2)}


# ---------------------------------------------------------------------------- export


def test_csv_and_json_export(tmp_path: Path, engine: fake.Behaviour, capsys) -> None:
    out = tmp_path / "r"
    compare.run("iris", out=out, **GRID)
    code, _, err = _cli(["report", str(out), "--csv", str(tmp_path / "rows.csv"),
                         "--json", str(tmp_path / "rows.json")], capsys)  # fmt: skip
    assert code == 0, err
    with open(tmp_path / "rows.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 36 * 3  # models x epochs
    for col in ("activation", "seed", "split_seed", "epoch", *cfg.FACTORS, "val_accuracy",
                "test_accuracy", "train_loss", "status"):  # fmt: skip
        assert col in table[0]
    assert {r["test_accuracy"] != "" for r in table if r["epoch"] == "3"} == {True}
    assert {r["test_accuracy"] for r in table if r["epoch"] != "3"} == {""}  # scored once
    doc = json.loads((tmp_path / "rows.json").read_text())
    assert len(doc) == len(table) and doc[0]["test_accuracy"] is None
    code, _, err = _cli(["report", str(out), "--csv", str(tmp_path / "rows.csv")], capsys)
    assert code == 2 and "--force" in err  # nothing a user made is overwritten
    code, _, err = _cli(["report", str(out), "--csv", str(tmp_path / "rows.txt")], capsys)
    assert code == 2 and ".csv" in err
    res = compare.load(out)
    assert len(res.rows()) == 108
    pd = pytest.importorskip("pandas")
    frame = res.to_pandas()
    assert isinstance(frame, pd.DataFrame) and frame.shape[0] == 108


def test_report_shows_choices_heat_map_and_sensitivity(
    tmp_path: Path, engine: fake.Behaviour
) -> None:
    engine.best_lr = {"relu": 1e-2, "tanh": 1e-3, "elu": 1e-2}
    compare.run("iris", out=tmp_path / "r", **{**GRID, "report": True})
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    for text in ("Studied factor: depth", "heat map of depth", "sensitivity to lr",
                 "Tuned on validation data", "scored once per model", "1 → 2",
                 "--lr 0.001,0.01"):  # fmt: skip
        assert text in page or text in md, text
    assert "| relu | learning rate 0.01 (val" in md


# ---------------------------------------------------------------------------- old stores


def _old_store(tmp_path: Path) -> Path:
    out = tmp_path / "old"
    out.mkdir()
    with sqlite3.connect(out / "results.sqlite") as db:
        db.executescript(FIXTURE_0_1_0.read_text())
    return out


def test_reports_stores_written_by_0_1_0(tmp_path: Path, capsys) -> None:
    out = _old_store(tmp_path)
    res = compare.load(out)
    assert res.schema_version == 1 and res.complete and len(res.table) == 6
    assert res.metric == "val_accuracy" and not res.analysis.on_test
    assert any("actlab 0.1.0" in n for n in res.notes)
    assert res.config.model.depth == (2,) and res.config.study.activations == ("relu", "tanh")
    code, _, err = _cli(["report", str(out), "--csv", str(tmp_path / "old.csv")], capsys)
    assert code == 0, err
    assert (out / "report.html").exists()
    assert len((tmp_path / "old.csv").read_text().splitlines()) == 1 + 6 * 2
    code, _, err = _cli(["compare", "--out", str(out), "--resume"], capsys)
    assert code == 2 and "actlab 0.1.0" in err and "Traceback" not in err


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    out = _old_store(tmp_path)
    with sqlite3.connect(out / "results.sqlite") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ActlabError, match="newer actlab"):
        compare.load(out)


# ---------------------------------------------------------------------------- real engine


def test_engine_scores_the_test_part_once_like_a_plain_network() -> None:
    torch = pytest.importorskip("torch")
    from actlab.compare import training as engine

    split = data.split(data.load("iris"), test_fraction=0.2, seed=0)
    config = engine.TrainConfig(depth=1, width=8, epochs=3, lr=1e-2)
    blobs: list[bytes] = []
    history = engine.train(
        [engine.Job("relu", 0), engine.Job("tanh", 1)],
        split,
        config,
        on_epoch=lambda epoch, records, checkpoint: blobs.append(checkpoint()),
    )
    for h in history:
        assert all("test_accuracy" not in r.metrics for r in h[:-1])  # once: the last epoch
    states = engine.state_dicts(blobs[-1])
    from actlab.torch import build

    for k, spec in enumerate(["relu", "tanh"]):
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), build(spec), torch.nn.Linear(8, 3))
        net.load_state_dict(states[k])
        with torch.no_grad():
            pred = net(torch.as_tensor(split.X_test)).argmax(1).numpy()
        assert history[k][-1].metrics["test_accuracy"] == pytest.approx(
            float((pred == split.y_test).mean()), abs=1e-6
        )


def test_time_budget_stops_a_grid_and_resume_finishes_it(
    tmp_path: Path, engine: fake.Behaviour
) -> None:
    stopped = compare.run("iris", out=tmp_path / "r", time_budget=1e-9, **GRID)
    assert not stopped.complete and engine.calls == []  # past the deadline: no group started
    done = compare.run(out=tmp_path / "r", resume=True)
    assert done.complete and len(engine.calls) == 4 and done.analysis.on_test


def test_cli_grid_with_tune(tmp_path: Path, engine: fake.Behaviour, capsys) -> None:
    engine.best_lr = {"relu": 1e-2, "tanh": 1e-3}
    out = tmp_path / "r"
    argv = ["compare", "--dataset", "iris", "--activations", "relu,tanh", "--seeds", "3",
            "--epochs", "2", "--lr", "1e-3,1e-2", "--depth", "1,2", "--tune", "lr,depth",
            "--out", str(out), "--json"]  # fmt: skip
    code, stdout, err = _cli(argv, capsys)
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["tuned"] == ["depth", "lr"] and doc["studied"] == []
    assert doc["chosen"][0]["chosen"]["relu"]["lr"] == 1e-2
    assert doc["metric"] == "test_accuracy" and "scored once" in doc["selection"]
    code, _, err = _cli([*argv[:-3], "--lr", "1e-3,,x", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "expected a number, got 'x'" in err and not (tmp_path / "x").exists()
