"""How fast is ``actlab compare``'s batched engine? All figures come from one run of this script.

    .venv/bin/python benchmarks/compare_speed.py [--threads N] [--epochs 30] [--plain-epochs 3]
        [--device cuda] [--backend ray]

Default sweep: digits (80/20 split), sigmoid, tanh, relu, leaky_relu, elu, silu, gelu x 5 seeds, a
2x128 MLP, batch 64, Adam lr 1e-3. Printed: the engine's wall time (two runs, the faster one used
for the ratios: the machine may be shared), peak RSS (measured before anything but the engine has
run); the machine's large-matmul rate (2048^2 float32 ``torch.mm``, best of 7, measured right after
each engine run and again at the end); the engine's training FLOPs (matmuls of forward and
backward) and its utilisation of that rate; the same models one at a time in a plain PyTorch loop
(a few epochs per activation, timed with torch's threads and with 1 thread, extrapolated; the
faster is the baseline); scikit-learn's MLPClassifier for its activations (per-model time, same
network, epochs and batch size). Then the main job end to end: the real ``actlab compare`` for
the same sweep in a fresh interpreter (``--skip-e2e`` leaves it out), its wall time against the
engine's training time measured above (goal: within 1.3x).

The engine row also gives a load-independent ratio: the engine's training FLOPs per CPU-second it
consumed (process CPU time over the run) against the same for the large matmul (all its repeats).
On a shared machine wall-time ratios mostly measure the other tenants (a best-of-7 matmul catches
a quiet moment, a 10 s training run cannot); the CPU-time ratio says what the engine does with
the CPU time it gets. ``--cpu-features avx2`` re-runs the script with NumPy's AVX-512 targets
disabled (NPY_DISABLE_CPU_FEATURES) and PyTorch's own kernels held to AVX2 (ATEN_CPU_CAPABILITY),
as benchmarks/kernels.py does: the elementwise kernels run as on an AVX2-only machine, MKL's
matmuls keep their own dispatch (MKL_ENABLE_INSTRUCTIONS=AVX2 made its 2-thread sgemm run at 8
GFLOP per CPU-second on the AVX-512 test machine, 1/10 of its 1-thread rate: not a faithful AVX2
machine; set it yourself to try).

``--device cuda`` (or ``cuda:N``, ``mps``) runs the engine and the plain loop on that device and
measures the large-matmul rate there (``torch.mm`` on the device, synchronised); without such a
device the script stops with a one-line message (exit 2). ``--backend ray`` adds the Ray backend's
overhead: a 4-group grid (the default sweep's models under 4 settings: lr 1e-3/1e-2 x depth 2/3)
trained by the local backend (one group after another) and by Ray on a local instance with as many
CPUs as the machine (each group asks for as many CPUs as the local backend's threads, so that it
stacks its models the same way and gives the same numbers), both in this run; the ratio is Ray's
wall time over the local one, without and with starting Ray.

Where the CPU time goes (CPU only; ``--skip-profile`` to leave it out): one stack of the models one
worker trains, trained in place on one thread with every bound call of its step timed by category
(products, activations, Adam, loss, gradient norms, bias gradients, validation), the ceiling that
removing the whole elementwise tail would leave (products and the rest only, against the large
matmul's CPU rate), and each activation's kernels in ns per element against an add: the measured
reason when the engine goal is MISSED.

``--compiled [ACTS]`` adds a ``torch.compile``d step (Inductor's CPU backend: the stacked forward
and loss compiled whole, its backward by AOTAutograd, the same fused Adam) against the engine's
hand-fused step, one stack of 18 models per activation, CPU time per epoch; skipped with a line
when no C++ compiler is found. Measured (2-core AVX-512 EPYC, load ~0.8, torch 2.13, gcc):
tanh 1.11x, GELU 1.03x, ELU 1.28x the engine's time, after 7-10 s of compiling (cached): Inductor
does not beat the hand-written step, so the engine ships none (its results would also change in
the last bit).

``--model`` row (``--skip-model`` to leave it out): ``examples/cnn_digits.py:build`` (a 2-conv CNN)
for relu, silu, gelu x 5 seeds on digits, min(--epochs, 10) epochs, trained by the engine (seeds
vmapped with torch.func) and the same 15 models in a plain PyTorch loop (torch.optim.Adam, same
batch and epochs), both in this run, each with torch's threads and 1 thread (the faster counts).
Printed: the speed-up in wall and CPU seconds against the 3x goal, and the plain loop's own GFLOP
per CPU-second (``torch.utils.flop_counter`` over a training step) against the large matmul's: the
most any batching could gain in CPU time. Measured (2-core AVX-512 Xeon, load 3-4, 3 epochs, main
and this branch back to back): the engine 0.87x -> 0.99x the plain loop in CPU time (0.60x -> 1.06x
wall), the health probe now inside the vmapped validation pass; the 1-thread plain loop already
runs at 42-45% of the matmul rate (at most 2.2-2.4x left even at the matmul's rate); vmap turns
each conv into a grouped conv costing about the models' separate convs (a 5-model step, 1 thread:
19.6-20.7 ms vmapped, 17.7-19.5 ms as 5 module calls), so on a CPU the 3x goal is out of reach
for this network: MISSED with that reason.

Grid case (``--skip-grid`` to leave it out): 4 activations x depth 2,8 x lr 1e-3,3e-3,1e-2 x 5
seeds on digits, trained group by group exactly as ``actlab compare`` does (one batched engine call
per factor cell, :func:`actlab.compare.groups`), with the 20% test part scored after the last epoch.
Printed: wall time, training FLOPs over every group, utilisation of the large-matmul rate measured
right after it, next to the single-shape run's utilisation from the same process; and peak RSS.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path


def _avx2_env() -> dict[str, str]:
    """NumPy's AVX-512 dispatch targets off and ATen capped at AVX2 (both read at import)."""
    from numpy._core import _multiarray_umath as umath

    # numpy >= 2.4 names the levels X86_V3 (AVX2) / X86_V4 (AVX-512), older ones AVX512F, ...
    avx512 = [f for f in umath.__cpu_dispatch__ if f.startswith("AVX512") or f == "X86_V4"]
    # Inductor's on-disk cache does not key on ATEN_CPU_CAPABILITY: an AVX2-capped process that
    # loaded the AVX-512 run's compiled step segfaulted in its backward (torch 2.13): its own cache
    cache = Path(tempfile.gettempdir()) / f"torchinductor_avx2_{os.getuid()}"
    return {"NPY_DISABLE_CPU_FEATURES": " ".join(avx512), "ATEN_CPU_CAPABILITY": "avx2",
            "ACTLAB_BENCH_CPU": "avx2",
            "TORCHINDUCTOR_CACHE_DIR": str(cache)}  # fmt: skip


if (
    __name__ == "__main__"
    and "ACTLAB_BENCH_CPU" not in os.environ
    and any(a.startswith("--cpu-features") for a in sys.argv)
):  # re-run with the environment set (the child is told by ACTLAB_BENCH_CPU)
    argv = [a for a in sys.argv[1:] if a not in ("--cpu-features", "avx2", "--cpu-features=avx2")]
    sys.exit(subprocess.call([sys.executable, __file__, *argv], env={**os.environ, **_avx2_env()}))

import numpy as np  # noqa: E402  (after the re-exec: the environment must be set before import)
import torch  # noqa: E402
from _machine import summary  # noqa: E402
from torch import nn  # noqa: E402

from actlab import data, devices  # noqa: E402
from actlab.compare.training import Job, TrainConfig, train  # noqa: E402
from actlab.errors import ActlabError  # noqa: E402
from actlab.torch import build  # noqa: E402

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "silu", "gelu")
SEEDS = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_rate(n: int = 2048, repeats: int = 7, device: torch.device | None = None) -> float:
    """Best-of-``repeats`` float32 GFLOP/s of an n x n x n torch.mm (on ``device``, synced)."""
    device = device or torch.device("cpu")
    if device.type != "cpu":
        n *= 4  # an accelerator needs a larger product to reach its rate
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)
    torch.mm(a, b, out=c)
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        _sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def _cpu_s() -> float:
    """CPU seconds this process has used (every thread, user and system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def matmul_cpu_rate(n: int = 2048, repeats: int = 7) -> float:
    """GFLOP per CPU-second of the same float32 torch.mm, over all ``repeats`` (CPU only)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.mm(a, b)
    t = _cpu_s()
    for _ in range(repeats):
        torch.mm(a, b, out=c)
    return 2 * n**3 * repeats / (_cpu_s() - t) / 1e9


def training_flops(sizes: list[int], n_train: int, epochs: int, models: int) -> float:
    """Matmul FLOPs of training: forward, weight and input gradients (no input grad for layer 1)."""
    rows = n_train * epochs * models  # every row passes through every layer once per epoch
    total = 0.0
    for k, (i, o) in enumerate(itertools.pairwise(sizes)):
        total += 2 * rows * i * o * (2 if k == 0 else 3)
    return total


def plain_loop(
    split, activation: str, seed: int, config: TrainConfig, epochs: int,
    device: torch.device | None = None, factory: Callable[[str], nn.Module] | None = None,
) -> float:  # fmt: skip
    """Seconds to train one model the ordinary way (nn.Sequential, Adam, loss.backward()); the
    network is ``factory(activation)`` when given (a ``--model`` function), else the MLP."""
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    sizes = [split.X_train.shape[1]] + [config.width] * config.depth + [split.n_classes]
    layers: list[nn.Module] = []
    for k, (i, o) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(i, o))
        if k < config.depth:
            layers.append(build(activation))
    net = (factory(activation) if factory else nn.Sequential(*layers)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    X = torch.as_tensor(split.X_train, device=device)
    y = torch.as_tensor(split.y_train, device=device)
    Xv = torch.as_tensor(split.X_val, device=device)
    order = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=order)
        net.train()
        for s in range(0, len(X), config.batch_size):
            idx = perm[s : s + config.batch_size]
            loss = loss_fn(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            net(Xv).argmax(1)
    _sync(device)  # an accelerator works asynchronously: wait for it
    return time.perf_counter() - t


PROFILE_EPOCHS = 3  # timed epochs of the profile (after one untimed: plans and buffers made)


def _category(call: object) -> str:
    """The share of the step a plan's bound call counts in (see ``_MLP._plan``)."""
    name = getattr(getattr(call, "func", call), "__name__", "")
    return {"bmm": "batched products", "baddbmm": "batched products", "_fused_adam_": "Adam",
            "linalg_vector_norm": "gradient norms", "sum": "bias gradients"}.get(
                name, "activations")  # fmt: skip


def _timed(call: object, spent: dict[str, float]) -> object:
    """``call`` adding its thread CPU time to ``spent[its category]``."""
    key, clock = _category(call), time.thread_time

    def run() -> None:
        t = clock()
        call()  # type: ignore[operator]
        spent[key] = spent.get(key, 0.0) + clock() - t

    return run


def step_profile(split, jobs: list[Job], config: TrainConfig, cpu_rate: float) -> None:
    """Where one stack's CPU time goes, one thread, in place (not in isolation: caches as in a run).

    One stack of the models one worker trains (``ceil(models / threads)``), trained epoch by
    epoch as ``train`` does (validation pass and metrics included); every bound call of the
    training step's plan is timed with the thread's CPU clock (about 1 us of overhead per call,
    ~50 calls per step), the loss through the module's ``_loss_and_grad``; the rest of an epoch
    (layer 0's two products, the row gathers, the loop) is the remainder. Then each activation's
    kernels on one group's hidden-layer tensor, in ns per element against an add of the same shape.
    """
    from actlab.compare.training import mlp as mlp_mod
    from actlab.compare.training.data import _Data
    from actlab.compare.training.metrics import _val_metrics
    from actlab.compare.training.types import check_jobs
    from actlab.torch import fast_path

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    n_models = math.ceil(len(jobs) / max(threads, 1))
    acts = check_jobs(jobs)[:n_models]
    d = _Data(split, torch.device("cpu"))
    net = mlp_mod._MLP(acts, [int(j.seed) for j in jobs[:n_models]], d, config)
    order = torch.Generator().manual_seed(0)
    spent: dict[str, float] = {}
    loss_fn = mlp_mod._loss_and_grad
    clock = time.thread_time

    def timed_loss(*a) -> None:
        t = clock()
        loss_fn(*a)
        spent["loss"] = spent.get("loss", 0.0) + clock() - t

    def epoch() -> tuple[float, float, float]:
        perms = torch.stack([torch.randperm(d.n_train, generator=order) for _ in acts])
        t0 = clock()
        net.run_epoch(perms, lambda: None)
        t1 = clock()
        out, _, _ = net.evaluate()
        t2 = clock()
        _val_metrics(out, d)
        return t1 - t0, t2 - t1, clock() - t2

    try:
        epoch()
        for plan in net._plans.values():
            if hasattr(plan, "backward"):  # a training step's plan (evaluation plans: timed whole)
                for calls in (plan.forward, plan.backward, plan.finish):
                    calls[:] = [_timed(c, spent) for c in calls]
        mlp_mod._loss_and_grad = timed_loss
        train_s = val_s = metrics_s = 0.0
        for _ in range(PROFILE_EPOCHS):
            a, b, c = epoch()
            train_s, val_s, metrics_s = train_s + a, val_s + b, metrics_s + c
    finally:
        mlp_mod._loss_and_grad = loss_fn
        torch.set_num_threads(threads)
    spent["rest of the step"] = train_s - sum(spent.values())  # layer 0's products, gathers, loop
    spent["validation pass"] = val_s  # forward and unit health (f'(z) of the first chunk)
    spent["validation metrics"] = metrics_s
    total = sum(spent.values())
    sizes = [split.X_train.shape[1]] + [config.width] * config.depth + [split.n_classes]
    flops = training_flops(sizes, len(split.X_train), PROFILE_EPOCHS, n_models)
    products = spent["batched products"] + spent["rest of the step"]
    print(f"\n== where the engine's CPU time goes (one stack of {n_models} models, 1 thread, "
          f"{PROFILE_EPOCHS} epochs, {total:.2f} CPU-s) ==")  # fmt: skip
    for key, s in sorted(spent.items(), key=lambda kv: -kv[1]):
        say(f"  {key}", f"{1e3 * s / PROFILE_EPOCHS:8.1f} ms per epoch  {100 * s / total:3.0f}%")
    rate, ceiling = flops / total / 1e9, flops / products / 1e9
    say("  this stack", f"{rate:8.1f} GFLOP per CPU-s = {100 * rate / cpu_rate:.0f}% of the large "
                        f"matmul's {cpu_rate:.1f}")  # fmt: skip
    say("  ceiling", f"{ceiling:8.1f} GFLOP per CPU-s counting only the products and the rest "
                     f"(layer 0's products, row gathers, loop) = {100 * ceiling / cpu_rate:.0f}%: "
                     "the most that fusing the elementwise tail away could reach")  # fmt: skip

    z = torch.randn(sum(1 for a in acts if str(a) == str(acts[0])), 64, config.width)
    h, g, o = torch.empty_like(z), torch.randn_like(z), torch.empty_like(z)

    def ns(fn) -> float:  # best of 5 blocks of 50: a shared machine's noise only adds
        fn()
        best = math.inf
        for _ in range(5):
            t = clock()
            for _ in range(50):
                fn()
            best = min(best, clock() - t)
        return best / 50 / z.numel() * 1e9

    add = ns(lambda: torch.add(z, g, out=o))
    print(f"  kernels per element on a {tuple(z.shape)} tensor (an add: {add:.2f} ns):")
    for name in ACTIVATIONS:
        fast = fast_path(build(name))
        if fast is None:
            continue
        fw, bw = ns(partial(fast[0], z, h)), ns(partial(fast[1], g, z, h, o))
        say(f"    {name}", f"forward {fw:5.2f} ns ({fw / add:4.1f} adds), "
                         f"backward {bw:5.2f} ns ({bw / add:4.1f} adds)")  # fmt: skip


COMPILED_MODELS = 18  # one worker's stack in the default sweep


def compiled_step(split, config: TrainConfig, activations: tuple[str, ...]) -> None:
    """A ``torch.compile``d step (Inductor's CPU backend) against the engine's hand-fused one.

    For each activation: one stack of ``COMPILED_MODELS`` models of the default MLP, one thread.
    The engine: ``_MLP.run_epoch`` (hand-written backward, out= buffers, Adam per layer inside the
    backward). The compiled step: the same stacked forward and loss (baddbmm, the activation,
    log-softmax) compiled whole, autograd's backward of it (compiled by AOTAutograd too), the same
    fused Adam; row gathers per step. Thread CPU time per epoch, the best of 5 epochs after one
    warm-up epoch (which compiles: its wall time is printed); the validation pass is left out of
    both, and the compiled step does less (no per-model gradient norms, which the engine records).
    The measured reason why the engine does not ship a compiled step.
    """
    import shutil

    from actlab.compare.training import mlp as mlp_mod
    from actlab.compare.training.data import _Data
    from actlab.compare.training.types import check_jobs

    print(f"\n== a torch.compile'd step vs the engine's (one stack of {COMPILED_MODELS} models, "
          "1 thread, CPU ms per epoch) ==")  # fmt: skip
    compiler = next((c for c in (os.environ.get("CXX"), "g++", "c++", "clang++")
                     if c and shutil.which(c)), None)  # fmt: skip
    if compiler is None:
        say("  skipped", "no C++ compiler (Inductor's CPU backend needs one at run time)")
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    d = _Data(split, torch.device("cpu"))
    clock = time.thread_time
    bs, n = config.batch_size, d.n_train
    order = torch.Generator().manual_seed(0)
    perms = torch.stack([torch.randperm(n, generator=order) for _ in range(COMPILED_MODELS)])
    try:
        for name in activations:
            jobs = [Job(name, s) for s in range(COMPILED_MODELS)]
            net = mlp_mod._MLP(check_jobs(jobs), list(range(COMPILED_MODELS)), d, config)

            def engine_epoch(net=net) -> None:
                net.run_epoch(perms, lambda: None)

            act = build(name)
            params = [p.detach().clone().requires_grad_(True) for p in net.params]
            moments = [[torch.zeros_like(p) for p in params] for _ in range(2)]
            steps = [torch.zeros(()) for _ in params]
            depth = config.depth

            def loss(x, y, *ps, act=act, depth=depth):
                W, b = ps[: depth + 1], ps[depth + 1 :]
                h = x
                for k in range(depth):
                    h = act(torch.baddbmm(b[k], h, W[k]))
                logp = torch.log_softmax(torch.baddbmm(b[-1], W[-1], h.transpose(1, 2)), 1)
                return -logp.gather(1, y.unsqueeze(1)).mean((1, 2)).sum()

            compiled = torch.compile(loss, dynamic=False)

            def compiled_epoch(params=params, moments=moments, steps=steps, fn=compiled) -> None:
                for s in range(math.ceil(n / bs)):
                    idx = perms[:, s * bs : (s + 1) * bs]
                    grads = torch.autograd.grad(fn(d.X_train[idx], d.y_train[idx], *params),
                                                params)  # fmt: skip
                    with torch.no_grad():
                        torch._foreach_add_(steps, 1)
                        torch._fused_adam_(params, list(grads), *moments, [], steps,
                                           lr=config.lr, beta1=0.9, beta2=0.999,
                                           weight_decay=config.weight_decay, eps=1e-8,
                                           amsgrad=False, maximize=False)  # fmt: skip

            def per_epoch(fn) -> tuple[float, float]:
                w = time.perf_counter()
                fn()  # warm-up (compiles)
                first = time.perf_counter() - w
                best = math.inf
                for _ in range(5):
                    t = clock()
                    fn()
                    best = min(best, clock() - t)
                return best, first

            eng, _ = per_epoch(engine_epoch)
            comp, first = per_epoch(compiled_epoch)
            say(f"  {name}", f"engine {1e3 * eng:6.1f} ms, compiled {1e3 * comp:6.1f} ms = "
                             f"{comp / eng:.2f}x the engine (first epoch, compiling: {first:.1f} "
                             "s wall)")  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def say(label: str, text: str) -> None:
    print(f"{label:<21}{text}")


def ray_overhead(split, jobs: list[Job], epochs: int) -> None:
    """The 4-group grid by the local backend and by Ray (local instance, all CPUs).

    Both hand every epoch's checkpoint over, as ``compare.run`` asks for it. Ray is started first
    and its workers warmed up by a tiny grid (import of torch and actlab): a cluster is normally
    up already; that start is timed and printed too. Local and Ray runs alternate, twice each.
    """
    import logging

    import ray

    from actlab.compare.backends import GroupTask, LocalBackend, RayBackend

    groups = [GroupTask(tuple(jobs), TrainConfig(epochs=epochs, lr=lr, depth=depth))
              for lr in (1e-3, 1e-2) for depth in (2, 3)]  # fmt: skip
    seen: dict[str, list] = {"local": [], "ray": []}

    def keep(name: str):
        def on_epoch(update) -> None:
            update.checkpoint()  # serialised in the hand-over, as compare.run does
            seen[name].append(update)

        return on_epoch

    t = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
             log_to_driver=False, logging_level=logging.ERROR)  # fmt: skip
    tiny = [GroupTask(tuple(jobs[:2]), TrainConfig(epochs=1, width=8))] * (os.cpu_count() or 1)
    RayBackend().train(tiny, split, on_epoch=lambda u: None, device="cpu")
    start_s = time.perf_counter() - t
    # alternated, twice each: the machine is shared and its load drifts; the faster of each is used
    runs: dict[str, list[float]] = {"local": [], "ray": []}
    for _ in range(2):
        for name, backend in (("local", LocalBackend()), ("ray", RayBackend())):
            seen[name] = []
            t = time.perf_counter()
            backend.train(groups, split, on_epoch=keep(name), device="cpu")
            runs[name].append(time.perf_counter() - t)
    ray.shutdown()
    local_s, ray_s = min(runs["local"]), min(runs["ray"])

    def metrics(updates: list) -> dict:
        return {(u.group, u.epoch): [r.metrics for r in u.records] for u in updates}

    same = metrics(seen["local"]) == metrics(seen["ray"])
    print(f"\n== Ray backend: 4-group grid ({len(jobs)} models x lr 1e-3/1e-2 x depth 2/3, "
          f"{epochs} epochs) ==")  # fmt: skip
    say("local backend", f"{local_s:8.2f} s wall (groups one after another, "
                         f"{torch.get_num_threads()} threads each; runs: "
                         f"{', '.join(f'{x:.2f}' for x in runs['local'])} s)")  # fmt: skip
    say("Ray backend", f"{ray_s:8.2f} s wall ({os.cpu_count()} CPUs, {torch.get_num_threads()} "
                       f"per group; runs: {', '.join(f'{x:.2f}' for x in runs['ray'])} s); "
                       f"starting Ray and warming its workers: {start_s:.2f} s")  # fmt: skip
    say("Ray / local", f"{ray_s / local_s:8.2f}x ({(ray_s + start_s) / local_s:.2f}x counting the "
                       f"start; goal <= 1.3x); same metrics as local: {same}")  # fmt: skip


def _user_env() -> dict[str, str]:
    """The environment of a fresh ``actlab`` as a user runs it: this checkout's ``src`` first, and
    cached bytecode as an installed package has it (PYTHONDONTWRITEBYTECODE=1 would make every run
    compile actlab) in a private cache that the first run writes and the later ones read."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="actlab-pycache-")
    return env


def _timed_run(
    cmd: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float, float]:
    """``cmd`` run to its end (output captured): the result, its wall seconds and its CPU
    seconds (user + system of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return res, wall, cpu


def end_to_end(epochs: int, engine_s: float, device: torch.device) -> None:
    """The real `actlab compare` (default sweep) in a fresh interpreter vs the engine's time.

    Two rounds, each the engine in this process right before the command (the load of a shared
    machine drifts by the minute): the faster of each is used, as for the engine above. Wall and
    CPU seconds (user + system; CPU time is less exposed to other processes than wall time)."""
    print("\n== actlab compare end to end (same sweep, fresh interpreter) ==")
    env = _user_env()  # (its bytecode cache: written by the first round, read by the second)
    split = data.split(data.load("digits"))
    jobs = [Job(a, s) for a in ACTIVATIONS for s in range(SEEDS)]
    engine, runs = [], []
    for k in (1, 2):
        cpu, t = time.process_time(), time.perf_counter()
        train(jobs, split, TrainConfig(epochs=epochs), device=device)
        engine.append((time.perf_counter() - t, time.process_time() - cpu))
        with tempfile.TemporaryDirectory(prefix="actlab-e2e-") as tmp:
            # --test-fraction 0: the same 80/20 rows as the engine run above (compare holds out a
            # test part by default, which would shorten its epochs and flatter the ratio)
            argv = [sys.executable, "-m", "actlab", "compare", "--epochs", str(epochs),
                    "--activations", *ACTIVATIONS, "--seeds", str(SEEDS), "--test-fraction", "0",
                    "--out", str(Path(tmp) / "run"), "--device", str(device), "--json"]  # fmt: skip
            res, wall, cpu = _timed_run(argv, env)
        if res.returncode != 0:
            say("failed", res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "?")
            return
        runs.append((wall, cpu, json.loads(res.stdout)))
        say(f"round {k}", f"engine {engine[-1][0]:6.2f} s wall ({engine[-1][1]:.2f} s CPU), then "
                          f"the command {wall:6.2f} s wall ({cpu:.2f} s CPU)")  # fmt: skip
    wall, cpu, body = min(runs, key=lambda r: r[0])
    near_s, near_cpu = min(e[0] for e in engine), min(e[1] for e in engine)
    inside, phases = body["seconds"], body.get("phases", {})  # (older actlab: none)
    say("wall time", f"{wall:8.2f} s (faster run, start to exit; {inside:.2f} s inside the "
                     f"command, {wall - inside:.2f} s interpreter start and imports)")  # fmt: skip
    for name, what in (("prepare_s", "data, checks, the run folder"),
                       ("train_s", "training groups, storing included"),
                       ("store_s", "of which storing epochs and checkpoints"),
                       ("analysis_s", "reading the store, statistics"),
                       ("report_s", "report.md and report.html: matplotlib, figures")):  # fmt: skip
        say(f"  {name[:-2]}", f"{phases.get(name, 0.0):8.2f} s ({what})")
    known = sum(v for k, v in phases.items() if k.endswith("_s") and k != "store_s")
    say("  other", f"{inside - known:8.2f} s (inside the command, outside those phases)")
    say("  checkpoints", f"{phases.get('checkpoint_bytes', 0) / 2**20:8.1f} MiB written")
    best = min(engine_s, near_s)
    ratio = wall / best
    say("vs engine training", f"{ratio:8.2f}x the engine's {best:.2f} s (faster of the engine "
                              f"row and the rounds)   goal <= 1.3x: "
                              f"{'MET' if ratio <= 1.3 else 'MISSED'}")  # fmt: skip
    say("  CPU seconds", f"{cpu / near_cpu:8.2f}x (the command's {cpu:.2f} s over the engine's "
                         f"{near_cpu:.2f} s: what is spent besides training, whatever the load)")


MODEL = Path(__file__).resolve().parent.parent / "examples" / "cnn_digits.py"
MODEL_ACTIVATIONS = ("relu", "silu", "gelu")
MODEL_GOAL = 3.0  # issue 24 item 4: --model at least 3x a plain PyTorch loop


def _step_flops(factory: Callable[[str], nn.Module], n_in: int, batch: int) -> float:
    """FLOPs of one training step (forward and backward, every op torch counts) of one model."""
    from torch.utils.flop_counter import FlopCounterMode

    net = factory(MODEL_ACTIVATIONS[0])
    with FlopCounterMode(display=False) as counter:
        net(torch.randn(batch, n_in)).square().sum().backward()
    return float(counter.get_total_flops())


def model_row(epochs: int, plain_epochs: int, device: torch.device) -> None:
    """``--model examples/cnn_digits.py:build`` (3 activations x 5 seeds) against the same models
    in a plain PyTorch loop (faster of torch's threads and 1 thread), both timed in this run.

    On a CPU the figures are CPU seconds (load-independent) beside wall seconds, and the plain
    loop's own GFLOP per CPU-second against the large matmul's bounds what any batching can win:
    a loop already near the matmul rate leaves no room for 3x."""
    sys.path.insert(0, str(MODEL.parent))
    from cnn_digits import build as factory

    split = data.split(data.load("digits"))
    config = TrainConfig(epochs=epochs, model=f"{MODEL}:build")
    jobs = [Job(a, s) for a in MODEL_ACTIVATIONS for s in range(SEEDS)]
    models = len(jobs)
    print(f"\n== --model {MODEL.name}:build: {len(MODEL_ACTIVATIONS)} activations x {SEEDS} "
          f"seeds, {epochs} epochs, batch {config.batch_size} ==")  # fmt: skip
    train(jobs[:1], split, TrainConfig(epochs=1, model=config.model), device=device)  # warm-up
    threads = torch.get_num_threads()
    runs = []
    for n_threads in sorted({threads, 1}, reverse=True):  # as the plain loop: the faster counts
        torch.set_num_threads(n_threads)
        t, c = time.perf_counter(), _cpu_s()
        train(jobs, split, config, device=device)
        _sync(device)
        runs.append((time.perf_counter() - t, _cpu_s() - c))
        say(f"engine, {n_threads} thread(s)", f"{runs[-1][0]:8.2f} s wall, {runs[-1][1]:.2f} CPU-s")
    torch.set_num_threads(threads)
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    plain: dict[int, tuple[float, float]] = {}
    for n_threads in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(n_threads)
        c = _cpu_s()
        w = [plain_loop(split, a, 0, config, plain_epochs, device, factory)
             for a in MODEL_ACTIVATIONS]  # fmt: skip
        scale = models * epochs / (len(MODEL_ACTIVATIONS) * plain_epochs)
        plain[n_threads] = (sum(w) * scale, (_cpu_s() - c) * scale)
        w_s, c_s = plain[n_threads]
        timed = f"({plain_epochs} epoch(s) per activation timed)"
        say(f"plain, {n_threads} thread(s)", f"{w_s:8.2f} s wall, {c_s:.2f} CPU-s {timed}")
    torch.set_num_threads(threads)
    plain_wall = min(p[0] for p in plain.values())
    ratio = plain_wall / wall
    met = "MET" if ratio >= MODEL_GOAL else "MISSED"
    say("speed-up (wall)", f"{ratio:8.2f}x (faster engine vs faster plain loop)   "
                           f"goal >= {MODEL_GOAL:.0f}x: {met}")  # fmt: skip
    if device.type != "cpu":
        return
    plain_cpu = min(p[1] for p in plain.values())
    say("speed-up (CPU-s)", f"{plain_cpu / cpu:8.2f}x (the cheaper of each, CPU time)   "
                            f"{'MET' if plain_cpu / cpu >= MODEL_GOAL else 'MISSED'}")  # fmt: skip
    steps = -(-len(split.X_train) // config.batch_size)
    flops = _step_flops(factory, split.X_train.shape[1], config.batch_size) * steps
    rate = matmul_cpu_rate()
    loop_rate = flops * models * epochs / plain_cpu / 1e9
    say("plain loop's rate", f"{loop_rate:8.1f} GFLOP per CPU-s (training steps' FLOPs, "
                             f"validation not counted) = {100 * loop_rate / rate:.0f}% of the "
                             f"large matmul's {rate:.1f}: at most {rate / loop_rate:.1f}x is "
                             "left for any batching in CPU time")  # fmt: skip


# issue 24 item 5: the wall of the whole command over its training phase (Results.phases)
AROUND = (
    ("default run", [], 2.0),
    ("showcase grid", ["--dataset", "spirals", "--activations", "sigmoid,tanh,relu,silu",
                       "--depth", "2,8", "--lr", "1e-3,1e-2", "--seeds", "5"], 1.15),
)  # fmt: skip


# what `actlab compare` imports: the CLI, the engine (torch), the statistics (SciPy), the report
# (matplotlib) and the baselines (scikit-learn)
_RUN_IMPORTS = ("actlab.cli", "actlab.compare.running", "actlab.compare.report",
                "sklearn.linear_model")  # fmt: skip


def _import_floor(env: dict[str, str], rounds: int) -> float:
    """Seconds from start to exit of a fresh interpreter that only imports ``_RUN_IMPORTS`` (and
    exits as the CLI does, without the teardown): no run can take less than this plus its
    training. The faster of ``rounds``."""
    code = f"import os, {', '.join(_RUN_IMPORTS)}; os._exit(0)"
    times = []
    for _ in range(max(rounds, 1)):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        times.append(time.perf_counter() - t)
    return min(times)


def around_the_training(rounds: int = 2) -> None:
    """The default ``actlab compare`` and the README's showcase grid as a user runs them (fresh
    interpreter, cached bytecode, report written): wall start to exit over the training phase
    ``train_s`` of the same run, goal 2x and 1.15x; the faster of ``rounds`` runs. The phases show
    what is left around the training (interpreter and imports, prepare, analysis, report)."""
    print("\n== around the training: the whole command over its training phase ==")
    env = _user_env()
    # the bytecode cache the runs then read, as an installed package has it: everything a run
    # imports (the floor's first run compiled scikit-learn's and matplotlib's modules into it)
    subprocess.run([sys.executable, "-c", f"import {', '.join(_RUN_IMPORTS)}"], env=env,
                   check=False)  # fmt: skip
    floor = _import_floor(env, rounds)
    for name, argv, goal in AROUND:
        runs = []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="actlab-around-") as tmp:
                cmd = [sys.executable, "-m", "actlab", "compare", *argv, "--out",
                       str(Path(tmp) / "run"), "--json"]  # fmt: skip
                res, wall, cpu = _timed_run(cmd, env)
            if res.returncode != 0:
                say(name, "failed: " + (res.stderr.strip().splitlines() or ["?"])[-1])
                break
            runs.append((wall, cpu, json.loads(res.stdout)))
        if not runs:
            continue
        wall, cpu, body = min(runs, key=lambda r: r[0] / r[2]["phases"]["train_s"])
        phases = body["phases"]
        train_s = phases["train_s"]
        inside = body["seconds"]
        parts = ", ".join(f"{k[:-2]} {phases[k]:.2f}" for k in
                          ("prepare_s", "train_s", "baselines_wait_s", "analysis_s", "report_s")
                          if k in phases)  # fmt: skip
        ratio = wall / train_s
        say(name, f"{wall:6.2f} s wall ({cpu:.2f} s CPU) for {train_s:.2f} s of training: "
                  f"{ratio:.2f}x   goal <= {goal}x: {'MET' if ratio <= goal else 'MISSED'}")
        say("  phases", f"{parts} s; interpreter, imports and exit {wall - inside:.2f} s; load "
                        f"{os.getloadavg()[0]:.1f}")  # fmt: skip
        say("  floor", f"{(floor + train_s) / train_s:.2f}x: a fresh interpreter importing what "
                       f"a run needs ({' '.join(_RUN_IMPORTS)}) takes {floor:.2f} s, no work done")
    if importlib.util.find_spec("pandas") is not None:
        say("  note", "pandas is installed here (the test extra): scikit-learn's import then loads "
                      "it and pyarrow's types, ~0.34 s more than the README's install imports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plain-epochs", type=int, default=3, help="epochs per plain-loop model")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument(
        "--device", default="cpu", help="cpu (default), cuda, cuda:N or mps: where to train"
    )
    parser.add_argument(
        "--backend", choices=("local", "ray"), default="local",
        help="ray: also time the 4-group grid on a local Ray instance against the local backend",
    )  # fmt: skip
    parser.add_argument(
        "--compiled", nargs="?", const="tanh,elu,gelu", default=None, metavar="ACTS",
        help="also time a torch.compile'd step against the engine's for these activations "
             "(default tanh,elu,gelu; needs a C++ compiler; compiles for tens of seconds)",
    )  # fmt: skip
    parser.add_argument("--skip-grid", action="store_true", help="leave out the grid case")
    parser.add_argument("--skip-e2e", action="store_true", help="leave out the end-to-end row")
    parser.add_argument("--skip-model", action="store_true", help="leave out the --model row")
    parser.add_argument(
        "--skip-profile", action="store_true", help="leave out where the engine's CPU time goes"
    )
    parser.add_argument(
        "--skip-around", action="store_true",
        help="leave out the default run's and the showcase grid's wall over training time",
    )  # fmt: skip
    parser.add_argument("--around-rounds", type=int, default=2,
                        help="runs of each around-the-training command (the better is used)")
    parser.add_argument(
        "--cpu-features", choices=("avx2",), help="avx2: as on an AVX2-only machine (see above)"
    )
    args = parser.parse_args()
    try:
        device = devices.resolve(args.device)
    except ActlabError as err:
        parser.exit(2, f"compare_speed: {err}\n")
    if args.threads:
        torch.set_num_threads(args.threads)
    split = data.split(data.load("digits"))
    config = TrainConfig(epochs=args.epochs)
    jobs = [Job(a, s) for a in ACTIVATIONS for s in range(SEEDS)]
    models = len(jobs)
    cpu = os.environ.get("ACTLAB_BENCH_CPU")
    aten = torch.backends.cpu.get_cpu_capability()
    print(summary() + f"; ATen {aten}" + (f", NumPy without AVX-512 ({cpu} run)" if cpu else ""))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; digits {len(split.X_train)} train / "
          f"{len(split.X_val)} validation rows; {models} models\n{config}\n"
          f"device: {devices.label(devices.describe(device))}")  # fmt: skip

    # warm-up on a tiny run (first-call costs of MKL and the allocator), then two real ones: the
    # machine is shared, so both are printed and the faster one is used for the ratios
    train(jobs[:2], split, TrainConfig(epochs=1, width=8), device=device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs, cpu_runs = [], []
    for _ in range(2):
        t, c = time.perf_counter(), _cpu_s()
        history = train(jobs, split, config, device=device)
        runs.append(time.perf_counter() - t)
        cpu_runs.append(_cpu_s() - c)
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rate = matmul_rate(device=device)  # right after each run: the same machine state
        runs[-1] = (runs[-1], rate)
    engine_s, rate = min(runs)
    engine_cpu_s = min(cpu_runs)
    threads = torch.get_num_threads()

    sizes = [split.X_train.shape[1]] + [config.width] * config.depth + [split.n_classes]
    flops = training_flops(sizes, len(split.X_train), config.epochs, models)
    per_row = sum(i * o for i, o in itertools.pairwise(sizes))
    eval_flops = 2 * len(split.X_val) * per_row * config.epochs * models
    achieved = flops / engine_s / 1e9
    print("\n== batched engine (default sweep) ==")
    for k, (s, r) in enumerate(runs, 1):
        say(f"run {k}", f"{s:8.2f} s wall, then 2048^2 torch.mm at {r:.1f} GFLOP/s")
    say("wall time", f"{engine_s:8.2f} s  (faster run; {engine_s / models:.3f} s per model, "
                     f"{engine_s / config.epochs:.3f} s per epoch for all {models})")  # fmt: skip
    say("peak RSS", f"{rss_mib:8.0f} MiB (whole process; {rss_before:.0f} MiB before the runs)")
    say("training FLOPs", f"{flops / 1e9:8.1f} GFLOP (matmuls, forward + backward; validation "
                          f"passes: {eval_flops / 1e9:.1f} GFLOP more, not counted)")  # fmt: skip
    where = f"{threads} threads" if device.type == "cpu" else str(device)
    say("large-matmul rate", f"{rate:8.1f} GFLOP/s (float32, {where}, best of 7)")
    share = 100 * achieved / rate
    say("engine achieves", f"{achieved:8.1f} GFLOP/s = {share:.0f}% of that rate   goal >= 50%: "
                           f"{'MET' if share >= 50 else 'MISSED'}")  # fmt: skip
    if device.type == "cpu":
        cpu_rate = matmul_cpu_rate()
        per_cpu = flops / engine_cpu_s / 1e9
        share_cpu = 100 * per_cpu / cpu_rate
        say("per CPU-second", f"{per_cpu:8.1f} GFLOP per CPU-s ({engine_cpu_s:.2f} CPU-s, the "
                              f"lower run) vs the matmul's {cpu_rate:.1f} = {share_cpu:.0f}%   "
                              f"same goal in CPU time (load-independent): "
                              f"{'MET' if share_cpu >= 50 else 'MISSED'}")  # fmt: skip
    total = (flops + eval_flops) / engine_s / 1e9  # the goal counts training FLOPs only
    say("  with validation", f"{total:8.1f} GFLOP/s = {100 * total / rate:.0f}% counting the "
                             "per-epoch validation passes too (not the goal)")  # fmt: skip
    for a_i, act in enumerate(ACTIVATIONS):
        final = [history[a_i * SEEDS + s][-1].metrics["val_accuracy"] for s in range(SEEDS)]
        say(f"  {act}", f"val accuracy after {config.epochs} epochs: "
                        f"mean {statistics.mean(final):.4f}, min {min(final):.4f}")  # fmt: skip
    if device.type == "cpu" and not args.skip_profile:
        step_profile(split, jobs, config, cpu_rate)
    if device.type == "cpu" and args.compiled:
        compiled_step(split, config, tuple(args.compiled.split(",")))

    print("\n== one model at a time, plain PyTorch loop ==")
    plain = {}
    for n_threads in sorted({threads, 1}, reverse=True):  # torch's threads and 1: fair baseline
        torch.set_num_threads(n_threads)
        per_epoch = [plain_loop(split, act, 0, config, args.plain_epochs, device)
                     / args.plain_epochs for act in ACTIVATIONS]  # fmt: skip
        plain[n_threads] = statistics.mean(per_epoch) * config.epochs * models
        say(f"{n_threads} thread(s)", f"{len(ACTIVATIONS)} models x {args.plain_epochs} epochs "
                                      f"timed: {statistics.mean(per_epoch):.4f} s per model-epoch "
                                      f"-> {plain[n_threads]:.2f} s for {models} x "
                                      f"{config.epochs} (extrapolated)")  # fmt: skip
    torch.set_num_threads(threads)
    plain_s = min(plain.values())
    say("engine speed-up", f"{plain_s / engine_s:8.1f}x (vs the faster plain loop)")

    if not args.skip_sklearn:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        print(f"\n== scikit-learn MLPClassifier (same network, Adam lr {config.lr}, batch "
              f"{config.batch_size}, {config.epochs} epochs, alpha 0), per model ==")  # fmt: skip
        for act in ("identity", "logistic", "tanh", "relu"):
            clf = MLPClassifier(hidden_layer_sizes=(config.width,) * config.depth, activation=act,
                                solver="adam", learning_rate_init=config.lr,
                                batch_size=config.batch_size, max_iter=config.epochs, alpha=0.0,
                                tol=0.0, n_iter_no_change=10**6, random_state=0)  # fmt: skip
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(split.X_train, split.y_train)
            s = time.perf_counter() - t
            acc = float(np.mean(clf.predict(split.X_val) == split.y_val))
            ratio = s / (engine_s / models)
            say(f"  {act}", f"{s:6.2f} s ({clf.n_iter_} epochs), val accuracy {acc:.4f}; "
                            f"{ratio:.0f}x the engine's per-model time")  # fmt: skip

    if not args.skip_grid:
        grid(args.epochs, device)
    if not args.skip_model:
        model_row(min(args.epochs, 10), args.plain_epochs, device)
    if not args.skip_e2e:
        end_to_end(args.epochs, engine_s, device)
    if not args.skip_around:
        around_the_training(max(1, args.around_rounds))
    if args.backend == "ray":
        ray_overhead(split, jobs, config.epochs)

    rate_end = matmul_rate(device=device)
    print(f"\nlarge-matmul rate at the end: {rate_end:.1f} GFLOP/s (shared machine: rates drift); "
          f"utilisation vs the higher: {100 * achieved / max(rate, rate_end):.0f}%; load average "
          f"now {os.getloadavg()[0]:.1f} (busy CPUs slow every figure)")  # fmt: skip


GRID_ACTIVATIONS = ("sigmoid", "tanh", "relu", "silu")
GRID = {"depth": [2, 8], "lr": [1e-3, 3e-3, 1e-2]}


def _utilisation(
    jobs: list[Job], split, config: TrainConfig, device: torch.device | None = None
) -> tuple[float, float, float]:
    """(wall s, GFLOP, utilisation) of one engine call against the matmul rate measured right
    before and right after it (their mean: the shared machine's rate drifts by minutes)."""
    before = matmul_rate(device=device)
    t = time.perf_counter()
    train(jobs, split, config, device=device or "cpu")
    wall = time.perf_counter() - t
    rate = (before + matmul_rate(device=device)) / 2
    sizes = [split.X_train.shape[1]] + [config.width] * config.depth + [split.n_classes]
    flops = training_flops(sizes, len(split.X_train), config.epochs, len(jobs))
    return wall, flops / 1e9, flops / wall / 1e9 / rate


def grid(epochs: int, device: torch.device | None = None) -> None:
    """The grid case: every group of a compare grid through the engine, as compare trains them."""
    from actlab.compare import CompareConfig
    from actlab.compare.planning import _grid, groups

    c = CompareConfig.from_settings(
        dataset="digits", activations=GRID_ACTIVATIONS, seeds=SEEDS, epochs=epochs, **GRID
    )
    split = data.split(data.load("digits"), test_fraction=0.2)
    models = [{"id": i, "activation": a, "seed": s, "cell": cell, "group": key}
              for i, (a, s, cell, key) in enumerate(_grid(c))]  # fmt: skip
    todo = groups(c, models)
    # the single-shape reference again, on this split, timed the same way as each group
    ref = _utilisation([Job(a, s) for a in ACTIVATIONS for s in range(SEEDS)], split,
                       TrainConfig(epochs=epochs), device)  # fmt: skip
    single_utilisation = ref[2]
    wall = flops = weighted = 0.0
    print("\n== grid groups (each against the matmul rate around it) ==")
    for g in todo:
        w, f, u = _utilisation(list(g.jobs), split, g.config, device)
        wall, flops, weighted = wall + w, flops + f, weighted + u * w
        say(f"  depth {g.config.depth} lr {g.config.lr:g}",
            f"{w:6.2f} s, {f:7.1f} GFLOP, {100 * u:3.0f}% of the matmul rate")  # fmt: skip
    util = weighted / wall  # time-weighted: the grid's utilisation as a whole
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    achieved = flops / wall
    rate = achieved / util
    print(
        f"\n== grid: {len(GRID_ACTIVATIONS)} activations x depth {GRID['depth']} x lr "
        f"{GRID['lr']} x {SEEDS} seeds = {len(models)} models in {len(todo)} groups =="
    )
    say("wall time", f"{wall:8.2f} s ({len(split.X_train)} train rows, {epochs} epochs; test "
                     "part scored once per model)")  # fmt: skip
    say("training FLOPs", f"{flops:8.1f} GFLOP (matmuls, forward + backward)")
    say("large-matmul rate", f"{rate:8.1f} GFLOP/s (time-weighted, measured around each group)")
    gap = 100 * (util - single_utilisation)
    say("engine achieves", f"{achieved:8.1f} GFLOP/s = {100 * util:.0f}% of that rate; "
                           f"single-shape run (35 models, 2x128, this split, timed "
                           f"the same way): {100 * single_utilisation:.0f}% "
                           f"({gap:+.0f} points; goal: within 10)")  # fmt: skip
    say("peak RSS", f"{rss:8.0f} MiB (whole process, every case so far; goal: < 1536 MiB)")


if __name__ == "__main__":
    main()
