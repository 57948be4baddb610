"""The ``actlab explore`` web server: a Starlette app over actlab's own catalog, kernels and a
per-page training :class:`~actlab.explore.session.Session`.

Endpoints (all JSON unless noted; every 4xx carries ``{"error": "<one clear line>"}``):

==========================================  =====================================================
``GET /``                                   the page (``static/index.html``; ``/static/*`` assets)
``GET /vendor/plotly.min.js``               plotly's bundle, served from the installed package
``GET /api/catalog``                        activations with slider ranges, data sets, limits
``GET /api/curves?spec=..&xmin&xmax&n``     f and f' from :mod:`actlab.kernels`, dead/saturation
``GET /api/softmax?logits=1,2,3&temperature=1``  softmax(z / T) from :mod:`actlab.kernels`
``POST /api/sessions``                      create a Playground session (body: its settings)
``GET /api/sessions/{id}``                  its state; ``DELETE`` stops and removes it
``GET /api/sessions/{id}/stream``           server-sent events: one ``frame`` per epoch trained
``POST /api/sessions/{id}/control``         ``{"action": "play" | "pause" | "step" | "reset"}``, or
                                            ``{"action": "set", "weight_decay": x, "dropout": p}``
``POST /api/export?format=python|command``  the Playground (body: its settings) as a PyTorch
                                            script or an ``actlab compare`` line (plain text)
``POST /api/compare``                       "test this properly": the Playground (body: its
                                            settings + ``activations``, ``seeds``, ``epochs``) as
                                            a background ``actlab compare`` run (202, its ``id``)
``GET /api/compare/{id}``                   its progress, then its headline; ``DELETE`` cancels
``GET /api/runs``                           the compare runs under the runs folder
``GET /runs/{path}``                        a report file of a run (only inside that folder)
==========================================  =====================================================

Training happens only while a session's stream is open, at most ``fps`` frames a second, in a
worker *process* of its own (:mod:`actlab.explore.worker`); closing the stream (the page closes, or
``DELETE``), a frame past the time limit or the session's expiry kills that process, so no
training outlives its page, whatever its functions do. Sessions are capped (``max_sessions``) and
one without a stream expires after ``session_ttl`` seconds.

Requests are untrusted (docs/SECURITY.md): they name activations only by name (built-ins and the
``--activations`` loaded at start-up, :func:`actlab.catalog.parse_registered`), cross-site requests
are refused, bodies and numbers are bounded, and every error is one line of JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from actlab import catalog, kernels, nets, plot
from actlab.errors import ActlabError
from actlab.explore import export, load_activations, studies
from actlab.explore import search_finalists as find_finalists
from actlab.explore.guard import (  # (MAX_BODY etc.: this module's names before the split)
    ECHO,
    MAX_BODY,
    MAX_DEPTH,
    MAX_DIGITS,
    BadRequest,
    Guard,
    echo,
    float_text,
    in_daemon_thread,
    one_line,
    parse_json,
    read_json,
)
from actlab.explore.runs import SERVED_SUFFIXES, api_runs, list_runs, run_file, runs_file
from actlab.explore.session import (
    CHOICES,
    DATASETS,
    LIMITS,
    PlaygroundConfig,
    validate,
    validate_live,
)
from actlab.explore.worker import Pool, Worker, WorkerBusy, WorkerError, warm_up
from actlab.spec import OPTIMIZERS

__all__ = [
    "ECHO",
    "MAX_BODY",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_SESSIONS",
    "SERVED_SUFFIXES",
    "SESSION_TTL",
    "BadRequest",
    "create_app",
    "list_runs",
    "parse_json",
    "run_file",
    "slider",
]

log = logging.getLogger("actlab.explore")

STATIC = Path(__file__).with_name("static")
MAX_SESSIONS = 8  # open Playgrounds at once (one per browser tab); more get 429
SESSION_TTL = 120.0  # seconds without a stream (or a stream silent that long) before a drop
KEEPALIVE = 15.0  # seconds between SSE comments while paused (detects closed pages)
CURVE_POINTS = (2, 5001)  # points per curve: 5001 is 2.5x the figures' density
CURVE_X = 1000.0  # |x| limit of a curve window
MAX_CURVES = 8
MAX_LOGITS = 64
TEMPERATURE = (0.01, 100.0)
LOGIT_LIMIT = 1e6
TIME_LIMIT = 10.0  # seconds a frame or a curve may take (a 8 x 64 frame: ~0.2 s) before a kill
CREATE_LIMIT = 60.0  # seconds to start a session's process (the first one imports torch: ~2 s)
CURVE_WORKERS = 4  # processes computing the curves of start-up activations at once


# ---------------------------------------------------------------------------- catalog & curves


def slider(p: catalog.Param) -> dict[str, float] | None:
    """A slider range for a numeric parameter: the catalog's bounds where it has them, else up to
    ``max(1, 3 * |default|)`` (and down to minus that when unbounded below); open ends are kept
    one step inside. ``None`` for non-numeric parameters."""
    if p.kind not in (int, float) or p.choices:
        return None
    span = max(1.0, 3.0 * abs(float(p.default)))
    hi = float(p.high) if p.high is not None else span
    lo = float(p.low) if p.low is not None else -span
    step = (hi - lo) / 200.0 if p.kind is float else 1.0
    if p.low_open:
        lo += step
    return {"min": lo, "max": hi, "step": step}


def catalog_json(extra: Mapping[str, catalog.ActivationSpec] | None = None) -> dict[str, Any]:
    """What the page needs to know: activations (built-ins, then ``extra``), data sets, limits."""
    acts = []
    for spec in (*catalog.SPECS, *(extra or {}).values()):
        params = [
            {
                "name": p.name,
                "kind": p.kind.__name__,
                "default": p.default,
                "choices": list(p.choices),
                "allowed": p.allowed(),
                "description": p.description,
                "slider": slider(p),
            }
            for p in spec.params
            if not p.torch_only and (spec.elementwise or p.name != "axis")
        ]
        acts.append(
            {
                "name": spec.name,
                "display_name": spec.display_name,
                "aliases": list(spec.aliases),
                "family": spec.family,
                "elementwise": spec.elementwise,
                "formula": spec.formula,
                "derivative_formula": spec.derivative_formula,
                "range": spec.range_text,
                "saturating": spec.properties.saturating,
                "xlim": list(spec.plot.xlim),
                "ylim": list(spec.plot.ylim),
                "article_params": dict(spec.plot.params),
                "params": params,
                # the scheme init "auto" gives it (the Twins' shared-init default)
                "init": nets.init_scheme(catalog.Activation(spec, {}), "auto"),
            }
        )
    return {
        "activations": acts,
        "datasets": list(DATASETS),
        "optimizers": list(OPTIMIZERS),
        "limits": {k: list(v) for k, v in LIMITS.items()},
        "choices": {k: list(v) for k, v in CHOICES.items()},
        "defaults": PlaygroundConfig().to_dict(),
        "saturation_threshold": plot.SATURATION,
        "max_curves": MAX_CURVES,
        "softmax_default": [1, 2, 3, 4, 1, 2, 3],
    }


def _number(request: Request, key: str, default: float, lo: float, hi: float) -> float:
    text = request.query_params.get(key)
    if text is None:
        return default
    value = float_text(text)
    if not lo <= value <= hi:
        raise BadRequest(f"{key} must be a number from {lo:g} to {hi:g}, got {echo(text)}")
    return value


def _jsonable(a: np.ndarray) -> list[float | None]:
    """Floats for JSON, 6 significant digits; NaN (the gaps at jumps) and inf -> null."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in a.tolist()]


def _other(act: catalog.Activation, x: np.ndarray, y: np.ndarray, derivative: bool) -> list:
    values = np.asarray((act.derivative if derivative else act.forward)(x), dtype=np.float64)
    return _jsonable(np.where(np.isnan(y), np.nan, values))  # no hover in the gaps


def curves(
    specs: list[str],
    xmin: float,
    xmax: float,
    n: int,
    activations: Mapping[str, catalog.ActivationSpec] | None = None,
) -> list[dict[str, Any]]:
    """f and f' of each activation on ``n`` points of [xmin, xmax], from actlab.kernels, with the
    dead and saturation intervals that actlab.plot shades in the figures. Only registered names
    (and ``activations``) are accepted: no spec can name code here."""
    x = np.linspace(xmin, xmax, n)
    out = []
    for spec in specs:
        act = catalog.parse_registered(spec, activations)
        if not act.spec.elementwise:
            raise ActlabError(
                f"{act.name} is not elementwise (it normalises a vector): use the softmax panel"
            )
        f = np.asarray(act.forward(x), dtype=np.float64)
        df = np.asarray(act.derivative(x), dtype=np.float64)
        fx, fy = plot.breaks(x, f)
        dx, dy = plot.breaks(x, df)
        out.append(
            {
                "spec": str(act),
                "label": act.label,
                "formula": act.spec.formula,
                "derivative_formula": act.spec.derivative_formula,
                # "other": the other function at the same x, for the hover (x, f(x), f'(x))
                "f": {"x": _jsonable(fx), "y": _jsonable(fy), "other": _other(act, fx, fy, True)},
                "df": {"x": _jsonable(dx), "y": _jsonable(dy), "other": _other(act, dx, dy, False)},
                "regions": plot.regions(x, df),
            }
        )
    return out


async def api_catalog(request: Request) -> Response:
    return JSONResponse(request.app.state.catalog)


async def api_curves(request: Request) -> Response:
    specs = [s for s in request.query_params.getlist("spec") if s.strip()]
    if not specs:
        raise BadRequest("give at least one activation: /api/curves?spec=relu&spec=elu:alpha=0.5")
    if len(specs) > MAX_CURVES:
        raise BadRequest(f"at most {MAX_CURVES} activations at once, got {len(specs)}")
    xmin = _number(request, "xmin", -5.0, -CURVE_X, CURVE_X)
    xmax = _number(request, "xmax", 5.0, -CURVE_X, CURVE_X)
    if not xmin < xmax:
        raise BadRequest(f"xmin must be below xmax, got xmin={xmin:g}, xmax={xmax:g}")
    lo, hi = CURVE_POINTS
    text = request.query_params.get("n", "801")
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and lo <= int(text) <= hi):
        raise BadRequest(
            f"n (points per curve) must be an integer from {lo} to {hi}, got {echo(text)}"
        )
    extra = request.app.state.activations
    # the one check before anything runs: names only (built-ins, register()ed, --activations)
    acts = [catalog.parse_registered(s, extra) for s in specs]
    canonical = [str(a) for a in acts]
    users = [str(a) for a in acts if a.spec.name in extra]
    if users:  # the user's code: in a worker process with a time limit (killed past it)
        pool: Pool = request.app.state.pool
        result = await in_daemon_thread(
            pool.run, "curves", canonical, xmin, xmax, int(text),
            timeout=request.app.state.time_limit, what=f"the curves of {', '.join(users)}",
        )  # fmt: skip
    else:  # actlab's own kernels: bounded work, off the event loop
        result = await run_in_threadpool(curves, canonical, xmin, xmax, int(text))
    return JSONResponse({"curves": result, "saturation_threshold": plot.SATURATION})


async def api_softmax(request: Request) -> Response:
    text = request.query_params.get("logits", "1,2,3,4,1,2,3")
    pieces = text.replace(",", " ").split()
    if not 1 <= len(pieces) <= MAX_LOGITS:
        raise BadRequest(f"give 1 to {MAX_LOGITS} logits separated by commas, got {len(pieces)}")
    z = np.array([float_text(p) for p in pieces])
    if np.isnan(z).any():
        raise BadRequest(f"logits must be finite numbers separated by commas, got {echo(text)}")
    if np.abs(z).max() > LOGIT_LIMIT:
        raise BadRequest(f"logits must be finite numbers within +-{LOGIT_LIMIT:g}")
    t = _number(request, "temperature", 1.0, *TEMPERATURE)
    p = kernels.softmax(z / t)
    return JSONResponse(
        {
            "logits": z.tolist(),
            "temperature": t,
            "probabilities": _jsonable(p),
            "sum": float(p.sum()),
        }
    )


# ---------------------------------------------------------------------------- sessions


@dataclass
class SessionState:
    """What the server knows of a session training in its worker: its settings and last frame."""

    config: PlaygroundConfig
    epoch: int = 0
    steps: int = 0
    diverged: bool = False

    def update(self, frame: Mapping[str, Any]) -> None:
        self.epoch, self.steps, self.diverged = frame["epoch"], frame["steps"], frame["diverged"]


@dataclass(eq=False)
class _Entry:
    id: str
    session: SessionState
    worker: Worker
    first: dict[str, Any]  # the frame of the untrained network, computed at creation
    # last sign of life: creation, then every frame or keep-alive its stream sends
    seen: float = field(default_factory=time.monotonic)
    playing: bool = False
    pending_steps: int = 0
    reset: bool = False
    changes: dict[str, float] = field(default_factory=dict)  # weight decay / dropout to apply
    closed: bool = False
    streaming: bool = False
    busy: bool = False  # a frame is being computed in a worker thread
    frames: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def state(self) -> dict[str, Any]:
        s = self.session
        return {
            "id": self.id,
            "config": s.config.to_dict(),
            "playing": self.playing,
            "streaming": self.streaming,
            "busy": self.busy,
            "epoch": s.epoch,
            "steps": s.steps,
            "frames": self.frames,
            "diverged": s.diverged,
        }


class Hub:
    """The open sessions, bounded in number; each has at most one stream."""

    def __init__(self, max_sessions: int, ttl: float) -> None:
        self.max_sessions = max_sessions
        self.ttl = ttl
        self.entries: dict[str, _Entry] = {}
        self.creating = 0  # sessions being built in a worker thread (they hold a slot already)

    def purge(self) -> None:
        now = time.monotonic()
        for key, e in list(self.entries.items()):
            # no stream opened in time, or a stream that never started (its client left first)
            if now - e.seen > self.ttl:
                self.close(key)

    def get(self, key: str) -> _Entry:
        entry = self.entries.get(key)
        if entry is None:
            raise BadRequest(
                f"no session '{key[:40]}' (it ended when its page closed); create one with "
                "POST /api/sessions",
                404,
            )
        return entry

    def close(self, key: str) -> None:
        """End a session: its worker process is killed at once, whatever it was running."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            entry.closed = True
            entry.playing = False
            entry.wake.set()
            entry.worker.kill()

    def close_all(self) -> None:
        for key in list(self.entries):
            self.close(key)


def _sse(event: str, payload: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def _call(worker: Worker, op: str, *args: Any, timeout: float, what: str) -> Any:
    """``worker.call`` off the event loop (see :func:`in_daemon_thread`)."""
    return await in_daemon_thread(worker.call, op, *args, timeout=timeout, what=what)


async def api_create(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    body = await read_json(request)
    config = validate(body, request.app.state.activations)
    hub.purge()
    if len(hub.entries) + hub.creating >= hub.max_sessions:
        raise BadRequest(
            f"too many open Playground sessions ({hub.max_sessions}); close another tab or wait "
            f"{hub.ttl:g} s for unused ones to expire",
            429,
        )
    hub.creating += 1  # reserve the slot before awaiting, or concurrent requests overshoot
    worker = None
    what = f"the Playground with layers {', '.join(config.layers)}"
    try:
        worker = await in_daemon_thread(Worker, request.app.state.refs)
        # the session is built and its untrained frame computed now: a layer that fails is
        # refused here with its reason, not discovered by a stream that never sends a frame
        made = await _call(
            worker, "session", config.to_dict(), timeout=request.app.state.create_limit, what=what
        )
    except WorkerError as exc:
        if worker is not None:
            worker.kill()
        raise BadRequest(str(exc)) from None
    except BaseException:
        if worker is not None:
            worker.kill()
        raise
    finally:
        hub.creating -= 1
    key = secrets.token_urlsafe(12)
    state = SessionState(config)
    state.update(made["frame"])
    hub.entries[key] = _Entry(key, state, worker, made["frame"])
    return JSONResponse({**hub.entries[key].state(), "data": made["data"]}, status_code=201)


async def api_session(request: Request) -> Response:
    return JSONResponse(request.app.state.hub.get(request.path_params["id"]).state())


async def api_delete(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    hub.get(request.path_params["id"])
    hub.close(request.path_params["id"])
    return JSONResponse({"closed": request.path_params["id"]})


ACTIONS = ("play", "pause", "step", "reset", "set")


async def api_control(request: Request) -> Response:
    entry: _Entry = request.app.state.hub.get(request.path_params["id"])
    try:
        body = await read_json(request)
    except BadRequest:
        body = None
    action = body.get("action") if isinstance(body, dict) else None
    if action not in ACTIONS:
        raise BadRequest(f'action must be one of {", ".join(ACTIONS)}, e.g. {{"action": "play"}}')
    if action == "play":
        entry.playing = True
    elif action == "pause":
        entry.playing = False
    elif action == "step":
        entry.playing = False
        entry.pending_steps = min(entry.pending_steps + 1, 10)
    elif action == "set":  # applied by the stream before its next step (one worker call at a time)
        values = validate_live(body)
        entry.changes.update(values)
        entry.session.config = replace(entry.session.config, **values)
    else:
        entry.reset = True
    entry.wake.set()
    return JSONResponse(entry.state())


async def api_stream(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    entry = hub.get(request.path_params["id"])
    if entry.streaming:
        raise BadRequest("this session already has a stream open (one page per session)", 409)
    entry.streaming = True
    session = entry.session
    interval = 1.0 / session.config.fps
    limit = request.app.state.time_limit
    what = f"a frame of the Playground with layers {', '.join(session.config.layers)}"

    async def work(op: str, *args: Any) -> Any:
        entry.busy = True
        try:
            frame = await _call(entry.worker, op, *args, timeout=limit, what=what)
        finally:
            entry.busy = False
        session.update(frame)
        return frame

    async def frames() -> Any:
        try:
            async for event in play():
                yield event
        except WorkerError as exc:
            if entry.closed:  # DELETE or expiry killed the worker mid-frame
                yield _sse("end", {"reason": "session closed"})
            else:  # the function failed or ran past the limit: the page shows the reason
                yield _sse("error", {"error": str(exc)})
        finally:
            entry.streaming = False
            hub.close(entry.id)

    async def play() -> Any:
        yield _sse("frame", entry.first)
        due = time.monotonic()
        while not entry.closed:
            entry.seen = time.monotonic()
            entry.wake.clear()
            if entry.reset:
                entry.reset = False
                yield _sse("frame", await work("reset"))
                continue
            if entry.changes:
                changes, entry.changes = entry.changes, {}
                yield _sse("frame", await work("set", changes))
                continue
            if entry.pending_steps or (entry.playing and not session.diverged):
                wait = due - time.monotonic()
                if wait > 0:
                    await anyio.sleep(wait)
                    continue  # the page may have paused, reset or closed meanwhile
                entry.pending_steps = max(entry.pending_steps - 1, 0)
                frame = await work("advance", True)
                entry.frames += 1
                if frame["diverged"]:
                    entry.playing = False
                due = max(due + interval, time.monotonic())
                yield _sse("frame", frame)
                continue
            with anyio.move_on_after(KEEPALIVE) as scope:
                await entry.wake.wait()
            if scope.cancelled_caught:
                yield ": keep-alive\n\n"
        yield _sse("end", {"reason": "session closed"})

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


EXPORT_FORMATS = ("python", "command")


async def api_export(request: Request) -> Response:
    """The Playground's settings (as ``POST /api/sessions`` takes them) as text: a PyTorch script
    (``format=python``, the default) or an ``actlab compare`` command line. Bounded work: text
    from a validated config; start-up functions appear by their command-line path, never read."""
    fmt = request.query_params.get("format", "python")
    if fmt not in EXPORT_FORMATS:
        raise BadRequest(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {echo(fmt)}")
    config = validate(await read_json(request), request.app.state.activations)
    refs = request.app.state.user_refs
    if fmt == "command":
        text = export.command(config, refs) + "\n"
    else:
        text = await run_in_threadpool(export.script, config, request.app.state.activations, refs)
    return Response(text, media_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------------------- app


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def plotly_js(request: Request) -> Response:
    return FileResponse(request.app.state.plotly, media_type="text/javascript")


def plotly_bundle() -> Path:
    """plotly.min.js as shipped inside the installed ``plotly`` Python package (no CDN)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ActlabError(
            f"the installed plotly package has no bundled plotly.min.js ({path}); "
            'reinstall it: pip install "actlab[explore]"'
        )
    return path


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": one_line(exc.detail)}, status_code=exc.status_code)


async def _user_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": one_line(str(exc))}, status_code=400)


async def _worker_error(request: Request, exc: Exception) -> Response:
    status = 429 if isinstance(exc, WorkerBusy) else 400
    return JSONResponse({"error": one_line(str(exc))}, status_code=status)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("explore: %s %s failed", request.method, request.url.path)
    return JSONResponse(
        {"error": f"internal error ({type(exc).__name__}); the server log has the details"},
        status_code=500,
    )


async def _janitor(hub: Hub) -> None:
    """Expire unused sessions (killing their workers) even when no request comes."""
    while True:
        await asyncio.sleep(max(0.1, min(hub.ttl / 2, 5.0)))
        hub.purge()


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.ensure_future(_janitor(app.state.hub))
    threading.Thread(target=warm_up, daemon=True, name="actlab-explore-warm-up").start()
    try:
        yield
    finally:
        task.cancel()
        app.state.stop()


def create_app(
    runs: str | Path = "actlab-runs",
    *,
    max_sessions: int = MAX_SESSIONS,
    session_ttl: float = SESSION_TTL,
    local_only: bool = True,
    activations: Iterable[str] | str = (),
    time_limit: float = TIME_LIMIT,
    create_limit: float = CREATE_LIMIT,
    search_finalists: bool = False,
    study_limit: float = studies.STUDY_LIMIT,
) -> Starlette:
    """The explore app; ``runs`` is the only folder whose files it serves. ``local_only``: answer
    only requests addressed to 127.0.0.1 / localhost / [::1] (turn off when binding elsewhere).

    ``activations``: the user's own functions (``file.py:fn``, ``module:fn``), loaded and checked
    now; requests name them by function name. ``time_limit``: seconds a frame or a curve of them
    may take before its worker process is killed (``create_limit``: to start a session).

    ``search_finalists``: also load the finalists of the ``actlab search`` runs under ``runs``
    (:func:`actlab.explore.search_finalists`), now, as start-up activations; one that fails its
    check is skipped with its reason (``app.state.search_skipped``). New runs need a restart.

    ``study_limit``: seconds of training of a "test this properly" run (``POST /api/compare``,
    :mod:`actlab.explore.studies`) before it stops at an epoch boundary and writes its report.
    """
    refs: tuple[Any, ...] = tuple(catalog.split_specs(activations)) if activations else ()
    table = load_activations(refs)
    found, skipped = find_finalists(runs) if search_finalists else ([], [])
    for item in found:
        try:
            loaded = load_activations([item])
            if set(loaded) & set(table):
                raise ActlabError(f"the name {item[0]} is already taken")
            table.update(loaded)
        except ActlabError as exc:
            skipped.append(f"{item[2]}: {one_line(str(exc), 200)}")
        else:
            refs += (item,)
    app = Starlette(
        middleware=[Middleware(Guard, local_only=local_only)],
        routes=[
            Route("/", index),
            Route("/vendor/plotly.min.js", plotly_js),
            Route("/api/catalog", api_catalog),
            Route("/api/curves", api_curves),
            Route("/api/softmax", api_softmax),
            Route("/api/sessions", api_create, methods=["POST"]),
            Route("/api/sessions/{id}", api_session, methods=["GET"]),
            Route("/api/sessions/{id}", api_delete, methods=["DELETE"]),
            Route("/api/sessions/{id}/stream", api_stream),
            Route("/api/sessions/{id}/control", api_control, methods=["POST"]),
            Route("/api/export", api_export, methods=["POST"]),
            Route("/api/compare", studies.api_start, methods=["POST"]),
            Route("/api/compare", studies.api_list, methods=["GET"]),
            Route("/api/compare/{id}", studies.api_status, methods=["GET"]),
            Route("/api/compare/{id}", studies.api_cancel, methods=["DELETE"]),
            Route("/api/runs", api_runs),
            Route("/runs/{path:path}", runs_file),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            HTTPException: _http_error,
            ActlabError: _user_error,
            WorkerError: _worker_error,
            Exception: _server_error,
        },
        lifespan=_lifespan,
    )
    hub = Hub(max_sessions, session_ttl)
    pool = Pool(refs, CURVE_WORKERS)

    def stop() -> None:
        """Kill every worker process (sessions, curves, background runs); safe to call more than
        once."""
        hub.close_all()
        pool.close()
        app.state.studies.close()

    app.state.runs = Path(runs).expanduser()
    app.state.hub = hub
    app.state.pool = pool
    app.state.stop = stop
    app.state.refs = refs
    app.state.activations = table
    app.state.user_refs = {
        r[0] if isinstance(r, tuple) else r.rpartition(":")[2].lower(): r[1] if isinstance(
            r, tuple) else r for r in refs
    }  # fmt: skip
    app.state.finalists = [r[0] for r in refs if isinstance(r, tuple)]
    app.state.search_skipped = skipped
    app.state.time_limit = float(time_limit)
    app.state.create_limit = float(create_limit)
    app.state.studies = studies.Studies(app.state.runs, app.state.user_refs, study_limit)
    app.state.catalog = {**catalog_json(table), "study": studies.limits()}
    app.state.plotly = plotly_bundle()
    return app
