"""Worker processes: where the explore server runs activation functions and Playground training.

The server's own process never calls an activation after start-up. A Playground session trains in
a process of its own, and curves of the user's start-up activations are computed in a small pool
of processes, so that

* a function that loops is stopped by killing its process (a thread cannot be killed): when its
  time limit passes, its stream closes, its session is deleted or expires, or the server stops;
* the event loop keeps answering other requests meanwhile;
* torch's global state (default dtype, grad mode, threads) that a function changes stays in its
  process, and is restored (the change named in an error) after every task.

Processes come from a ``forkserver`` (``spawn`` where there is none): a clean process that has
imported torch once, so a new worker costs ~15 ms instead of ~1.5 s of imports, and nothing of the
server's threads or sockets is inherited. A worker loads the start-up activations itself, by the
references the person at the terminal gave; requests only ever name them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "Pool",
    "Worker",
    "WorkerBusy",
    "WorkerError",
    "WorkerTimeout",
    "torch_state",
    "warm_up",
]

# imported once by the forkserver, so that a worker starts in ~15 ms and builds a session in
# ~0.1 s; without sklearn.model_selection and torch._dynamo (which the first optimiser imports,
# with sympy) a fresh worker took 2.2-2.8 s to build its first session (measured here)
PRELOAD = [
    "actlab.explore.server",
    "actlab.explore.session",
    "actlab.torch",
    "sklearn.datasets",
    "sklearn.model_selection",
    "torch._dynamo",
]
START_LIMIT = 120.0  # seconds for a worker to start (the first waits for the forkserver's imports)
_CONTEXT: Any = None
_CONTEXT_LOCK = threading.Lock()


class WorkerError(Exception):
    """A task failed in its worker (the message is one line naming what failed)."""


class WorkerTimeout(WorkerError):
    """A task ran past its time limit; its worker was killed."""


class WorkerBusy(WorkerError):
    """Every worker of a pool is busy (HTTP 429)."""


def _context() -> Any:
    """The multiprocessing context for workers, created once (forkserver where available)."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            methods = multiprocessing.get_all_start_methods()
            _CONTEXT = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            if "forkserver" in methods:
                _CONTEXT.set_forkserver_preload(PRELOAD)
        return _CONTEXT


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """Start a process without it importing the parent's ``__main__`` (multiprocessing's spawn
    and forkserver do, to find pickled functions): a script that calls ``serve()`` without an
    ``if __name__ == "__main__"`` guard would start a server in every worker. The workers' code is
    all in this module, so they need nothing from ``__main__``."""
    with _CONTEXT_LOCK:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


def warm_up() -> None:
    """Start the forkserver now (it imports torch: ~2 s), so the first session does not wait."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with _without_main():
            forkserver.ensure_running()


class Worker:
    """One worker process and the pipe to it; :meth:`call` is blocking (run it in a thread)."""

    def __init__(self, refs: tuple[str, ...] = ()) -> None:
        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_main, args=(child, tuple(refs)), daemon=True, name="actlab-explore-worker"
        )
        with _without_main():
            self.proc.start()
        child.close()
        self.dead = False
        self.ready = False
        self.lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def call(self, op: str, *args: Any, timeout: float, what: str = "the task") -> Any:
        """Run ``op`` in the worker and return its result; :class:`WorkerTimeout` (and the worker
        killed) after ``timeout`` seconds, :class:`WorkerError` when it failed or was killed."""
        try:
            if not self.ready:  # its start (imports, the user's activations) is not timed
                if not self.conn.poll(START_LIMIT):
                    self.kill()
                    raise WorkerTimeout(f"a worker process did not start in {START_LIMIT:g} s")
                self.conn.recv()
                self.ready = True
            self.conn.send((op, args))
            if not self.conn.poll(timeout):
                self.kill()
                raise WorkerTimeout(
                    f"{what} took longer than {timeout:g} s and was stopped (does an activation "
                    "function loop?)"
                )
            kind, value = self.conn.recv()
        except (EOFError, OSError, ValueError, TypeError):
            self.kill()
            raise WorkerError(f"{what} was stopped") from None
        if kind == "error":
            raise WorkerError(f"{what} failed: {value}")
        return value

    def kill(self) -> None:
        """Stop the process at once (SIGKILL: whatever it runs) and reap it; idempotent and
        thread-safe (the server's stop and a waiting request may both kill it)."""
        with self.lock:
            if self.dead:
                return
            self.dead = True
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(2)
            self.conn.close()


class Pool:
    """At most ``size`` workers for short tasks; a busy pool answers :class:`WorkerError`."""

    def __init__(self, refs: tuple[str, ...], size: int) -> None:
        self.refs = refs
        self.size = size
        self.idle: list[Worker] = []
        self.all: set[Worker] = set()
        self.lock = threading.Lock()
        self.closed = False
        self.starting = 0

    def run(self, op: str, *args: Any, timeout: float, what: str) -> Any:
        """Run one task on an idle worker (started when none is); blocking."""
        with self.lock:
            if self.closed:
                raise WorkerError("the server is stopping")
            worker = self.idle.pop() if self.idle else None
            if worker is None:
                if len(self.all) + self.starting >= self.size:
                    raise WorkerBusy(
                        f"all {self.size} workers are busy with other requests; try again"
                    )
                self.starting += 1  # started outside the lock: close() must never wait
        if worker is None:
            try:
                worker = Worker(self.refs)
            finally:
                with self.lock:
                    self.starting -= 1
            with self.lock:
                self.all.add(worker)
                if self.closed:
                    worker.kill()
        try:
            result = worker.call(op, *args, timeout=timeout, what=what)
        except WorkerError:
            with self.lock:
                self.all.discard(worker)
            if worker.dead or not worker.proc.is_alive():
                worker.kill()
            else:
                self._release(worker)
            raise
        self._release(worker)
        return result

    def _release(self, worker: Worker) -> None:
        with self.lock:
            if self.closed:
                worker.kill()
            else:
                self.all.add(worker)
                self.idle.append(worker)

    def close(self) -> None:
        """Kill every worker (running or idle)."""
        with self.lock:
            self.closed = True
            workers = list(self.all)
            self.all.clear()
            self.idle.clear()
        for w in workers:
            w.kill()


# ---------------------------------------------------------------------------- in the worker


def torch_state() -> dict[str, Any]:
    """torch's process-wide settings that user code may change."""
    import torch

    return {
        "default dtype": torch.get_default_dtype(),
        "grad mode": torch.is_grad_enabled(),
        "threads": torch.get_num_threads(),
    }


def restore_torch_state(saved: Mapping[str, Any]) -> str:
    """Put torch's settings back to ``saved``; '' or what had changed ('default dtype
    torch.float32 -> torch.float64')."""
    import torch

    now = torch_state()
    changed = [f"{k} {saved[k]} -> {now[k]}" for k in saved if now[k] != saved[k]]
    torch.set_default_dtype(saved["default dtype"])
    torch.set_grad_enabled(saved["grad mode"])
    if now["threads"] != saved["threads"]:
        torch.set_num_threads(saved["threads"])
    return ", ".join(changed)


def one_line(exc: BaseException) -> str:
    """An exception as one short line: 'TypeError: bad thing'."""
    if isinstance(exc, SystemExit):
        text = f"called sys.exit({exc.code!r})"
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if not type(exc).__module__.startswith("actlab"):
            text = f"{type(exc).__name__}: {text}"
    return text[:300]


def _main(conn: Any, refs: tuple[str, ...]) -> None:
    """The worker's loop: receive (op, args), answer ("ok", result) or ("error", one line)."""
    # Ctrl-C reaches the whole process group; the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    import torch

    torch.set_num_threads(1)  # tiny networks: one intra-op thread each (see explore.serve)
    saved = torch_state()
    handlers: dict[str, Callable[..., Any]] = {}
    try:
        from actlab.explore import load_activations

        table = load_activations(refs)
        restore_torch_state(saved)
        handlers = _handlers(table)
        failure = ""
    except BaseException as exc:  # user code at import: report it, do not die
        failure = f"loading the start-up activations failed in a worker: {one_line(exc)}"
    try:
        conn.send(("ready", failure))
    except (OSError, ValueError):
        return
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if failure:
                raise WorkerError(failure)
            result: tuple[str, Any] = ("ok", handlers[op](*args))
        except BaseException as exc:  # one line back, whatever the user code did
            result = ("error", one_line(exc))
        changed = restore_torch_state(saved)
        if changed and result[0] == "ok":
            result = ("error", f"an activation function changed torch's global state ({changed})")
        try:
            conn.send(result)
        except (OSError, ValueError):
            return


def _exit_with_parent() -> None:
    """End this worker when the server's process is gone, even if user code is looping (a server
    killed with -9 cannot kill its workers; without this they would run on)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(0)


def _handlers(table: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """The tasks a worker runs: curves, and one Playground session's life."""
    from actlab.explore.server import curves
    from actlab.explore.session import PlaygroundConfig, Session

    box: dict[str, Session] = {}

    def session(settings: dict[str, Any]) -> dict[str, Any]:
        config = PlaygroundConfig(**{**settings, "layers": tuple(settings["layers"])})
        box["s"] = Session(config, activations=table)
        return {"data": box["s"].points(), "frame": box["s"].advance(False)}

    def advance(train: bool) -> dict[str, Any]:
        return box["s"].advance(train)

    def reset() -> dict[str, Any]:
        box["s"].reset()
        return box["s"].advance(False)

    def change(values: dict[str, float]) -> dict[str, Any]:
        """Weight decay / dropout from the next step on (validated by the server)."""
        box["s"].set(**values)
        return box["s"].advance(False)

    return {
        "curves": lambda specs, xmin, xmax, n: curves(specs, xmin, xmax, n, table),
        "session": session,
        "advance": advance,
        "reset": reset,
        "set": change,
    }
