"""Diagnose: vanishing/exploding gradients, dead and saturated units in any PyTorch model.

>>> with Monitor(model) as mon:                     # doctest: +SKIP
...     for xb, yb in batches:
...         loss_fn(model(xb), yb).backward()
>>> report = mon.report()                           # doctest: +SKIP

Three parts: :mod:`~actlab.diagnose.monitor` (the hooks and their running counts),
:mod:`~actlab.diagnose.report` (records and verdicts against the thresholds, plain data),
:mod:`~actlab.diagnose.demos` (the vanishing and dying-ReLU demonstrations, the user's model) and
:mod:`~actlab.diagnose.display` (showing them: ``render(result)``, ``figures(result)``).
Unit health itself (dead, saturated) is :mod:`actlab.health`, shared with compare.
"""

from typing import Any

from actlab.diagnose.demos import (
    INITS,
    DyingDemo,
    VanishingDemo,
    VanishingRun,
    demo_dying,
    demo_vanishing,
    diagnose_model,
    load_model,
)
from actlab.diagnose.monitor import BINS, FUNCTIONAL_NOTE, HISTORY, WEIGHT_TYPES, Monitor
from actlab.diagnose.report import (
    ADVICE,
    ADVICE_RULES,
    DEAD,
    EXPLODING,
    SATURATED,
    THRESHOLDS,
    VANISHING,
    ActivationLayer,
    Report,
    Verdict,
    WeightLayer,
    weight_label,
)
from actlab.health import MAJORITY, SATURATION, measures_saturation, unit_health

__all__ = [
    "ADVICE",
    "ADVICE_RULES",
    "BINS",
    "DEAD",
    "EXPLODING",
    "FUNCTIONAL_NOTE",
    "HISTORY",
    "INITS",
    "MAJORITY",
    "SATURATED",
    "SATURATION",
    "THRESHOLDS",
    "VANISHING",
    "WEIGHT_TYPES",
    "ActivationLayer",
    "DyingDemo",
    "Monitor",
    "Report",
    "VanishingDemo",
    "VanishingRun",
    "Verdict",
    "WeightLayer",
    "demo_dying",
    "demo_vanishing",
    "diagnose_model",
    "figures",
    "gradient_flow_figure",
    "histogram_figure",
    "load_model",
    "measures_saturation",
    "render",
    "unit_health",
    "weight_label",
]

def __getattr__(name: str) -> Any:  # the display's names on first use: no rich/matplotlib before
    if name in ("figures", "gradient_flow_figure", "histogram_figure", "render"):
        from actlab.diagnose import display

        return getattr(display, name)
    raise AttributeError(f"module 'actlab.diagnose' has no attribute {name!r}")
