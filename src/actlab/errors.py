"""Errors a user can cause; the CLI turns each ActlabError into one line and exit code 2."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any


class ActlabError(ValueError):
    """A mistake in what the user asked for (bad name, bad parameter, bad file...)."""


class UnknownActivationError(ActlabError, KeyError):
    """An activation name that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def cannot_write(
    path: object, err: OSError, hint: str = "choose a place you may write to"
) -> ActlabError:
    """One line for a failed write: the path, the OS reason (read-only, no space...) and a fix."""
    reason = err.strerror or str(err) or type(err).__name__
    return ActlabError(f"cannot write '{path}': {reason}; {hint}")


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
