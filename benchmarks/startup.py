"""Start-up time of the light `actlab` commands against a bare `python -c pass` (issue 14.1).

    .venv/bin/python benchmarks/startup.py              # 7 runs per command, medians
    .venv/bin/python benchmarks/startup.py --repeats 1  # smoke (CI)

Each command runs in a fresh interpreter (`python -m actlab ...`, what the `actlab` script does)
with output to /dev/null; the runs are interleaved round-robin so that load from elsewhere on a
shared machine hits every row alike. Goal: each command within 0.25 s of bare Python measured in
the same run. The heavy modules (torch, matplotlib, scipy, scikit-learn, pandas, pyarrow) must
not be imported by any of these commands; the table shows any that were.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import summary

GOAL_S = 0.25
HEAVY = ("torch", "matplotlib", "scipy", "sklearn", "pandas", "pyarrow")
COMMANDS: list[list[str]] = [
    ["--help"],
    ["list"],
    ["info", "relu"],
    ["eval", "elu", "-1", "0", "2"],
    ["softmax", "1", "2", "3"],
    ["recommend", "--task", "multiclass"],
]
# Runs the command as `python -m actlab` would, then reports which heavy modules it imported.
_PROBE = (  # an atexit function: the command ends the process itself, without the teardown
    "import atexit, sys, runpy\n"
    "sys.argv = ['actlab', *sys.argv[1:]]\n"
    f"heavy = lambda: [m for m in {HEAVY!r} if m in sys.modules]\n"
    "atexit.register(lambda: sys.stderr.write('HEAVY:' + ','.join(heavy()) + '\\n'))\n"
    "runpy.run_module('actlab', run_name='__main__')\n"
)


def _env(pycache: str) -> dict[str, str]:
    # An installed package runs from cached bytecode (pip compiles it at install time). This
    # shell sets PYTHONDONTWRITEBYTECODE=1, which made every run compile actlab's ~20 modules
    # from source (58 compile() calls, 62 ms of a 0.30 s `actlab list`): the warm-up run below
    # writes the bytecode into a private cache folder instead, and the timed runs read it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def heavy_imports(command: list[str], env: dict[str, str]) -> list[str]:
    """The heavy modules that `actlab COMMAND` leaves in sys.modules."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *command],
        env=env, capture_output=True, text=True, check=False,
    ).stderr
    line = next((s for s in out.splitlines() if s.startswith("HEAVY:")), "HEAVY:?")
    return [m for m in line[6:].split(",") if m]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="runs per command (median)")
    args = ap.parse_args()
    env = _env(tempfile.mkdtemp(prefix="actlab-pycache-"))
    bare = [sys.executable, "-c", "pass"]
    rows = [[sys.executable, "-m", "actlab", *c] for c in COMMANDS]
    for argv in [bare, *rows]:  # warm the OS file cache and the bytecode cache once
        _time(argv, env)
    times: list[list[float]] = [[] for _ in range(len(rows) + 1)]
    cpus: list[list[float]] = [[] for _ in range(len(rows) + 1)]
    for _ in range(args.repeats):
        for i, argv in enumerate([bare, *rows]):
            wall, cpu = _time(argv, env)
            times[i].append(wall)
            cpus[i].append(cpu)
    base = statistics.median(times[0])
    base_cpu = statistics.median(cpus[0])
    print(summary())
    print(f"python {sys.version.split()[0]}; median of {args.repeats} runs")
    goal = f"goal (<= {GOAL_S} s over bare)"
    print(f"{'command':<34}{'seconds':>9}{'- bare':>9}{'cpu s':>8}  {goal:<28}heavy imports")
    print(f"{'python -c pass':<34}{base:9.3f}{'':9}{base_cpu:8.3f}")
    met_all = True
    for command, t, c in zip(COMMANDS, times[1:], cpus[1:], strict=True):
        med = statistics.median(t)
        heavy = heavy_imports(command, env)
        met = med - base <= GOAL_S and not heavy
        met_all &= met
        print(f"{'actlab ' + ' '.join(command):<34}{med:9.3f}{med - base:9.3f}"
              f"{statistics.median(c):8.3f}  "
              f"{'MET' if met else 'MISSED':<28}{', '.join(heavy) or 'none'}")
    print("start-up goal: MET for every command" if met_all else
          "start-up goal: MISSED (see the rows above; on a loaded machine compare the CPU seconds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
