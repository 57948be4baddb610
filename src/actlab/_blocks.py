"""The kernels' block runner: large arrays in cache-sized blocks, shared among a thread pool.

:mod:`actlab.kernels` cuts an array into blocks of ``BLOCK`` elements so that a kernel's whole
chain of in-place ufuncs runs in cache, and hands the blocks to a small pool (ufuncs release the
GIL). Arrays below ``PARALLEL_MIN`` elements never touch the pool.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from actlab.errors import ActlabError

# Elements per block. Each ufunc call costs a few microseconds however small its block, and a
# kernel is 5-40 calls, so 2^16-element blocks (L2-sized) spent more time in call overhead than
# in arithmetic: 10M-element exact GELU took 37 ms with 2^16, 22 ms with 2^18 (sigmoid 7.4 -> 4.4
# ms) and 2^20 was slower again. The chain's few 1 MiB arrays then live in L2/L3.
BLOCK = 1 << 18
PARALLEL_MIN = 1 << 19  # at least two blocks; below, the pool's hand-off costs more than it saves
_num_threads = max(1, int(os.environ.get("ACTLAB_NUM_THREADS", 0) or (os.cpu_count() or 1)))
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None  # (pid, size): a forked child must not reuse the pool
_pool_lock = threading.Lock()
_local = threading.local()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for large arrays (1 turns the pool off)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ActlabError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _num_threads = n


def get_num_threads() -> int:
    """Threads the kernels use for large arrays."""
    return _num_threads


def _get_pool() -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), _num_threads)
    with _pool_lock:
        if _pool is None or _pool_key != key:
            if _pool is not None and _pool_key is not None and _pool_key[0] == key[0]:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=_num_threads, thread_name_prefix="actlab")
            _pool_key = key
        return _pool


def parallel(work: Callable[[int, int], Any], total: int, unit: int) -> list[Any]:
    """Run ``work(lo, hi)`` over [0, total) in chunks aligned to ``unit``; results in order.

    About four chunks per thread, handed out on demand: on a shared machine a thread that gets
    less CPU simply takes fewer chunks instead of holding everyone up.
    """
    units = -(-total // unit)
    nthreads = min(_num_threads, units)
    if total < PARALLEL_MIN or nthreads <= 1:
        return [work(0, total)]
    step = max(1, units // (4 * nthreads)) * unit
    bounds = [(lo, min(total, lo + step)) for lo in range(0, total, step)]
    results: list[Any] = [None] * len(bounds)
    tickets = itertools.count()  # next() is atomic under the GIL

    def drain() -> None:
        for i in iter(tickets.__next__, None):
            if i >= len(bounds):
                return
            results[i] = work(*bounds[i])

    pool = _get_pool()
    futures: list[Future[None]] = [pool.submit(drain) for _ in range(nthreads - 1)]
    error: BaseException | None = None
    try:
        drain()
    except BaseException as exc:  # wait for the workers before re-raising
        error = exc
    for f in futures:
        try:
            f.result()
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error
    return results


def scratch(dtype: np.dtype, k: int, tag: str = "") -> list[np.ndarray]:
    """``k`` per-thread scratch arrays of ``BLOCK`` elements, allocated once per thread.

    ``tag`` gives a kernel its own set, apart from the driver's (which it receives as ``t``).
    """
    cache = getattr(_local, "bufs", None)
    if cache is None:
        cache = _local.bufs = {}
    key = dtype.char + tag
    bufs = cache.get(key)
    if bufs is None or len(bufs) < k:
        bufs = cache[key] = [np.empty(BLOCK, dtype) for _ in range(k)]
    return bufs
