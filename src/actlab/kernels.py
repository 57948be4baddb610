"""Numerically stable NumPy kernels: every activation's forward pass and derivative.

The maths lives with each family's definitions in :mod:`actlab.activations` (``sigmoidal``,
``rectifiers``, ``exponential``, ``gaussian``, ``smooth``, ``learnable``, ``probability``); this
module is its public face, one short function per activation (formula in its docstring).
``actlab.catalog.forward(spec, x)`` and ``parse(spec).forward(x)`` dispatch on a spec string.

Rules every kernel follows (the tests check each one; the machinery is
``actlab.activations._route``):

* dtype: float16/32/64 in -> same dtype out (float16 is computed in float32 inside); integer and
  bool inputs are promoted to float64; anything else raises :class:`KernelDTypeError`
  (a ``TypeError``). Python scalars and 0-d arrays give a NumPy scalar back, like a ufunc.
* Stability: no overflow, no ``inf - inf`` and no ``0 * inf`` is ever evaluated, so no NumPy
  warning is raised for any input. Exponentials are taken of clamped arguments; the few inputs
  beyond the clamp (the far tails) are recomputed on a slow path in a form that stays accurate
  (log space, or float64 for float32 data).
* ±inf gives the mathematical limit; NaN propagates, in forward *and* derivative (the
  derivative at NaN is NaN, even where PyTorch's autograd returns 0 or 1).
* Kinks follow PyTorch's autograd; each function's docstring states its convention.

Speed: an elementwise kernel is a chain of in-place ufuncs. Large arrays are cut into blocks of
``_BLOCK`` elements so that the whole chain runs in cache, and the blocks are shared among a
small thread pool (ufuncs release the GIL; the runner is :mod:`actlab._blocks`). Arrays below
``_PARALLEL_MIN`` elements never touch the pool. ``set_num_threads`` changes the pool size
(``ACTLAB_NUM_THREADS`` sets the default).
"""

from __future__ import annotations

from actlab._blocks import BLOCK, PARALLEL_MIN, get_num_threads, set_num_threads  # noqa: F401
from actlab.activations import FAMILIES
from actlab.activations._route import (  # noqa: F401  (read by tests and benchmarks)
    _BLOCK,
    _COMPILED_MIN,
    _OFF,
    _PARALLEL_MIN,
    _TORCH_SIGMOID_TAIL,
    Kernel,
    KernelDTypeError,
    _torch_module,
    _via_torch,
    _ViaCompiled,
)

# each family's public maths (its __all__): a new built-in's kernels appear here without an edit
from actlab.activations.exponential import *  # noqa: F403
from actlab.activations.gaussian import *  # noqa: F403
from actlab.activations.learnable import *  # noqa: F403
from actlab.activations.learnable import _rational64  # noqa: F401  (search's report draws it)
from actlab.activations.linear import *  # noqa: F403
from actlab.activations.probability import *  # noqa: F403
from actlab.activations.rectifiers import *  # noqa: F403
from actlab.activations.sigmoidal import *  # noqa: F403
from actlab.activations.smooth import *  # noqa: F403

__all__ = [
    "KernelDTypeError",
    "get_num_threads",
    "set_num_threads",
    *(name for family in FAMILIES for name in family.__all__),
]
