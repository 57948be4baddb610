"""``actlab explore`` on the command line: the missing-extra message, the host warning, bad ports.

The server itself is tested in test_explore_server.py; here uvicorn's run loop is replaced by a
stand-in that returns at once, so nothing listens for long.
"""

from __future__ import annotations

import importlib.util
import socket

import pytest

from actlab.cli import main


def test_without_the_extra_it_exits_2_with_the_install_command(monkeypatch, capsys):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name in ("starlette", "uvicorn") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["explore", "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("actlab: error:") and "\n" not in err
    assert 'pip install "actlab[explore]"' in err and "starlette, uvicorn" in err


@pytest.fixture()
def no_serving(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    pytest.importorskip("plotly")
    import torch

    calls = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append(sockets))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # keep the test process's own
    return calls


@pytest.mark.parametrize(
    ("host", "warned"), [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True)]
)
def test_a_non_local_host_warns_that_there_is_no_authentication(
    no_serving, capsys, tmp_path, host, warned
):
    assert (
        main(["explore", "--host", host, "--port", "0", "--no-browser", "--runs", str(tmp_path)])
        == 0
    )
    out, err = capsys.readouterr()
    assert "serving http://" in out and str(tmp_path) in out
    assert ("no authentication" in err) is warned
    (sock,) = no_serving[0]
    assert sock.getsockname()[0] in ("127.0.0.1", "0.0.0.0")
    sock.close()


def test_a_port_in_use_is_a_clear_error(no_serving, capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["explore", "--port", str(port), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert main(["explore", "--port", "70000", "--no-browser"]) == 2
    assert "65535" in capsys.readouterr().err


def test_activations_come_from_the_command_line(no_serving, capsys, tmp_path):
    """--activations loads the user's functions at start-up; anything else is one line, exit 2."""
    acts = tmp_path / "acts.py"
    acts.write_text("import torch\ndef snake(x, a=1.0):\n    return x + torch.sin(a * x) ** 2\n")
    args = ["explore", "--port", "0", "--no-browser", "--runs", str(tmp_path)]
    assert main([*args, "--activations", f"{acts}:snake"]) == 0
    no_serving[0][0].close()
    capsys.readouterr()
    for bad, words in (
        ("relu", "file.py:function"),
        (f"{acts}:snake:a=2", "file.py:function"),
        (f"{acts}:nothing", "no function 'nothing'"),
        (f"{tmp_path / 'missing.py'}:f", "does not exist"),
    ):
        assert main([*args, "--activations", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("actlab: error:") and "\n" not in err and words in err, err
