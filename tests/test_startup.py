"""The light commands answer without importing the heavy libraries (issue 14.1).

Timing is the job of benchmarks/startup.py; this checks the cause that can regress silently:
a module-level import of torch, matplotlib or scipy somewhere on the path of these commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "matplotlib", "scipy", "numba")
# The modules are listed by an atexit function: the command ends the process itself (without the
# interpreter's teardown, actlab.cli._exit_without_teardown), and its exit code is the process's.
PROBE = (
    "import atexit, sys, runpy\n"
    "sys.argv = ['actlab', *sys.argv[1:]]\n"
    f"heavy = lambda: [m for m in {HEAVY!r} if m in sys.modules]\n"
    "atexit.register(lambda: print('HEAVY=' + ','.join(heavy())))\n"
    "runpy.run_module('actlab', run_name='__main__')\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["list"],
        ["info", "swish"],
        ["eval", "elu", "-1", "0", "2"],
        ["eval", "softplus", "--derivative", "3"],
        ["softmax", "1", "2", "3"],
        ["recommend", "--task", "multiclass"],
    ],
    ids=lambda c: " ".join(c),
)
def test_light_commands_import_no_heavy_module(command: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *command], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    lines = dict(ln.split("=", 1) for ln in res.stdout.splitlines() if ln.startswith("HEAVY="))
    assert res.returncode == 0, res.stderr  # the command itself worked
    assert lines.get("HEAVY") == "", f"actlab {' '.join(command)} imported {lines.get('HEAVY')}"


def test_probe_sees_a_heavy_import() -> None:
    """The probe is not vacuous: a command that draws does import matplotlib."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run(
        [sys.executable, "-c", PROBE.replace("runpy.run_module('actlab', run_name='__main__')",
                                             "import actlab.plot"), "list"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert "matplotlib" in res.stdout
