"""Time actlab's NumPy kernels against the article's naive formulas and PyTorch's CPU kernels.

    .venv/bin/python benchmarks/kernels.py            # 10M float32 elements, median of 9 runs
    .venv/bin/python benchmarks/kernels.py --n 1000000 --repeats 5 --only sigmoid,elu
    .venv/bin/python benchmarks/kernels.py --cpu-features avx2   # as on an AVX2-only machine

Every row is one activation on the same float32 array (standard normal * 3; softmax rows are
10_000 x 1_000 for the 10M default, softmax-1d is one vector). Columns: actlab forward, the
article's naive NumPy formula (where the article gives one), PyTorch's native forward, their
ratios, then actlab's derivative and PyTorch's backward kernel (torch.ops.aten.*_backward with a
gradient of ones; autograd where PyTorch has no backward op). Note the two derivative columns
are not identical work: PyTorch's backward also multiplies by the incoming gradient.

Goals (issue 2): actlab forward <= 1.5x PyTorch ("torch ok"), and >= 2x faster than the naive
formula wherever that formula calls exp ("naive ok"). Issue 24: every derivative <= 1.5x PyTorch's
backward ("d ok"); the exact and tanh GELU and the slow derivatives run compiled (numba, the
actlab[fast] extra) when it is installed: the header says which route ran and what the first
float32 call cost (importing numba and compiling, or loading the on-disk cache).

--cpu-features avx2 re-runs the whole table in a fresh interpreter with NumPy's AVX-512 dispatch
targets disabled (NPY_DISABLE_CPU_FEATURES), PyTorch held to AVX2 (ATEN_CPU_CAPABILITY) and numba
compiling for Haswell (NUMBA_CPU_NAME: AVX2 + FMA), so the AVX2 figures can be measured on an
AVX-512 machine (all three read these at import time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def _reexec_avx2() -> int:
    """Run this script again with NumPy and PyTorch limited to AVX2."""
    from numpy._core import _multiarray_umath as umath

    # numpy >= 2.4 names the levels X86_V3 (AVX2) / X86_V4 (AVX-512), older ones AVX512F, ...
    avx512 = [f for f in umath.__cpu_dispatch__ if f.startswith("AVX512") or f == "X86_V4"]
    env = {
        **os.environ,
        "NPY_DISABLE_CPU_FEATURES": " ".join(avx512),
        "ATEN_CPU_CAPABILITY": "avx2",
        "NUMBA_CPU_NAME": "haswell",
        "ACTLAB_BENCH_CPU": "avx2",
    }
    return subprocess.call([sys.executable, __file__, *sys.argv[1:]], env=env)


if __name__ == "__main__" and "ACTLAB_BENCH_CPU" not in os.environ:
    wanted = argparse.ArgumentParser(add_help=False)
    wanted.add_argument("--cpu-features", choices=("avx2",))
    if wanted.parse_known_args()[0].cpu_features == "avx2":
        sys.exit(_reexec_avx2())

import numpy as np  # noqa: E402  (after the re-exec: the environment must be set before import)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _machine import summary  # noqa: E402

from actlab import kernels as K  # noqa: E402
from actlab.activations import _route as R  # noqa: E402

aten = torch.ops.aten


def median_ms(fns: list[Callable[[], object] | None], repeats: int) -> list[float | None]:
    """Median wall time of each function in ms, timed round-robin.

    Interleaving the contenders means a burst of load from elsewhere on a shared machine hits
    all of them alike instead of one column.
    """
    live = [f for f in fns if f is not None]
    for _ in range(3):  # warm-up: caches, thread pools, lazy imports, freshly mapped memory
        for f in live:
            f()
    times: list[list[float]] = [[] for _ in live]
    for _ in range(repeats):
        for i, f in enumerate(live):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    it = iter(1e3 * statistics.median(t) for t in times)
    return [None if f is None else next(it) for f in fns]


def naive(x: np.ndarray) -> dict[str, tuple[Callable[[], object], bool]]:
    """The article's formulas (and whether they call exp)."""
    alpha_leaky, alpha_elu = 0.01, 1.0
    x2 = x.reshape(-1, 1000) if x.size % 1000 == 0 else x.reshape(1, -1)
    return {
        "sigmoid": (lambda: 1 / (1 + np.exp(-x)), True),
        "relu": (lambda: np.maximum(x, 0), False),
        "leaky_relu": (lambda: np.where(x > 0, x, alpha_leaky * x), False),
        "elu": (lambda: np.where(x > 0, x, alpha_elu * (np.exp(x) - 1)), True),
        "silu": (lambda: x * (1 / (1 + np.exp(-x))), True),
        "tanh": (lambda: np.tanh(x), False),
        "softmax (rows)": (
            lambda: np.exp(x2) / np.sum(np.exp(x2), axis=-1, keepdims=True),
            True,
        ),
        "softmax (1-d)": (lambda: np.exp(x) / np.sum(np.exp(x)), True),
    }


def cases(x: np.ndarray) -> list[tuple[str, Callable, Callable, Callable, Callable]]:
    """(row, actlab forward, actlab derivative, torch forward, torch backward)."""
    t = torch.from_numpy(x)
    g = torch.ones_like(t)
    w = torch.tensor([0.25])
    rows = x.reshape(-1, 1000) if x.size % 1000 == 0 else x.reshape(1, -1)
    tr = torch.from_numpy(rows)
    gr = torch.ones_like(tr)
    yr, ytr = K.softmax(rows), torch.softmax(tr, -1)
    ly, lyt = K.log_softmax(rows), torch.log_softmax(tr, -1)
    y1, yt1 = K.softmax(x), torch.softmax(t, -1)
    ones_rows = np.ones_like(rows)
    sig_y, tanh_y = torch.sigmoid(t), torch.tanh(t)
    a = 1.6732632423543772
    s = 1.0507009873554805

    def autograd(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        def run() -> object:
            leaf = t.detach().requires_grad_(True)
            f(leaf).backward(g)
            return leaf.grad

        return run

    return [
        ("identity", lambda: K.identity(x), lambda: K.identity_derivative(x), t.clone, None),
        (
            "sigmoid",
            lambda: K.sigmoid(x),
            lambda: K.sigmoid_derivative(x),
            lambda: torch.sigmoid(t),
            lambda: aten.sigmoid_backward(g, sig_y),
        ),
        (
            "tanh",
            lambda: K.tanh(x),
            lambda: K.tanh_derivative(x),
            lambda: torch.tanh(t),
            lambda: aten.tanh_backward(g, tanh_y),
        ),
        (
            "relu",
            lambda: K.relu(x),
            lambda: K.relu_derivative(x),
            lambda: torch.relu(t),
            lambda: aten.threshold_backward(g, t, 0),
        ),
        (
            "leaky_relu",
            lambda: K.leaky_relu(x),
            lambda: K.leaky_relu_derivative(x),
            lambda: F.leaky_relu(t, 0.01),
            lambda: aten.leaky_relu_backward(g, t, 0.01, False),
        ),
        (
            "prelu",
            lambda: K.prelu(x),
            lambda: K.prelu_derivative(x),
            lambda: F.prelu(t, w),
            lambda: aten._prelu_kernel_backward(g, t, w),
        ),
        (
            "elu",
            lambda: K.elu(x),
            lambda: K.elu_derivative(x),
            lambda: F.elu(t),
            lambda: aten.elu_backward(g, 1.0, 1.0, 1.0, False, t),
        ),
        (
            "selu",
            lambda: K.selu(x),
            lambda: K.selu_derivative(x),
            lambda: F.selu(t),
            lambda: aten.elu_backward(g, a, s, 1.0, False, t),
        ),
        (
            "celu",
            lambda: K.celu(x),
            lambda: K.celu_derivative(x),
            lambda: F.celu(t),
            lambda: aten.elu_backward(g, 1.0, 1.0, 1.0, False, t),
        ),
        (
            "gelu",
            lambda: K.gelu(x),
            lambda: K.gelu_derivative(x),
            lambda: F.gelu(t),
            lambda: aten.gelu_backward(g, t),
        ),
        (
            "gelu (tanh)",
            lambda: K.gelu(x, approximate="tanh"),
            lambda: K.gelu_derivative(x, approximate="tanh"),
            lambda: F.gelu(t, approximate="tanh"),
            lambda: aten.gelu_backward(g, t, approximate="tanh"),
        ),
        (
            "silu",
            lambda: K.silu(x),
            lambda: K.silu_derivative(x),
            lambda: F.silu(t),
            lambda: aten.silu_backward(g, t),
        ),
        (
            "mish",
            lambda: K.mish(x),
            lambda: K.mish_derivative(x),
            lambda: F.mish(t),
            lambda: aten.mish_backward(g, t),
        ),
        (
            "softplus",
            lambda: K.softplus(x),
            lambda: K.softplus_derivative(x),
            lambda: F.softplus(t),
            lambda: aten.softplus_backward(g, t, 1.0, 20.0),
        ),
        (
            "softsign",
            lambda: K.softsign(x),
            lambda: K.softsign_derivative(x),
            lambda: F.softsign(t),
            autograd(F.softsign),
        ),
        (
            "relu6",
            lambda: K.relu6(x),
            lambda: K.relu6_derivative(x),
            lambda: F.relu6(t),
            lambda: aten.hardtanh_backward(g, t, 0.0, 6.0),
        ),
        (
            "hard_sigmoid",
            lambda: K.hard_sigmoid(x),
            lambda: K.hard_sigmoid_derivative(x),
            lambda: F.hardsigmoid(t),
            lambda: aten.hardsigmoid_backward(g, t),
        ),
        (
            "hard_swish",
            lambda: K.hard_swish(x),
            lambda: K.hard_swish_derivative(x),
            lambda: F.hardswish(t),
            lambda: aten.hardswish_backward(g, t),
        ),
        (
            "softmax (rows)",
            lambda: K.softmax(rows),
            lambda: K.softmax_vjp(yr, ones_rows),
            lambda: torch.softmax(tr, -1),
            lambda: aten._softmax_backward_data(gr, ytr, -1, torch.float32),
        ),
        (
            "log_softmax (rows)",
            lambda: K.log_softmax(rows),
            lambda: K.log_softmax_vjp(ly, ones_rows),
            lambda: torch.log_softmax(tr, -1),
            lambda: aten._log_softmax_backward_data(gr, lyt, -1, torch.float32),
        ),
        (
            "softmax (1-d)",
            lambda: K.softmax(x),
            lambda: K.softmax_vjp(y1, np.ones_like(x)),
            lambda: torch.softmax(t, -1),
            lambda: aten._softmax_backward_data(g, yt1, -1, torch.float32),
        ),
    ]


def compiled_route() -> str:
    """Which route the compiled kernels take, timing the first float32 call of each (the first
    imports numba, then each compiles or loads numba's on-disk cache)."""
    import importlib.util

    if R._numba_mode in R._OFF:
        return "compiled kernels: off (ACTLAB_KERNELS_NUMBA=0); NumPy/PyTorch routes"
    if importlib.util.find_spec("numba") is None:
        return "compiled kernels: numba not installed (actlab[fast]); NumPy/PyTorch routes"
    x = np.linspace(-5, 5, K._COMPILED_MIN, dtype=np.float32)  # large enough to load numba
    t0 = time.perf_counter()
    K.gelu(x)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in (K.gelu_derivative, K.sigmoid_derivative, K.tanh_derivative, K.silu_derivative,
              K.mish_derivative, K.hard_swish_derivative):
        f(x)
    K.gelu(x, approximate="tanh")
    K.gelu_derivative(x, approximate="tanh")
    rest = time.perf_counter() - t0
    import numba

    return (
        f"compiled kernels: numba {numba.__version__} for {numba.config.CPU_NAME or 'host'} "
        f"CPU; first float32 call {first:.2f} s (import + compile or cache load), "
        f"the other 8 kernels {rest:.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="elements (default 10M)")
    ap.add_argument("--repeats", type=int, default=9, help="timed runs per cell (median)")
    ap.add_argument("--torch-threads", type=int, default=None, help="default: PyTorch's own")
    ap.add_argument("--only", default="", help="comma-separated row names (default: all)")
    ap.add_argument("--cpu-features", choices=("avx2",), help="emulate an AVX2-only machine")
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    # Touch ~2 GB once: in a VM the first touch of fresh memory costs ~4 us per page, which would
    # otherwise land on whichever kernel happens to allocate it first.
    np.ones(2**28, np.float64).sum()
    compiled = compiled_route()
    x = (np.random.default_rng(0).standard_normal(args.n, dtype=np.float32) * 3).astype(np.float32)
    naive_fns = naive(x)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    from numpy._core import _multiarray_umath as umath

    simd = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    print(summary())
    print(
        f"numpy dispatches to {', '.join(simd) or 'baseline only'}; torch CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}"
        + (" (AVX2 emulated: --cpu-features avx2)" if os.environ.get("ACTLAB_BENCH_CPU") else "")
    )
    print(
        f"{args.n:,} float32 elements, median of {args.repeats}; actlab threads "
        f"{K.get_num_threads()}, torch threads {torch.get_num_threads()}, numpy {np.__version__}, "
        f"torch {torch.__version__}"
    )
    head = (
        f"{'activation':<19}{'actlab':>9}{'naive':>9}{'torch':>9}{'/torch':>8}{'naive/':>8}"
        f"  {'goals':<18}{'d actlab':>9}{'d torch':>9}{'/torch':>8}"
    )
    print(compiled)
    print(head)
    print("-" * len(head))
    missed_torch: list[str] = []
    missed_naive: list[str] = []
    missed_d: list[str] = []
    with np.errstate(all="ignore"):  # the naive formulas are allowed to warn; we time them only
        for row, fwd, der, tfwd, tbwd in cases(x):
            if only and row not in only and row.split(" ")[0] not in only:
                continue
            nv = naive_fns.get(row)
            ms, nms, tms = median_ms([fwd, nv[0] if nv else None, tfwd], args.repeats)
            dms, tdms = median_ms([der, tbwd], args.repeats)
            assert ms is not None and tms is not None and dms is not None
            torch_ok = ms <= 1.5 * tms
            goals = "torch ok" if torch_ok else "torch MISSED"
            if not torch_ok:
                missed_torch.append(f"{row} {ms / tms:.2f}")
            if nv and nv[1]:
                goals += " naive ok" if nms >= 2 * ms else " naive MISSED"
                if nms < 2 * ms:
                    missed_naive.append(f"{row} {nms / ms:.2f}")
            d_goal = ""
            if tdms:
                d_goal = "d ok" if dms <= 1.5 * tdms else "d MISSED"
                if dms > 1.5 * tdms:
                    missed_d.append(f"{row} {dms / tdms:.2f}")
            print(
                f"{row:<19}{ms:9.2f}{(f'{nms:9.2f}' if nms else ' ' * 9)}{tms:9.2f}"
                f"{ms / tms:8.2f}{(f'{nms / ms:8.2f}' if nms else ' ' * 8)}  {goals:<18}"
                f"{dms:9.2f}{(f'{tdms:9.2f}' if tdms else '        -')}"
                f"{(f'{dms / tdms:8.2f}' if tdms else ' ' * 8)}  {d_goal}"
            )
    print("times in ms; /torch = actlab / torch (<= 1.5 wanted); naive/ = naive / actlab (>= 2)")
    level = "AVX2 (emulated)" if os.environ.get("ACTLAB_BENCH_CPU") else "this CPU's own level"
    print(
        f"goal forward <= 1.5x PyTorch on every row ({level}): "
        + ("MET" if not missed_torch else f"MISSED for {', '.join(missed_torch)}")
    )
    print(
        f"goal derivative <= 1.5x PyTorch's backward on every row ({level}): "
        + ("MET" if not missed_d else f"MISSED for {', '.join(missed_d)}")
    )
    print(
        "goal >= 2x faster than the naive exp formulas: "
        + ("MET" if not missed_naive else f"MISSED for {', '.join(missed_naive)}")
    )
    if K._torch_module() is None:
        print("note: actlab's PyTorch route is off (ACTLAB_KERNELS_TORCH=0): NumPy figures")


if __name__ == "__main__":
    main()
