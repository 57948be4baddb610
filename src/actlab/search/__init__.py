"""``actlab search``: discover an activation for the data, then prove it with the fair study.

>>> from actlab import search
>>> res = search.run("digits", budget="10m", out="runs/s")  # doctest: +SKIP
>>> res.headline, [f["formula"] for f in res.finalists]  # doctest: +SKIP

The parts, one module each: the expression grammar and search space (:mod:`~.expr`), the
primitives in PyTorch and the stacked evaluator (:mod:`~.primitives`), screening at initialisation
(:mod:`~.screen`), racing by successive halving (:mod:`~.race`), confirmation through
``actlab.compare`` (:mod:`~.confirm`), finalist files (:mod:`~.found`), the run and its SQLite
state (:mod:`~.runner`, :mod:`~.state`), the report (:mod:`~.report`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(dataset: str | None = None, **kwargs: Any) -> Any:
    """:func:`actlab.search.runner.run` (imported on use: torch is not needed to import this)."""
    from actlab.search.runner import run as _run

    return _run(dataset, **kwargs)
