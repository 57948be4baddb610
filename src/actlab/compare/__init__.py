"""Compare activations honestly: a grid of activations x factor values x seeds, a fair study.

>>> from actlab import compare
>>> res = compare.run("iris", activations=["relu", "tanh"], seeds=3, epochs=5)  # doctest: +SKIP
>>> res = compare.run("spirals", lr=[1e-3, 1e-2], depth=[2, 8])  # a grid  # doctest: +SKIP
>>> res.headline, res.winner  # doctest: +SKIP
>>> res.rows()[0]  # one tidy row per model and epoch  # doctest: +SKIP

``run`` trains (through :mod:`actlab.compare.engine`; models that share every factor value train in
one batched call, a :class:`Group`), stores every epoch in ``DIR/results.sqlite`` as it is
produced, selects each activation's tuned factors on validation data, scores the chosen settings on
the held-out test part (:mod:`~actlab.compare.analysis`, :mod:`~actlab.compare.stats`) and writes
``DIR/report.md`` and ``DIR/report.html``. ``load(DIR)`` gives the same results object back from the
store alone. The settings are declared once, in :mod:`actlab.compare.config`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from actlab.compare.config import DEFAULT_ACTIVATIONS, FACTORS, INITS, OPTIMIZERS, CompareConfig

if TYPE_CHECKING:
    from actlab.compare.planning import Group
    from actlab.compare.results import Results, load
    from actlab.compare.running import GroupRun, run

__all__ = [
    "DEFAULT_ACTIVATIONS", "FACTORS", "INITS", "OPTIMIZERS", "CompareConfig", "Group", "GroupRun",
    "Results", "load", "run",
]  # fmt: skip

# The stages import torch and scipy, and importing actlab.compare.config (the CLI's parsers) runs
# this file first: they load on first use, so that `actlab --help` stays light (test_startup).
_STAGES = {
    "planning": ("Group", "groups", "_dataset", "_shape", "_splits"),
    "results": ("Results", "load"),
    "running": ("GroupRun", "resolve", "run", "train_groups", "_storage_failed"),
}
_WHERE = {name: stage for stage, names in _STAGES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'actlab.compare' has no attribute {name!r}")
    return getattr(importlib.import_module(f"actlab.compare.{_WHERE[name]}"), name)
