"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console

from actlab.catalog import split_specs
from actlab.errors import ActlabError

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
    """Print strict JSON on stdout (not through rich, so it stays machine-readable)."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def output_path(path: str | Path, allowed_suffixes: Iterable[str], force: bool = False) -> Path:
    """Check a user-given output file path before any work is done.

    The folder must exist, the suffix must be one of ``allowed_suffixes`` and an existing file is
    only replaced with ``force`` (nothing a user made is overwritten silently).
    """
    p = Path(path).expanduser()
    allowed = [s.lower() for s in allowed_suffixes]
    if p.suffix.lower() not in allowed:
        raise ActlabError(
            f"cannot write '{p}': unknown file type '{p.suffix or '(none)'}'; "
            f"use one of {', '.join(allowed)}"
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ActlabError(
            f"cannot write '{p}': folder '{parent}' does not exist; create it first "
            f"(mkdir -p {parent})"
        )
    if p.is_dir():
        raise ActlabError(f"cannot write '{p}': it is a folder; give a file name")
    if p.exists() and not force:
        raise ActlabError(f"'{p}' already exists; pass --force to overwrite it")
    return p
