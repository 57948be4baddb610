"""PyTorch adapter: catalog specs <-> ``nn.Module`` activations.

``build`` returns PyTorch's own module wherever one exists (nn.ELU, nn.GELU(approximate=...), ...),
so models built here look and run like hand-written ones; only Swish with beta != 1 or a
learnable beta needs a module of ours. ``identify`` maps a module (native, ours, or a user subclass
of either) back to its catalog spec, and ``swap`` replaces activations throughout a model in place.

>>> from actlab.torch import build, swap
>>> build("elu:alpha=0.5")
ELU(alpha=0.5)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from actlab.catalog import Activation, get, parse
from actlab.errors import ActlabError

__all__ = [
    "ACTIVATION_TYPES",
    "Swish",
    "build",
    "catalog_name",
    "identify",
    "is_activation",
    "swap",
]


class Swish(nn.Module):
    """Swish with a fixed or learnable beta: y = x * sigmoid(beta * x) (nn.SiLU is beta=1).

    With ``learnable=True`` beta is a scalar ``nn.Parameter``; otherwise a plain float, so the
    module has no state and preserves the input's dtype.
    """

    def __init__(self, beta: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        self.learnable = bool(learnable)
        if self.learnable:
            self.beta: Any = nn.Parameter(torch.tensor(float(beta)))
        else:
            self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self) -> str:
        beta = float(self.beta.detach()) if self.learnable else self.beta
        return f"beta={beta:g}, learnable={self.learnable}"


def _prelu(p: Mapping[str, Any]) -> nn.Module:
    return nn.PReLU(num_parameters=int(p["num_parameters"]), init=float(p["init"]))


def _silu(p: Mapping[str, Any]) -> nn.Module:
    beta, learnable = float(p.get("beta", 1.0)), bool(p.get("learnable", False))
    return Swish(beta, learnable) if learnable or beta != 1.0 else nn.SiLU()


# catalog name -> factory from the Activation's full parameter dict
_BUILDERS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "identity": lambda p: nn.Identity(),
    "sigmoid": lambda p: nn.Sigmoid(),
    "tanh": lambda p: nn.Tanh(),
    "relu": lambda p: nn.ReLU(),
    "leaky_relu": lambda p: nn.LeakyReLU(negative_slope=float(p["negative_slope"])),
    "prelu": _prelu,
    "elu": lambda p: nn.ELU(alpha=float(p["alpha"])),
    "selu": lambda p: nn.SELU(),
    "celu": lambda p: nn.CELU(alpha=float(p["alpha"])),
    "gelu": lambda p: nn.GELU(approximate=str(p["approximate"])),
    "silu": _silu,
    "mish": lambda p: nn.Mish(),
    "softplus": lambda p: nn.Softplus(beta=float(p["beta"]), threshold=float(p["threshold"])),
    "softsign": lambda p: nn.Softsign(),
    "relu6": lambda p: nn.ReLU6(),
    "hard_sigmoid": lambda p: nn.Hardsigmoid(),
    "hard_swish": lambda p: nn.Hardswish(),
    "softmax": lambda p: nn.Softmax(dim=int(p["axis"])),
    "log_softmax": lambda p: nn.LogSoftmax(dim=int(p["axis"])),
}


def _prelu_params(m: nn.PReLU) -> dict[str, Any]:
    # nn.PReLU remembers its initial slope in .init; the learned slopes live in .weight
    init = getattr(m, "init", None)
    if init is None:
        init = float(m.weight.detach().mean())
    return {"num_parameters": int(m.num_parameters), "init": float(init)}


def _swish_params(m: Swish) -> dict[str, Any]:
    beta = float(m.beta.detach()) if isinstance(m.beta, torch.Tensor) else float(m.beta)
    return {"beta": beta, "learnable": bool(m.learnable)}


def _axis(m: nn.Module) -> dict[str, Any]:
    # dim=None is PyTorch's deprecated implicit choice; we report the catalog default (last axis)
    return {"axis": -1 if m.dim is None else int(m.dim)}


def _none(m: nn.Module) -> dict[str, Any]:
    return {}


# module type -> (catalog name, parameters read from an instance). Ours first: the first type a
# module is an instance of decides, so user subclasses map to their base's entry.
_IDENTIFY: tuple[tuple[type[nn.Module], str, Callable[[Any], dict[str, Any]]], ...] = (
    (Swish, "silu", _swish_params),
    (nn.Identity, "identity", _none),
    (nn.Sigmoid, "sigmoid", _none),
    (nn.Tanh, "tanh", _none),
    (nn.ReLU, "relu", _none),
    (nn.LeakyReLU, "leaky_relu", lambda m: {"negative_slope": float(m.negative_slope)}),
    (nn.PReLU, "prelu", _prelu_params),
    (nn.ELU, "elu", lambda m: {"alpha": float(m.alpha)}),
    (nn.SELU, "selu", _none),
    (nn.CELU, "celu", lambda m: {"alpha": float(m.alpha)}),
    (nn.GELU, "gelu", lambda m: {"approximate": str(m.approximate)}),
    (nn.SiLU, "silu", _none),
    (nn.Mish, "mish", _none),
    (nn.Softplus, "softplus", lambda m: {"beta": float(m.beta), "threshold": float(m.threshold)}),
    (nn.Softsign, "softsign", _none),
    (nn.ReLU6, "relu6", _none),
    (nn.Hardsigmoid, "hard_sigmoid", _none),
    (nn.Hardswish, "hard_swish", _none),
    (nn.Softmax, "softmax", _axis),
    (nn.LogSoftmax, "log_softmax", _axis),
)

#: every module type ``identify`` recognises (use with ``isinstance``, e.g. to hook activations)
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = tuple(t for t, _, _ in _IDENTIFY)


def build(spec: str | Activation) -> nn.Module:
    """A fresh ``nn.Module`` for a catalog spec; PyTorch's native module wherever one exists."""
    act = parse(spec)
    maker = _BUILDERS.get(act.name)
    if maker is None:  # a catalog entry this adapter does not know yet
        raise ActlabError(
            f"build: the PyTorch adapter has no module for '{act.name}'; "
            f"supported: {', '.join(sorted(_BUILDERS))}"
        )
    return maker(act.params)


def _match(module: nn.Module) -> tuple[str, Callable[[Any], dict[str, Any]]] | None:
    for cls, name, read in _IDENTIFY:
        if isinstance(module, cls):
            return name, read
    return None


def is_activation(module: nn.Module) -> bool:
    """True when ``module`` is one of the catalog's activation types (or a subclass of one)."""
    return _match(module) is not None


def catalog_name(module: nn.Module) -> str | None:
    """The catalog name of an activation module ('relu', 'silu', ...) or None; no parameters."""
    found = _match(module)
    return None if found is None else found[0]


def identify(module: nn.Module) -> Activation | None:
    """The catalog Activation (with its parameters) an activation module computes, or None.

    For PReLU the spec gives the *initial* slope (``init``); the learned ones are ``module.weight``.
    A parameter outside the catalog's allowed range raises ``ActlabError`` naming the module.
    """
    found = _match(module)
    if found is None:
        return None
    name, read = found
    try:
        return parse(name, **read(module))
    except ActlabError as err:
        raise ActlabError(f"identify: {module!r} is a {name} the catalog rejects: {err}") from None


def _names(only: str | Iterable[str] | None) -> set[str] | None:
    if only is None:
        return None
    items = [only] if isinstance(only, str) else list(only)
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ActlabError(
                f"swap: only= takes activation names such as ('relu', 'leaky_relu'); got {item!r}"
            )
        for part in item.split(","):
            if part.strip():
                names.add(get(part.strip()).name)
    if not names:
        raise ActlabError(
            "swap: only= is empty; pass activation names such as ('relu',), or None for all"
        )
    return names


def swap(
    model: nn.Module, to: str | Activation = "silu", only: str | Iterable[str] | None = None
) -> int:
    """Replace activation modules throughout ``model`` in place; return how many were replaced.

    ``only`` restricts the swap to these catalog names (aliases and comma-separated lists are fine);
    ``None`` replaces every activation. Each replaced position gets a fresh module from
    ``build(to)`` (also where one module object was shared), on the device and dtype of the model's
    parameters. Activations called functionally (``F.relu`` inside ``forward``) are not modules and
    cannot be swapped.
    """
    act = parse(to)
    build(act)  # fail on an unsupported target before touching the model
    wanted = _names(only)
    if not isinstance(model, nn.Module):
        raise ActlabError(f"swap: model must be a torch.nn.Module, got {type(model).__name__}")
    if is_activation(model):
        raise ActlabError(
            f"swap: the model itself is an activation ({model!r}) and cannot be replaced in place; "
            "use actlab.torch.build(to) instead"
        )
    # parent._modules, not named_children(): that skips a module registered twice under two names
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent._modules.items()
        if child is not None
        and (found := catalog_name(child)) is not None
        and (wanted is None or found in wanted)
    ]
    ref = next((p for p in model.parameters() if p.is_floating_point()), None)
    for parent, name, old in targets:
        new = build(act)
        if ref is not None:
            new.to(device=ref.device, dtype=ref.dtype)
        new.train(old.training)
        setattr(parent, name, new)
    return len(targets)
