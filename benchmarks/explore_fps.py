"""Frame rate, memory and the deep-sigmoid stall of ``actlab explore``'s Playground.

Starts ``actlab explore`` as its own process (as a user would), then over HTTP:

1. streams a 2 x 8 ReLU network on moons for ``--seconds`` and reports frames/s (the goal: >= 10
   on a laptop CPU; the server caps a session at 30);
2. trains 8 x 16 sigmoid and 8 x 16 ReLU networks on spirals for ``--epochs`` epochs each and
   reports the final loss and the first/last layer gradient-norm ratio (sigmoid must stall);
3. trains two twins (2 x 8 ReLU and 2 x 8 tanh on moons) in lockstep for ``--seconds`` as the
   page's Twins view does (two sessions, each sent "step" while at most 2 epochs ahead of the
   other) and reports frames/s per twin (goal: >= 10, printed MET/MISSED) and the server's
   memory while they train, then the same two sessions streaming freely at once (what the CPU
   gives them without lockstep: the ratio is the cost of the pacing);
4. runs ``--clients`` streams at once for ``--seconds`` (the server admits at most 8 sessions) and
   reports the server's resident memory before, at the peak and after.

The machine's AVX flags (``lscpu``) and load (``uptime``) are printed with the figures.

    python benchmarks/explore_fps.py                 # ~1 minute
    python benchmarks/explore_fps.py --seconds 2 --epochs 5 --clients 4    # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def start_server() -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "actlab", "explore", "--no-browser", "--port", "0"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving http" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    return proc, line.split("serving ")[1].split()[0].rstrip("/")


def events(response: httpx.Response):
    event = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line[5:])


def stream(url: str, settings: dict, *, seconds: float | None = None, epochs: int | None = None):
    """Play a session; return (frames after the first, wall seconds, last frame)."""
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/api/sessions", json=settings)
        if r.status_code != 201:
            return 0, 0.0, {"error": r.json()["error"]}
        sid = r.json()["id"]
        with c.stream("GET", f"/api/sessions/{sid}/stream") as s:
            it = events(s)
            next(it)
            c.post(f"/api/sessions/{sid}/control", json={"action": "play"})
            start, frames, last = time.perf_counter(), 0, {}
            for _, last in it:
                frames += 1
                elapsed = time.perf_counter() - start
                if (seconds is not None and elapsed >= seconds) or (
                    epochs is not None and last.get("epoch", 0) >= epochs
                ):
                    break
        return frames, time.perf_counter() - start, last


def machine() -> str:
    """The CPU's AVX flags and the load average, printed beside the figures."""
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        flags = ""
    avx = sorted(set(re.findall(r"\b(avx\w*)", flags))) or ["(lscpu: no avx flags)"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return f"{os.cpu_count()} CPUs, {' '.join(avx)}; load average " + " ".join(
        f"{x:.2f}" for x in load
    )


def twins(url: str, settings: list[dict], seconds: float, lead: int = 2) -> tuple[int, float]:
    """Train the twins in lockstep as the page does; return (common epochs reached, seconds)."""
    latest = [-1] * len(settings)
    arrived: queue.Queue = queue.Queue()
    with httpx.Client(base_url=url, timeout=60) as c:
        ids = []
        for s in settings:
            r = c.post("/api/sessions", json=s)
            if r.status_code != 201:
                raise SystemExit(f"twins: {r.json()['error']}")
            ids.append(r.json()["id"])

        def listen(i: int) -> None:
            with (
                httpx.Client(base_url=url, timeout=60) as own,
                own.stream("GET", f"/api/sessions/{ids[i]}/stream") as s,
            ):
                for event, data in events(s):
                    arrived.put((i, event, data.get("epoch")))
                    if event != "frame":
                        return

        threads = [threading.Thread(target=listen, args=(i,), daemon=True) for i in range(len(ids))]
        for th in threads:
            th.start()
        requested = [0] * len(ids)
        start = None
        while True:
            i, event, epoch = arrived.get(timeout=60)
            if event != "frame":
                raise SystemExit(f"twins: a stream sent {event}")
            latest[i] = epoch
            common = min(latest)
            if common == 0 and start is None:
                start = time.perf_counter()
            if start is not None and time.perf_counter() - start >= seconds:
                break
            for k, sid in enumerate(ids):
                while common >= 0 and requested[k] < common + lead:
                    requested[k] = max(requested[k], latest[k]) + 1
                    c.post(f"/api/sessions/{sid}/control", json={"action": "step"})
        wall = time.perf_counter() - start
        for sid in ids:
            c.delete(f"/api/sessions/{sid}")
    return min(latest), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of phases 1 and 3")
    ap.add_argument("--epochs", type=int, default=150, help="epochs of each deep network")
    ap.add_argument("--clients", type=int, default=20, help="concurrent streams in phase 3")
    args = ap.parse_args()
    print(machine())
    proc, url = start_server()
    server = psutil.Process(proc.pid)

    def mb() -> float:
        """The server's memory: its RSS plus each worker process's unique memory (USS: what a
        worker forked from the forkserver adds; their shared pages are counted once, there)."""
        total = server.memory_info().rss
        for child in server.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += child.memory_full_info().uss
        return total / 2**20

    try:
        rss_start = mb()
        small = {"dataset": "moons", "layers": ["relu", "relu"], "width": 8, "fps": 30}
        frames, wall, last = stream(url, small, seconds=args.seconds)
        single = frames / wall
        print(
            f"2x8 ReLU on moons: {frames / wall:.1f} frames/s over {wall:.1f} s "
            f"(goal >= 10, server cap 30); loss {last['train_loss']} after {last['epoch']} epochs"
        )

        for act in ("sigmoid", "relu"):
            deep = {
                "dataset": "spirals",
                "noise": 0.1,
                "layers": [act] * 8,
                "width": 16,
                "optimizer": "sgd",
                "lr": 0.03,
                "batch_size": 16,
                "fps": 30,
            }
            frames, wall, last = stream(url, deep, epochs=args.epochs)
            g = last["grad_norm"]
            print(
                f"8x16 {act:7s} on spirals, SGD lr 0.03: after {last['epoch']} epochs train loss "
                f"{last['train_loss']}, val accuracy {last['val_accuracy']}, gradient norm first/"
                f"last layer {g[0] / g[-1]:.2g} ({frames / wall:.1f} frames/s)"
            )

        pair = [
            {"dataset": "moons", "layers": [act] * 2, "width": 8, "fps": 30}
            for act in ("relu", "tanh")
        ]
        peak_twins = [mb()]
        done = threading.Event()

        def watch() -> None:
            # once a second: reading every worker's USS (/proc/*/smaps) is CPU this client's
            # lockstep loop shares (at 0.1 s the twins ran at 0.42x the free pair, at 1 s 0.75x)
            while not done.wait(1.0):
                peak_twins[0] = max(peak_twins[0], mb())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        epochs, wall = twins(url, pair, args.seconds)
        done.set()
        watcher.join()
        rate = epochs / wall
        print(
            f"twins, 2x8 ReLU | 2x8 tanh on moons in lockstep: {rate:.1f} frames/s per twin over "
            f"{wall:.1f} s ({epochs} epochs each; {rate / single:.2f}x one session's rate in this "
            f"run); goal >= 10: "
            f"{'MET' if rate >= 10 else 'MISSED'};"
            f" server memory (RSS + workers' USS) at the peak {peak_twins[0]:.0f} MB"
        )
        # the same two networks streaming freely at once (no lockstep, no step requests): what
        # the CPU gives two sessions here; lockstep / this is the cost of the page's pacing
        free: list = [0.0, 0.0]

        def run_free(i: int) -> None:
            n, w, _ = stream(url, pair[i], seconds=args.seconds)
            free[i] = n / w if w else 0.0

        pair_threads = [threading.Thread(target=run_free, args=(i,)) for i in range(2)]
        done.clear()  # the same memory watcher as the twins had
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for t in pair_threads:
            t.start()
        for t in pair_threads:
            t.join()
        done.set()
        watcher.join()
        mean_free = max(sum(free) / 2, 1e-9)
        print(
            f"the same two free-running at once: {free[0]:.1f} and {free[1]:.1f} frames/s; "
            f"lockstep keeps {rate / mean_free:.2f}x of that (the rest: waiting for the slower "
            "twin and the step requests)"
        )

        rss_before = mb()
        peak = [rss_before]
        results: list = []
        threads = [
            threading.Thread(
                target=lambda: results.append(stream(url, small, seconds=args.seconds))
            )
            for _ in range(args.clients)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], mb())
            time.sleep(0.1)
        served = [r for r in results if r[0] > 0]
        total = sum(r[0] for r in served)
        time.sleep(1.0)
        print(
            f"{args.clients} clients at once: {len(served)} admitted, "
            f"{len(results) - len(served)} told 429; {total / args.seconds:.1f} frames/s in all"
        )
        print(
            f"server memory (RSS + workers' USS): {rss_start:.0f} MB at start, "
            f"{rss_before:.0f} MB before the clients, "
            f"{peak[0]:.0f} MB at the peak, {mb():.0f} MB after"
        )
        print(f"at the end: {machine()}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
