"""actlab: which activation function should this layer use, and why?

Parts (one module each): ``catalog`` (the registry of the definitions in ``activations``;
``register`` adds your own), ``kernels`` (stable NumPy kernels),
``layers`` (NumPy layers), ``actlab.torch`` (PyTorch adapter), ``plot``, ``advice``, ``compare``
(the main job), ``diagnose``, and the ``actlab`` command line.
"""

from actlab.catalog import (
    Activation,
    ActivationSpec,
    get,
    names,
    parse,
    parse_many,
    register,
    unregister,
)
from actlab.errors import ActlabError, UnknownActivationError

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ActivationSpec",
    "ActlabError",
    "UnknownActivationError",
    "__version__",
    "get",
    "names",
    "parse",
    "parse_many",
    "register",
    "unregister",
]
