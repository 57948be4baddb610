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
``POST /api/sessions/{id}/control``         ``{"action": "play" | "pause" | "step" | "reset"}``
``GET /api/runs``                           the compare runs under the runs folder
``GET /runs/{path}``                        a report file of a run (only inside that folder)
==========================================  =====================================================

Training happens only while a session's stream is open, at most ``fps`` frames a second, in a
worker thread; closing the stream (the page closes, or ``DELETE``) ends the session, so no training
outlives its page. Sessions are capped (``max_sessions``) and one without a stream expires after
``session_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
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

from actlab import catalog, kernels, plot
from actlab.compare import OPTIMIZERS
from actlab.errors import ActlabError
from actlab.explore.session import DATASETS, LIMITS, PlaygroundConfig, Session, validate

__all__ = ["MAX_SESSIONS", "SESSION_TTL", "create_app", "list_runs", "run_file", "slider"]

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
# Files of a run folder the page may open: the reports and their figures, not the database.
SERVED_SUFFIXES = (".html", ".md", ".png", ".svg", ".pdf", ".json", ".csv", ".txt")


class BadRequest(HTTPException):
    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code=status_code, detail=message)


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


def catalog_json() -> dict[str, Any]:
    acts = []
    for spec in catalog.SPECS:
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
            }
        )
    return {
        "activations": acts,
        "datasets": list(DATASETS),
        "optimizers": list(OPTIMIZERS),
        "limits": {k: list(v) for k, v in LIMITS.items()},
        "defaults": PlaygroundConfig().to_dict(),
        "saturation_threshold": plot.SATURATION,
        "max_curves": MAX_CURVES,
        "softmax_default": [1, 2, 3, 4, 1, 2, 3],
    }


def _number(request: Request, key: str, default: float, lo: float, hi: float) -> float:
    text = request.query_params.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and lo <= value <= hi):
        raise BadRequest(f"{key} must be a number from {lo:g} to {hi:g}, got {text!r}")
    return value


def _jsonable(a: np.ndarray) -> list[float | None]:
    """Floats for JSON, 6 significant digits; NaN (the gaps at jumps) and inf -> null."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in a.tolist()]


def _other(act: catalog.Activation, x: np.ndarray, y: np.ndarray, derivative: bool) -> list:
    values = np.asarray((act.derivative if derivative else act.forward)(x), dtype=np.float64)
    return _jsonable(np.where(np.isnan(y), np.nan, values))  # no hover in the gaps


def curves(specs: list[str], xmin: float, xmax: float, n: int) -> list[dict[str, Any]]:
    """f and f' of each activation on ``n`` points of [xmin, xmax], from actlab.kernels, with the
    dead and saturation intervals that actlab.plot shades in the figures."""
    x = np.linspace(xmin, xmax, n)
    out = []
    for spec in specs:
        act = catalog.parse(spec)
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
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise BadRequest(f"n (points per curve) must be an integer from {lo} to {hi}, got {text!r}")
    result = curves(specs, xmin, xmax, int(text))
    return JSONResponse({"curves": result, "saturation_threshold": plot.SATURATION})


async def api_softmax(request: Request) -> Response:
    text = request.query_params.get("logits", "1,2,3,4,1,2,3")
    pieces = text.replace(",", " ").split()
    if not 1 <= len(pieces) <= MAX_LOGITS:
        raise BadRequest(f"give 1 to {MAX_LOGITS} logits separated by commas, got {len(pieces)}")
    try:
        z = np.array([float(p) for p in pieces])
    except ValueError:
        raise BadRequest(f"logits must be numbers separated by commas, got {text[:80]!r}") from None
    if not np.all(np.isfinite(z)) or np.abs(z).max() > LOGIT_LIMIT:
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


@dataclass(eq=False)
class _Entry:
    id: str
    session: Session
    # last sign of life: creation, then every frame or keep-alive its stream sends
    seen: float = field(default_factory=time.monotonic)
    playing: bool = False
    pending_steps: int = 0
    reset: bool = False
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
        entry = self.entries.pop(key, None)
        if entry is not None:
            entry.closed = True
            entry.playing = False
            entry.wake.set()


def _sse(event: str, payload: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def api_create(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('the request body must be JSON, e.g. {"dataset": "moons"}') from None
    config = validate(body)
    hub.purge()
    if len(hub.entries) + hub.creating >= hub.max_sessions:
        raise BadRequest(
            f"too many open Playground sessions ({hub.max_sessions}); close another tab or wait "
            f"{hub.ttl:g} s for unused ones to expire",
            429,
        )
    hub.creating += 1  # reserve the slot before awaiting, or concurrent requests overshoot
    try:
        session = await run_in_threadpool(Session, config)
    finally:
        hub.creating -= 1
    key = secrets.token_urlsafe(12)
    hub.entries[key] = _Entry(key, session)
    return JSONResponse({**hub.entries[key].state(), "data": session.points()}, status_code=201)


async def api_session(request: Request) -> Response:
    return JSONResponse(request.app.state.hub.get(request.path_params["id"]).state())


async def api_delete(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    hub.get(request.path_params["id"])
    hub.close(request.path_params["id"])
    return JSONResponse({"closed": request.path_params["id"]})


ACTIONS = ("play", "pause", "step", "reset")


async def api_control(request: Request) -> Response:
    entry: _Entry = request.app.state.hub.get(request.path_params["id"])
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
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

    async def work(fn: Any, *args: Any) -> Any:
        entry.busy = True
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            entry.busy = False

    async def frames() -> Any:
        try:
            yield _sse("frame", await work(session.advance, False))
            due = time.monotonic()
            while not entry.closed:
                entry.seen = time.monotonic()
                entry.wake.clear()
                if entry.reset:
                    entry.reset = False
                    await work(session.reset)
                    yield _sse("frame", await work(session.advance, False))
                    continue
                if entry.pending_steps or (entry.playing and not session.diverged):
                    wait = due - time.monotonic()
                    if wait > 0:
                        await anyio.sleep(wait)
                        continue  # the page may have paused, reset or closed meanwhile
                    entry.pending_steps = max(entry.pending_steps - 1, 0)
                    frame = await work(session.advance)
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
        finally:
            entry.streaming = False
            hub.close(entry.id)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# ---------------------------------------------------------------------------- runs


def list_runs(root: Path) -> list[dict[str, Any]]:
    """The compare run folders directly under ``root`` (those with results or a report)."""
    from actlab.compare.config import flat_from_stored
    from actlab.compare.store import Store

    if not root.is_dir():
        return []
    real_root = root.resolve()
    runs = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or not child.resolve().is_relative_to(real_root):
            continue
        report = child / "report.html"
        has_store = Store.exists(child)
        if not (has_store or report.is_file()):
            continue
        info: dict[str, Any] = {
            "name": child.name,
            "report": f"runs/{child.name}/report.html" if report.is_file() else None,
            "modified": child.stat().st_mtime,
        }
        if has_store:
            try:
                with Store.open(child) as store:
                    cfg = store.config
                    models = store.models()
            except Exception as exc:  # a damaged run must not hide the others
                info["error"] = str(exc).splitlines()[0][:200]
            else:
                flat = flat_from_stored(cfg)  # this version's config or 0.1.0's
                info.update(
                    dataset=flat.get("dataset") or Path(str(flat.get("csv"))).name,
                    activations=list(flat.get("activations") or []),
                    seeds=flat.get("seeds"),
                    epochs=flat.get("epochs"),
                    models=len(models),
                    finished=sum(m["status"] != "running" for m in models),
                )
        runs.append(info)
    return runs


def run_file(root: Path, rel: str) -> Path:
    """The file ``rel`` inside ``root``, or BadRequest 404: no '..', no absolute or odd paths, and
    the real path (symlinks resolved) must stay inside the real ``root``."""
    missing = BadRequest(f"no such report file under the runs folder: {rel[:100]!r}", 404)
    parts = rel.split("/")
    if not rel or "\x00" in rel or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        raise missing
    try:
        real_root = root.resolve(strict=True)
        real = (real_root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        raise missing from None
    if not real.is_relative_to(real_root) or not real.is_file():
        raise missing
    if real.suffix.lower() not in SERVED_SUFFIXES:
        raise BadRequest(
            f"only reports and figures are served ({', '.join(SERVED_SUFFIXES)}), not {rel!r}", 403
        )
    return real


async def api_runs(request: Request) -> Response:
    root: Path = request.app.state.runs
    runs = await run_in_threadpool(list_runs, root)
    return JSONResponse({"folder": str(root), "runs": runs})


async def runs_file(request: Request) -> Response:
    path = run_file(request.app.state.runs, request.path_params["path"])
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})


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
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _user_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("explore: %s %s failed", request.method, request.url.path)
    return JSONResponse(
        {"error": f"internal error ({type(exc).__name__}); the server log has the details"},
        status_code=500,
    )


LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _Guard:
    """Two checks before any route, against other web sites the browser also has open:

    * the Host header must name this machine (``local_only``), so a DNS-rebinding page cannot
      read the runs or drive the Playground through a name of its own;
    * POST bodies must be ``application/json``, which a cross-site page can only send after a CORS
      preflight this server never grants (a plain form post cannot start training).
    """

    def __init__(self, app: Any, local_only: bool) -> None:
        self.app = app
        self.local_only = local_only

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            error = None
            if self.local_only and name not in LOCAL_NAMES:
                error = (400, f"this server answers only to 127.0.0.1 or localhost, not {host!r}")
            elif scope["method"] == "POST" and not headers.get("content-type", "").startswith(
                "application/json"
            ):
                error = (415, "send the body as JSON with 'Content-Type: application/json'")
            if error:
                await JSONResponse({"error": error[1]}, status_code=error[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    runs: str | Path = "actlab-runs",
    *,
    max_sessions: int = MAX_SESSIONS,
    session_ttl: float = SESSION_TTL,
    local_only: bool = True,
) -> Starlette:
    """The explore app; ``runs`` is the only folder whose files it serves. ``local_only``: answer
    only requests addressed to 127.0.0.1 / localhost / [::1] (turn off when binding elsewhere)."""
    app = Starlette(
        middleware=[Middleware(_Guard, local_only=local_only)],
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
            Route("/api/runs", api_runs),
            Route("/runs/{path:path}", runs_file),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            HTTPException: _http_error,
            ActlabError: _user_error,
            Exception: _server_error,
        },
    )
    app.state.runs = Path(runs).expanduser()
    app.state.hub = Hub(max_sessions, session_ttl)
    app.state.catalog = catalog_json()
    app.state.plotly = plotly_bundle()
    return app
