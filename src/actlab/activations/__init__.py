"""The built-in activations, one family per module: each holds its members' NumPy maths and
definitions; their prose is ``prose.json``, whose order is the catalog's. Adding a built-in = one
family module + its prose + its tests. torch is never imported here (fast paths get ``aten``)."""

from __future__ import annotations

from actlab.activations import (
    exponential,
    gaussian,
    learnable,
    linear,
    probability,
    rectifiers,
    sigmoidal,
    smooth,
)
from actlab.activations._prose import PROSE
from actlab.spec import ActivationSpec

FAMILIES = (linear, sigmoidal, rectifiers, exponential, gaussian, smooth, learnable, probability)
_DEFINED = {s.name: s for family in FAMILIES for s in family.SPECS}
BUILTINS: tuple[ActivationSpec, ...] = tuple(_DEFINED[name] for name in PROSE)
assert len(BUILTINS) == len(_DEFINED), "every built-in needs its prose in prose.json"
