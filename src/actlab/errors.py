"""Errors a user can cause; the CLI turns each ActlabError into one line and exit code 2."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class ActlabError(ValueError):
    """A mistake in what the user asked for (bad name, bad parameter, bad file...)."""


class UnknownActivationError(ActlabError, KeyError):
    """An activation name that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@contextmanager
def writing(path: object, hint: str = "choose a place you may write to") -> Iterator[None]:
    """Write to ``path`` inside the block; a failure becomes one line: the path, the OS reason
    (read-only, no space...) and ``hint``, the fix."""
    try:
        yield
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise ActlabError(f"cannot write '{path}': {reason}; {hint}") from None


def output_path(
    path: str | Path,
    allowed_suffixes: Iterable[str],
    force: bool = False,
    *,
    force_hint: str = "--force",
) -> Path:
    """Check a user-given output file path before any work is done (CLI and ``plot.save``).

    The folder must exist, the suffix must be one of ``allowed_suffixes`` and an existing file is
    only replaced with ``force`` (nothing a user made is overwritten silently).
    """
    p = Path(path).expanduser()
    allowed = [s.lower() for s in allowed_suffixes]
    if p.suffix.lower() not in allowed:
        raise ActlabError(
            f"cannot write '{p}': unknown file type '{p.suffix or '(none)'}'; "
            f"use one of {', '.join(allowed)}, e.g. {p.stem or 'out'}{allowed[0]}"
        )
    if not p.parent.is_dir():
        raise ActlabError(
            f"cannot write '{p}': folder '{p.parent}' does not exist; create it first "
            f"(mkdir -p {p.parent})"
        )
    if p.is_dir():
        raise ActlabError(f"cannot write '{p}': it is a folder; give a file name")
    if p.exists() and not force:
        raise ActlabError(f"'{p}' already exists; pass {force_hint} to overwrite it")
    return p


def suggest(word: str, choices: Iterable[str], n: int = 3) -> str:
    """'; did you mean 'relu'?' style hint, or '' when nothing is close."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


def check_number(name: str, value: Any, low: float, high: float, *, integer: str = "") -> Any:
    """``value`` if it is a number in [low, high] (NaN is not), else 'NAME must be a number from
    LOW to HIGH, got VALUE'. ``integer="strict"``: an int only; ``"json"``: whole floats too."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value <= high
    if not integer:
        if ok:
            return float(value)
        raise ActlabError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    kind_ok = integer == "json" or isinstance(value, numbers.Integral)
    if ok and kind_ok and float(value).is_integer():
        return int(value)
    raise ActlabError(f"{name} must be an integer from {low} to {high}, got {value!r}")
