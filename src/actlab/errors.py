"""Errors a user can cause; the CLI turns each ActlabError into one line and exit code 2."""

from __future__ import annotations

import difflib
import math
import numbers
import re
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


# ------------------------------------------------------------------------------------ numbers
# One grammar for every number a person types (spec parameters, CLI options and lists, eval's x,
# the Python API's strings): ASCII digits with an optional sign, decimal point and exponent.
# Python's float()/int() also take '1_0' (= 10), full-width and Arabic-Indic digits and
# surrounding whitespace, which turned typos into other values; isdigit() takes '²'.
NUMBER_GRAMMAR = "a number written with digits 0-9, e.g. 2, -0.5, 1e-3"
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_MAX_NUMBER_CHARS = 100  # int('9' * 5000) is refused by Python itself; nothing real is longer


def read_number(text: str, *, integer: bool = False, special: bool = False) -> float | int:
    """``text`` read by the one number grammar (:data:`NUMBER_GRAMMAR`); ``ValueError`` otherwise.

    ``integer``: a whole number (``3``, ``3.0``, ``1e3``), returned as ``int``; ``special``:
    ``inf``, ``-inf`` and ``nan`` are numbers too. Surrounding spaces are allowed.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a string: {text!r}")
    t = text.strip()
    if len(t) > _MAX_NUMBER_CHARS:
        raise ValueError(f"{len(t)} characters is too long for a number")
    if special and not integer and _SPECIAL.fullmatch(t):
        return float(t)
    if not NUMBER_RE.fullmatch(t):
        raise ValueError(f"not a number: {text!r}")
    if integer:
        if t.lstrip("+-").isdigit():  # exact, whatever its size (isdigit: ASCII, checked above)
            return int(t)
        x = float(t)
        if not (math.isfinite(x) and x.is_integer()):
            raise ValueError(f"not a whole number: {text!r}")
        return int(x)
    return float(t)


def number_arg(*, integer: bool = False, special: bool = False) -> Any:
    """An argparse ``type=`` that reads one number by :func:`read_number` (argparse's message)."""
    import argparse

    def parse(text: str) -> float | int:
        try:
            return read_number(text, integer=integer, special=special)
        except ValueError:
            what = "a whole number" if integer else NUMBER_GRAMMAR
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = "integer" if integer else "number"
    return parse


whole_arg = number_arg(integer=True)  # argparse types: the one grammar on the command line
real_arg = number_arg()
