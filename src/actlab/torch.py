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

from actlab.catalog import SPECS, Activation, ActivationSpec, get, parse, specs
from actlab.errors import ActlabError
from actlab.kernels import rational_coefficients

__all__ = [
    "ACTIVATION_TYPES",
    "Swish",
    "UserActivation",
    "build",
    "catalog_name",
    "fast_path",
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


class UserActivation(nn.Module):
    """A user activation (``actlab.register`` or ``file.py:function``): y = fn(x, **params)."""

    def __init__(self, name: str, fn: Callable[..., torch.Tensor], params: Mapping[str, Any]):
        super().__init__()
        self.activation, self.fn, self.params = name, fn, dict(params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, **self.params)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.activation), *(f"{k}={v}" for k, v in self.params.items())])


class Rational(nn.Module):
    """Padé activation (PAU, Molina et al. 2020): y = P(x) / (1 + |Q(x)|), P of degree 5, Q of
    degree 4 without constant term, initialised to fit the built-in ``fit`` on [-3, 3]
    (:func:`actlab.kernels.rational_coefficients`); ``learnable=True``: the 10 coefficients are
    ``nn.Parameter``s (one set per module, i.e. per layer), else buffers."""

    def __init__(self, fit: str = "relu", learnable: bool = False) -> None:
        super().__init__()
        a, b = rational_coefficients(fit)
        self.fit, self.learnable = fit, bool(learnable)
        # float64 coefficients (cast to the input's dtype in forward): the NumPy kernel's, exactly
        ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        if self.learnable:
            self.a, self.b = nn.Parameter(ta), nn.Parameter(tb)
        else:
            self.register_buffer("a", ta)
            self.register_buffer("b", tb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a.to(x.dtype), self.b.to(x.dtype)
        p = a[5]
        for k in range(4, -1, -1):  # Horner
            p = p * x + a[k]
        q = b[3]
        for k in range(2, -1, -1):
            q = q * x + b[k]
        return p / (1 + torch.abs(q * x))

    def extra_repr(self) -> str:
        return f"fit={self.fit!r}, learnable={self.learnable}"


_OURS: dict[str, type[nn.Module]] = {"Swish": Swish, "UserActivation": UserActivation,
                                     "Rational": Rational}  # fmt: skip


def _resolve(cls: str) -> type[nn.Module]:
    return _OURS.get(cls) or getattr(nn, cls)


def _make(d: ActivationSpec, params: Mapping[str, Any]) -> nn.Module:
    assert d.torch is not None
    if d.torch.build is not None:
        return d.torch.build(_resolve, params)
    return _resolve(d.torch.cls)(**{kw: params[name] for kw, name in d.torch.args.items()})


def _read(d: ActivationSpec, module: nn.Module) -> dict[str, Any]:
    assert d.torch is not None
    if d.torch.read is not None:
        return d.torch.read(module)
    return {name: getattr(module, kw) for kw, name in d.torch.args.items()}


def _types() -> dict[type[nn.Module], ActivationSpec]:
    """Module type -> definition, for every built-in's classes (its own and ``also``)."""
    out: dict[type[nn.Module], ActivationSpec] = {}
    for d in SPECS:
        if d.torch is not None:
            for cls in (d.torch.cls, *d.torch.also):
                out[_resolve(cls)] = d
    return out


_TYPES = _types()
#: every module type ``identify`` recognises (use with ``isinstance``, e.g. to hook activations)
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (*_TYPES, UserActivation)


def build(spec: str | Activation) -> nn.Module:
    """A fresh ``nn.Module`` for a catalog spec; PyTorch's native module wherever one exists."""
    act = parse(spec)
    if act.spec.torch is None:  # a definition without a PyTorch side
        raise ActlabError(
            f"build: the PyTorch adapter has no module for '{act.name}'; "
            f"supported: {', '.join(sorted(d.name for d in specs() if d.torch is not None))}"
        )
    return _make(act.spec, act.params)


def _match(module: nn.Module) -> ActivationSpec | None:
    # the most derived class decides (nn.ReLU6 is an nn.Hardtanh), so user subclasses map to
    # their base's entry
    if isinstance(module, UserActivation):
        return get(module.activation)
    return next((_TYPES[c] for c in type(module).__mro__ if c in _TYPES), None)


def is_activation(module: nn.Module) -> bool:
    """True when ``module`` is one of the catalog's activation types (or a subclass of one)."""
    return _match(module) is not None


def catalog_name(module: nn.Module) -> str | None:
    """The catalog name of an activation module ('relu', 'silu', ...) or None; no parameters."""
    found = _match(module)
    return None if found is None else found.name


def identify(module: nn.Module) -> Activation | None:
    """The catalog Activation (with its parameters) an activation module computes, or None.

    For PReLU the spec gives the *initial* slope (``init``); the learned ones are ``module.weight``.
    A parameter outside the catalog's allowed range raises ``ActlabError`` naming the module.
    """
    found = _match(module)
    if found is None:
        return None
    try:
        return parse(found, **_read(found, module))
    except ActlabError as err:
        raise ActlabError(
            f"identify: {module!r} is a {found.name} the catalog rejects: {err}"
        ) from None


def fast_path(module: nn.Module) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The definition's ATen kernels behind a native activation module (see
    :mod:`actlab.activations`), or None: only a module of exactly the definition's class has one
    (a subclass may override ``forward``; Swish and user activations go through autograd)."""
    d = _TYPES.get(type(module))
    if d is None or d.fast is None or d.torch is None or _resolve(d.torch.cls) is not type(module):
        return None
    return d.fast(torch.ops.aten, module)


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
