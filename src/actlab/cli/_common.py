"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from actlab.catalog import split_specs
from actlab.errors import ActlabError, output_path

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

__all__ = ["console", "err_console", "output_path", "print_json", "split_specs", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become strings (strict JSON has no such numbers), numpy -> Python."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def print_json(obj: Any) -> None:
    """Print strict JSON on stdout (not through rich, so it stays machine-readable); a failed
    write (`> /dev/full`, a closed pipe's reader gone aside) is one line naming standard output."""
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as err:
        raise ActlabError(
            f"cannot write the JSON to standard output: {err.strerror or err}; redirect it to a "
            "place with space, e.g. > results.json"
        ) from None


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Inside the block, whatever writes to standard output (the user's code printing, a library)
    goes to standard error, so that the JSON printed after it stays the only thing on stdout.

    Both levels: ``sys.stdout`` (Python's print) and, where stdout is a real file, descriptor 1
    (C code, subprocesses)."""
    sys.stdout.flush()
    saved = None
    try:
        if sys.stdout.fileno() == 1:
            sys.stderr.flush()
            saved = os.dup(1)
            os.dup2(2, 1)
    except (OSError, ValueError, io.UnsupportedOperation):
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError):
                sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
