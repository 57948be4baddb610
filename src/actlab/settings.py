"""A setting declared once (``Setting``: kind, bounds, label, scale) and the one check of values."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from actlab.errors import ActlabError, read_number, suggest


@dataclass(frozen=True)
class Setting:
    """Field metadata: everything the CLI, validation, store and report need to know (the
    model is scikit-learn's ``_parameter_constraints``: constraints beside the parameter)."""

    help: str
    kind: str  # int, float, choice, model (module:function), str, bool, specs, names, params
    low: float | None = None
    high: float | None = None  # exclusive
    open_low: bool = False  # low itself is not allowed
    choices: tuple[str, ...] | None = None
    listable: bool = False  # one value or a list: a factor of the grid
    metavar: str | None = None
    flag: str | None = None  # default: --field-name
    cli: bool = True  # False: Python only (not an option of `actlab compare`)
    label: str | None = None  # in reports (default: the name, "batch_size" -> "batch size")
    scale: str = "linear"  # "log": a factor whose values are spread on a log axis
    read: Callable[[str, Any], Any] | None = None  # kind "params": its own reader

    def bound(self) -> str:
        if self.low is None:
            return ""
        text = f"{'>' if self.open_low else '>='} {self.low:g}"
        return text + (f" and < {self.high:g}" if self.high is not None else "")


def setting(default: Any = None, base: Setting | None = None, **meta: Any) -> Any:
    """A dataclass field carrying a :class:`Setting` (``base`` with ``meta`` replaced)."""
    s = Setting(**meta) if base is None else replace(base, **meta)
    return field(default=default, metadata={"setting": s})


def flag(name: str, s: Setting) -> str:
    return s.flag or "--" + name.replace("_", "-")


def label(name: str, s: Setting | None) -> str:
    """How reports name a setting: its label, else its name in words ("batch size")."""
    return name if s is None else s.label or name.replace("_", " ")


# the training settings that compare, diagnose and explore share, each consumer with its own
# bounds, defaults and help (dataclasses.replace); `name` in messages is the Python name
DEPTH = Setting("hidden layers", "int", low=1, metavar="N")
WIDTH = Setting("units per hidden layer", "int", low=1, metavar="N")
EPOCHS = Setting("training epochs", "int", low=1, metavar="N")
BATCH_SIZE = Setting("batch size", "int", low=1, scale="log", metavar="N")
LR = Setting("learning rate", "float", low=0.0, open_low=True, label="learning rate",
             scale="log", metavar="X")  # fmt: skip
WEIGHT_DECAY = Setting("weight decay", "float", low=0.0, scale="log", metavar="X")
# diagnose's demos (actlab.diagnose.demos and its CLI): the same settings with the demos' bounds
DEMO = {
    "depth": replace(DEPTH, high=101, help="hidden layers (default 10 / 4)"),
    "width": replace(WIDTH, high=4097, help="units per hidden layer (default 64)"),
    "epochs": replace(EPOCHS, low=0, high=1001, help="training epochs (default 3 / 5)"),
    "batch_size": replace(BATCH_SIZE, high=1_000_001, help="batch size (default 64)"),
    "lr": replace(LR, open_low=False, high=100.0,
                  help="learning rate (default 1e-3; dying-relu 0.05), Adam"),
}  # fmt: skip



def _whole(name: str, value: Any, s: Setting) -> int:
    if isinstance(value, str):  # the one number grammar (errors.read_number): '1_0' is not 10
        with contextlib.suppress(ValueError):
            value = read_number(value, integer=True)
    low = int(s.low or 0)
    high = None if s.high is None else int(s.high)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value >= high)
    ):
        top = f" and < {high}" if high is not None else ""
        raise ActlabError(f"{name} must be a whole number >= {low}{top}, got {value!r}")
    return int(value)


def _number(name: str, value: Any, s: Setting) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
            raise ValueError  # True is not 1.0; [1e-3] inside a list is not a number
        x = read_number(value, special=True) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ActlabError(f"{name} must be a number, got {value!r}") from None
    low = -math.inf if s.low is None else s.low
    high = math.inf if s.high is None else s.high
    if not (math.isfinite(x) and (x > low if s.open_low else x >= low) and x < high):
        raise ActlabError(f"{name} must be a finite number {s.bound()}, got {value}")
    return x


def _model_ref(name: str, value: Any, s: Setting) -> str:
    """``module:function`` (or ``path/to/file.py:function``), stripped."""
    module, _, func = str(value).partition(":")
    if not isinstance(value, str) or not module or not func or ":" in func:
        raise ActlabError(
            f"{name} must look like 'module:function' (e.g. 'mynets:build'), got {value!r}"
        )
    return f"{module.strip()}:{func.strip()}"


def _choice(name: str, value: Any, s: Setting) -> str:
    v = str(value).strip().lower()
    assert s.choices is not None
    if v not in s.choices:
        raise ActlabError(
            f"{name} must be one of {', '.join(s.choices)}, got {value!r}" + suggest(v, s.choices)
        )
    return v


_SCALAR: dict[str, Callable[[str, Any, Setting], Any]] = {
    "int": _whole,
    "float": _number,
    "choice": _choice,
    "model": _model_ref,
    "str": lambda name, value, s: str(value),
    "bool": lambda name, value, s: bool(value),
}


def items(value: Any, name: str = "value") -> list[Any]:
    """One value, a flat list/tuple, or a comma-separated string -> a list of values.

    A list inside the list (``lr=[[1e-3]]``) or bytes are refused, not flattened or dropped."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (bytes, bytearray, Mapping)):
        raise ActlabError(f"{name} takes one value or a list of values, got {value!r}")
    if not isinstance(value, Iterable):
        return [value]
    out: list[Any] = []
    for item in value:
        if isinstance(item, str):
            out += items(item, name)
        elif isinstance(item, (Iterable, bytes)):
            raise ActlabError(
                f"{name} takes one value or a flat list of values, got {value!r}; e.g. "
                f"{name}=[1, 2]"
            )
        else:
            out.append(item)
    return out


def check(name: str, value: Any, s: Setting) -> Any:
    """Validate and normalise one setting's value (``None`` stays ``None`` = not set)."""
    if value is None:
        return None
    check = _SCALAR.get(s.kind)
    if s.listable:
        values = items(value, name)
        if not values:
            raise ActlabError(f"{name} needs at least one value, got {value!r}")
        out = tuple(check(name, v, s) for v in values)  # type: ignore[misc]
        twice = sorted({v for v in out if out.count(v) > 1})
        if twice:
            raise ActlabError(
                f"{name}: {', '.join(map(str, twice))} listed twice; give each value once"
            )
        return out
    if s.kind == "names":
        return tuple(str(v) for v in items(value, name))
    if s.kind == "specs":
        return value
    if s.read is not None:
        return s.read(name, value)
    assert check is not None
    return check(name, value, s)


def validate(obj: Any) -> None:
    """Check and normalise every declared field of the dataclass ``obj`` (in place)."""
    for f in fields(obj):
        s = f.metadata.get("setting")
        if s is not None:
            object.__setattr__(obj, f.name, check(f.name, getattr(obj, f.name), s))

