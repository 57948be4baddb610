"""Fault injection, end to end: what a new user or a hostile tester does, through the real CLI.

Every case runs ``python -m actlab ...`` in a subprocess (``PYTHONPATH`` inherited, so the
checkout under test is what runs) and asserts the exit code, one clear ``actlab: error:`` line on
stderr, no ``Traceback`` and no raw Python warning anywhere in the output, and - where a run
folder existed - that its store is intact. A few cases need to fail the OS or SQLite on purpose
(a full disk, a read-only folder); those run in-process with ``main([...])`` and a monkeypatched
failure, and say so.

The tests run as root in CI, where ``chmod`` does not stop a write. Unwritable places are made
without permissions: a path below a regular file (ENOTDIR), ``/proc`` (no new files, ENOENT) and
``/sys`` (EACCES), or an OS-level failure injected with monkeypatch.

Datasets are tiny (iris, a few epochs, narrow networks) to keep the suite fast; cases that train
several runs are marked ``slow`` (they still run in CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import actlab.compare as compare
from actlab.cli import main
from actlab.compare.store import Store, release_lock, take_lock
from actlab.errors import ActlabError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "iris", "--width", "8", "--depth", "1", "--seeds", "1"]


def actlab(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 300, columns: int = 100
) -> subprocess.CompletedProcess:
    """Run the CLI as a user would; PYTHONPATH is inherited, with this checkout's src first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = str(columns)  # what rich takes as the width when output is not a terminal
    return subprocess.run(
        [sys.executable, "-m", "actlab", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def no_noise(proc: subprocess.CompletedProcess) -> None:
    """No traceback, no raw warning (RuntimeWarning, UserWarning...) in what the user sees."""
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both, both[-3000:]
    assert "Warning:" not in both, both[-3000:]


def refused(proc: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """The run ended with ``code`` and exactly one ``actlab: error:`` line naming ``needles``."""
    no_noise(proc)
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("actlab: error:")]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.rstrip().endswith(errors[0])  # the message is the last line, whole
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    no_noise(proc)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def digest(directory: Path) -> str:
    return hashlib.sha256((directory / "results.sqlite").read_bytes()).hexdigest()


def intact(directory: Path) -> dict:
    """The store passes SQLite's integrity check; its models and epochs (for comparisons)."""
    conn = sqlite3.connect(directory / "results.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        models = conn.execute("SELECT id, status, epochs_done FROM models ORDER BY id").fetchall()
        epochs = conn.execute("SELECT count(*) FROM epochs").fetchone()[0]
    finally:
        conn.close()
    return {"models": models, "epochs": epochs}


def final(directory: Path) -> list[tuple]:
    """Each model's final numbers (timings aside): equal for an interrupted-and-resumed run."""
    res = compare.load(directory)
    keys = ("activation", "seed", "status", "epoch", "train_loss", "val_loss", "val_accuracy")
    return [tuple(row.get(k) for k in keys) for row in res.table]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished run, shared by the cases that only read it (copied before damage)."""
    where = tmp_path_factory.mktemp("finished")
    ok(actlab("compare", *TINY, "--activations", "relu", "tanh", "--epochs", "2",
              "--out", "run", cwd=where))  # fmt: skip
    return where / "run"


def _copy(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


# -------------------------------------------------------------------------------- 1: any numbers


def test_1_report_renders_when_every_gradient_is_zero(tmp_path: Path) -> None:
    # lr 1e10: every ReLU unit dies at once, every gradient norm is 0 -> the log axis had no data
    proc = ok(actlab("compare", "--dataset", "iris", "--activations", "relu", "--seeds", "2",
                     "--epochs", "2", "--lr", "1e10", "--out", "r5", cwd=tmp_path))  # fmt: skip
    page = (tmp_path / "r5" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64") >= 4
    assert "could not be drawn" not in page
    ok(actlab("report", "r5", cwd=tmp_path))
    assert "html report" in proc.stdout


def test_1_panels_say_why_they_are_empty(finished_run: Path) -> None:
    from actlab.compare import report

    res = compare.load(finished_run)
    for row in res.history:  # every number a report can meet: zeros, NaN, inf
        row["grad_norms"] = [0.0] * len(row["grad_norms"])
        row["train_loss"] = float("nan")
        row["dead_fraction"] = [float("inf")] * len(row["dead_fraction"])
    texts = [t.get_text() for ax in report.fig_grad_norms(res).axes for t in ax.texts]
    assert any("every gradient norm is zero" in t for t in texts)
    loss_axis = report.fig_learning_curves(res).axes[1]
    assert any("every training loss" in t.get_text() for t in loss_axis.texts)
    page = report.html_page(res)  # renders, whatever the figures could do
    assert "<h2>Gradient flow</h2>" in page


# ------------------------------------------------------------------------ 2: the model changed


NET = """
import torch.nn as nn
from actlab.torch import build

def make(spec):
    return nn.Sequential(nn.Linear(4, WIDTH), build(spec), nn.Linear(WIDTH, 3))

def raises(spec):
    raise RuntimeError("boom")

def not_a_module(spec):
    return 3

def wrong_shape(spec):
    return nn.Linear(4, 5)
"""


def test_2_resume_refuses_a_changed_model(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET.replace("WIDTH", "16"))
    ok(actlab("compare", *TINY, "--activations", "relu", "--epochs", "3", "--time-budget",
              "0.001", "--model", "net.py:make", "--out", "m", cwd=tmp_path))  # fmt: skip
    before = intact(tmp_path / "m")
    assert before["epochs"] < 3  # stopped early: there is something to resume
    (tmp_path / "net.py").write_text(NET.replace("WIDTH", "8"))
    message = refused(actlab("compare", "--out", "m", "--resume", cwd=tmp_path),
                      "--model changed", "0.weight[16, 4] -> 0.weight[8, 4]")  # fmt: skip
    assert "new --out" in message
    assert intact(tmp_path / "m") == before
    (tmp_path / "net.py").write_text(NET.replace("WIDTH", "16") + "\n# an edit\n")
    refused(actlab("compare", "--out", "m", "--resume", cwd=tmp_path), "source file")


# ------------------------------------------------------------------ 3: unwritable output places


@pytest.mark.parametrize(
    "args",
    [
        ("plot", "relu", "-o", "/proc/actlab-test.png"),  # /proc: no new files (ENOENT)
        ("plot", "relu", "-o", "/sys/actlab-test.png"),  # /sys: EACCES, even for root
        ("gallery", "-o", "/proc/actlab-gallery"),
        ("softmax", "1", "2", "--plot", "/proc/actlab-softmax.png"),
        # below a regular file: ENOTDIR
        ("diagnose", "--demo", "vanishing", "--depth", "2", "--epochs", "1", "--plot", "FILE/f"),
        ("compare", *TINY, "--epochs", "1", "--out", "FILE/run"),
        ("compare", *TINY, "--epochs", "1", "--out", "/proc/actlab-run"),
    ],
    ids=["plot-proc", "plot-sys", "gallery", "softmax", "diagnose", "compare-file", "compare-proc"],
)
def test_3_unwritable_output_place(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = args[-1]
    if path.startswith(("/proc/", "/sys/")) and not Path(path).parent.is_dir():
        pytest.skip(f"{Path(path).parent} is not mounted here")
    (tmp_path / "FILE").write_text("a regular file")
    message = refused(actlab(*args, cwd=tmp_path), "cannot")
    assert path in message
    reasons = ("No such file", "Permission denied", "Not a directory", "Read-only file system")
    assert any(r in message for r in reasons)
    assert (tmp_path / "FILE").read_text() == "a regular file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]  # nothing half-made


def test_3_report_on_a_read_only_run_folder(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # root ignores permission bits, so the read-only folder is an OS-level failure injected here:
    # SQLite cannot open the journal, os.access says no, report files cannot be written
    import actlab.compare.store as store_mod

    run = _copy(finished_run, tmp_path / "ro")
    real_connect = sqlite3.connect

    def connect(target, *args, **kwargs):
        if kwargs.get("uri"):  # the read-only integrity check still works on a read-only folder
            return real_connect(target, *args, **kwargs)
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store_mod.sqlite3, "connect", connect)
    monkeypatch.setattr(store_mod.os, "access", lambda *a, **k: False)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("actlab: error: cannot open")
    assert "permission denied" in err and str(run) in err and "cp -r" in err
    assert "not a readable" not in err  # it used to blame the database


def test_3_report_files_that_cannot_be_written(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    run = _copy(finished_run, tmp_path / "full")
    before = digest(run)

    def no_space(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_space)  # injected ENOSPC on report.md
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "No space left on device" in err and "intact" in err
    assert digest(run) == before


# ---------------------------------------------------------------------- 4: a damaged database


def _damage(run: Path) -> None:
    """Overwrite the second page of the file (the middle of the b-trees), as a torn write would."""
    with open(run / "results.sqlite", "r+b") as f:
        page = 65536  # the store's page size
        f.seek(2 * page)
        f.write(b"\x0d\xff\xee" * 3000)


@pytest.mark.parametrize("command", ["report", "resume"])
def test_4_damaged_database_is_refused_and_left_alone(
    finished_run: Path, tmp_path: Path, command: str
) -> None:
    run = _copy(finished_run, tmp_path / "bad")
    _damage(run)
    before = digest(run)
    args = ["report", "bad"] if command == "report" else ["compare", "--out", "bad", "--resume"]
    message = refused(actlab(*args, cwd=tmp_path), "is damaged", "leaves it untouched", ".recover")
    assert "Still readable" in message
    assert digest(run) == before  # never touched further


# ------------------------------------------------------------- 5: two compares into one folder


def test_5_second_writer_is_refused_before_creating_anything(tmp_path: Path) -> None:
    target = tmp_path / "new"
    target.mkdir()
    holder = take_lock(target)  # this test process is "the other actlab compare"
    try:
        message = refused(actlab("compare", *TINY, "--epochs", "1", "--out", "new", cwd=tmp_path),
                          "another 'actlab compare'", f"pid {os.getpid()}")  # fmt: skip
    finally:
        holder.close()
    assert "choose another --out" in message
    assert sorted(p.name for p in target.iterdir()) == [".lock"]  # no database was created



def test_5_a_finished_run_leaves_no_lock_file(tmp_path: Path) -> None:
    assert main(["compare", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert not (tmp_path / "run" / ".lock").exists()
    assert Store.exists(tmp_path / "run")


def test_5_a_released_lock_is_gone_and_a_stale_opener_does_not_hold_the_new_one(
    tmp_path: Path,
) -> None:
    import fcntl

    first = take_lock(tmp_path)
    stale = open(tmp_path / ".lock")  # noqa: SIM115 - a process that opened the file meanwhile
    try:
        release_lock(first)
        assert not (tmp_path / ".lock").exists()
        fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # it gets the old, unlinked file ...
        second = take_lock(tmp_path)  # ... which does not keep a new writer out
        with pytest.raises(ActlabError, match="another 'actlab compare'"):
            take_lock(tmp_path)  # the live holder is still respected
        release_lock(second)
    finally:
        stale.close()
    assert list(tmp_path.iterdir()) == []


def test_5_a_taker_that_locked_a_released_file_locks_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actlab.compare import store

    real, calls = store._lock_file, []

    def racing(path: Path, directory: Path, fcntl: object) -> object:
        handle = real(path, directory, fcntl)
        calls.append(handle)
        if len(calls) == 1:  # the holder released (unlinked) between this open and this flock
            path.unlink()
        return handle

    monkeypatch.setattr(store, "_lock_file", racing)
    held = take_lock(tmp_path)
    assert len(calls) == 2 and calls[0].closed  # the unlinked file was let go, the new one taken
    assert (tmp_path / ".lock").read_text().startswith(f"pid {os.getpid()}")
    with pytest.raises(ActlabError, match="another 'actlab compare'"):
        take_lock(tmp_path)
    release_lock(held)

@pytest.mark.slow
def test_5_two_compares_started_at_once(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "actlab", "compare", *TINY, "--epochs", "3", "--out", "same"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [(r.returncode, r.stderr) for r in results]
    loser = next(r for r in results if r.returncode == 2)
    # the loser either found the lock (naming the writer) or, if the winner was already done,
    # its finished results; never an IntegrityError
    refused(loser)
    assert "another 'actlab compare'" in loser.stderr or "already holds" in loser.stderr
    stored = intact(tmp_path / "same")
    assert {status for _, status, _ in stored["models"]} == {"done"}
    assert stored["epochs"] == 3 * len(stored["models"])


# ---------------------------------------------------- 6: a rejected --model leaves no folder


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("missing.py:make", "does not exist"),
        ("broken.py:make", "SyntaxError"),
        ("net.py:raises", "raised RuntimeError: boom"),
        ("net.py:not_a_module", "must return a torch.nn.Module"),
        ("net.py:wrong_shape", "of shape (2, 3)"),
    ],
)
def test_6_rejected_model_leaves_no_run_folder(tmp_path: Path, ref: str, needle: str) -> None:
    (tmp_path / "net.py").write_text(NET.replace("WIDTH", "8"))
    (tmp_path / "broken.py").write_text("def make(spec:\n")
    args = ("compare", *TINY, "--activations", "relu", "--epochs", "1", "--out", "run")
    refused(actlab(*args, "--model", ref, cwd=tmp_path), needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_6_same_out_works_after_a_rejected_model(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET.replace("WIDTH", "8"))
    args = ("compare", *TINY, "--activations", "relu", "--epochs", "1", "--out", "run")
    refused(actlab(*args, "--model", "net.py:raises", cwd=tmp_path), "boom")
    ok(actlab(*args, "--model", "net.py:make", cwd=tmp_path))
    assert intact(tmp_path / "run")["epochs"] == 1


# ------------------------------------------------------------ 7: diagnose --model that raises


def test_7_diagnose_model_that_raises(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(NET.replace("WIDTH", "8"))
    refused(actlab("diagnose", "--model", "net.py:raises", cwd=tmp_path),
            "net.py:raises", "RuntimeError: boom")  # fmt: skip


# --------------------------------------------------------------------- 9: every model diverged


def test_9_all_diverged_says_so(tmp_path: Path) -> None:
    proc = ok(actlab("compare", *TINY, "--activations", "relu", "elu", "--seeds", "2",
                     "--epochs", "2", "--lr", "1e30", "--optimizer", "sgd", "--out", "d",
                     cwd=tmp_path))  # fmt: skip
    text = " ".join(proc.stdout.split())
    assert "No results yet" not in text
    assert "Every model diverged" in text and "4 in epoch 1" in text and "--lr 1e+28" in text
    md = (tmp_path / "d" / "report.md").read_text(encoding="utf-8")
    assert "Every model diverged" in md


# ------------------------------------------------------------------ 10, 11, 12: small commands


def test_10_plot_window_beyond_float_range(tmp_path: Path) -> None:
    refused(actlab("plot", "relu", "--xlim", "-1e308", "1e308", "-o", "x.png", cwd=tmp_path),
            "xlim", "cannot be drawn", "-5, 5")  # fmt: skip
    refused(actlab("plot", "relu", "--ylim", "1", "1.0000000000001", "-o", "x.png",
                   cwd=tmp_path), "ylim")  # fmt: skip
    assert not (tmp_path / "x.png").exists()


def test_11_softmax_of_nan_prints_nan_and_says_why(tmp_path: Path) -> None:
    proc = ok(actlab("softmax", "nan", "1", cwd=tmp_path))
    assert "softmax(z) = [nan nan]" in proc.stdout
    assert "actlab: note:" in proc.stderr and "NaN" in proc.stderr


@pytest.mark.parametrize(
    ("args", "note"),
    [
        (("eval", "relu", "70000", "--dtype", "float16"), "overflowed to inf in float16"),
        (("softmax", "1e308", "-1e308", "-t", "1e-300"), "overflows float64"),
    ],
)
def test_11_expected_overflow_is_a_note_not_a_warning(
    tmp_path: Path, args: tuple[str, ...], note: str
) -> None:
    proc = ok(actlab(*args, cwd=tmp_path))
    assert "RuntimeWarning" not in proc.stderr
    assert "actlab: note: " in proc.stderr and note in proc.stderr


def test_12_softmax_from_file_and_stdin(tmp_path: Path) -> None:
    scores = [random.Random(0).gauss(0, 3) for _ in range(200_000)]
    (tmp_path / "z.txt").write_text("\n".join(map(repr, scores)))
    proc = ok(actlab("softmax", "--from", "z.txt", "--json", cwd=tmp_path))
    probs = json.loads(proc.stdout)["results"][0]["probabilities"]
    assert len(probs) == len(scores) and abs(sum(probs) - 1.0) < 1e-9
    assert max(range(len(probs)), key=probs.__getitem__) == max(
        range(len(scores)), key=scores.__getitem__
    )
    proc = ok(actlab("softmax", "--from", "-", cwd=tmp_path, stdin="1, 2,3\n4\n"))
    assert "[0.0320586 0.08714432 0.2368828 0.6439143]" in proc.stdout
    refused(actlab("softmax", "--from", "-", cwd=tmp_path, stdin="1 x 2"), "'x'", "not a number")
    refused(actlab("softmax", "--from", "nope.txt", cwd=tmp_path), "nope.txt", "No such file")
    refused(actlab("softmax", "1", "--from", "z.txt", cwd=tmp_path), "not both")
    refused(actlab("softmax", "--from", "z.txt", "--plot", "z.png", cwd=tmp_path), "--plot")


# ------------------------------------------------------------------- 13: reports and consoles


def test_13_reports_read_right(tmp_path: Path) -> None:
    proc = ok(actlab("compare", "--dataset", "iris", "--width", "8", "--depth", "1",
                     "--activations", "relu", "tanh", "leaky_relu:negative_slope=0.2",
                     "--seeds", "3", "--epochs", "2", "--out", "r", cwd=tmp_path))  # fmt: skip
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "&#x27;" not in md and "&quot;" not in md
    assert "with 3 seeds" in md and "5 seeds" not in md
    assert "--out NEW_DIR" in md and "actlab compare --out r --resume" in md
    # the Reproduce command, run verbatim with a new folder name, works
    command = next(line for line in md.splitlines() if line.startswith("actlab compare --"))
    import shlex

    argv = shlex.split(command.replace("NEW_DIR", "again"))[1:]
    ok(actlab(*argv, "--epochs", "1", cwd=tmp_path))
    assert "html report" in proc.stdout


def test_13_console_table_never_cuts_numbers_at_80_columns(tmp_path: Path) -> None:
    # long verdicts ("diverged on 3 of 3 seeds", "significantly worse") beside every column
    proc = ok(actlab("compare", *TINY, "--activations", "relu", "tanh", "sigmoid", "--seeds", "3",
                     "--epochs", "2", "--lr", "1e30", "--optimizer", "sgd", "--out", "w",
                     cwd=tmp_path, columns=80))  # fmt: skip
    table = proc.stdout.split("Writing results to w")[-1].split("\n\n")[0:3]
    table = "\n".join(table)
    assert "…" not in proc.stdout  # rich's ellipsis: a cut cell
    res = compare.load(tmp_path / "w")
    for row in res.stats.rows:
        assert row.activation in table
        if row.mean is not None:
            assert f"{row.mean:.4f}" in proc.stdout


def test_13_recommend_keeps_urls_whole_in_a_pipe(tmp_path: Path) -> None:
    proc = ok(actlab("recommend", "--task", "multiclass", cwd=tmp_path, columns=80))
    assert "…" not in proc.stdout
    assert "https://arxiv.org/abs/1706.04599" in proc.stdout.replace("\n", "")


def test_13_dead_units_panel_names_its_bars(finished_run: Path) -> None:
    from actlab.compare import report

    fig = report.fig_unit_health(compare.load(finished_run))
    dead, saturated = fig.axes[:2]
    labels = [t.get_text() for t in dead.get_legend().get_texts()]
    assert any(label.startswith("relu") for label in labels)
    legend = saturated.get_legend()
    if legend is not None:  # never a legend without bars
        assert saturated.patches


def test_13_one_numbering_for_weight_layers() -> None:
    from actlab import diagnose

    demo = diagnose.demo_vanishing(3, ["relu"], width=8, epochs=1)
    assert demo.layers[0].startswith("layer 1 (") and demo.layers[-1].startswith("layer 4 (")
    assert diagnose.weight_label(1, "0") == "layer 1"
    assert diagnose.weight_label(2, "fc2") == "layer 2 (fc2)"


def test_13_dying_demo_says_when_its_numbers_undercut_it() -> None:
    from actlab import diagnose

    demo = diagnose.demo_dying("relu,elu", epochs=3)
    if demo.val_accuracy["elu"][-1] < 0.5 or max(d or 0 for d in demo.dead("elu")) > 0.1:
        assert demo.caveats() and "not which activation trains best" in demo.caveats()[0]
    assert "caveats" in demo.to_dict()


# ---------------------------------------------------------- SIGKILL at random points, resume


def _epochs_stored(run: Path) -> int:
    try:
        conn = sqlite3.connect(f"{(run / 'results.sqlite').as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM epochs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_identical(tmp_path: Path) -> None:
    args = ["compare", "--dataset", "iris", "--width", "16", "--depth", "2", "--activations",
            "relu", "tanh", "--seeds", "2", "--epochs", "6", "--batch-size", "8"]  # fmt: skip
    ok(actlab(*args, "--out", "full", cwd=tmp_path))
    expected = final(tmp_path / "full")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    rng = random.Random(13)
    for point in range(3):
        out = tmp_path / f"cut{point}"
        env.pop("ACTLAB_CHECKPOINT_S", None)  # point 1: the default interval (no checkpoint in
        if point != 1:  # a run this short: it starts again from scratch); else one every epoch
            env["ACTLAB_CHECKPOINT_S"] = "0"
        proc = subprocess.Popen([sys.executable, "-m", "actlab", *args, "--out", out.name],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        # a random moment after 1..4 epochs (of 4 models each) are committed
        after = rng.randint(1, 4) * 4
        deadline = time.monotonic() + 120
        while _epochs_stored(out) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if not (out / "results.sqlite").exists():
            continue  # killed before anything was stored: nothing to resume
        before = _epochs_stored(out)
        ok(actlab("compare", "--out", out.name, "--resume", cwd=tmp_path))
        assert intact(out)["epochs"] == 24 >= before
        assert final(out) == expected, f"kill point {point} after {before} records"


# ---------------------------------------------------------------------------- disk full


def test_disk_full_mid_run_loses_no_committed_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # a failing write wrapper: epoch 2's transaction fails as SQLite fails on a full disk
    # (SQLITE_FULL); run in-process to inject it
    run = tmp_path / "full-disk"
    real_save = Store.save_epoch

    def save_then_fill_disk(self, epoch, *args, **kwargs):
        if epoch == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real_save(self, epoch, *args, **kwargs)

    monkeypatch.setattr(Store, "save_epoch", save_then_fill_disk)
    argv = ["compare", "--dataset", "iris", "--width", "8", "--depth", "1", "--activations",
            "relu", "tanh", "--seeds", "2", "--epochs", "3"]  # fmt: skip
    assert main([*argv, "--out", str(run)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    # progress lines go to stderr when it is not a terminal (issue 20); the error is one line
    assert all(line.startswith("actlab compare: ") for line in lines[:-1])
    err = lines[-1]
    assert "full" in err and "--resume" in err
    stored = intact(run)
    assert stored["epochs"] == 4  # epoch 1 of each of the 4 models, nothing lost
    monkeypatch.setattr(Store, "save_epoch", real_save)
    assert main(["compare", "--out", str(run), "--resume"]) == 0
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    assert final(run) == final(tmp_path / "whole")


def test_disk_full_while_creating_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import actlab.compare.store as store_mod

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store_mod.Store, "_connect", classmethod(lambda cls, d: full()))
    assert main(["compare", *TINY, "--epochs", "1", "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "disk is full" in err
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------- hostile CSV files


def _rows(n: int, seed: int = 0) -> list[tuple[float, float, int]]:
    rng = random.Random(seed)
    return [(rng.gauss(0, 1), rng.gauss(0, 1), rng.randint(0, 1)) for _ in range(n)]


def _hostile(where: Path) -> dict[str, Path]:
    body = "".join(f"{a:.3f},{b:.3f},{c}\n" for a, b, c in _rows(60))
    files = {
        "bom": ("a,b,y\n" + body).encode("utf-8-sig"),
        "semicolon": ("a;b;y\n" + body.replace(",", ";")).encode(),
        "quotes": ('"a","b, with comma","y"\n' + "".join(
            f'"{a:.3f}","{b:.3f}","{c}"\n' for a, b, c in _rows(60))).encode(),
        "na-spellings": ("a,b,y\n" + "".join(
            f"{['NA', '', 'nan', 'N/A', 'null', '?'][i % 6] if i % 9 == 0 else f'{a:.3f}'},"
            f"{b:.3f},{c}\n" for i, (a, b, c) in enumerate(_rows(60)))).encode(),
        "one-row": b"a,b,y\n1.0,2.0,0\n",
        "50-classes": ("a,b,y\n" + "".join(
            f"{a:.3f},{b:.3f},{i % 50}\n" for i, (a, b, _) in enumerate(_rows(200)))).encode(),
        "text-id": ("id,a,b,y\n" + "".join(
            f"user-{i:04d},{a:.3f},{b:.3f},{c}\n" for i, (a, b, c) in enumerate(_rows(60)))
        ).encode(),
        "latin-1": ("caf\xe9,b,y\n" + body).encode("latin-1"),
    }  # fmt: skip
    out = {}
    for name, data in files.items():
        (where / f"{name}.csv").write_bytes(data)
        out[name] = where / f"{name}.csv"
    return out


# what each file must give today: "ok" (it loads and trains) or a needle of its one-line error;
# None: either is fine as long as it is clean (the CSV reader is being rewritten; these files
# must keep ending in a clean success or one clear line)
HOSTILE = {
    "bom": "ok",
    "semicolon": "ok",
    "quotes": "ok",
    "na-spellings": "missing value",
    "one-row": "'y'",
    "50-classes": None,
    "text-id": None,
    "latin-1": "UTF-8",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_csv(tmp_path: Path, name: str) -> None:
    path = _hostile(tmp_path)[name]
    target = "y"
    proc = actlab("compare", "--csv", str(path), "--target", target, "--activations", "relu",
                  "--seeds", "1", "--epochs", "1", "--width", "8", "--depth", "1",
                  "--out", "run", cwd=tmp_path)  # fmt: skip
    want = HOSTILE[name]
    if want == "ok" or (want is None and proc.returncode == 0):
        ok(proc)
        assert intact(tmp_path / "run")["epochs"] == 1
    else:
        refused(proc, *([want] if want else []))
        assert not (tmp_path / "run").exists()
