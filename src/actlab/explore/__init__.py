"""``actlab explore``: an offline page where a learner sees every activation work, live.

Three views: *Functions* (f and f' of any activations from actlab's kernels, parameter sliders,
dead and saturation zones, a softmax panel), *Playground* (a small PyTorch network trained on a 2-D
data set in the server, streamed frame by frame with its decision surface, losses and per-layer
dead/saturated fractions and gradient norms) and *Runs* (the reports of ``actlab compare`` runs).

Needs the optional extra: ``pip install "actlab[explore]"`` (Starlette, uvicorn, plotly).

>>> from actlab.explore import serve          # doctest: +SKIP
>>> serve(port=8765, open_browser=False)      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import re
import socket
import sys
import threading
import webbrowser
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actlab.errors import ActlabError

if TYPE_CHECKING:
    from actlab.spec import ActivationSpec

__all__ = ["LOCAL_HOSTS", "check_installed", "load_activations", "search_finalists", "serve"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
REQUIRED = ("starlette", "uvicorn", "plotly")
INSTALL = 'pip install "actlab[explore]"'


def check_installed() -> None:
    """ActlabError naming the install command when a package of the extra is missing."""
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise ActlabError(
            f"actlab explore needs {', '.join(missing)}, which is not installed; "
            f"install the optional extra: {INSTALL}"
        )


def load_activations(
    refs: Iterable[str | tuple[str, str, str]] | str,
) -> dict[str, ActivationSpec]:
    """The user's own activations for the explorer, from its command line
    (``--activations my_acts.py:snake,module:fn``): each loaded and checked now, then known to
    requests by its function's name (``snake``). Requests can never name code themselves.

    An item ``(name, ref, label)`` (a search finalist, :func:`search_finalists`) is known as
    ``name`` and shown as ``label``.
    """
    from actlab import catalog, usercode
    from actlab.explore.worker import restore_torch_state, torch_state

    table: dict[str, ActivationSpec] = {}
    taken = set(catalog.names(include_aliases=True))
    items: list[str | tuple[str, str, str]] = []
    for item in [refs] if isinstance(refs, str) else refs:
        items += [item] if isinstance(item, tuple) else catalog.split_specs(item)
    for item in items:
        alias, ref, label = item if isinstance(item, tuple) else ("", item, "")
        if not usercode.is_reference(ref):
            raise ActlabError(
                f"--activations takes your own functions as path/to/file.py:function or "
                f"module:function (parameters are set on the page), got {ref!r}; the built-ins "
                "are always there"
            )
        name = alias or ref.rpartition(":")[2].lower()
        if name in taken or name in table:
            raise ActlabError(
                f"--activations: {ref} would be called '{name}', which is already taken; "
                "rename the function"
            )
        saved = torch_state()
        spec = usercode.load_activation(ref)
        changed = restore_torch_state(saved)
        if changed:
            raise ActlabError(f"--activations: {ref} changes torch's global state ({changed})")
        source = Path(ref.rpartition(":")[0]).name  # the file or module, short enough for a menu
        table[name] = dataclasses.replace(
            spec, name=name, display_name=label or f"{name} ({source})"
        )
    return table


def search_finalists(runs: str | Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The finalists of the ``actlab search`` runs directly under ``runs``, as items for
    :func:`load_activations` (``(name, ref, label)``), and one line per run that was skipped.

    Only at start-up, and only because the person at the terminal named the folder: each run's
    ``search.sqlite`` is recognised and read without writing to it (the store's read-only probe),
    and a finalist is the file ``RUN/found/<name>.py`` with its function ``<name>`` (the paths the
    database stores are not followed). Names on the page: ``<run>_<name>`` (``moons_found1``).
    """
    from actlab.compare.store import _probe
    from actlab.search.state import FILE, State

    root = Path(runs).expanduser()
    items: list[tuple[str, str, str]] = []
    skipped: list[str] = []
    if not root.is_dir():
        return items, skipped
    real_root = root.resolve()
    for run in sorted(root.iterdir()):
        db = run / FILE
        if not db.is_file() or not run.resolve().is_relative_to(real_root):
            continue
        try:
            State.recognise(db)
            conn = _probe(db)
            try:
                names = [r[0] for r in conn.execute("SELECT name FROM finalists ORDER BY name")]
            finally:
                conn.close()
        except Exception as exc:  # a damaged run must not stop the server or hide the others
            skipped.append(f"{run.name}: {' '.join(str(exc).split())[:200]}")
            continue
        for name in names:
            ok = isinstance(name, str) and name.isidentifier()
            path = run / "found" / f"{name}.py"
            if not (ok and path.is_file() and ":" not in str(path.resolve())):
                skipped.append(f"{run.name}: finalist {str(name)[:40]!r} has no found/<name>.py")
                continue
            alias = re.sub(r"[^a-z0-9_]", "_", f"{run.name}_{name}".lower())[:64]
            if not alias[0].isalpha():
                alias = f"s{alias}"[:64]
            items.append((alias, f"{path.resolve()}:{name}", f"{name} (search: {run.name})"))
    return items, skipped


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    runs: str | Path = "actlab-runs",
    open_browser: bool = True,
    activations: Iterable[str] | str = (),
    search_finalists: bool = False,
) -> None:
    """Run the explore server until Ctrl-C (binds ``host:port``; 127.0.0.1 by default).

    ``activations``: your own functions (``file.py:fn``, ``module:fn``), loaded now; the page and
    its requests refer to them by the function's name. ``search_finalists``: also load the
    finalists of the ``actlab search`` runs under ``runs`` (now only: new ones need a restart).
    """
    check_installed()
    if not 0 <= int(port) <= 65535:
        raise ActlabError(f"--port must be from 0 to 65535, got {port}")
    import torch
    import uvicorn

    from actlab.explore.server import create_app

    # The networks are tiny (at most 8 x 64): one intra-op thread per training thread is fastest
    # (2x8 on moons: ~70 frames/s with 1 thread) and lets sessions of several tabs run side by side
    # instead of oversubscribing the cores.
    torch.set_num_threads(1)
    app = create_app(
        runs,
        local_only=host in LOCAL_HOSTS,
        activations=activations,
        search_finalists=search_finalists,
    )
    if app.state.finalists:
        print(
            f"actlab explore: {len(app.state.finalists)} search finalist(s) from {runs} in "
            f"Functions: {', '.join(app.state.finalists)} (new ones appear after a restart)"
        )
    for line in app.state.search_skipped:
        print(f"actlab explore: skipped a search finalist: {line}", file=sys.stderr)
    try:
        sock = socket.create_server((host, int(port)), family=_family(host))
    except OSError as exc:
        raise ActlabError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port "
            "(0 picks a free one)"
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{bound}/"
    if host not in LOCAL_HOSTS:
        print(
            f"actlab explore: warning: listening on {host}, not 127.0.0.1: the page has no "
            "authentication, so anyone who can reach this address can use it and start training "
            "on this machine",
            file=sys.stderr,
        )
    print(f"actlab explore: serving {url}  (runs folder: {Path(runs).expanduser()}; Ctrl-C stops)")
    sys.stdout.flush()
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    # SIGINT/SIGTERM: kill the worker processes first (whatever they run), then let uvicorn
    # close the connections (0.5 s of grace for open streams): the server is gone within ~1 s.
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=0.5)
    stop = app.state.stop

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stop()
            # The process is ending: the interpreter's final garbage collection over torch's
            # objects took 1-2 s here after Ctrl-C; frozen objects are left to the OS.
            gc.freeze()
            super().handle_exit(sig, frame)

    Server(config).run(sockets=[sock])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
