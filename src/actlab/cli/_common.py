"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console

from actlab.catalog import split_specs
from actlab.errors import output_path

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
