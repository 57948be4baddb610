"""What one activation is: the types of a definition and of a bound activation.

An :class:`ActivationSpec` is one activation's whole definition: its catalog data (names,
parameters, formulas, range, properties, references, disagreements, the article's plot), its
NumPy forward and derivative (functions of :mod:`actlab.kernels`, like PyTorch's
``derivatives.yaml`` keeps the derivative beside the op), how to build and recognise its PyTorch
module (:class:`TorchModule`) and the engine's fast path. The built-ins are in
:mod:`actlab.activations`; :mod:`actlab.catalog` is the registry that looks them up.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actlab import _notebook as nb
from actlab.errors import ActlabError, read_number, suggest

INF = math.inf

# The schemes every network here can use (the NumPy layers offer only these): He (Kaiming)
# normal with the definition's gain (leaky_relu: its slope), Glorot (Xavier) uniform, LeCun normal.
INITS = ("he", "glorot", "lecun")
# Each consumer's list, INITS with its extras:
#   "torch":    nn.Linear's default (kaiming_uniform a=sqrt(5), bias U(+-1/sqrt(fan_in)))
#   "auto":     the activation's recommended scheme (init_scheme)
#   "standard": U(+-1/sqrt(fan_in)), bias constant: Glorot & Bengio's (2010) "standard"
#   "paper":    their comparison: He for the ReLU family, else "standard"
COMPARE_INITS = ("auto", *INITS, "torch")
ADVICE_INITS = (*INITS, "torch")  # what a recommended pairing may name
DEMO_INITS = ("paper", "standard", *INITS)  # diagnose's demos
OPTIMIZERS = ("adam", "sgd")  # compare, explore


@dataclass(frozen=True)
class Param:
    """One parameter of an activation. ``kind`` is float, int, bool or str."""

    name: str
    default: Any
    kind: type
    description: str
    low: float | None = None  # inclusive unless low_open
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    torch_only: bool = False  # ignored by the NumPy kernels (e.g. learnable flags)

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is bool:
            return "true or false"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None else "]"
        what = "an integer" if self.kind is int else "a finite number"
        return f"{what} in {left}{lo}, {hi}{right}"

    def coerce(self, value: Any, activation: str) -> Any:
        """Convert ``value`` (a string from a spec, or a Python value) and check its range."""
        bad = f"parameter '{self.name}' of {activation} must be {self.allowed()}, got {value!r}"
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ActlabError(bad)
        if self.kind is str:
            text = str(value).strip().lower()
            if text not in self.choices:
                raise ActlabError(bad + suggest(text, self.choices))
            return text
        try:
            if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
                raise TypeError(value)  # True is not 1.0 here; a list is not a number
            number = (
                self.kind(value) if not isinstance(value, str) else _parse_number(value, self.kind)
            )
        except (TypeError, ValueError):
            raise ActlabError(bad) from None
        fraction = isinstance(value, float) and self.kind is int and not float(value).is_integer()
        nonfinite = isinstance(number, float) and not math.isfinite(number)
        too_low = self.low is not None and (
            number < self.low or (self.low_open and number == self.low)
        )
        if fraction or nonfinite or too_low or (self.high is not None and number > self.high):
            raise ActlabError(bad)
        return number


def _parse_number(text: str, kind: type) -> float | int:
    """A spec's number, by the one grammar (``errors.read_number``): '1_0' is not 10."""
    return read_number(text, integer=kind is int)


@dataclass(frozen=True)
class Properties:
    monotonic: bool
    smoothness: str  # "C0" (kinks), "C1", "Cinf"
    zero_centred: bool  # outputs roughly centred on zero for centred inputs
    bounded_below: bool
    bounded_above: bool
    saturating: str  # "none", "left", "right", "both"
    self_normalising: bool = False


@dataclass(frozen=True)
class PlotDefaults:
    """The article's figure for this function (or a figure in its spirit where it has none)."""

    x: tuple[float, float, int] = (-5.0, 5.0, 1001)  # grid start, stop, points
    xlim: tuple[float, float] = (-5.0, 5.0)
    ylim: tuple[float, float] = (-1.5, 5.0)
    linewidth: float = 2.5
    title: Mapping[str, str] = field(default_factory=dict)  # {"en": ..., "ru": ...}
    xlabel: str = "x"
    ylabel: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)  # e.g. the article's alpha=0.1
    in_article: bool = False


@dataclass(frozen=True)
class TorchModule:
    """How to build and recognise an activation's PyTorch module, without importing torch here.

    ``cls`` names a class of ``torch.nn`` (or of :mod:`actlab.torch`, e.g. ``"Swish"``); ``args``
    maps its constructor keywords, which are also the attributes read back to identify a module,
    to catalog parameter names. ``build(resolve, params)`` and ``read(module)`` replace the
    default where a module is not that plain; ``also`` names more classes recognised as this
    activation (no fast path for those).
    """

    cls: str
    args: Mapping[str, str] = field(default_factory=dict)
    build: Callable[[Callable[[str], Any], Mapping[str, Any]], Any] | None = None
    read: Callable[[Any], dict[str, Any]] | None = None
    also: tuple[str, ...] = ()


# fast(aten, module) -> (fwd(z, out), bwd(g, z, h, out)): the ATen kernels behind a module, for
# the compare engine (see actlab.torch.fast_path)
FastPath = Callable[[Any, Any], tuple[Callable[..., Any], Callable[..., Any]]]


_CODE = {"code": True}  # a field holding code, not catalog data (left out of `actlab info --json`)


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    display_name: str
    formula: str
    formula_latex: str
    derivative_formula: str
    derivative_latex: str
    output_range: tuple[float, float]  # for the default parameters
    properties: Properties
    family: str
    recommended_init: str  # "he" | "glorot" | "lecun" | "none"
    year: int
    reference: str
    pros: tuple[str, ...]
    cons: tuple[str, ...]
    use: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    elementwise: bool = True
    range_closed: tuple[bool, bool] = (False, False)  # whether each end of output_range is attained
    kink_convention: str = ""
    disagreements: tuple[str, ...] = ()
    plot: PlotDefaults = field(default_factory=PlotDefaults)
    # f(x, **kernel parameters, out=None) and f'(x, ...); derivative None: not elementwise
    numpy_forward: Callable[..., Any] | None = field(default=None, metadata=_CODE)
    numpy_derivative: Callable[..., Any] | None = field(default=None, metadata=_CODE)
    torch: TorchModule | None = field(default=None, metadata=_CODE)
    fast: FastPath | None = field(default=None, metadata=_CODE)
    # check(params) -> what is wrong with the parameters together ("" or None: nothing)
    check: Callable[[Mapping[str, Any]], str | None] | None = field(default=None, metadata=_CODE)
    # He initialisation's gain: kaiming(params) -> (nonlinearity, a) of torch.nn.init.kaiming_*
    kaiming: Callable[[Mapping[str, Any]], tuple[str, float]] | None = field(
        default=None, metadata=_CODE
    )  # None: ReLU's
    # the NumPy layer: a class of actlab.layers by name (as `torch` names a torch.nn class), or
    # layer(params) -> that name where the parameters choose it (silu: learnable)
    layer: str | Callable[[Mapping[str, Any]], str] = field(
        default="ActivationLayer", metadata=_CODE
    )
    source: str = ""  # where a user activation came from ("" for the built-ins)

    def param(self, name: str) -> Param:
        key = name.strip().lower()
        for p in self.params:
            if key == p.name or key in p.synonyms:
                return p
        known = [p.name for p in self.params] + [s for p in self.params for s in p.synonyms]
        if not known:
            raise ActlabError(f"{self.name} takes no parameters, got '{name}'")
        raise ActlabError(
            f"unknown parameter '{name}' for {self.name}; allowed: "
            + ", ".join(_describe_param(p) for p in self.params)
            + suggest(key, known)
        )

    @property
    def range_text(self) -> str:
        """Output range in interval notation, e.g. '[0, inf)'."""

        def bound(v: float) -> str:
            return ("inf" if v > 0 else "-inf") if math.isinf(v) else f"{v:.4g}"

        (lo, hi), (lc, hc) = self.output_range, self.range_closed
        return f"{'[' if lc else '('}{bound(lo)}, {bound(hi)}{']' if hc else ')'}"

    def data(self) -> dict[str, Any]:
        """The catalog data as plain values (the code fields left out)."""
        code = [f.name for f in dataclasses.fields(self) if f.metadata.get("code")]
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in code}

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def _describe_param(p: Param) -> str:
    syn = f" (alias {', '.join(p.synonyms)})" if p.synonyms else ""
    return f"{p.name}{syn}"


@dataclass(frozen=True)
class Activation:
    """An activation with its parameters bound: what a spec string means."""

    spec: ActivationSpec
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    def _changed(self) -> list[str]:
        """'name=value' for each parameter away from its default."""
        return [
            f"{p.name}={format_value(self.params[p.name])}"
            for p in self.spec.params
            if self.params[p.name] != p.default
        ]

    def __str__(self) -> str:
        return ":".join([self.spec.name, *self._changed()])

    def __repr__(self) -> str:
        return f"Activation({str(self)!r})"

    def _repr_html_(self) -> str:
        """A notebook's view: name, formula, range, parameters, and f (solid) and f' (dashed)
        drawn as an inline SVG over the definition's plot range."""
        lo, hi = self.spec.plot.xlim if self.spec.plot.xlim else (-5.0, 5.0)
        x = np.linspace(lo, hi, 161)
        curves = []
        if self.spec.elementwise and self.spec.numpy_forward is not None:
            curves.append(("f(x)", self.forward(x), False))
            if self.spec.numpy_derivative is not None:
                curves.append(("f'(x)", self.derivative(x), True))
        low, high = self.spec.output_range
        rows = [{"": "formula", "value": self.spec.formula},
                {"": "range", "value": f"({low:g}, {high:g})"},
                *({"": k, "value": format_value(v)} for k, v in self.params.items())]
        svg = nb.svg_curves(x, curves) if curves else "<p><em>not elementwise</em></p>"
        return (f"<div><strong>{nb.esc(self.label)}</strong> <code>{nb.esc(str(self))}</code>"
                f'<div style="display:flex;gap:16px;align-items:flex-start">{svg}'
                f"{nb.table(rows)}</div></div>")

    @property
    def label(self) -> str:
        extra = self._changed()
        return self.spec.display_name + (f" ({', '.join(extra)})" if extra else "")

    @property
    def kernel_params(self) -> dict[str, Any]:
        """Parameters the NumPy kernels take (torch-only flags dropped)."""
        return {p.name: self.params[p.name] for p in self.spec.params if not p.torch_only}

    def forward(self, x: Any, out: Any = None) -> Any:
        """f(x) by the definition's NumPy kernel."""
        assert self.spec.numpy_forward is not None, self.spec.name
        return self.spec.numpy_forward(x, **self.kernel_params, out=out)

    def derivative(self, x: Any, out: Any = None) -> Any:
        """Elementwise f'(x). Softmax and log-softmax have a Jacobian instead: use their VJPs."""
        if self.spec.numpy_derivative is None:
            raise ActlabError(
                f"{self.name} is not elementwise, so it has no elementwise derivative; use "
                f"actlab.kernels.{self.name}_vjp(y, grad, axis) with y = {self.name}(x) for the "
                "gradient"
            )
        return self.spec.numpy_derivative(x, **self.kernel_params, out=out)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return str(value)
