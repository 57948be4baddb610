"""Your own training function inside a fair study: ``actlab compare --objective train.py:fit``.

actlab calls ``fit(trial)`` once per activation x factor values x seed. The :class:`Trial` says
what to train (``trial.spec``, ``trial.activation()``, ``trial.seed`` -- already applied to torch,
NumPy and ``random`` --, ``trial.params``: the cell's factor values, the user's own ``--param``
factors included, ``trial.epochs``, ``trial.data``: the split when actlab owns the data,
``trial.device``) and takes the validation metrics as training goes (``trial.report(epoch,
val_accuracy=...)``); ``fit`` returns the test metrics (``{"test_accuracy": 0.97}``). Each finished
model's records go to the store like the built-in engine's, so selection on validation, the test
ranking, the paired tests, the report, ``--resume`` and ``--backend ray`` work unchanged.

:func:`train` has :func:`actlab.compare.engine.train`'s signature, so the backends call one or the
other by the group's configuration (:class:`ObjectiveConfig` here, ``engine.TrainConfig`` there).
Resume is at the level of a model (cell x seed): a model whose ``fit`` returned is stored and never
retrained; one that was interrupted starts again (no checkpoint of the user's loop exists).

The calls are guarded: an exception, a call that runs past ``timeout`` seconds, a return value that
is not a dict of numbers, or a bad ``report`` ends the run with one line naming the function and
the model (CLI exit 2; the models finished before it stay stored). What the function prints is
kept out of actlab's output and counted; a change to torch's global settings (default dtype,
threads, deterministic mode) is undone after each call. Each is named in one line on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import actlab.torch
from actlab import devices
from actlab.compare.engine import ModelEpoch
from actlab.errors import ActlabError
from actlab.usercode import load_function

__all__ = ["ObjectiveConfig", "Trial", "reference", "remember", "signature", "task_config", "train"]

_SIGNATURE = "fit(trial) -> dict of test metrics, e.g. {'test_accuracy': 0.97}"
_LOSSES = ("train_loss", "val_loss")  # stored in their own columns; non-finite: diverged
_FUNCTIONS: dict[str, Callable[..., Any]] = {}  # reference -> a callable given in Python


def reference(fn: Callable[..., Any]) -> str:
    """The stored name of a training function given in Python: ``module:name``."""
    name = getattr(fn, "__name__", "")
    if not callable(fn) or not name.isidentifier():
        raise ActlabError(
            f"objective must be a named function {_SIGNATURE}, got {fn!r}; a lambda has no name "
            "to store: use def"
        )
    return f"{getattr(fn, '__module__', None) or '__main__'}:{name}"


def remember(fn: Callable[..., Any]) -> str:
    """Keep a Python callable under its :func:`reference` for this process; the reference."""
    ref = reference(fn)
    _FUNCTIONS[ref] = fn
    return ref


@dataclass(frozen=True)
class ObjectiveConfig:
    """One group's training by the user's function: which function, how many epochs it is asked
    for, the cell's factor values, and how long one call may take (``None``: no limit)."""

    ref: str
    epochs: int
    params: tuple[tuple[str, Any], ...] = ()
    timeout: float | None = None
    fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def function(self) -> Callable[..., Any]:
        """The callable: the one given in Python, else imported from ``ref``."""
        if self.fn is not None:
            return self.fn

        fn = load_function(self.ref, "--objective", _SIGNATURE, "--objective train.py:fit")
        _check_signature(fn, self.ref)
        return fn


def _check_signature(fn: Callable[..., Any], ref: str) -> None:
    try:
        sig = inspect.signature(fn)
        sig.bind(object())
    except TypeError:
        raise ActlabError(
            f"--objective {ref} must take one argument, the trial: {_SIGNATURE}"
        ) from None
    except ValueError:  # no signature to read (a builtin): let the call decide
        pass


def task_config(c: Any, cell: Mapping[str, Any], timeout: float | None = None) -> ObjectiveConfig:
    """The group configuration for ``cell`` of the comparison ``c`` (a CompareConfig)."""
    ref = str(c.model.objective)
    return ObjectiveConfig(ref=ref, epochs=int(c.model.epochs), params=tuple(cell.items()),
                           timeout=timeout, fn=_FUNCTIONS.get(ref))  # fmt: skip


def signature(config: ObjectiveConfig) -> dict[str, Any]:
    """What a resumed run must find unchanged: the sha256 of the function's source file.

    Loading it here also stops a missing file or function before the run folder is made."""
    fn = config.function()
    try:
        path = inspect.getsourcefile(fn)
        source = Path(path).read_text(encoding="utf-8") if path else inspect.getsource(fn)
    except (OSError, TypeError, UnicodeDecodeError):
        source = ""
    sha = hashlib.sha256(source.encode()).hexdigest() if source else None
    return {"source_sha256": sha, "parameters": {}}


class Trial:
    """One call of the user's training function: one activation, one seed, one cell."""

    def __init__(self, spec: str, seed: int, params: dict[str, Any], epochs: int, data: Any,
                 device: Any, ref: str) -> None:  # fmt: skip
        self.spec = spec  # the canonical activation spec, e.g. "leaky_relu:negative_slope=0.1"
        self.seed = seed
        self.params = params
        self.epochs = epochs
        self.data = data  # actlab.data.Split: X_train, y_train, X_val, y_val, X_test, y_test, ...
        self.device = device
        self._ref = ref
        self.reports: list[tuple[int, dict[str, float]]] = []

    def __repr__(self) -> str:
        return f"Trial({self.spec!r}, seed={self.seed}, params={self.params})"

    def activation(self) -> Any:
        """A new ``torch.nn.Module`` of this trial's activation (``actlab.torch.build``)."""
        return actlab.torch.build(self.spec)

    def report(self, epoch: int, **metrics: float) -> None:
        """Record this epoch's validation metrics (``val_accuracy=...``, ``val_loss=...``).

        Epochs count from 1 and go up; the comparison selects on the validation metric of the
        last one (``val_accuracy`` for classification, ``val_rmse`` for regression)."""
        where = f"--objective {self._ref}: trial.report"
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise ActlabError(f"{where}(epoch, ...) needs a whole epoch number, got {epoch!r}")
        last = self.reports[-1][0] if self.reports else 0
        if not last < epoch <= self.epochs:
            raise ActlabError(
                f"{where}: epoch {epoch} after epoch {last}; epochs count 1, 2, ... up to "
                f"trial.epochs ({self.epochs})"
            )
        self.reports.append((epoch, _numbers(metrics, f"{where}(epoch={epoch}, ...)")))


def _numbers(metrics: Mapping[str, Any], where: str) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            if isinstance(v, (bool, str)):
                raise TypeError
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise ActlabError(f"{where}: metric {k!r} must be a number, got {v!r}") from None
    return out


# ------------------------------------------------------------------------------------------ guards


class _Tee:
    """``sys.stdout`` / ``sys.stderr`` while the function runs: its thread's writes are counted
    and kept out of actlab's output; other threads (a progress bar) write through."""

    def __init__(self, stream: Any, thread: int) -> None:
        self.stream, self.thread, self.text = stream, thread, []

    def write(self, s: str) -> int:
        if threading.get_ident() == self.thread:
            self.text.append(s)
            return len(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _torch_globals() -> dict[str, Any]:
    import torch

    return {"default dtype": torch.get_default_dtype(), "threads": torch.get_num_threads(),
            "deterministic algorithms": torch.are_deterministic_algorithms_enabled()}  # fmt: skip


def _restore(saved: dict[str, Any]) -> None:
    import torch

    torch.set_default_dtype(saved["default dtype"])
    torch.set_num_threads(saved["threads"])
    torch.use_deterministic_algorithms(saved["deterministic algorithms"])


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global generator: the user's code may use it
    torch.manual_seed(seed)  # every device's generator too


class _Call:
    """One guarded call of ``fn(trial)`` (in a thread when there is a time limit)."""

    def __init__(self, fn: Callable[..., Any], trial: Trial, timeout: float | None) -> None:
        self.fn, self.trial, self.timeout = fn, trial, timeout
        self.result: Any = None
        self.error: BaseException | None = None
        self.printed = ""

    def _body(self) -> None:
        tees = [_Tee(sys.stdout, threading.get_ident()), _Tee(sys.stderr, threading.get_ident())]
        try:
            with contextlib.redirect_stdout(tees[0]), contextlib.redirect_stderr(tees[1]):
                self.result = self.fn(self.trial)
        except BaseException as err:  # handed to the caller's thread
            self.error = err
        finally:
            self.printed = "".join(tees[0].text + tees[1].text)

    def run_and_collect(self, printed: list[str]) -> dict[str, float]:
        """:meth:`run`, adding what the function printed to ``printed`` whatever happens."""
        try:
            return self.run()
        finally:
            if self.printed:
                printed.append(self.printed)

    def run(self) -> dict[str, float]:
        """Call the function; its returned metrics, or one ActlabError line naming it."""
        if self.timeout is None:
            self._body()
        else:
            worker = threading.Thread(target=self._body, name="actlab-objective", daemon=True)
            worker.start()
            worker.join(self.timeout)
            if worker.is_alive():
                raise ActlabError(
                    f"--objective {self.trial._ref} did not return within {self.timeout:g} s for "
                    f"{_who(self.trial)}; the models finished before it are stored. Shorten its "
                    "loop or raise --objective-timeout, then finish the run with --resume"
                )
        if isinstance(self.error, ActlabError):
            raise self.error
        if isinstance(self.error, KeyboardInterrupt):
            raise self.error
        if self.error is not None:
            err = self.error
            raise ActlabError(
                f"--objective {self.trial._ref} raised {type(err).__name__}: {err} (for "
                f"{_who(self.trial)}); the models finished before it are stored: fix it and "
                "finish the run with --resume"
            ) from None
        if not isinstance(self.result, Mapping):
            raise ActlabError(
                f"--objective {self.trial._ref} returned {type(self.result).__name__} for "
                f"{_who(self.trial)}; it must return a dict of test metrics, e.g. "
                "{'test_accuracy': 0.97}"
            )
        return _numbers(self.result, f"--objective {self.trial._ref} returned a dict whose")


def _who(trial: Trial) -> str:
    own = {k: v for k, v in trial.params.items()}
    return f"activation {trial.spec}, seed {trial.seed}, factors {own}"


def _records(job: int, trial: Trial, result: dict[str, float], seconds: float) -> list[Any]:
    """The model's stored epochs: one per report; the returned (test) metrics join the last one,
    which is stored as epoch ``trial.epochs`` (an early-stopped loop's last report stands for the
    epochs it skipped). Training stops counting at a non-finite loss (diverged)."""
    reports = list(trial.reports)
    if not reports or reports[-1][0] < trial.epochs:
        last = dict(reports[-1][1]) if reports else {}
        reports.append((trial.epochs, last))
    reports[-1] = (reports[-1][0], {**reports[-1][1], **result})
    out = []
    each = seconds / len(reports)
    for epoch, metrics in reports:
        m = dict(metrics)
        losses = [m.pop(k, math.nan) for k in _LOSSES]
        diverged = any(k in metrics and not math.isfinite(metrics[k]) for k in _LOSSES)
        out.append(ModelEpoch(job=job, epoch=epoch, train_loss=losses[0], val_loss=losses[1],
                              metrics=m, grad_norms=[], dead_fraction=[], saturated_fraction=[],
                              diverged=diverged, seconds=each))  # fmt: skip
        if diverged:
            break
    return out


def _note(text: str) -> None:
    stream = sys.__stderr__ or sys.stderr
    print(f"actlab: note: {text}", file=stream, flush=True)


def train(
    jobs: Sequence[Any],
    split: Any,
    config: ObjectiveConfig,
    *,
    resume_from: bytes | None = None,
    on_epoch: Callable[[int, list, Callable[[], bytes | None]], None] | None = None,
    deadline: float | None = None,
    progress: Callable[[dict], None] | None = None,
    device: Any = "cpu",
) -> list[list[Any]]:
    """Call the user's function for each job (activation, seed) of one group (one cell).

    ``on_epoch(n, records, checkpoint)`` is called after each finished model with that model's
    records (every epoch it reported); ``n`` counts the models this call finished (the backends
    use it to hand each over once), and ``checkpoint()`` is ``None``: resume is per model.
    ``resume_from`` is ignored (there is no checkpoint of the user's loop). Returns each job's
    records, like :func:`actlab.compare.engine.train`.
    """
    fn = config.function()
    dev = devices.resolve(device) if isinstance(device, str) else device
    history: list[list[Any]] = [[] for _ in jobs]
    printed: list[str] = []
    changed: dict[str, tuple[Any, Any]] = {}
    start = time.perf_counter()
    for k, job in enumerate(jobs):
        if deadline is not None and time.monotonic() >= deadline:
            break
        if progress is not None:
            progress({"epoch": k + 1, "epochs": len(jobs), "step": 0, "steps": 1, "best": None,
                      "eta_s": _eta(start, k, len(jobs)), "unit": "model"})  # fmt: skip
        trial = Trial(str(job.activation), int(job.seed), dict(config.params), config.epochs,
                      split, dev, config.ref)  # fmt: skip
        saved = _torch_globals()
        _seed(trial.seed)
        t0 = time.perf_counter()
        try:
            result = _Call(fn, trial, config.timeout).run_and_collect(printed)
        finally:
            now = _torch_globals()
            for name, value in now.items():
                if value != saved[name]:
                    changed.setdefault(name, (saved[name], value))
            _restore(saved)
        history[k] = _records(k, trial, result, time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(k + 1, history[k], lambda: None)
        if progress is not None:
            progress({"epoch": k + 1, "epochs": len(jobs), "step": 1, "steps": 1, "best": None,
                      "eta_s": _eta(start, k + 1, len(jobs)), "unit": "model"})  # fmt: skip
    _notes(config.ref, printed, changed, len(jobs))
    return history


def _eta(start: float, done: int, total: int) -> float | None:
    return (time.perf_counter() - start) / done * (total - done) if done else None


def _notes(ref: str, printed: list[str], changed: dict[str, tuple[Any, Any]], calls: int) -> None:
    """One line for what the function printed, one for the global settings it changed."""
    if printed:
        lines = sum(p.count("\n") or 1 for p in printed)
        first = next(line for p in printed for line in p.splitlines() or [p] if line.strip())
        _note(
            f"--objective {ref} printed {lines} line(s) in {len(printed)} of {calls} call(s) "
            f"(first: {first.strip()[:80]!r}); actlab kept them out of its output: report "
            "metrics with trial.report(epoch, ...) instead"
        )
    if changed:
        what = ", ".join(f"{n} {a} -> {b}" for n, (a, b) in changed.items())
        _note(
            f"--objective {ref} changed torch's global settings ({what}); actlab restored them "
            "after each call so that every model starts alike"
        )
