"""The built-ins' prose (pros, cons, uses, references, plot titles EN/RU) from ``prose.json``."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

from actlab.spec import ActivationSpec, PlotDefaults

# name -> its prose, in catalog order (the order of ``BUILTINS``)
PROSE: dict[str, dict[str, Any]] = json.loads(
    resources.files("actlab.activations").joinpath("prose.json").read_text("utf-8")
)
_TUPLES = ("pros", "cons", "use", "disagreements")


def define(*, name: str, plot: PlotDefaults | None = None, **fields: Any) -> ActivationSpec:
    """An :class:`ActivationSpec` from its code and maths (``fields``) and its prose."""
    text = {k: tuple(v) if k in _TUPLES else v for k, v in PROSE[name].items()}
    titles = {k: text.pop(k) for k in ("title", "ylabel") if k in text}
    plot = dataclasses.replace(plot or PlotDefaults(), **titles)
    return ActivationSpec(name=name, plot=plot, **fields, **text)
