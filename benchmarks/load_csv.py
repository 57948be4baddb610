"""CSV loading speed and memory (issue 14.2): a generated 200k x 50 file, ~92 MB.

    .venv/bin/python benchmarks/load_csv.py                 # 200k rows: ~93 MB file
    .venv/bin/python benchmarks/load_csv.py --rows 2000     # smoke (CI)

The file (45 float columns, 4 text columns of 6 levels, an integer class target) is written to
a temporary folder and deleted afterwards; it is not shipped. Each load runs in a fresh
interpreter so that its peak RSS (ru_maxrss) is the loader's alone; the table shows the
interpreter's own RSS after its imports too. Goals: load in under 2 s and a peak RSS under 3x the
file size (the whole process, interpreter included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _machine import summary

GOAL_SECONDS = 2.0
GOAL_MEMORY = 3.0  # x file size

_CHILD = """
import json, resource, sys, time
from actlab import data
import pyarrow.csv  # the loader's own import, counted in the baseline rather than the load
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2**20
before = rss()
t0, c0 = time.perf_counter(), time.process_time()
ds = data.load_csv(sys.argv[1], 'label')
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({'seconds': seconds, 'cpu': cpu, 'peak_mb': peak, 'base_mb': before,
                  'shape': list(ds.X.shape), 'task': ds.task}))
"""


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """45 float columns (%.6f of N(0, 10)), 4 text columns, an integer target of 5 classes."""
    rng = np.random.default_rng(seed)
    n_num, n_text = 45, 4
    names = [f"x{i}" for i in range(n_num)] + [f"cat{i}" for i in range(n_text)] + ["label"]
    levels = np.array(["red", "green", "blue", "amber", "violet", "cyan"])
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(names) + "\n")
        step = 20_000
        for lo in range(0, rows, step):
            m = min(step, rows - lo)
            block = np.concatenate(
                [
                    np.char.mod("%.6f", rng.standard_normal((m, n_num)) * 10),
                    levels[rng.integers(0, len(levels), (m, n_text))],
                    np.char.mod("%d", rng.integers(0, 5, (m, 1))),
                ],
                axis=1,
            )
            f.write("\n".join(",".join(r) for r in block.tolist()) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the generated file")
    ap.add_argument("--repeats", type=int, default=3, help="loads (median time, max peak)")
    args = ap.parse_args()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    print(summary())
    with tempfile.TemporaryDirectory(prefix="actlab-load-csv-") as tmp:
        path = Path(tmp) / "wide.csv"
        generate(path, args.rows)
        size_mb = path.stat().st_size / 2**20
        runs = []
        for _ in range(args.repeats):
            res = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)], env=env, capture_output=True,
                text=True, check=False,
            )
            if res.returncode != 0:
                print(res.stderr, file=sys.stderr)
                return 1
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    base = statistics.median(r["base_mb"] for r in runs)
    print(f"file: {args.rows:,} rows x 50 columns, {size_mb:.1f} MiB; X {tuple(runs[0]['shape'])}, "
          f"task {runs[0]['task']}; {args.repeats} loads, each in a fresh interpreter")
    met_t = seconds < GOAL_SECONDS
    met_m = peak < GOAL_MEMORY * size_mb
    each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    print(f"load time  {seconds:7.2f} s   (runs: {each}; CPU time {cpu:.2f} s)"
          f"   goal < {GOAL_SECONDS:g} s: {'MET' if met_t else 'MISSED'}")
    print(f"peak RSS   {peak:7.1f} MiB = {peak / size_mb:.2f}x the file (interpreter and imports "
          f"alone {base:.0f} MiB)   goal < {GOAL_MEMORY:g}x: {'MET' if met_m else 'MISSED'}")
    if args.rows < 100_000:
        print("(a small --rows run checks that the script works; the goals are set for 200k rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
