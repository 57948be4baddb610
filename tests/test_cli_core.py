"""`actlab list/info/eval/softmax`: output, JSON, usage errors (exit 2, one line, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from actlab import catalog
from actlab.cli import main

ARTICLE = "0.02364054 0.06426166 0.1746813 0.474833 0.02364054 0.06426166 0.1746813"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_table_names_every_activation(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for name in catalog.names():
        assert name in out


def test_list_json(capsys):
    code, out, _ = run(capsys, "list", "--json")
    data = json.loads(out)
    assert code == 0 and [d["name"] for d in data] == catalog.names()
    relu = next(d for d in data if d["name"] == "relu")
    assert relu["output_range"] == [0.0, "inf"] and relu["properties"]["monotonic"] is True


def test_info_shows_formula_params_and_disagreements(capsys):
    code, out, _ = run(capsys, "info", "LeakyReLU")
    assert code == 0
    assert "negative_slope" in out and "alpha" in out and "0.01" in out and "Keras" in out


def test_info_json_is_complete(capsys):
    _, out, _ = run(capsys, "info", "gelu", "--json")
    d = json.loads(out)
    assert d["name"] == "gelu" and d["params"][0]["allowed"] == "one of 'none', 'tanh'"
    assert d["formula_latex"] and d["reference"] and d["disagreements"]


def test_eval_accepts_negative_numbers_inf_and_nan(capsys):
    code, out, _ = run(capsys, "eval", "relu", "-1", "-2.5e3", "3", "-inf", "nan", "--json")
    d = json.loads(out)
    assert code == 0
    assert d["y"][:4] == [0.0, 0.0, 3.0, 0.0] and d["y"][4] == "nan"


def test_eval_derivative_and_dtype(capsys):
    code, out, _ = run(
        capsys,
        "eval",
        "sigmoid",
        "0",
        "-1000",
        "1000",
        "--derivative",
        "--dtype",
        "float16",
        "--json",
    )
    d = json.loads(out)
    assert code == 0 and d["dtype"] == "float16" and d["y"] == [0.25, 0.0, 0.0]


def test_eval_table(capsys):
    code, out, _ = run(capsys, "eval", "leaky_relu:alpha=0.1", "-2", "2")
    assert code == 0 and "-0.2" in out and "Leaky ReLU" in out


def test_softmax_prints_the_articles_probabilities(capsys):
    code, out, _ = run(capsys, "softmax", "1", "2", "3", "4", "1", "2", "3")
    assert code == 0
    assert f"[{ARTICLE}]" in out
    assert "sum = 1" in out


def test_softmax_temperatures_and_json(capsys):
    code, out, _ = run(capsys, "softmax", "1", "2", "3", "-t", "1", "10", "--json")
    d = json.loads(out)
    assert code == 0 and [r["temperature"] for r in d["results"]] == [1.0, 10.0]
    hot, flat = (r["probabilities"] for r in d["results"])
    assert max(flat) < max(hot)  # a higher temperature flattens the distribution
    assert all(abs(r["sum"] - 1) < 1e-12 for r in d["results"])


def test_softmax_is_stable_for_large_scores(capsys):
    code, out, _ = run(capsys, "softmax", "1000", "1001", "--json")
    p = json.loads(out)["results"][0]["probabilities"]
    assert code == 0 and abs(p[1] - 0.7310585786300049) < 1e-12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "rleu", "1"], "did you mean 'relu'"),
        (["eval", "relu", "abc"], "X must be numbers"),
        (["eval", "elu:alpha=-2", "1"], "'alpha' of elu"),
        (["eval", "softmax", "1", "2", "--derivative"], "not elementwise"),
        (["info", "nope"], "unknown activation"),
        (["softmax", "1", "2", "-t", "0"], "--temperature must be a positive"),
        (["softmax", "1", "2", "--plot", "/nonexistent-dir/x.png"], "does not exist"),
        (["softmax", "1", "2", "--plot", "chart.bmp"], "unknown file type"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv", [["eval", "relu"], ["eval", "relu", "1", "--dtype", "int8"], ["frobnicate"], []]
)
def test_argparse_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    if argv:  # a mistake gets one line naming it; no arguments at all print the help instead
        assert len(err.strip().splitlines()) == 1 and "error:" in err and "--help" in err


def test_console_script_end_to_end():
    proc = subprocess.run(
        [sys.executable, "-m", "actlab", "softmax", "1", "2", "3", "4", "1", "2", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert ARTICLE in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "actlab", "eval", "rleu", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_softmax_plot_writes_a_chart_and_never_overwrites(capsys, tmp_path):
    path = tmp_path / "bars.png"
    code, out, _ = run(capsys, "softmax", "1", "2", "3", "4", "1", "2", "3", "-t", "1", "2",
                       "--plot", str(path))  # fmt: skip
    assert code == 0 and "chart written" in out
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    code, _, err = run(capsys, "softmax", "1", "2", "--plot", str(path))
    assert code == 2 and "--force" in err and path.read_bytes() == data
    code, _, _ = run(capsys, "softmax", "1", "2", "--plot", str(path), "--force")
    assert code == 0 and path.read_bytes() != data


def _exit_script(body: str) -> list[str]:
    """``actlab list`` through ``actlab.cli.run`` in a child, after ``body``; its stdout lines."""
    code = (
        "import atexit, sys, threading, actlab.cli, actlab.usercode\n"
        f"{body}\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n"
        "sys.argv = ['actlab', 'list']\n"
        "actlab.cli.run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_fast_exit_still_runs_atexit_functions_and_flushes_stdout():
    lines = _exit_script("")
    assert lines[-1] == "atexit ran"
    assert sum("relu" in line for line in lines) >= 1 and len(lines) > 20  # the whole table


def test_the_fast_exit_is_skipped_when_user_code_ran_or_a_thread_runs(monkeypatch):
    import actlab.cli as cli_module

    calls = []
    monkeypatch.setattr(cli_module.os, "_exit", lambda code: calls.append(code))
    monkeypatch.setattr(cli_module.atexit, "_run_exitfuncs", lambda: calls.append("atexit"))
    with monkeypatch.context() as alone:  # as in a fresh process (other tests leave threads)
        alone.setattr(cli_module.usercode, "imported", [])
        alone.setattr(cli_module.threading, "enumerate", lambda: [threading.main_thread()])
        cli_module._exit_without_teardown(3)
    assert calls == ["atexit", 3]
    calls.clear()
    monkeypatch.setattr(cli_module.usercode, "imported", ["nets.py"])
    cli_module._exit_without_teardown(0)
    assert calls == []  # a user module's files are flushed by the ordinary exit
    monkeypatch.setattr(cli_module.usercode, "imported", [])
    release = threading.Event()  # (the real thread list: this one is in it)
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        cli_module._exit_without_teardown(0)
        assert calls == []  # the ordinary exit waits for it
    finally:
        release.set()
        worker.join()


def test_a_user_module_makes_the_ordinary_exit_flush_its_files(tmp_path):
    path = tmp_path / "out.txt"
    lines = _exit_script(
        f"actlab.usercode.imported.append('nets.py'); handle = open({str(path)!r}, 'w'); "
        "handle.write('kept')  # left open, as user code may"
    )
    assert lines[-1] == "atexit ran"
    assert path.read_text() == "kept"
