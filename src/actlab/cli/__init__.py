"""The ``actlab`` command: a thin shell over the Python API.

Each command group lives in its own module with ``register(subparsers)``; user mistakes raise
:class:`~actlab.errors.ActlabError` and end as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import re
import sys
import threading
from collections.abc import Sequence

from actlab import __version__, usercode
from actlab.errors import ActlabError

_NEGATIVE_NUMBER = re.compile(
    r"^-(\d+\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|inf|infinity|nan)$", re.IGNORECASE
)

# Command modules, in the order their commands appear in --help.
_MODULES = ("core", "plot", "advice", "compare", "search", "diagnose", "explore")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Values such as -1e3, -inf and -.5 are numbers, not options (`actlab eval relu -1e3 -inf`).
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> None:  # argparse's own usage errors: one line + usage hint
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="actlab",
        description="Which activation function should this layer use, and why?",
    )
    parser.add_argument("--version", action="version", version=f"actlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _MODULES:
        try:
            module = importlib.import_module(f"actlab.cli.{name}")
        except ModuleNotFoundError as exc:  # a part not built yet must not break the others
            if exc.name == f"actlab.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ActlabError as exc:
        print(f"actlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("actlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `actlab list | head`
        return 0
    except OSError as exc:  # a place the commands did not foresee: still one line, no traceback
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"actlab: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def run() -> None:  # console-script entry point
    code = main()
    _exit_past_stuck_threads(code)
    _exit_without_teardown(code)
    sys.exit(code)


def _exit_without_teardown(code: int) -> None:
    """End the process now that everything is written, without the interpreter's teardown.

    Tearing down torch, SciPy, matplotlib and scikit-learn takes 0.7 s (measured: the time from
    the last line printed to the process's end, 0.75 s vs 0.03 s this way) -- 13% of the default
    ``actlab compare``. The ``atexit`` functions (trackers, logging, Ray) still run and stdout /
    stderr are flushed. Only when no user module was imported (``--model``, ``--objective``, a
    ``file.py:function`` activation: its open files are flushed by the ordinary exit) and no
    other non-daemon thread runs (the ordinary exit would wait for it).
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if usercode.imported or others:
        return
    atexit._run_exitfuncs()
    _end_process(code)


def _exit_past_stuck_threads(code: int) -> None:
    """Exit now if a training thread is still running: one stuck in the user's code (an endless
    loop) after Ctrl-C cannot be stopped, and the interpreter would wait for it at exit for ever
    (``actlab.compare.training.loop._stopped``). Everything the run saved is committed by then."""
    stuck = [t for t in threading.enumerate() if t.name.startswith("actlab-train") and t.is_alive()]
    if not stuck:
        return
    print(
        "actlab: note: the user code in a training thread did not stop; exiting without it",
        file=sys.stderr,
    )
    _end_process(code)


def _end_process(code: int) -> None:
    """stdout and stderr flushed, then the process ends at once with ``code`` (``os._exit``: no
    teardown, no waiting for other threads)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`actlab ... | head`)
            stream.flush()
    os._exit(code)
