"""The Runs view's routes: the ``actlab compare`` runs under the runs folder, and their report
files (only inside that folder, symlinks resolved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from actlab.compare.config import flat_from_stored
from actlab.compare.store import Store
from actlab.explore.guard import BadRequest, echo

__all__ = ["SERVED_SUFFIXES", "api_runs", "list_runs", "run_file", "runs_file"]

# Files of a run folder the page may open: the reports and their figures, not the database.
SERVED_SUFFIXES = (".html", ".md", ".png", ".svg", ".pdf", ".json", ".csv", ".txt")


def list_runs(root: Path) -> list[dict[str, Any]]:
    """The compare run folders directly under ``root`` (those with results or a report)."""
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
    missing = BadRequest(f"no such report file under the runs folder: {echo(rel)}", 404)
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
            f"only reports and figures are served ({', '.join(SERVED_SUFFIXES)}), not {echo(rel)}",
            403,
        )
    return real


async def api_runs(request: Request) -> Response:
    root: Path = request.app.state.runs
    runs = await run_in_threadpool(list_runs, root)
    return JSONResponse({"folder": str(root), "runs": runs})


async def runs_file(request: Request) -> Response:
    path = run_file(request.app.state.runs, request.path_params["path"])
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})
