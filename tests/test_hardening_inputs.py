"""Issue 18 C (items 12-19): inputs and user code end in one line (exit 2), never a traceback, a
hang, a corrupted --json or a half-made folder. Each test reproduces a case that failed before."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import actlab
from _cli import cli
from actlab.errors import ActlabError

torch = pytest.importorskip("torch")

MOONS = ["--dataset", "moons", "--seeds", "1", "--epochs", "1", "--width", "8"]

USER = textwrap.dedent(
    """
    import sys, torch
    from torch import nn
    def det(x): return torch.tanh(x).detach()
    def nograd(x):
        with torch.no_grad():
            return torch.tanh(x)
    def integer(x): return (x > 0).long()
    def inplace(x): return x.relu_()
    def dtype(x):
        torch.set_default_dtype(torch.float64)
        return torch.tanh(x)
    def exits(x): sys.exit()
    def hang(x):
        while True:
            pass
    def noisy(x):
        print("hello from user code")
        return torch.tanh(x)
    def identity_model(spec): return nn.Identity()
    def frozen_model(spec):
        m = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
        m.requires_grad_(False)
        return m
    def exit_model(spec): sys.exit(3)
    def dtype_model(spec):
        torch.set_default_dtype(torch.float64)
        return nn.Linear(2, 2)
    def detach_model(spec):
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(2, 2)
            def forward(self, x):
                return self.lin(x).detach()
        return M()
    def hang_model(spec):
        while True:
            pass
    """
)


def one_line_error(code, err, *words):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("actlab")]
    assert lines and "error" in lines[-1], err
    for w in words:
        assert w in lines[-1], lines[-1]


@pytest.fixture
def user(tmp_path, monkeypatch):
    """A file of misbehaving user code (a new path per test: loads are cached by path)."""
    path = tmp_path / "acts.py"
    path.write_text(USER)
    monkeypatch.chdir(tmp_path)
    yield path
    torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------------------------- 12: --csv


def _csv_cases(tmp_path):
    gz = tmp_path / "g.csv"
    gz.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"a,b\x00\n1,2\n")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    long = tmp_path / "long.csv"
    long.write_text("a,b\n1," + "x" * 3_000_000 + "\n2,3\n")
    return [
        ("/dev/zero", "character device"),
        (str(fifo), "FIFO"),
        (str(gz), "gzip"),
        (str(nul), "binary"),
        (str(long), "131,072 characters"),
        (str(tmp_path), "directory"),
    ]


@pytest.mark.timeout(60)
def test_csv_that_cannot_be_csv_is_refused_in_one_line(tmp_path, capsys):
    for path, words in _csv_cases(tmp_path):
        out = tmp_path / "run"
        code, _, err = cli(capsys, "compare", "--csv", path, "--target", "a", "--out", out)
        one_line_error(code, err, words)
        assert not out.exists()


def test_csv_bigger_than_memory_is_refused(tmp_path, monkeypatch):
    from actlab import data
    from actlab.data import csvfile

    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "1,2\n" * 1000)
    monkeypatch.setattr(csvfile, "available_memory", lambda: 1000)
    with pytest.raises(ActlabError, match="memory available"):
        data.load_csv(path, "a")


# --------------------------------------------------------------------- 13: user code that breaks


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        ("det", "no gradient"),
        ("nograd", "no gradient"),
        ("integer", "dtype int64"),
        ("inplace", "in place"),
        ("dtype", "default dtype"),
        ("exits", "sys.exit()"),
    ],
)
def test_bad_user_activation_is_one_line(user, capsys, fn, words):
    code, _, err = cli(capsys, "eval", f"{user.name}:{fn}", "1", "2", "--derivative")
    one_line_error(code, err, f"{user.name}:{fn}", words)
    assert torch.get_default_dtype() == torch.float32  # put back


def test_default_dtype_changed_at_import_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "imp.py").write_text(
        "import torch\ntorch.set_default_dtype(torch.float64)\ndef f(x): return torch.tanh(x)\n"
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "eval", "imp.py:f", "1", "--derivative")
    one_line_error(code, err, "imp.py", "default dtype")
    assert torch.get_default_dtype() == torch.float32


def test_sys_exit_as_a_spec_is_one_line(capsys):
    code, out, err = cli(capsys, "eval", "sys:exit", "1", "2")
    one_line_error(code, err, "sys:exit", "sys.exit()")
    assert "tensor" not in err + out


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        ("identity_model", "no trainable parameters"),
        ("frozen_model", "no trainable parameters"),
        ("exit_model", "sys.exit()"),
        ("dtype_model", "default dtype"),
        ("detach_model", "no gradient"),
    ],
)
def test_bad_user_model_is_one_line_and_makes_no_folder(user, capsys, tmp_path, fn, words):
    out = tmp_path / "run"
    code, _, err = cli(
        capsys, "compare", *MOONS, "--activations", "relu", "--model", f"{user.name}:{fn}",
        "--out", out,
    )  # fmt: skip
    one_line_error(code, err, fn, words)
    assert not out.exists()


# --------------------------------------------------------------------------------- 14: hangs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["eval", "plot", "compare", "model"])
def test_hanging_user_code_is_stopped_by_the_probe_time_limit(user, capsys, tmp_path, monkeypatch,
                                                              command):  # fmt: skip
    monkeypatch.setenv("ACTLAB_PROBE_TIMEOUT", "1")
    out = tmp_path / "run"
    argv = {
        "eval": ["eval", f"{user.name}:hang", "1"],
        "plot": ["plot", f"{user.name}:hang", "-o", tmp_path / "x.png"],
        "compare": ["compare", *MOONS, "--activations", f"{user.name}:hang", "--out", out],
        "model": ["compare", *MOONS, "--activations", "relu", "--model",
                  f"{user.name}:hang_model", "--out", out],
    }[command]  # fmt: skip
    start = time.monotonic()
    code, _, err = cli(capsys, *argv)
    one_line_error(code, err, "hang", "1 s", "ACTLAB_PROBE_TIMEOUT")
    assert time.monotonic() - start < 20
    assert not out.exists()


def test_probe_timeout_setting_is_checked(monkeypatch):
    from actlab import usercode

    monkeypatch.setenv("ACTLAB_PROBE_TIMEOUT", "soon")
    with pytest.raises(ActlabError, match="ACTLAB_PROBE_TIMEOUT"):
        usercode.probe_timeout()


@pytest.mark.timeout(120)
def _ctrl_c_as_at_a_terminal() -> None:
    """In the child: SIGINT's default action, as a command typed at a terminal has it. A shell
    that runs the suite in the background (`cmd &`) starts it with SIGINT ignored, which every
    child inherits, and Python then never raises KeyboardInterrupt (the test hung 20 s)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_training_stuck_in_user_code(tmp_path):
    marker = tmp_path / "stuck"
    (tmp_path / "late.py").write_text(textwrap.dedent(f"""
        import torch
        calls = [0]
        def late_hang(x):
            calls[0] += 1
            if calls[0] > 60:  # past the probe: stuck during training, in a worker thread
                open({str(marker)!r}, "w").close()
                while True:
                    pass
            return torch.tanh(x)
        """))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "actlab", "compare", "--dataset", "moons", "--activations",
         "late.py:late_hang", "--seeds", "1", "--epochs", "200", "--width", "8",
         "--out", str(tmp_path / "run")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "no hang"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert time.monotonic() - start < 15
    assert "Traceback" not in err and "--resume" in err


# ------------------------------------------------------------------------- 15: --json stays JSON


def test_user_code_printing_does_not_corrupt_compare_json(user, capsys, tmp_path):
    code, out, err = cli(
        capsys, "compare", *MOONS, "--activations", f"{user.name}:noisy", "--json",
        "--out", tmp_path / "run",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["complete"] is True
    assert "hello from user code" in err


def test_json_to_a_full_device_names_standard_output(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "actlab", "compare", *MOONS, "--activations", "relu",
             "--json", "--out", str(tmp_path / "run")],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "standard output" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------- 16: sizes


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seeds", "100000000000"], "--seeds"),
        (["--seeds", "4000000000"], "--max-models"),
        (["--depth", "1000000"], "--max-memory"),
        (["--width", "100000000"], "--max-memory"),
        (["--width", "512", "--max-memory", "0.001"], "needs about"),
        (["--seeds", "30", "--max-models", "100"], "210 models"),
    ],
)
def test_runs_beyond_the_machine_are_refused_before_any_folder(capsys, tmp_path, args, words):
    out = tmp_path / "run"
    code, _, err = cli(capsys, "compare", "--dataset", "moons", *args, "--out", out)
    one_line_error(code, err, words)
    assert not out.exists()


# ---------------------------------------------------------------------- 17: seeds, Ray address


def test_split_seed_too_large_is_one_line(capsys, tmp_path):
    code, _, err = cli(
        capsys, "compare", *MOONS, "--split-seed", "99999999999999999999999", "--out", tmp_path
    )
    one_line_error(code, err, "--split-seed")


def test_resampled_split_seed_past_32_bits_is_one_line():
    from actlab.compare.config import CompareConfig

    with pytest.raises(ActlabError, match="split seed"):
        CompareConfig.from_settings(split_seed=2**32 - 2, seeds=5, resample_split=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("address", "words"),
    [("not an address", "not an address"), ("", "empty"),
     ("http://127.0.0.1:6379", "URL"), ("127.0.0.1:1", "cannot reach")],
)  # fmt: skip
def test_bad_ray_address_is_one_line_and_quick(capsys, tmp_path, address, words):
    if address == "127.0.0.1:1":
        pytest.importorskip("ray")
    start = time.monotonic()
    code, _, err = cli(capsys, "compare", *MOONS, "--backend", "ray", "--ray-address", address,
                       "--out", tmp_path / "run")  # fmt: skip
    one_line_error(code, err, words)
    assert time.monotonic() - start < 30
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------- 18: the Python API


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"activations": 5}, "activations"),
        ({"out": 5}, "out must be"),
        ({"activations": [None]}, "activations"),
        ({"lr": [[1e-3]]}, "flat list"),
        ({"lr": "1_0"}, "lr"),
    ],
)
def test_compare_run_checks_its_arguments(tmp_path, kwargs, words):
    from actlab import compare

    kwargs = {"out": tmp_path / "run", **kwargs}
    with pytest.raises(ActlabError, match=words):
        compare.run("moons", epochs=1, report=False, **kwargs)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        ("x", {"params": 5}, "params must map"),
        ("class", {}, "spec name"),
        ("__init__", {}, "spec name"),
        ("relu", {}, "shadow=True"),
    ],
)
def test_register_checks_name_and_params(name, kwargs, words):
    with pytest.raises(ActlabError, match=words):
        actlab.register(name, torch.tanh, **kwargs)


def test_register_may_shadow_a_builtin_only_when_asked():
    actlab.register("relu", torch.tanh, shadow=True)
    try:
        assert float(actlab.parse("relu").forward(1.0)) == pytest.approx(0.7615941559557649)
    finally:
        actlab.unregister("relu")
    assert float(actlab.parse("relu").forward(1.0)) == 1.0


@pytest.mark.parametrize("text", ["1_0", "٥", "１", "0x10", "1e", "--1", "²", "1 0", "nan", "inf"])
def test_numbers_follow_one_grammar(text):
    with pytest.raises(ActlabError, match="alpha"):
        actlab.parse(f"elu:alpha={text}")
    from actlab.errors import read_number

    with pytest.raises(ValueError):
        read_number(text)


def test_the_grammar_reads_ordinary_numbers():
    from actlab.errors import read_number

    assert read_number(" -2.5e-1 ") == -0.25
    assert read_number("1e3", integer=True) == 1000
    assert read_number("99999999999999999999999", integer=True) == 99999999999999999999999
    assert read_number("-inf", special=True) == float("-inf")
    assert str(actlab.parse("elu:alpha=.5")) == "elu:alpha=0.5"


@pytest.mark.parametrize(
    "argv",
    [["eval", "relu", "1_0"], ["softmax", "1", "2", "-t", "1_0"], ["compare", "--lr", "1_0"],
     ["compare", "--width", "٥"], ["plot", "relu", "--xlim", "0", "1_0"]],
)  # fmt: skip
def test_cli_numbers_follow_the_same_grammar(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)  # (before the fix, plot wrote relu.png here)
    code, _, err = cli(capsys, *argv)
    assert code == 2 and ("1_0" in err or "٥" in err)
    assert "Traceback" not in err


# ------------------------------------------------------------------------- 19: raw warnings


def test_plot_of_many_activations_is_refused_without_a_raw_warning(capsys, tmp_path):
    specs = [f"leaky_relu:alpha={i / 1000:g}" for i in range(1, 201)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = cli(capsys, "plot", *specs, "--derivative", "-o", tmp_path / "p.png")
    one_line_error(code, err, "at most 10")
    assert not (tmp_path / "p.png").exists()


def test_report_figures_never_warn_when_tight_layout_gives_up():
    from matplotlib.figure import Figure

    from actlab.compare import report

    fig = Figure(figsize=(1, 1))
    ax = fig.add_subplot()
    ax.set_ylabel("\n".join(["a very long label"] * 40))
    ax.set_title("\n".join(["title"] * 40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report._fit(fig)


def test_found_by_hypothesis_a_csv_of_separators_and_a_spec_with_a_newline(tmp_path, capsys):
    """Two cases the property tests found with 1,500 examples: a CSV holding only ',' was an
    IndexError traceback; a spec with a newline gave a two-line error."""
    path = tmp_path / "comma.csv"
    path.write_text(",")
    code, _, err = cli(capsys, "compare", "--csv", path, "--target", "a", "--out", tmp_path / "r")
    assert code == 2 and "has no values" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    code, _, err = cli(capsys, "eval", "identity:\n", "1")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_search_and_time_budget_numbers_follow_the_one_grammar(tmp_path, capsys):
    """`search --seed/--finalists/--entrants` and `compare --time-budget` read numbers by
    errors.read_number like every other option (int()/float() took '1_0' as 10)."""
    for argv in (["search", "--seed", "1_0"], ["search", "--finalists", "٥"],
                 ["search", "--entrants", "1_0"],
                 ["compare", "--time-budget", "1_0"]):  # fmt: skip
        code, _, err = cli(capsys, *argv, "--out", tmp_path / "r")
        assert code == 2 and "expected" in err and "Traceback" not in err, argv
        assert not (tmp_path / "r").exists()
    code, _, err = cli(capsys, "search", "--finalists", "0", "--out", tmp_path / "r")
    assert code == 2 and "--finalists must be a whole number >= 1" in err
    assert not (tmp_path / "r").exists()
