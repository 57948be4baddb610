"""The store's integrity (issue 18 B): committed epochs never decrease, however a resume is
interrupted; files the store did not make are never written; crafted or locked stores give one line.

Kills use the real CLI in subprocesses (``PYTHONPATH``: this checkout's ``src`` first); the rest
runs in-process, with the fake engine (``tests/_fake_engine.py``) where training is incidental.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import actlab.compare as compare
import actlab.compare.store as store_mod
from actlab.cli import main
from actlab.compare.store import Store
from actlab.errors import ActlabError

sys.path.insert(0, str(Path(__file__).parent))
import _fake_engine as fake

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"activations": ["relu", "tanh", "elu"], "seeds": 3, "epochs": 6, "width": 8,
         "report": False}  # fmt: skip
TINY = ["--dataset", "iris", "--activations", "relu", "--seeds", "1", "--epochs", "2",
        "--width", "8", "--depth", "1"]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ACTLAB_CHECKPOINT_S"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def _count(run: Path, table: str = "epochs") -> int | None:
    """Committed rows of ``table``, read as another process would: 0 before the store exists,
    None when it cannot be read right now (being created, a lock held during WAL recovery)."""
    path = run / "results.sqlite"
    if not path.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def _numbers(run: Path) -> tuple[list, list, int]:
    """Everything a run computed (timings aside): models, epochs, checkpoints left."""
    conn = sqlite3.connect(run / "results.sqlite")
    try:
        models = conn.execute("SELECT id, activation, seed, status, epochs_done, diverged_epoch, "
                              "cell, grp FROM models ORDER BY id").fetchall()  # fmt: skip
        epochs = conn.execute("SELECT model_id, epoch, train_loss, val_loss, metrics, grad_norms, "
                              "dead_fraction, saturated_fraction, diverged FROM epochs "
                              "ORDER BY model_id, epoch").fetchall()  # fmt: skip
        checkpoints = conn.execute("SELECT count(*) FROM checkpoint").fetchone()[0]
    finally:
        conn.close()
    return models, epochs, checkpoints


# ------------------------------------------------------------ 8: interrupted resumes lose nothing


def _stop_after(monkeypatch: pytest.MonkeyPatch, stop: int) -> None:
    """Ctrl-C right after the ``stop``-th epoch this process commits."""
    real_save, seen = Store.save_epoch, []

    def save_then_interrupt(self, epoch, *args, **kwargs):
        real_save(self, epoch, *args, **kwargs)
        seen.append(epoch)
        if len(seen) == stop:
            raise KeyboardInterrupt

    monkeypatch.setattr(Store, "save_epoch", save_then_interrupt)


@pytest.mark.parametrize("every", ["30", "0"])
def test_interrupted_resumes_never_delete_epochs(
    tmp_path: Path, engine: fake.Behaviour, monkeypatch: pytest.MonkeyPatch, every: str
) -> None:
    # a group with a diverged model: the checkpoint a resume writes must still fit the group
    # (on main the resume retrained the 8 others alone, and the next resume mixed them up)
    engine.diverge = {("tanh", 1): 2}
    full = compare.run("iris", out=tmp_path / "full", **SMALL)
    out = tmp_path / "cut"
    counts = []
    for step, stop in enumerate([3, 1, 2, 1, 1]):  # Ctrl-C after this many epochs of each try
        with monkeypatch.context() as m:
            m.setenv("ACTLAB_CHECKPOINT_S", "30" if step == 0 else every)  # "0": every epoch
            _stop_after(m, stop)
            with pytest.raises(KeyboardInterrupt):
                compare.run("iris", out=out, **SMALL) if step == 0 else compare.run(
                    out=out, resume=True)  # fmt: skip
        counts.append(_count(out))
        assert counts == sorted(counts), f"committed epochs went down: {counts}"
    assert counts[0] == 9 * 3 - 1  # (the diverged model stops after epoch 2)
    resumed = compare.run(out=out, resume=True)
    assert resumed.complete and _count(out) >= counts[-1]
    assert _numbers(out) == _numbers(tmp_path / "full")
    drop = ("seconds", "model")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.history] == [
        {k: v for k, v in r.items() if k not in drop} for r in full.history
    ]


def test_a_model_that_diverges_earlier_when_retrained_keeps_no_later_epochs(
    tmp_path: Path, engine: fake.Behaviour, monkeypatch: pytest.MonkeyPatch
) -> None:
    # retrained on another device a model may diverge before the epochs stored for it: the epochs
    # after its divergence go, in the transaction that records it (and only then)
    with monkeypatch.context() as m:
        _stop_after(m, 4)
        with pytest.raises(KeyboardInterrupt):
            compare.run("iris", out=tmp_path / "r", **SMALL)
    engine.diverge = {("tanh", 1): 2}  # "the other device"
    res = compare.run(out=tmp_path / "r", resume=True)
    model = next(m for m in res.models if (m["activation"], m["seed"]) == ("tanh", 1))
    assert model["status"] == "diverged" and model["diverged_epoch"] == 2
    assert max(r["epoch"] for r in res.history if r["model"] == model["id"]) == 2
    assert _count(tmp_path / "r") == 8 * 6 + 2


def _poll_until(proc: subprocess.Popen, run: Path, ready, seen: list[int]) -> None:
    """Watch the store (recording its epoch count) until ``ready()`` or the process ends."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not ready():
        n = _count(run)
        if n is not None:
            seen.append(n)
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_across_consecutive_resumes_keeps_every_committed_epoch(tmp_path: Path) -> None:
    # issue 18 item 8: kill -9 a run, then each of several resumes, at random moments: the
    # committed epochs never go down (watched all along, not only after each kill), and the
    # finished store holds the numbers of an uninterrupted run
    args = ["compare", "--dataset", "digits", "--activations", "relu,tanh", "--seeds", "2",
            "--epochs", "100", "--width", "32", "--depth", "1"]  # fmt: skip
    subprocess.run([sys.executable, "-m", "actlab", *args, "--out", "full"], cwd=tmp_path,
                   env=_env(), check=True, capture_output=True, timeout=300)  # fmt: skip
    total = 4 * 100
    rng = random.Random(18)
    out = tmp_path / "cut"
    seen: list[int] = []
    after_kill: list[int] = []
    for step in range(5):
        every = {} if step == 0 or rng.random() < 0.5 else {"ACTLAB_CHECKPOINT_S": "0"}
        cmd = [*args, "--out", "cut"] if step == 0 else ["compare", "--out", "cut", "--resume"]
        sessions = _count(out, "sessions")
        proc = subprocess.Popen([sys.executable, "-m", "actlab", *cmd], cwd=tmp_path,
                                env=_env(**every), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        if step == 0:  # the first run: once a random share of the epochs is committed
            target = int(total * rng.uniform(0.3, 0.6))
            _poll_until(proc, out, lambda t=target: (_count(out) or 0) >= t, seen)
        else:  # a resume: a random moment after its training session began
            _poll_until(proc, out, lambda s=sessions: (_count(out, "sessions") or 0) > s, seen)
            stop = time.monotonic() + rng.uniform(0.0, 1.0)
            _poll_until(proc, out, lambda s=stop: time.monotonic() >= s, seen)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        after_kill.append(_count(out))
        seen.append(after_kill[-1])
        assert seen == sorted(seen), f"committed epochs went down: kills left {after_kill}"
        if after_kill[-1] == total:
            break  # (a fast machine finished before the kill)
    resume = [sys.executable, "-m", "actlab", "compare", "--out", "cut", "--resume"]
    subprocess.run(resume, cwd=tmp_path, env=_env(), check=True, capture_output=True, timeout=300)
    assert _count(out) == total
    assert _numbers(out) == _numbers(tmp_path / "full")


# ------------------------------------------------------ 9: files it did not make stay as they are


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    conn.commit()
    conn.close()


def _foreign_wal(path: Path) -> None:  # another program's database in WAL mode, closed cleanly
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);")
    conn.commit()
    conn.close()


def _foreign_app(path: Path) -> None:  # tables like actlab's, another program's application id
    conn = sqlite3.connect(path)
    conn.executescript(f"PRAGMA application_id=1234; {store_mod._SCHEMA}")
    conn.commit()
    conn.close()


FOREIGN = {
    "another program's database": _foreign,
    "another program's WAL database": _foreign_wal,
    "another application id": _foreign_app,
    "empty file": lambda p: p.write_bytes(b""),
    "text file": lambda p: p.write_text("activation,score\nrelu,0.9\n"),
}


def _state(run: Path) -> tuple[list[str], str]:
    """The folder's file names and the database file's SHA-256."""
    names = sorted(p.name for p in run.iterdir())
    return names, hashlib.sha256((run / "results.sqlite").read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_files_it_did_not_make_stay_byte_identical(tmp_path: Path, capsys, kind: str) -> None:
    from actlab.explore.server import list_runs

    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    FOREIGN[kind](run / "results.sqlite")
    before = _state(run)
    assert before[0] == ["results.sqlite"]
    for argv in (["report", str(run)], ["compare", "--out", str(run), "--resume"],
                 ["compare", "--dataset", "iris", "--out", str(run)]):  # fmt: skip
        assert main(argv) == 2, argv
        assert _state(run) == before, argv  # no byte changed, no -wal/-shm made
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "untouched" in err and str(run) in err, err
    listed = list_runs(tmp_path / "runs")  # what GET /api/runs lists
    assert [r["name"] for r in listed] == ["x"] and "models" not in listed[0]
    assert listed[0]["error"].startswith(f"'{run / 'results.sqlite'}' is ")  # (cut at 200)
    assert _state(run) == before


# ----------------------------------------------------------- stores made before application_id


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished run of the real engine (shared; copy it before changing it)."""
    where = tmp_path_factory.mktemp("finished") / "run"
    assert main(["compare", *TINY, "--out", str(where)]) == 0
    return where


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _unfinish(run: Path) -> None:
    """Make a finished run look cut after epoch 1 (no checkpoint: it retrains from scratch)."""
    with sqlite3.connect(run / "results.sqlite") as conn:
        conn.execute("DELETE FROM epochs WHERE epoch > 1")
        conn.execute("UPDATE models SET status = 'running', epochs_done = 1")
    conn.close()


def test_new_stores_carry_actlab_application_id(finished: Path) -> None:
    with open(finished / "results.sqlite", "rb") as f:
        header = f.read(100)
    assert int.from_bytes(header[68:72], "big") == store_mod.APPLICATION_ID
    assert int.from_bytes(header[60:64], "big") == store_mod.SCHEMA_VERSION  # user_version


def _as_before_application_id(src: Path, dst: Path) -> None:
    """What main's code made: the same tables, application id 0, WAL mode from the first write,
    and a process killed before any WAL checkpoint (every table is in the -wal file only)."""
    dst.mkdir()
    code = (
        "import os, sqlite3, sys\n"
        "from actlab.compare.store import _SCHEMA\n"
        "c = sqlite3.connect(sys.argv[2], uri=True)\n"
        "c.execute('PRAGMA journal_mode=WAL')\n"
        "c.executescript(_SCHEMA)\n"
        "c.execute('ATTACH ? AS src', (sys.argv[1] + '?mode=ro&immutable=1',))\n"
        "for t in ('meta', 'models', 'epochs', 'sessions', 'checkpoint'):\n"
        "    c.execute(f'INSERT INTO main.{t} SELECT * FROM src.{t}')\n"
        "c.commit()\n"
        "os._exit(0)  # as kill -9: no WAL checkpoint, -wal and -shm stay\n"
    )
    subprocess.run([sys.executable, "-c", code, (src / "results.sqlite").as_uri(),
                    str(dst / "results.sqlite")], env=_env(), check=True)  # fmt: skip


def test_stores_made_before_application_id_still_work(finished: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    _as_before_application_id(finished, old)
    assert {"results.sqlite-wal", "results.sqlite-shm"} <= {p.name for p in old.iterdir()}
    probe = sqlite3.connect(f"{(old / 'results.sqlite').as_uri()}?mode=ro&immutable=1", uri=True)
    assert probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0  # all in -wal
    probe.close()
    assert compare.load(old).complete
    assert main(["report", str(old)]) == 0
    assert main(["compare", "--out", str(old), "--resume"]) == 0  # finished: nothing retrained

    cut = tmp_path / "cut-source"
    _unfinish(_copy(finished, cut))
    oldcut = tmp_path / "oldcut"
    _as_before_application_id(cut, oldcut)
    assert main(["compare", "--out", str(oldcut), "--resume"]) == 0
    assert _numbers(oldcut) == _numbers(finished)


# ------------------------------------------------------------------ 10: crafted stores, one line


CRAFTED = {
    "meta and nothing else": ("DROP TABLE models; DROP TABLE epochs; DROP TABLE sessions; "
                              "DROP TABLE checkpoint;", "missing models, epochs, sessions"),
    "config stored as a list": ("UPDATE meta SET value = '[1, 2]' WHERE key = 'config';",
                                "meta 'config' is a list, not an object"),
    "no data entry": ("DELETE FROM meta WHERE key = 'data';", "meta has no 'data' entry"),
    "a config section that is a number": (
        "UPDATE meta SET value = json_set(value, '$.model', 3) WHERE key = 'config';",
        "'model' is a whole number, not an object"),
    "a config value out of range": (
        "UPDATE meta SET value = json_set(value, '$.study.seeds', -4) WHERE key = 'config';",
        "stored configuration is invalid"),
    "meta value not JSON": ("UPDATE meta SET value = '{oops' WHERE key = 'versions';",
                            "meta 'versions' is not JSON"),
    "a missing column": ("ALTER TABLE epochs RENAME COLUMN seconds TO secs;",
                         "missing epochs.seconds"),
    "no checkpoint table": ("DROP TABLE checkpoint;", "missing checkpoint.grp"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_stores_give_one_line(finished: Path, tmp_path: Path, capsys, case: str) -> None:
    sql, needle = CRAFTED[case]
    run = _copy(finished, tmp_path / "crafted")
    with sqlite3.connect(run / "results.sqlite") as conn:
        conn.executescript(sql)
    conn.close()
    before = _state(run)
    for argv in (["report", str(run)], ["compare", "--out", str(run), "--resume"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("actlab: error: "), err
        assert needle in err and str(run) in err, err
    assert _state(run) == before


def test_a_crafted_store_through_the_real_cli_prints_no_traceback(
    finished: Path, tmp_path: Path
) -> None:
    run = _copy(finished, tmp_path / "crafted")
    with sqlite3.connect(run / "results.sqlite") as conn:
        conn.execute("DELETE FROM meta WHERE key = 'data'")
    conn.close()
    proc = subprocess.run([sys.executable, "-m", "actlab", "report", str(run)], env=_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]


# ------------------------------------------------------------------ 11: locked by another process


def test_a_store_locked_by_another_process_is_named_so(
    finished: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _copy(finished, tmp_path / "locked")
    _unfinish(run)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE')\n"
         "print('held', flush=True)\n"
         "time.sleep(120)\n", str(run / "results.sqlite")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(store_mod, "BUSY_S", 0.2, raising=False)  # (10 s by default)
        before = _count(run)
        assert main(["compare", "--out", str(run), "--resume"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "locked by another process" in err, err
        assert str(run / "results.sqlite") in err and "Wait for it to finish or stop it" in err
        assert "Free some space" not in err
        assert main(["report", str(run)]) == 0  # readers are not blocked
        capsys.readouterr()
    finally:
        holder.kill()
        holder.wait()
    assert _count(run) == before
    # the lock taken mid-run, when an epoch is saved, is named the same way
    message = str(compare._storage_failed(run, sqlite3.OperationalError("database is locked")))
    assert "locked by another process" in message and "Free some space" not in message
    assert main(["compare", "--out", str(run), "--resume"]) == 0  # once the holder is gone
    assert _numbers(run) == _numbers(finished)


def test_store_create_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"")
    with pytest.raises(FileExistsError):
        Store.create(tmp_path, config={}, fingerprint="0", data={}, jobs=[], command="c")
    assert (tmp_path / "results.sqlite").read_bytes() == b""
    with pytest.raises(ActlabError, match="empty file"):
        Store.open(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]
