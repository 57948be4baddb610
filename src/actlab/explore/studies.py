"""The "test this properly" button: the Playground's data and network as an ``actlab compare``
run over many seeds, in the background, one at a time.

``POST /api/compare`` takes the Playground's settings (as ``POST /api/sessions`` does, checked by
the same :func:`~actlab.explore.session.validate`) plus ``activations`` (the specs to compare,
each put in every hidden layer), ``seeds`` and ``epochs``, and answers 202 with the run's id;
``GET /api/compare/{id}`` gives its progress and, when done, its headline and ranking;
``DELETE /api/compare/{id}`` cancels it; ``GET /api/compare`` lists this server's runs.

The run is :func:`actlab.compare.run` itself, the runner and store of the CLI, with the settings
of :func:`actlab.explore.export.compare_settings` (the same translation as "copy as actlab
command"), writing to a new folder under the server's ``--runs`` (``explore-<data>-<time>``,
never an existing one), where it then appears in Runs with its report. It runs in a process of
its own (from the workers' forkserver, :mod:`actlab.explore.worker`), so that it is bounded and
killable whatever it does: at most :data:`MAX_MODELS` models, ``limit`` seconds of training
(compare's ``time_budget``: it stops cleanly at an epoch, writes its report and can be resumed
with ``actlab compare --resume``), killed :data:`GRACE` seconds after that, killed when it is
cancelled or the server stops, and ending by itself when the server's process is gone.
Requests name activations only by name (:func:`actlab.catalog.parse_registered`); a start-up
function reaches the run as the reference the person at the terminal gave.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from actlab import catalog, compare
from actlab.errors import ActlabError, check_number
from actlab.explore import export
from actlab.explore.guard import BadRequest, echo, in_daemon_thread, read_json
from actlab.explore.session import PlaygroundConfig, hidden_activation, validate
from actlab.explore.worker import _context, _exit_with_parent, _without_main, one_line

__all__ = [
    "LIMITS",
    "MAX_MODELS",
    "STUDY_LIMIT",
    "Studies",
    "StudyRequest",
    "api_cancel",
    "api_list",
    "api_start",
    "api_status",
    "validate_study",
]

# Bounds on one background run. 40 models of at most 8 x 64 train in one batched group; on this
# 2-core machine 2 activations x 2 seeds x 3 epochs on moons took 14 s with imports and report.
LIMITS: dict[str, tuple[int, int]] = {"activations": (2, 8), "seeds": (2, 10), "epochs": (1, 200)}
MAX_MODELS = 40  # activations x seeds
STUDY_LIMIT = 600.0  # seconds of training (compare's time_budget) before it stops at an epoch
GRACE = 120.0  # seconds after that for the analysis and the report before the process is killed
CANCEL_WAIT = 5.0  # seconds a cancelled run has to close its store before it is killed
KEEP = 20  # finished runs remembered (their folders stay; this is only the list the page polls)
EXTRA = ("activations", "seeds", "epochs")


@dataclass(frozen=True)
class StudyRequest:
    """A validated ``POST /api/compare``: the Playground and what to compare over how many seeds."""

    config: PlaygroundConfig
    activations: tuple[str, ...]
    seeds: int
    epochs: int

    @property
    def models(self) -> int:
        """How many models the run trains (activations x seeds)."""
        return len(self.activations) * self.seeds


def _activations(value: Any, table: Mapping[str, catalog.ActivationSpec] | None) -> list[str]:
    """Canonical, distinct, elementwise specs from a list (or comma string) of names only."""
    if isinstance(value, str):
        value = catalog.split_specs(value)
    lo, hi = LIMITS["activations"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ActlabError(
            f"activations must be a list of {lo} to {hi} activation specs to compare, e.g. "
            f'["relu", "tanh"]; got {echo(str(value))}'
        )
    specs: list[str] = []
    for i, text in enumerate(value, 1):
        act = hidden_activation(text, table, f"activations, item {i}")
        if str(act) in specs:
            raise ActlabError(f"activations: {act} is listed twice; list each once")
        specs.append(str(act))
    if not lo <= len(specs) <= hi:
        raise ActlabError(
            f"give {lo} to {hi} activations to compare (each is put in every hidden layer), "
            f"got {len(specs)}"
        )
    return specs


def validate_study(
    body: Any, table: Mapping[str, catalog.ActivationSpec] | None = None
) -> StudyRequest:
    """A :class:`StudyRequest` from a JSON body; ActlabError naming the bad key otherwise. The
    Playground's keys go through :func:`~actlab.explore.session.validate`; ``activations``
    (default: the distinct ones of its layers) through the same name-only parser."""
    if not isinstance(body, dict):
        raise ActlabError('the request body must be a JSON object, e.g. {"activations": ["relu"]}')
    config = validate({k: v for k, v in body.items() if k not in EXTRA}, table)
    acts = _activations(body.get("activations", list(dict.fromkeys(config.layers))), table)
    numbers = {}
    for key, default in (("seeds", 5), ("epochs", 30)):
        value = body.get(key, default)
        lo, hi = LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ActlabError(f"{key} must be an integer from {lo} to {hi}, got {echo(str(value))}")
        numbers[key] = check_number(key, value, lo, hi, integer="json")
    if config.bias:  # compare starts hidden biases at 0: a run would test something else
        raise ActlabError(
            f"bias {config.bias:g}: a compare run starts every hidden bias at 0 (compare has no "
            "starting-bias setting), so it would not test what these networks show; set the "
            "starting bias to 0 to test the activations from a zero bias"
        )
    request = StudyRequest(config, tuple(acts), numbers["seeds"], numbers["epochs"])
    if request.models > MAX_MODELS:
        raise ActlabError(
            f"{len(acts)} activations x {request.seeds} seeds = {request.models} models; at most "
            f"{MAX_MODELS} run from the page: compare fewer, or run the 'actlab compare' command "
            "in a terminal"
        )
    return request


# ---------------------------------------------------------------------------- the server's side


@dataclass(eq=False)
class Study:
    """One background run as the server sees it; :meth:`state` is what ``GET`` answers."""

    id: str
    name: str  # its folder under the runs folder
    request: StudyRequest
    command: str
    limit: float
    proc: Any = None
    conn: Any = None
    state_: str = "queued"
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    cancelled: bool = False

    @property
    def alive(self) -> bool:
        """Whether its process may still run (the next run waits until it is reaped)."""
        return self.ended is None

    def state(self) -> dict[str, Any]:
        p, r = self.progress, self.request
        groups = max(int(p.get("groups") or 1), 1)
        group = int(p.get("group") or 0)
        epochs = max(int(p.get("epochs") or r.epochs), 1)
        epoch = int(p.get("epoch") or 0)
        steps = max(int(p.get("steps") or 1), 1)
        within = (max(epoch - 1, 0) + min(int(p.get("step") or 0), steps) / steps) / epochs
        fraction = 1.0 if self.state_ == "done" else (group + within) / groups if p else 0.0
        end = self.ended if self.ended is not None else time.monotonic()
        done = r.models if self.result else round(r.models * group / groups)
        return {
            "id": self.id,
            "state": self.state_,
            "run": self.name,
            "report": f"runs/{self.name}/report.html" if self.result else None,
            "activations": list(r.activations),
            "seeds": r.seeds,
            "epochs": r.epochs,
            "dataset": r.config.dataset,
            "depth": len(r.config.layers),
            "width": r.config.width,
            "models": {"done": done, "total": r.models},
            "epoch": epoch,
            "group": group + 1 if p else 0,
            "groups": groups,
            "fraction": round(fraction, 4),
            "elapsed_s": round(end - self.started, 1),
            "limit_s": self.limit,
            "command": self.command,
            "error": self.error,
            **(self.result or {}),
        }


class Studies:
    """The background runs of one server: at most one running; each in a killable process."""

    def __init__(self, runs: Path, refs: Mapping[str, str], limit: float = STUDY_LIMIT) -> None:
        self.runs = runs
        self.refs = dict(refs)
        self.limit = float(limit)
        self.items: dict[str, Study] = {}
        self.lock = threading.Lock()
        self.closed = False

    def get(self, key: str) -> Study:
        """The run ``key`` of this server, or a 404 that says where its folder is."""
        study = self.items.get(key)
        if study is None:
            raise BadRequest(
                f"no background run {echo(key)} (this server has not started it, or restarted "
                "since); its folder, if any, is in Runs",
                404,
            )
        return study

    def _folder(self, dataset: str) -> str:
        """A folder name under the runs folder that nothing has yet: never an existing one."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name, n = f"explore-{dataset}-{stamp}", 1
        while (self.runs / name).exists() or any(s.name == name for s in self.items.values()):
            n += 1
            name = f"explore-{dataset}-{stamp}-{n}"
        return name

    def start(self, request: StudyRequest) -> Study:
        """Start ``request`` in a new process; 409 while another run is alive."""
        with self.lock:
            if self.closed:
                raise BadRequest("the server is stopping", 503)
            busy = [s for s in self.items.values() if s.alive]
            if busy:
                raise BadRequest(
                    f"a background run is already going ({busy[0].name}, {busy[0].state_}); one "
                    f"at a time: wait for it or cancel it (DELETE /api/compare/{busy[0].id})",
                    409,
                )
            name = self._folder(request.config.dataset)
            out = self.runs / name
            settings = export.compare_settings(
                request.config, self.refs, request.activations, request.seeds, request.epochs
            )
            line = export.command(
                request.config, self.refs, request.activations, request.seeds, request.epochs
            )
            line += " " + shlex.join(["--out", str(out), "--device", "cpu"])
            study = Study(secrets.token_urlsafe(9), name, request, line, self.limit)
            self.items[study.id] = study
            for old in [s for s in self.items.values() if not s.alive][:-KEEP]:
                del self.items[old.id]
        try:  # outside the lock: the first start waits for the forkserver's imports (~2-15 s)
            _spawn(study, settings, out)
        except BaseException as exc:
            study.state_, study.ended = "failed", time.monotonic()
            study.error = f"the run's process did not start: {exc}"[:300]
            raise
        if self.closed:  # the server stopped meanwhile
            _kill(study.proc)
        threading.Thread(target=self._follow, args=(study,), daemon=True,
                         name="actlab-explore-study").start()  # fmt: skip
        return study

    def _follow(self, study: Study) -> None:
        """Read the run's messages until its process ends; kill it past ``limit + GRACE``."""
        deadline = study.started + study.limit + GRACE
        try:
            while True:
                if study.conn.poll(0.25):
                    try:
                        kind, value = study.conn.recv()
                    except (EOFError, OSError):
                        break
                    self._message(study, kind, value)
                    continue
                if time.monotonic() > deadline:
                    study.error = (
                        f"the run took longer than {study.limit + GRACE:g} s with its report and "
                        "was stopped"
                    )
                    break
                if not study.proc.is_alive():
                    break
        finally:
            _kill(study.proc)
            with self.lock:
                study.ended = time.monotonic()
                if study.state_ in ("queued", "running"):
                    study.state_ = "cancelled" if study.cancelled else "failed"
                if study.state_ == "failed" and not study.error:
                    study.error = (
                        f"the run's process ended without a result (exit code "
                        f"{study.proc.exitcode}); its folder {study.name} keeps what it stored"
                    )
            with contextlib.suppress(OSError):
                study.conn.close()

    def _message(self, study: Study, kind: str, value: Any) -> None:
        """Apply one message of the run's process to its state (ignored once cancelled)."""
        with self.lock:
            if study.cancelled:
                return
            if kind == "progress":
                study.state_, study.progress = "running", value
            elif kind == "started":
                study.state_ = "running"
            elif kind == "done":
                study.state_, study.result = "done", value
            elif kind == "error":
                study.state_, study.error = "failed", str(value)[:400]

    def cancel(self, study: Study) -> None:
        """Ask the run to stop (it closes its store), and kill it if it has not within
        :data:`CANCEL_WAIT` seconds; the page sees 'cancelled' at once."""
        with self.lock:
            if study.proc is None or not study.alive or study.state_ not in ("queued", "running"):
                return
            study.cancelled = True
            study.state_ = "cancelled"
        with contextlib.suppress(OSError, ValueError):
            study.proc.terminate()

        def later() -> None:
            study.proc.join(CANCEL_WAIT)
            _kill(study.proc)

        threading.Thread(target=later, daemon=True, name="actlab-explore-cancel").start()

    def close(self) -> None:
        """End every run now (the server stops): SIGTERM, half a second to close the store,
        SIGKILL. Safe to call more than once."""
        with self.lock:
            self.closed = True
            alive = [s for s in self.items.values() if s.alive]
            for s in alive:
                s.cancelled = True
                if s.state_ in ("queued", "running"):
                    s.state_ = "cancelled"
        alive = [s for s in alive if s.proc is not None]  # (one still starting is killed by start)
        for s in alive:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                s.proc.terminate()
        end = time.monotonic() + 0.5
        for s in alive:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                s.proc.join(max(0.0, end - time.monotonic()))
            _kill(s.proc)


def _kill(proc: Any) -> None:
    """SIGKILL ``proc`` if it still runs, and reap it (idempotent)."""
    with contextlib.suppress(OSError, ValueError, AssertionError):
        if proc.is_alive():
            proc.kill()
        proc.join(2)


def _spawn(study: Study, settings: dict[str, Any], out: Path) -> None:
    """The run's process, from the workers' forkserver (never inheriting the server's sockets)."""
    ctx = _context()
    study.conn, child = ctx.Pipe(duplex=False)
    study.proc = ctx.Process(
        target=_main, args=(child, settings, str(out), study.limit), daemon=True,
        name="actlab-explore-study",
    )  # fmt: skip
    with _without_main():
        study.proc.start()
    child.close()


# ---------------------------------------------------------------------------- in the run's process


def _raise_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM in the run's process: stop as Ctrl-C stops ``actlab compare``."""
    raise KeyboardInterrupt  # compare.run ends its store's session as 'interrupted' and closes it


def _main(conn: Any, settings: dict[str, Any], out: str, limit: float) -> None:
    """Run the comparison; send ("started"|"progress"|"done"|"error", value) messages."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the server stops us
    signal.signal(signal.SIGTERM, _raise_interrupt)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    import torch

    # half the cores: the Playground's sessions (one thread each) keep the rest
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    last = [0.0]

    def send(kind: str, value: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            conn.send((kind, value))

    def progress(info: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or int(info.get("step") or 0) >= int(info.get("steps") or 1):
            last[0] = now
            keys = ("epoch", "epochs", "step", "steps", "group", "groups", "eta_s")
            send("progress", {k: info.get(k) for k in keys})

    try:
        results = compare.run(
            out=out, time_budget=limit, progress=progress, device="cpu",
            on_start=lambda directory, new: send("started", str(directory)),
            max_models=MAX_MODELS, **settings,
        )  # fmt: skip
        send("done", _summary(results))
    except KeyboardInterrupt:
        send("error", "cancelled")
    except BaseException as exc:  # one line back, whatever failed
        send("error", one_line(exc))
    finally:
        conn.close()


def _number(x: Any) -> float | None:
    """A statistic for JSON: a float, or None for a missing one or NaN."""
    return None if x is None or x != x else float(x)  # NaN -> None (JSON has no NaN)


def _summary(results: Any) -> dict[str, Any]:
    """What the page shows of a finished run: the headline and each activation's row."""
    keys = ("mean", "std", "ci_low", "ci_high", "p_value", "p_holm")
    rows = [
        {"activation": r["activation"], "rank": r["rank"], "verdict": r["verdict"],
         "n_ok": r["n_ok"], "n_failed": r["n_failed"], **{k: _number(r[k]) for k in keys}}
        for r in results.summary
    ]  # fmt: skip
    return {
        "headline": results.headline,
        "winner": results.winner,
        "metric": results.metric,
        "complete": bool(results.complete),
        "final_epoch": results.final_epoch,
        "rows": rows,
        "notes": list(results.notes),
    }


# ---------------------------------------------------------------------------- routes


async def api_start(request: Request) -> Response:
    """``POST /api/compare``: validate, start, 202 and the run's state (its ``id``)."""
    body = await read_json(request)
    studies: Studies = request.app.state.studies
    # in a thread: the process's start blocks (the first waits for the forkserver's imports)
    study = await in_daemon_thread(
        studies.start, validate_study(body, request.app.state.activations)
    )
    return JSONResponse(study.state(), status_code=202)


async def api_status(request: Request) -> Response:
    """``GET /api/compare/{id}``: the run's progress, then its headline and ranking."""
    return JSONResponse(request.app.state.studies.get(request.path_params["id"]).state())


async def api_cancel(request: Request) -> Response:
    """``DELETE /api/compare/{id}``: cancel the run (its folder keeps what it stored)."""
    studies: Studies = request.app.state.studies
    study = studies.get(request.path_params["id"])
    studies.cancel(study)
    return JSONResponse(study.state())


async def api_list(request: Request) -> Response:
    """``GET /api/compare``: this server's runs, latest first (a reloaded page finds its own)."""
    studies: Studies = request.app.state.studies
    items = sorted(studies.items.values(), key=lambda s: s.started, reverse=True)
    return JSONResponse({"studies": [s.state() for s in items], "limits": limits()})


def limits() -> dict[str, Any]:
    """The bounds the page shows next to its inputs."""
    return {**{k: list(v) for k, v in LIMITS.items()}, "max_models": MAX_MODELS}
