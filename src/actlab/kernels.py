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
from actlab.activations.exponential import (
    SELU_ALPHA,
    SELU_SCALE,
    celu,
    celu_derivative,
    elu,
    elu_derivative,
    selu,
    selu_derivative,
)
from actlab.activations.gaussian import gelu, gelu_derivative
from actlab.activations.learnable import (  # noqa: F401  (search's report draws _rational64)
    RATIONAL_FITS,
    _rational64,
    rational,
    rational_coefficients,
    rational_derivative,
)
from actlab.activations.linear import identity, identity_derivative
from actlab.activations.probability import log_softmax, log_softmax_vjp, softmax, softmax_vjp
from actlab.activations.rectifiers import (
    leaky_relu,
    leaky_relu_derivative,
    prelu,
    prelu_derivative,
    prelu_weight_derivative,
    relu,
    relu6,
    relu6_derivative,
    relu_derivative,
)
from actlab.activations.sigmoidal import (
    hard_sigmoid,
    hard_sigmoid_derivative,
    hard_tanh,
    hard_tanh_derivative,
    sigmoid,
    sigmoid_derivative,
    softsign,
    softsign_derivative,
    tanh,
    tanh_derivative,
)
from actlab.activations.smooth import (
    hard_swish,
    hard_swish_derivative,
    mish,
    mish_derivative,
    silu,
    silu_derivative,
    softplus,
    softplus_derivative,
)

__all__ = [
    "RATIONAL_FITS",
    "SELU_ALPHA",
    "SELU_SCALE",
    "KernelDTypeError",
    "celu",
    "celu_derivative",
    "elu",
    "elu_derivative",
    "gelu",
    "gelu_derivative",
    "get_num_threads",
    "hard_sigmoid",
    "hard_sigmoid_derivative",
    "hard_swish",
    "hard_swish_derivative",
    "hard_tanh",
    "hard_tanh_derivative",
    "identity",
    "identity_derivative",
    "leaky_relu",
    "leaky_relu_derivative",
    "log_softmax",
    "log_softmax_vjp",
    "mish",
    "mish_derivative",
    "prelu",
    "prelu_derivative",
    "prelu_weight_derivative",
    "rational",
    "rational_coefficients",
    "rational_derivative",
    "relu",
    "relu6",
    "relu6_derivative",
    "relu_derivative",
    "selu",
    "selu_derivative",
    "set_num_threads",
    "sigmoid",
    "sigmoid_derivative",
    "silu",
    "silu_derivative",
    "softmax",
    "softmax_vjp",
    "softplus",
    "softplus_derivative",
    "softsign",
    "softsign_derivative",
    "tanh",
    "tanh_derivative",
]
