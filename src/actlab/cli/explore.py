"""``actlab explore``: the interactive page (a thin shell over :func:`actlab.explore.serve`)."""

from __future__ import annotations

import argparse
import contextlib

from actlab.explore import serve

EPILOG = """examples:
  actlab explore                       # opens http://127.0.0.1:8765/ in the browser
  actlab explore --port 9000 --no-browser --runs results/
  actlab explore --activations my_acts.py:snake   # your function, on the page as 'snake'
  actlab explore --runs results/       # also the finalists of 'actlab search --out results/x'
needs the optional extra: pip install "actlab[explore]"
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="interactive page: activation curves, a live training playground, compare reports",
        description=(
            "Start a local web server with three views: Functions (f and f' with parameter "
            "sliders, dead and saturation zones, softmax with temperature), Playground (train a "
            "small network on a 2-D data set live: decision surface, losses, dead/saturated "
            "units, gradient norms) and Runs (the reports under --runs). Works offline."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else warns: the page has no "
        "authentication)",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    p.add_argument(
        "--runs",
        metavar="DIR",
        default=None,
        help="folder of 'actlab compare' runs to list (default ./actlab-runs); nothing outside it "
        "is served. Given here, the finalists of the 'actlab search' runs in it are loaded now "
        "into Functions (their found/*.py run as your code; new ones need a restart)",
    )
    p.add_argument(
        "--no-search-finalists",
        action="store_true",
        help="do not load the 'actlab search' finalists under --runs",
    )
    p.add_argument(
        "--activations",
        metavar="SPECS",
        default="",
        help="your own activations for the page, as path/to/file.py:function or "
        "module:function (comma-separated), loaded and checked now and then chosen by the "
        "function's name; the page itself can never name code",
    )
    p.set_defaults(func=_explore)


def _explore(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the server is stopped
        serve(
            args.host,
            args.port,
            runs=args.runs or "actlab-runs",
            open_browser=not args.no_browser,
            activations=args.activations,
            # only a folder the person named: never the default one found in the current folder
            search_finalists=args.runs is not None and not args.no_search_finalists,
        )
    return 0
