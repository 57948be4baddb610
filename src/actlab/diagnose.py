"""Diagnose: vanishing/exploding gradients, dead and saturated units in any PyTorch model.

>>> with Monitor(model) as mon:                     # doctest: +SKIP
...     for xb, yb in batches:
...         loss_fn(model(xb), yb).backward()
>>> report = mon.report()                           # doctest: +SKIP

Forward hooks on every activation module (whatever :func:`actlab.torch.identify` recognises,
user subclasses included, plus leaf modules named after a catalog entry or passed as ``extra``)
keep running *per-unit counts*; tensor hooks on every Linear/Conv weight see the gradient of each
backward pass before it is accumulated into ``.grad``, so gradient accumulation and any
``zero_grad`` pattern give the same per-pass norms. Only small statistics are kept (no
activations, no autograd graphs), and the histograms over time have a fixed number of rows, so
memory stays flat over any number of batches.

Definitions (shared with the compare engine through :func:`unit_health`): a unit is *dead* when
f'(pre-activation) is exactly 0 for every sample seen (for ReLU: output exactly 0); *saturated*
when |f'| < 0.01 for more than half of the samples without being dead. For conv layers a unit is a
channel.
Verdict thresholds are the constants below and are printed with every verdict.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from torch import nn

from actlab.devices import resolve as resolve_device
from actlab.errors import ActlabError

__all__ = [
    "ADVICE",
    "ADVICE_RULES",
    "THRESHOLDS",
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
    "gradient_flow_figure",
    "histogram_figure",
    "load_model",
    "unit_health",
]

SATURATION = 0.01  # |f'| below this counts as saturated
MAJORITY = 0.5  # ... for more than this fraction of the samples
VANISHING = 1e-2  # first/last weight-gradient norm ratio below this: vanishing gradients
EXPLODING = 1e2  # ... above this: exploding gradients
DEAD = 0.10  # more than this fraction of a layer's units dead: a problem
SATURATED = 0.50  # more than this fraction saturated: a problem
BINS = 40  # histogram bins per activation layer
HISTORY = 128  # histogram rows kept; when full, neighbouring rows merge (memory stays fixed)

THRESHOLDS: dict[str, str] = {
    "vanishing": f"first/last weight-gradient norm ratio < {VANISHING:g}",
    "exploding": f"first/last weight-gradient norm ratio > {EXPLODING:g}, or a non-finite gradient",
    "dead": f"more than {DEAD:.0%} of a layer's units have f' = 0 on every sample",
    "saturated": f"more than {SATURATED:.0%} of a layer's units have |f'| < {SATURATION:g} "
    f"on more than {MAJORITY:.0%} of the samples",
}

# What fixes each problem. Kept short and local: the advice module answers "which activation",
# these answer "what to change in this model".
ADVICE: dict[str, str] = {
    "vanishing": "use ReLU-family activations (ReLU, LeakyReLU, ELU) with He (Kaiming) "
    "initialisation in hidden layers, add normalisation (BatchNorm/LayerNorm) or residual "
    "connections; a sigmoid multiplies the gradient by at most 0.25 per layer",
    "exploding": "lower the learning rate, clip the gradient norm "
    "(torch.nn.utils.clip_grad_norm_), use He/Glorot initialisation rather than a larger scale, "
    "add normalisation",
    "dead": "use LeakyReLU or ELU (their gradient is never exactly 0), lower the learning rate, "
    "initialise biases at 0 (not negative) with He initialisation",
    "saturated": "standardise the inputs and add BatchNorm/LayerNorm before the activation, use "
    "Glorot (Xavier) initialisation for sigmoid/tanh, or a ReLU-family activation with He init",
}

# The advice module's rules (advice_rules.json ids) behind each fix, for `actlab recommend`.
ADVICE_RULES: dict[str, tuple[str, ...]] = {
    "vanishing": ("deep-saturating", "deep-plain-note", "hidden-not-sigmoid"),
    "exploding": ("deep-plain-note", "hidden-elu"),
    "dead": ("hidden-relu", "hidden-leaky-relu", "hidden-elu"),
    "saturated": ("hidden-tanh", "deep-saturating", "hidden-not-sigmoid"),
}

FUNCTIONAL_NOTE = (
    "the model has {n} Linear/Conv layer(s) but no activation module that can be hooked: "
    "activations called as functions inside forward() (F.relu, torch.sigmoid, x.relu()) are "
    "invisible to hooks, so dead/saturated units and histograms cannot be measured. Make them "
    "modules (e.g. self.act = actlab.torch.build('relu'), or nn.ReLU()); actlab.torch.swap(model, "
    "to=...) can then change them all at once. Gradient norms below are still measured."
)

# Layers whose weight gradients are measured (explicit list: _ConvNd is private).
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def unit_health(
    derivative: torch.Tensor, threshold: float = 0.01, majority: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractions of dead and saturated units from f'(pre-activation).

    ``derivative`` has shape ``(..., samples, units)``. A unit is *dead* when its derivative is
    exactly zero for every sample (no gradient can reach it); it is *saturated* when
    ``|f'| < threshold`` for more than ``majority`` of the samples without being dead. Returns two
    tensors of shape ``(...)``.
    """
    if derivative.ndim < 2:
        raise ValueError("derivative must have shape (..., samples, units)")
    small = derivative.abs() < threshold
    dead = (derivative == 0).all(dim=-2)
    saturated = (small.float().mean(dim=-2) > majority) & ~dead
    return dead.float().mean(dim=-1), saturated.float().mean(dim=-1)


def measures_saturation(act: Any) -> bool:
    """Whether 'saturated' is meaningful for ``act`` (a catalog Activation, or None if unknown).

    Saturation is the flat tails of activations bounded on both sides (sigmoid, tanh, softsign,
    relu6, hard_sigmoid). A ReLU-family unit with f' = 0 on most rows is merely off there (and
    *dead* if off everywhere), so it is not called saturated. Unknown (user) modules are measured.
    """
    return act is None or act.spec.properties.saturating == "both"


# --- report -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ActivationLayer:
    """What one activation layer did over the monitored batches."""

    name: str  # module path; "path#k" for the k-th call of a module used several times per forward
    activation: str  # catalog spec string ("relu", "leaky_relu:negative_slope=0.1") or class name
    units: int  # features, or channels for conv feature maps
    samples: int  # samples seen per unit (batch rows x spatial positions)
    mean: float  # of the outputs
    std: float
    dead_fraction: float | None  # None: derivative unknown (softmax, or input overwritten)
    saturated_fraction: float | None  # None: activation not bounded on both sides (see Monitor)
    hist_edges: np.ndarray  # (bins + 1,) output values; values outside land in the edge bins
    hist: np.ndarray  # (rows, bins) counts; row i covers batches [i*stride, (i+1)*stride)
    hist_stride: int
    nonfinite: int  # NaN/inf outputs seen

    kind = "activation"


@dataclass(frozen=True, eq=False)
class WeightLayer:
    """Gradient of one Linear/Conv weight, one norm per backward pass."""

    name: str
    type: str  # "Linear", "Conv2d", ...
    shape: tuple[int, ...]
    steps: int  # backward passes that reached this weight
    grad_norm: float | None  # mean L2 norm of the weight gradient over those passes
    last_grad_norm: float | None
    ratio_to_last: float | None  # grad_norm / grad_norm of the last weight layer

    kind = "weight"


@dataclass(frozen=True)
class Verdict:
    problem: str  # "vanishing" | "exploding" | "dead" | "saturated"
    layer: str | None  # None for whole-network verdicts
    value: float
    threshold: float
    message: str
    advice: str
    rules: tuple[str, ...] = ()  # ids of the advice rules behind the fix (actlab.advice)


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "–" if v is None else format(v, fmt)


@dataclass(frozen=True, eq=False)
class Report:
    """Per-layer health in network order (the order layers first ran), with verdicts and notes."""

    layers: tuple[ActivationLayer | WeightLayer, ...]
    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...]
    forwards: int  # forward passes of the whole model
    backwards: int  # backward passes that reached the last weight layer

    @property
    def activations(self) -> list[ActivationLayer]:
        return [x for x in self.layers if isinstance(x, ActivationLayer)]

    @property
    def weights(self) -> list[WeightLayer]:
        return [x for x in self.layers if isinstance(x, WeightLayer)]

    @property
    def first_last_ratio(self) -> float | None:
        """Gradient norm of the first weight layer over that of the last (None if unmeasured)."""
        measured = [w for w in self.weights if w.grad_norm is not None]
        if len(measured) < 2:
            return None
        return measured[0].ratio_to_last

    def problems(self) -> set[str]:
        return {v.problem for v in self.verdicts}

    def table(self) -> list[dict[str, Any]]:
        """Tidy rows, one per layer in network order; fields that do not apply are None."""
        rows = []
        for i, x in enumerate(self.layers):
            act = isinstance(x, ActivationLayer)
            rows.append(
                {
                    "index": i,
                    "layer": x.name,
                    "kind": x.kind,
                    "type": x.activation if act else x.type,
                    "size": x.units if act else list(x.shape),
                    "grad_norm": None if act else x.grad_norm,
                    "ratio_to_last": None if act else x.ratio_to_last,
                    "mean": x.mean if act else None,
                    "std": x.std if act else None,
                    "dead_fraction": x.dead_fraction if act else None,
                    "saturated_fraction": x.saturated_fraction if act else None,
                }
            )
        return rows

    def to_dict(self, histograms: bool = True) -> dict[str, Any]:
        """Plain data (JSON-ready apart from NaN, which the CLI's print_json handles)."""
        layers = []
        for row, x in zip(self.table(), self.layers, strict=True):
            if isinstance(x, ActivationLayer):
                row |= {"samples": x.samples, "nonfinite": x.nonfinite}
                if histograms:
                    row["histogram"] = {
                        "edges": x.hist_edges.tolist(),
                        "counts": x.hist.tolist(),
                        "batches_per_row": x.hist_stride,
                    }
            else:
                row |= {"steps": x.steps, "last_grad_norm": x.last_grad_norm}
            layers.append(row)
        return {
            "forwards": self.forwards,
            "backwards": self.backwards,
            "first_last_ratio": self.first_last_ratio,
            "thresholds": dict(THRESHOLDS),
            "layers": layers,
            "verdicts": [vars(v).copy() for v in self.verdicts],
            "notes": list(self.notes),
        }

    def render(self, title: str | None = None) -> Any:
        """A rich Table (verdicts and notes in its caption); ``console.print(report)`` works too."""
        from rich.table import Table

        table = Table(title=title, caption=_caption(self), caption_justify="left")
        for col, just in (
            ("layer", "left"),
            ("type", "left"),
            ("grad norm", "right"),
            ("÷ last", "right"),
            ("out mean", "right"),
            ("out std", "right"),
            ("dead", "right"),
            ("saturated", "right"),
        ):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        weight_no = {id(w): k for k, w in enumerate(self.weights, start=1)}
        act_no = {id(a): k for k, a in enumerate(self.activations, start=1)}
        for x in self.layers:
            if isinstance(x, WeightLayer):
                table.add_row(
                    weight_label(weight_no[id(x)], x.name),
                    x.type,
                    _num(x.grad_norm),
                    _num(x.ratio_to_last),
                    *([""] * 4),
                )
            else:
                table.add_row(
                    weight_label(act_no[id(x)], x.name, "act"),
                    x.activation,
                    "",
                    "",
                    _num(x.mean),
                    _num(x.std),
                    _pct(x.dead_fraction, DEAD),
                    _pct(x.saturated_fraction, SATURATED),
                    style="dim" if x.dead_fraction is None and x.saturated_fraction is None else "",
                )
        return table

    def __rich__(self) -> Any:
        return self.render()

    def plot_gradient_flow(self, title: str = "Gradient norm per weight layer") -> Figure:
        ws = self.weights
        last = next((w.grad_norm for w in reversed(ws) if w.grad_norm is not None), None)
        return gradient_flow_figure(
            {"": [w.grad_norm for w in ws]},
            [weight_label(k, w.name) for k, w in enumerate(ws, start=1)],
            title,
            reference=last,
        )

    def plot_histograms(self, title: str = "Activation outputs over time") -> Figure:
        return histogram_figure(self.activations, title)


def weight_label(k: int, path: str, kind: str = "layer") -> str:
    """One numbering for weight layers everywhere (demos, --model tables, plots, and the compare
    report's gradient panel): 'layer k', 1-based from the input, with the module path after it
    when it says more than the position (a Sequential index such as '0' or '20' does not)."""
    return f"{kind} {k}" if path.isdigit() else f"{kind} {k} ({path})"


def _pct(v: float | None, limit: float) -> str:
    if v is None:
        return "–"
    text = f"{v:.0%}"
    return f"[bold red]{text}[/]" if v > limit else text


def _caption(report: Report) -> str:
    lines = []
    groups: dict[str, list[Verdict]] = {}
    for v in report.verdicts:
        groups.setdefault(v.problem, []).append(v)
    for problem, vs in groups.items():
        if len(vs) == 1:
            where = f" in {vs[0].layer}" if vs[0].layer else ""
            lines.append(f"[bold red]{problem}[/]{where}: {vs[0].message}")
        else:
            where = ", ".join(f"{v.layer} ({v.value:.0%})" for v in vs)
            lines.append(f"[bold red]{problem}[/] in {where}: {THRESHOLDS[problem]}")
        lines.append(f"  fix: {vs[0].advice}")
    if not report.verdicts and report.layers:
        lines.append(
            f"[green]no problem found[/]; checked: vanishing (first/last < {VANISHING:g}), "
            f"exploding (> {EXPLODING:g}), dead (> {DEAD:.0%} of units), "
            f"saturated (> {SATURATED:.0%} of units)"
        )
    lines += [f"[yellow]note:[/] {n}" for n in report.notes]
    return "\n".join(lines)


# --- monitor ------------------------------------------------------------------------------------


class _History:
    """Histogram rows over time in a fixed buffer: when it is full, neighbouring rows merge."""

    def __init__(self, rows: int, bins: int, device: torch.device) -> None:
        # counts; MPS has no float64 (float32 counts are exact below 2**24 per bin)
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self.buf = torch.zeros(rows, bins, dtype=dtype, device=device)
        self.row, self.fill, self.stride = 0, 0, 1

    def add(self, counts: torch.Tensor) -> None:
        if self.fill == self.stride:
            self.row, self.fill = self.row + 1, 0
            if self.row == self.buf.shape[0]:
                half = self.buf.shape[0] // 2
                self.buf[:half] = self.buf[0::2] + self.buf[1::2]
                self.buf[half:] = 0
                self.row, self.stride = half, self.stride * 2
        self.buf[self.row] += counts
        self.fill += 1

    def widen(self, upward: bool) -> None:
        """Double the value range, keeping the counts exact: neighbouring bins merge pairwise
        into one half of the buffer and the other half (the new values' side) starts empty."""
        half = self.buf.shape[1] // 2
        merged = self.buf[:, 0::2] + self.buf[:, 1::2]
        self.buf.zero_()
        if upward:
            self.buf[:, :half] = merged
        else:
            self.buf[:, half:] = merged

    def rows(self) -> np.ndarray:
        used = self.row + (1 if self.fill else 0)
        return self.buf[:used].cpu().numpy()


def _units_last(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """View as (samples, units): 0-d/1-d inputs are one sample; else ``unit_dim`` becomes units."""
    if t.ndim <= 1:
        return t.reshape(1, -1)
    if t.ndim == 2:
        return t
    return t.movedim(unit_dim, -1).reshape(-1, t.shape[unit_dim])


class _Site:
    """Running statistics of one activation call site (a module, or a shared module's k-th call)."""

    def __init__(
        self,
        name: str,
        label: str,
        order: int,
        units: int,
        unit_dim: int,
        derivative: Callable[[torch.Tensor], torch.Tensor] | None,
        saturation: bool,
        bounds: tuple[float, float],
        monitor: Monitor,
    ) -> None:
        self.name, self.label, self.order = name, label, order
        self.units, self.unit_dim = units, unit_dim
        self.derivative, self.saturation, self.bounds = derivative, saturation, bounds
        self.monitor = monitor  # for the saturation rule and histogram settings
        self.samples = 0  # per unit, for the derivative counts
        self.nonzero: torch.Tensor | None = None  # per unit: samples with f' != 0
        self.small: torch.Tensor | None = None  # per unit: samples with |f'| < threshold
        self.unknown = False  # some batch's pre-activation was unavailable
        self.count, self.mean, self.m2 = 0, 0.0, 0.0  # outputs, Chan's parallel moments
        self.nonfinite = 0
        self.edges: tuple[float, float] | None = None
        self.history: _History | None = None

    def update(self, pre: torch.Tensor | None, out: torch.Tensor) -> None:
        y = out.detach()
        self._moments(y)
        self._histogram(y)
        if self.derivative is None:
            return
        if pre is None:
            self.unknown = True
            return
        d = _units_last(self.derivative(pre.detach()), self.unit_dim)
        if self.nonzero is None:
            self.nonzero = torch.zeros(self.units, dtype=torch.int64, device=d.device)
            self.small = torch.zeros(self.units, dtype=torch.int64, device=d.device)
        self.samples += d.shape[0]
        self.nonzero += (d != 0).sum(dim=0)
        self.small += (d.abs() < self.monitor.threshold).sum(dim=0)

    def _moments(self, y: torch.Tensor) -> None:
        n = y.numel()
        if n == 0:
            return
        y64 = y.to(torch.float64)
        finite = torch.isfinite(y64)
        bad = int(n - finite.sum())
        if bad:
            self.nonfinite += bad
            y64 = y64[finite]
            n -= bad
            if n == 0:
                return
        mean = float(y64.mean())
        m2 = float(((y64 - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def _histogram(self, y: torch.Tensor) -> None:
        y = y.to(torch.float32)
        if self.edges is None:
            self.edges = self._range(y)
            self.history = _History(self.monitor.history, self.monitor.bins, y.device)
        lo, hi = self.edges
        if self.monitor.hist_range is None:  # grow an unbounded side, don't pile up at an edge
            finite = y[torch.isfinite(y)]
            if finite.numel():
                top, bottom = float(finite.max()), float(finite.min())
                for _ in range(64):  # 2**64 times the first range covers every float32
                    if top > hi and not math.isfinite(self.bounds[1]):
                        hi = lo + 2 * (hi - lo)
                        self.history.widen(upward=True)
                    elif bottom < lo and not math.isfinite(self.bounds[0]):
                        lo = hi - 2 * (hi - lo)
                        self.history.widen(upward=False)
                    else:
                        break
                self.edges = (lo, hi)
        bins = self.monitor.bins
        counts = torch.histc(y.clamp(lo, hi), bins=bins, min=lo, max=hi)  # NaN is skipped
        assert self.history is not None
        self.history.add(counts.to(torch.float64))

    def _range(self, y: torch.Tensor) -> tuple[float, float]:
        # Fixed for the site's lifetime so that rows compare: the output range where bounded,
        # otherwise twice the first batch's extreme on that side (at least 1), doubled later
        # whenever outputs outgrow it (see _History.widen).
        if self.monitor.hist_range is not None:
            return self.monitor.hist_range
        finite = y[torch.isfinite(y)]
        top = float(finite.max()) if finite.numel() else 1.0
        bottom = float(finite.min()) if finite.numel() else -1.0
        lo, hi = self.bounds
        if not math.isfinite(hi):
            hi = max(2.0 * top, 1.0) if top > 0 else 1.0
        if not math.isfinite(lo):
            lo = min(2.0 * bottom, -1.0) if bottom < 0 else (0.0 if hi > 0 else -1.0)
        return (lo, hi) if hi > lo else (lo, lo + 1.0)

    def result(self) -> ActivationLayer:
        dead = saturated = None
        if self.nonzero is not None and self.small is not None and not self.unknown:
            is_dead = self.nonzero == 0
            dead = float(is_dead.double().mean())
            if self.saturation:
                frac = self.small.double() / max(self.samples, 1)
                saturated = float(((frac > self.monitor.majority) & ~is_dead).double().mean())
        std = math.sqrt(self.m2 / self.count) if self.count else float("nan")
        lo, hi = self.edges or (0.0, 1.0)
        bins = self.monitor.bins
        hist = self.history.rows() if self.history is not None else np.zeros((0, bins))
        return ActivationLayer(
            name=self.name,
            activation=self.label,
            units=self.units,
            samples=self.samples,
            mean=self.mean if self.count else float("nan"),
            std=std,
            dead_fraction=dead,
            saturated_fraction=saturated,
            hist_edges=np.linspace(lo, hi, bins + 1),
            hist=hist,
            hist_stride=self.history.stride if self.history is not None else 1,
            nonfinite=self.nonfinite,
        )

    def nbytes(self) -> int:
        size = 0
        for t in (self.nonzero, self.small, self.history.buf if self.history else None):
            if t is not None:
                size += t.numel() * t.element_size()
        return size


class _Weights:
    """Per-backward-pass gradient norms of one weight tensor."""

    def __init__(self, name: str, module: nn.Module, order: int) -> None:
        self.name, self.type, self.order = name, type(module).__name__, order
        self.shape = tuple(module.weight.shape)
        self.steps = 0
        self.total = 0.0
        self.last: float | None = None
        self.hooked = False

    def add(self, grad: torch.Tensor) -> None:
        norm = float(torch.linalg.vector_norm(grad.detach(), dtype=torch.float64))
        self.steps += 1
        self.total += norm
        self.last = norm

    @property
    def mean(self) -> float | None:
        return self.total / self.steps if self.steps else None


def _catalog_for(module: nn.Module) -> tuple[Any, str] | None:
    """(Activation or None, label) when ``module`` is an activation, else None."""
    from actlab.catalog import get
    from actlab.errors import UnknownActivationError
    from actlab.torch import identify, is_activation

    if is_activation(module):
        try:
            act = identify(module)
        except ActlabError:  # e.g. a LeakyReLU slope the catalog rejects: still hook it
            return None, type(module).__name__
        # nn.Identity is mostly a placeholder (a switched-off norm or head), not an activation
        return None if act is None or act.name == "identity" else (act, str(act))
    # a leaf module named after a catalog entry (class Swish(nn.Module), class Mish(...)):
    # the user's own activation; its derivative comes from autograd, not the catalog
    if not any(True for _ in module.children()):
        try:
            spec = get(type(module).__name__)
        except UnknownActivationError:
            return None
        if spec.elementwise and spec.name != "identity":
            return None, f"{type(module).__name__} (user module)"
    return None


class Monitor:
    """Context manager that hooks a model's activations and weight layers; see the module doc.

    Parameters: ``extra`` - module types or instances to treat as (elementwise) activations as well,
    for activations you wrote whose class name is not a catalog name; ``threshold``/``majority`` -
    the saturation rule; ``bins`` and ``hist_range`` - the output histograms (``(lo, hi)`` fixes
    the bins, default: the activation's output range, or twice the first batch's extreme where it
    is unbounded, doubled whenever later outputs pass it; ``bins`` must be even); ``history`` -
    histogram rows kept over time (pairs merge when full); ``unit_dim`` - which axis of a >=3-D
    activation holds the units (default: 1, the channels, after a Conv; the last axis after a
    Linear).

    Saturation is measured for activations bounded on both sides (sigmoid, tanh, softsign, relu6,
    hard_sigmoid) and for user modules; for one-sided ones (ReLU, ELU, GELU, ...) the flat side is
    sparsity, and its harmful extreme is what ``dead`` measures.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        extra: Iterable[type[nn.Module] | nn.Module] = (),
        threshold: float = SATURATION,
        majority: float = MAJORITY,
        bins: int = BINS,
        hist_range: tuple[float, float] | None = None,
        history: int = HISTORY,
        unit_dim: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ActlabError(f"Monitor needs a torch.nn.Module, got {type(model).__name__}")
        if not (isinstance(threshold, (int, float)) and 0 < threshold < math.inf):
            raise ActlabError(
                f"threshold must be a positive number such as 0.01, got {threshold!r}"
            )
        if not (isinstance(majority, (int, float)) and 0 <= majority < 1):
            raise ActlabError(f"majority must be in [0, 1), e.g. 0.5; got {majority!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2 or bins % 2:
            # even: a growing range merges neighbouring bins pairwise
            raise ActlabError(f"bins must be an even integer >= 2, got {bins!r}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 2 or history % 2:
            raise ActlabError(f"history must be an even integer >= 2, got {history!r}")
        if hist_range is not None:
            lo, hi = (float(v) for v in hist_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ActlabError(
                    f"hist_range must be two finite numbers lo < hi, got {hist_range!r}"
                )
            hist_range = (lo, hi)
        if unit_dim is not None and (isinstance(unit_dim, bool) or not isinstance(unit_dim, int)):
            raise ActlabError(f"unit_dim must be an axis number such as 1 or -1, got {unit_dim!r}")
        self.model = model
        self.threshold, self.majority = float(threshold), float(majority)
        self.bins, self.hist_range, self.history = bins, hist_range, history
        self.unit_dim = unit_dim
        extra = tuple(extra)
        for e in extra:
            if not (isinstance(e, nn.Module) or (isinstance(e, type) and issubclass(e, nn.Module))):
                raise ActlabError(
                    f"extra takes nn.Module types or instances, got {e!r}; "
                    "e.g. Monitor(model, extra=[MyActivation])"
                )

        # what to hook, found once: (path, module, Activation | None, label)
        self._acts: list[tuple[str, nn.Module, Any, str]] = []
        self._weight_modules: list[tuple[str, nn.Module]] = []
        for path, module in model.named_modules():
            name = path or type(module).__name__
            if isinstance(module, WEIGHT_TYPES):
                self._weight_modules.append((name, module))
                continue
            found = _catalog_for(module)
            if found is None and any(
                module is e or (isinstance(e, type) and isinstance(module, e)) for e in extra
            ):
                found = (None, f"{type(module).__name__} (user module)")
            if found is not None:
                self._acts.append((name, module, *found))

        self._handles: list[Any] = []
        self._sites: dict[tuple[int, int, int], _Site] = {}
        self._weights: dict[int, _Weights] = {}
        self._pending: dict[int, torch.Tensor] = {}  # input clones of modules that write in place
        self._aliases: dict[int, bool] = {}  # module id -> did its output overwrite its input?
        self._calls: dict[int, int] = {}  # calls of each module in the current forward pass
        self._order = itertools.count()
        self._after = "conv"  # kind of the last weight layer run: tells where the units are
        self._forwards = 0
        self._in_forward = False
        self.active = False

    # context management -----------------------------------------------------------------------

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Register the hooks (``with Monitor(...)`` does this); statistics carry on from before."""
        if self.active:
            raise ActlabError("this Monitor is already running; use one `with` block at a time")
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._root_pre))
            self._handles.append(
                self.model.register_forward_hook(self._root_post, always_call=True)
            )
            for name, module, act, label in self._acts:
                self._handles.append(module.register_forward_pre_hook(self._act_pre))
                self._handles.append(
                    module.register_forward_hook(self._act_hook(name, module, act, label))
                )
            for name, module in self._weight_modules:
                self._handles.append(module.register_forward_hook(self._weight_hook(name)))
        except BaseException:
            self.stop()
            raise
        self.active = True

    def stop(self) -> None:
        """Remove every hook (also the gradient hooks); ``__exit__`` calls it, even after errors."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pending.clear()
        self._in_forward = False
        for w in self._weights.values():
            w.hooked = False
        self.active = False

    def reset(self) -> None:
        """Forget the statistics gathered so far (hooks stay as they are)."""
        self._sites.clear()
        for w in self._weights.values():
            w.steps, w.total, w.last = 0, 0.0, None
        self._forwards = 0

    # hooks ----------------------------------------------------------------------------------------

    def _root_pre(self, module: nn.Module, args: Any) -> None:
        self._calls.clear()
        self._in_forward = True
        self._forwards += 1

    def _root_post(self, module: nn.Module, args: Any, output: Any) -> None:
        self._in_forward = False

    def _act_pre(self, module: nn.Module, args: Any) -> None:
        # A module that writes into its input (ReLU(inplace=True)) leaves only the output for the
        # forward hook, so keep a copy of the input; after the first call, only where needed.
        if args and isinstance(args[0], torch.Tensor) and self._aliases.get(id(module), True):
            self._pending[id(module)] = args[0].detach().clone()

    def _act_hook(self, name: str, module: nn.Module, act: Any, label: str) -> Callable:
        derivative = _derivative_fn(module, act)
        bounds = act.spec.output_range if act is not None else (-math.inf, math.inf)
        saturation = measures_saturation(act)

        def hook(mod: nn.Module, args: Any, output: Any) -> None:
            key = id(mod)
            saved = self._pending.pop(key, None)
            # k-th call of this module in the current forward pass; a call outside the model's
            # own forward (model.block(x)) counts as the first, so sites stay bounded
            k = self._calls.get(key, 0) if self._in_forward else 0
            self._calls[key] = k + 1
            if not (
                args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor)
            ):
                return
            inp = args[0]
            aliased = output.untyped_storage().data_ptr() == inp.untyped_storage().data_ptr()
            self._aliases[key] = aliased
            pre = (saved if aliased else inp) if output.shape == inp.shape else None
            dim = self.unit_dim
            if dim is None:  # channels after a Conv, the last axis after a Linear
                dim = 1 if self._after == "conv" else -1
            units = 1 if output.ndim == 0 else int(output.shape[-1 if output.ndim <= 2 else dim])
            site = self._sites.get((key, k, units))
            if site is None:
                shown = name if k == 0 else f"{name}#{k}"
                order = next(self._order)
                site = _Site(shown, label, order, units, dim, derivative, saturation, bounds, self)
                self._sites[(key, k, units)] = site
            with torch.no_grad():
                site.update(pre, output)

        return hook

    def _weight_hook(self, name: str) -> Callable:
        def hook(mod: nn.Module, args: Any, output: Any) -> None:
            self._after = "linear" if isinstance(mod, nn.Linear) else "conv"
            w = self._weights.get(id(mod))
            if w is None:
                w = self._weights[id(mod)] = _Weights(name, mod, next(self._order))
            weight = mod.weight
            # hook the weight tensor itself: it sees each backward pass's gradient before
            # accumulation into .grad, so zero_grad patterns and accumulation do not matter
            if not w.hooked and weight.requires_grad and not _uninitialised(weight):
                self._handles.append(weight.register_hook(_grad_hook(w)))
                w.hooked = True

        return hook

    # results --------------------------------------------------------------------------------------

    def watched(self) -> dict[str, list[str]]:
        """Names of the modules this monitor hooks: {"activations": [...], "weights": [...]}."""
        if not (self._acts or self._weight_modules):
            return {}
        return {
            "activations": [name for name, *_ in self._acts],
            "weights": [name for name, _ in self._weight_modules],
        }

    def nbytes(self) -> int:
        """Bytes of tensor state held (per-unit counts and histogram buffers): flat over batches."""
        return sum(s.nbytes() for s in self._sites.values()) + sum(
            t.numel() * t.element_size() for t in self._pending.values()
        )

    def report(self) -> Report:
        acts = [s.result() for s in self._sites.values()]
        order = {id(a): s.order for a, s in zip(acts, self._sites.values(), strict=True)}
        ws = sorted(self._weights.values(), key=lambda w: w.order)
        last = next((w.mean for w in reversed(ws) if w.mean is not None), None)
        weights = [
            WeightLayer(
                name=w.name,
                type=w.type,
                shape=w.shape,
                steps=w.steps,
                grad_norm=w.mean,
                last_grad_norm=w.last,
                ratio_to_last=(
                    w.mean / last if w.mean is not None and last and math.isfinite(last) else None
                ),
            )
            for w in ws
        ]
        for w, src in zip(weights, ws, strict=True):
            order[id(w)] = src.order
        layers = tuple(sorted([*acts, *weights], key=lambda x: order[id(x)]))
        return Report(
            layers=layers,
            verdicts=tuple(_verdicts(acts, weights)),
            notes=tuple(self._notes(acts, weights)),
            forwards=self._forwards,
            backwards=ws[-1].steps if ws else 0,
        )

    def _notes(self, acts: list[ActivationLayer], weights: list[WeightLayer]) -> list[str]:
        notes = []
        n_weight = len(self._weight_modules)
        if n_weight and not self._acts:
            notes.append(FUNCTIONAL_NOTE.format(n=n_weight))
        elif self._acts and not acts and weights:
            names = ", ".join(sorted({n for n, *_ in self._acts}))
            notes.append(
                f"activation module(s) {names} never ran although the weight layers did: forward() "
                "probably calls activations as functions (F.relu); see actlab.torch.build/swap"
            )
        if not self._acts and not n_weight:
            notes.append(
                "nothing to monitor: the model has no activation modules and no Linear/Conv layers"
            )
        if self._forwards == 0:
            notes.append(
                "no forward pass was seen: run the model inside the `with Monitor(...)` block"
            )
        elif weights and all(w.steps == 0 for w in weights):
            notes.append(
                "no gradient was seen: call loss.backward() inside the `with` block "
                "(gradient norms and the vanishing/exploding verdicts need it)"
            )
        for a in acts:
            if a.nonfinite:
                notes.append(f"{a.name}: {a.nonfinite} NaN/inf outputs (left out of mean/std)")
        return notes


def _uninitialised(t: torch.Tensor) -> bool:
    return isinstance(t, nn.parameter.UninitializedParameter)


def _grad_hook(w: _Weights) -> Callable[[torch.Tensor], None]:
    def hook(grad: torch.Tensor) -> None:
        w.add(grad)

    return hook


def _derivative_fn(module: nn.Module, act: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """f'(x) elementwise: the catalog's kernel for known parameter-free activations; autograd
    through the module itself for learnable (PReLU) and user activations; None for softmax."""
    if act is not None and not act.spec.elementwise:
        return None
    if act is not None and not any(True for _ in module.parameters(recurse=False)):

        def catalog(x: torch.Tensor) -> torch.Tensor:
            arr = x.detach().to("cpu", torch.float32 if x.dtype != torch.float64 else x.dtype)
            return torch.from_numpy(np.asarray(act.derivative(arr.numpy()))).to(x.device)

        return catalog

    def autograd(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            y = module.forward(xg.clone())  # .forward: no hooks; clone: in-place modules are fine
            (g,) = torch.autograd.grad(y, xg, torch.ones_like(y))
        return g

    return autograd


def _verdicts(acts: list[ActivationLayer], weights: list[WeightLayer]) -> list[Verdict]:
    out = []
    measured = [w for w in weights if w.grad_norm is not None]
    bad = [w for w in measured if not math.isfinite(w.grad_norm)]  # type: ignore[arg-type]
    if bad:
        out.append(
            Verdict(
                "exploding",
                bad[0].name,
                math.inf,
                EXPLODING,
                f"the gradient norm of {bad[0].name} became inf/NaN",
                ADVICE["exploding"],
                ADVICE_RULES["exploding"],
            )
        )
    elif len(measured) >= 2 and measured[0].ratio_to_last is not None:
        first, last = measured[0], measured[-1]
        ratio = first.ratio_to_last
        if ratio < VANISHING:
            out.append(
                Verdict(
                    "vanishing",
                    None,
                    ratio,
                    VANISHING,
                    f"the first layer's gradient ({first.name}) is {ratio:.2g} x the last "
                    f"layer's ({last.name}); threshold < {VANISHING:g}",
                    ADVICE["vanishing"],
                    ADVICE_RULES["vanishing"],
                )
            )
        elif ratio > EXPLODING:
            out.append(
                Verdict(
                    "exploding",
                    None,
                    ratio,
                    EXPLODING,
                    f"the first layer's gradient ({first.name}) is {ratio:.3g} x the last "
                    f"layer's ({last.name}); threshold > {EXPLODING:g}",
                    ADVICE["exploding"],
                    ADVICE_RULES["exploding"],
                )
            )
    for a in acts:
        if a.dead_fraction is not None and a.dead_fraction > DEAD:
            out.append(
                Verdict(
                    "dead",
                    a.name,
                    a.dead_fraction,
                    DEAD,
                    f"{a.dead_fraction:.0%} of {a.units} {a.activation} units never passed a "
                    f"gradient on {a.samples} samples; threshold > {DEAD:.0%}",
                    ADVICE["dead"],
                    ADVICE_RULES["dead"],
                )
            )
        if a.saturated_fraction is not None and a.saturated_fraction > SATURATED:
            out.append(
                Verdict(
                    "saturated",
                    a.name,
                    a.saturated_fraction,
                    SATURATED,
                    f"{a.saturated_fraction:.0%} of {a.units} {a.activation} units have "
                    f"|f'| < {SATURATION:g} on most samples; threshold > {SATURATED:.0%}",
                    ADVICE["saturated"],
                    ADVICE_RULES["saturated"],
                )
            )
    return out


# --- figures ------------------------------------------------------------------------------------


def gradient_flow_figure(
    series: Mapping[str, Sequence[float | None]],
    layers: Sequence[str] | None = None,
    title: str = "Gradient norm per weight layer",
    *,
    reference: float | None = None,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Figure:
    """Gradient norm per weight layer (input -> output) on a log scale, one line per series.

    Plain data in, so the compare report can draw its per-layer figures with it too. With
    ``reference`` (the last layer's norm) the vanishing/exploding thresholds are drawn around it;
    ``styles`` maps a series to matplotlib line properties (colour, linestyle, ...).
    """
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    n = max((len(v) for v in series.values()), default=0)
    for label, values in series.items():
        y = np.array([np.nan if v is None or not v > 0 else v for v in values], dtype=float)
        style = {"marker": "o", **dict((styles or {}).get(label, {}))}
        ax.plot(np.arange(1, len(y) + 1), y, label=label or None, **style)
    if reference is not None and reference > 0 and math.isfinite(reference):
        for factor, text in ((VANISHING, "vanishing below"), (EXPLODING, "exploding above")):
            ax.axhline(reference * factor, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                f"{text} ({factor:g} x last)",
                (0.01, reference * factor),
                xycoords=("axes fraction", "data"),
                fontsize="x-small",
                color="grey",
                va="bottom",
            )
    ax.set_yscale("log")
    ax.set_xlabel("weight layer (input → output)")
    ax.set_ylabel("gradient L2 norm (log scale)")
    if layers is not None and len(layers) == n and n <= 16:
        ax.set_xticks(np.arange(1, n + 1), layers, rotation=45, ha="right", fontsize="small")
    elif n:
        ax.set_xticks(np.arange(1, n + 1))
    ax.grid(True, which="both", alpha=0.3)
    if any(series):
        ax.legend(fontsize="small")
    ax.set_title(title)
    return fig


def histogram_figure(
    layers: Sequence[ActivationLayer], title: str = "Activation outputs over time"
) -> Figure:
    """The "colorful dimension" picture: per layer, the output histogram of each batch as a column.

    Brightness is the (log) share of outputs in a bin. A healthy layer shows a broad band; a band
    collapsing onto 0 is dying ReLU, onto the bounds is saturation.
    """
    n = max(len(layers), 1)
    fig = Figure(figsize=(7.5, 1.6 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    images = []
    for ax, layer in zip(axes, layers, strict=False):
        h = np.asarray(layer.hist, dtype=float)
        if h.size == 0:
            ax.set_axis_off()
            continue
        share = h / np.maximum(h.sum(axis=1, keepdims=True), 1.0)
        shown = np.where(share > 0, share, np.nan)
        end = h.shape[0] * layer.hist_stride
        im = ax.imshow(
            shown.T,
            origin="lower",
            aspect="auto",
            cmap="viridis",
            norm=LogNorm(vmin=1e-4, vmax=1.0),
            extent=(0, end, layer.hist_edges[0], layer.hist_edges[-1]),
            interpolation="nearest",
        )
        images.append(im)
        ax.set_ylabel("output", fontsize="small")
        ax.set_title(f"{layer.name}: {layer.activation}", fontsize="small", loc="left")
    axes[-1].set_xlabel("batch")
    if images:
        fig.colorbar(images[-1], ax=list(axes), label="share of outputs (log)", shrink=0.8)
    fig.suptitle(title)
    return fig


# --- demos and user models ------------------------------------------------------------------------

INITS = ("paper", "standard", "he", "glorot", "lecun")


def _init_layer(layer: nn.Linear, init: str, act: Any, gen: torch.Generator, bias: float) -> None:
    fan_in = layer.weight.shape[1]
    if init == "paper":  # Glorot & Bengio's setting: He for the ReLU family, else 'standard'
        init = "he" if act.spec.recommended_init == "he" else "standard"
    with torch.no_grad():
        if init == "standard":  # U(+-1/sqrt(fan_in)): PyTorch's default and the paper's "standard"
            bound = 1.0 / math.sqrt(fan_in)
            layer.weight.uniform_(-bound, bound, generator=gen)
        elif init == "he":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=gen)
        elif init == "glorot":
            nn.init.xavier_uniform_(layer.weight, generator=gen)
        else:  # lecun
            nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(fan_in), generator=gen)
        layer.bias.fill_(bias)


def _mlp(
    n_in: int, n_out: int, depth: int, width: int, act: Any, init: str, seed: int, bias: float = 0.0
) -> nn.Sequential:
    from actlab.torch import build

    gen = torch.Generator().manual_seed(seed)
    mods: list[nn.Module] = []
    for i in range(depth):
        lin = nn.Linear(n_in if i == 0 else width, width)
        _init_layer(lin, init, act, gen, bias)
        mods += [lin, build(act)]
    out = nn.Linear(width if depth else n_in, n_out)
    _init_layer(out, init, act, gen, 0.0)
    mods.append(out)
    return nn.Sequential(*mods)


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not low <= value <= high
    ):
        raise ActlabError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ActlabError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _tensors(split: Any) -> tuple[torch.Tensor, ...]:
    return (
        torch.as_tensor(split.X_train),
        torch.as_tensor(split.y_train),
        torch.as_tensor(split.X_val),
        torch.as_tensor(split.y_val),
    )


def _loss(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return nn.functional.cross_entropy if task == "classification" else nn.functional.mse_loss


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        # the count is exact; Python's division equals a float64 mean (and MPS has no float64)
        acc = int((model(X).argmax(dim=1) == y).sum()) / len(y)
    model.train(was)
    return acc


def _train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    gen: torch.Generator,
    loss_fn: Callable,
) -> float:
    perm = torch.randperm(len(X), generator=gen)
    total = 0.0
    steps = 0
    for start in range(0, len(X), batch_size):
        idx = perm[start : start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1)


def _gradient_report(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    batches: int,
    loss_fn: Callable,
) -> Report:
    """Forward + backward over the first ``batches`` batches without an update."""
    with Monitor(model) as mon:
        for b in range(batches):
            xb, yb = (
                X[b * batch_size : (b + 1) * batch_size],
                y[b * batch_size : (b + 1) * batch_size],
            )
            if len(xb) == 0:
                break
            model.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
    model.zero_grad(set_to_none=True)
    return mon.report()


@dataclass(frozen=True, eq=False)
class VanishingRun:
    activation: str
    init: str
    phase: str  # "init" or "trained"
    epoch: int
    val_accuracy: float
    report: Report

    @property
    def grad_norms(self) -> list[float | None]:
        return [w.grad_norm for w in self.report.weights]

    @property
    def ratio(self) -> float | None:
        return self.report.first_last_ratio


@dataclass(frozen=True, eq=False)
class VanishingDemo:
    """Gradient norm per layer of deep MLPs on digits, at initialisation and after training."""

    depth: int
    width: int
    epochs: int
    runs: tuple[VanishingRun, ...]
    layers: tuple[str, ...] = field(default=())

    def run(self, activation: str, phase: str = "init") -> VanishingRun:
        from actlab.catalog import parse

        key = str(parse(activation))
        for r in self.runs:
            if r.activation == key and r.phase == phase:
                return r
        raise ActlabError(
            f"no run for {activation!r} at {phase!r}; have "
            + ", ".join(sorted({f"{r.activation}@{r.phase}" for r in self.runs}))
        )

    def ratio(self, activation: str, phase: str = "init") -> float | None:
        return self.run(activation, phase).ratio

    def table(self) -> list[dict[str, Any]]:
        """Tidy: one row per (activation, phase, weight layer)."""
        return [
            {
                "activation": r.activation,
                "init": r.init,
                "phase": r.phase,
                "epoch": r.epoch,
                "layer": w.name,
                "layer_index": i,
                "grad_norm": w.grad_norm,
                "ratio_to_last": w.ratio_to_last,
            }
            for r in self.runs
            for i, w in enumerate(r.report.weights)
        ]

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "activation": r.activation,
                "init": r.init,
                "phase": r.phase,
                "epoch": r.epoch,
                "first_last_ratio": r.ratio,
                "val_accuracy": r.val_accuracy,
                "verdicts": sorted(r.report.problems()),
            }
            for r in self.runs
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "demo": "vanishing",
            "depth": self.depth,
            "width": self.width,
            "epochs": self.epochs,
            "thresholds": dict(THRESHOLDS),
            "summary": self.summary(),
            "layers": self.table(),
            "verdicts": {
                f"{r.activation}@{r.phase}": [vars(v).copy() for v in r.report.verdicts]
                for r in self.runs
            },
        }

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        grid = Table(
            title=f"Gradient norm per weight layer, {self.depth} hidden layers x {self.width}",
            caption="first/last < 1e-2: vanishing; > 1e2: exploding",
        )
        grid.add_column("layer")
        for r in self.runs:
            grid.add_column(f"{r.activation}\n{r.init}\n{r.phase}", justify="right")
        for i, name in enumerate(self.layers):
            grid.add_row(name, *[_num(r.grad_norms[i], ".2e") for r in self.runs])
        grid.add_row(
            "[bold]first/last[/]",
            *[_ratio_cell(r.ratio) for r in self.runs],
        )
        grid.add_row("val accuracy", *[f"{r.val_accuracy:.1%}" for r in self.runs])
        summary = Table(
            title="Verdicts",
            caption="Glorot & Bengio (2010): through sigmoid layers with the standard init the "
            "first layer's gradient is orders of magnitude below the last's; ReLU with He init "
            "keeps it within an order of magnitude.",
        )
        for col in ("activation", "init", "phase", "first/last", "verdicts"):
            summary.add_column(col)
        for r in self.runs:
            summary.add_row(
                r.activation, r.init, r.phase, _ratio_cell(r.ratio), _verdict_summary(r.report)
            )
        return Group(grid, summary)

    def figures(self) -> dict[str, Figure]:
        series, styles = {}, {}
        colours = {a: f"C{i}" for i, a in enumerate(dict.fromkeys(r.activation for r in self.runs))}
        for r in self.runs:
            key = f"{r.activation} ({r.init}), {r.phase}"
            series[key] = r.grad_norms
            styles[key] = {
                "color": colours[r.activation],
                "linestyle": "-" if r.phase == "init" else "--",
                "marker": "o" if r.phase == "init" else "s",
            }
        fig = gradient_flow_figure(
            series,
            list(self.layers),
            f"Gradient flow, {self.depth} hidden layers (Glorot & Bengio 2010)",
            styles=styles,
        )
        return {"gradient_flow": fig}


def _verdict_summary(report: Report) -> str:
    """One cell: 'vanishing; dead: 13 (20%), 15 (14%)' or 'healthy'."""
    parts = []
    for problem in ("vanishing", "exploding", "dead", "saturated"):
        vs = [v for v in report.verdicts if v.problem == problem]
        if not vs:
            continue
        layers = [f"{v.layer} ({v.value:.0%})" for v in vs if v.layer is not None]
        parts.append(f"[red]{problem}[/]" + (": " + ", ".join(layers) if layers else ""))
    return "; ".join(parts) or "[green]healthy[/]"


def _ratio_cell(r: float | None) -> str:
    if r is None:
        return "–"
    text = f"{r:.2g}"
    return f"[bold red]{text}[/]" if not VANISHING <= r <= EXPLODING else f"[green]{text}[/]"


def _activations(activations: str | Iterable[Any], default: Sequence[str]) -> list[Any]:
    from actlab.catalog import parse, parse_many

    if activations is None:
        activations = default
    if isinstance(activations, str):
        return parse_many(activations)
    acts = [parse(a) for a in activations]
    if not acts:
        raise ActlabError("activations is empty; give at least one, e.g. 'sigmoid,tanh,relu'")
    for a in acts:
        if not a.spec.elementwise:
            raise ActlabError(
                f"{a.name} is not a hidden-layer activation (it normalises over an axis); "
                "use an elementwise one such as relu or tanh"
            )
    return acts


def _digits(dataset: str, seed: int) -> Any:
    from actlab import data

    return data.split(data.load(dataset), seed=seed)


def demo_vanishing(
    depth: int = 10,
    activations: str | Iterable[Any] = ("sigmoid", "tanh", "relu"),
    *,
    width: int = 64,
    epochs: int = 3,
    init: str = "paper",
    lr: float = 1e-3,
    batch_size: int = 64,
    batches: int = 8,
    seed: int = 0,
    dataset: str = "digits",
    device: str | torch.device = "auto",
) -> VanishingDemo:
    """Deep MLPs, one per activation: gradient norm per layer at initialisation and after training.

    ``init="paper"`` is Glorot & Bengio's (2010) comparison: sigmoid/tanh with the 'standard'
    U(±1/sqrt(fan_in)) initialisation (PyTorch's default), the ReLU family with He initialisation.
    Gradients are measured by forward + backward over the first ``batches`` training batches (no
    update) before training and after ``epochs`` epochs of Adam. ``device``: see
    :func:`actlab.devices.resolve` (networks are initialised on the CPU, then moved).
    """
    depth = _check_int("depth", depth, 1, 100)
    width = _check_int("width", width, 1, 4096)
    epochs = _check_int("epochs", epochs, 0, 1000)
    batch_size = _check_int("batch_size", batch_size, 1, 1_000_000)
    batches = _check_int("batches", batches, 1, 100_000)
    lr = _check_float("lr", lr, 0.0, 10.0)
    if init not in INITS:
        raise ActlabError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    acts = _activations(activations, ("sigmoid", "tanh", "relu"))
    dev = resolve_device(device)
    split = _digits(dataset, seed)
    if split.task != "classification":
        raise ActlabError(f"the vanishing demo needs a classification dataset, got {dataset!r}")
    Xtr, ytr, Xva, yva = (t.to(dev) for t in _tensors(split))
    loss_fn = _loss(split.task)
    runs = []
    with torch.random.fork_rng(devices=[]):
        for act in acts:
            used = init
            if init == "paper":
                used = "he" if act.spec.recommended_init == "he" else "standard"
            model = _mlp(Xtr.shape[1], split.n_classes, depth, width, act, used, seed).to(dev)
            rep = _gradient_report(model, Xtr, ytr, batch_size, batches, loss_fn)
            runs.append(VanishingRun(str(act), used, "init", 0, _accuracy(model, Xva, yva), rep))
            if epochs:
                opt = torch.optim.Adam(model.parameters(), lr=lr)
                gen = torch.Generator().manual_seed(seed)
                for _ in range(epochs):
                    _train_epoch(model, opt, Xtr, ytr, batch_size, gen, loss_fn)
                rep = _gradient_report(model, Xtr, ytr, batch_size, batches, loss_fn)
                runs.append(
                    VanishingRun(str(act), used, "trained", epochs, _accuracy(model, Xva, yva), rep)
                )
    layers = tuple(
        f"{weight_label(k, w.name)} ({w.shape[1]}→{w.shape[0]})"
        for k, w in enumerate(runs[0].report.weights, start=1)
    )
    return VanishingDemo(depth, width, epochs, tuple(runs), layers)


@dataclass(frozen=True, eq=False)
class DyingDemo:
    """Dead fraction per hidden layer over training, each activation on the same pushed setup."""

    depth: int
    width: int
    lr: float
    bias: float
    optimizer: str
    activations: tuple[str, ...]
    # per activation: per epoch (0 = initialisation) the validation-set report
    reports: Mapping[str, tuple[Report, ...]]
    val_accuracy: Mapping[str, tuple[float, ...]]
    train_loss: Mapping[str, tuple[float, ...]]  # per epoch; nan at epoch 0

    def dead(self, activation: str, epoch: int = -1) -> list[float | None]:
        """Dead fraction per hidden layer at ``epoch`` (-1: the last)."""
        from actlab.catalog import parse

        key = str(parse(activation))
        if key not in self.reports:
            raise ActlabError(f"no run for {activation!r}; have {', '.join(self.reports)}")
        return [a.dead_fraction for a in self.reports[key][epoch].activations]

    def mean_dead(self, activation: str, epoch: int = -1) -> float:
        values = [v for v in self.dead(activation, epoch) if v is not None]
        return float(np.mean(values)) if values else float("nan")

    def table(self) -> list[dict[str, Any]]:
        """Tidy: one row per (activation, epoch, hidden layer)."""
        rows = []
        for act, reps in self.reports.items():
            for epoch, rep in enumerate(reps):
                for i, a in enumerate(rep.activations):
                    rows.append(
                        {
                            "activation": act,
                            "epoch": epoch,
                            "layer": a.name,
                            "layer_index": i,
                            "dead_fraction": a.dead_fraction,
                            "saturated_fraction": a.saturated_fraction,
                            "val_accuracy": self.val_accuracy[act][epoch],
                            "train_loss": self.train_loss[act][epoch],
                        }
                    )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "demo": "dying-relu",
            "depth": self.depth,
            "width": self.width,
            "lr": self.lr,
            "bias": self.bias,
            "optimizer": self.optimizer,
            "thresholds": dict(THRESHOLDS),
            "rows": self.table(),
            "verdicts": {
                act: [vars(v).copy() for v in reps[-1].verdicts]
                for act, reps in self.reports.items()
            },
            "caveats": self.caveats(),
        }

    def caveats(self) -> list[str]:
        """Plain words when this run's numbers undercut the demo's lesson (an alternative that
        also ends badly): the push that kills ReLU units can break the others too.

        With the defaults (Adam, lr 0.1) ELU ends with its last layer 100% dead at 10% accuracy;
        with lr 0.01 and bias -1 (measured, seed 0, 5 epochs) ReLU still loses 16% of its units
        and ends at 64% accuracy while LeakyReLU (0% dead, 71%) and ELU (0% dead, 96%) keep theirs.
        """
        base = self.val_accuracy["relu"][-1] if "relu" in self.val_accuracy else None
        lines = []
        for act in self.activations:
            if act == "relu":
                continue
            acc = self.val_accuracy[act][-1]
            dead = [v for v in self.dead(act) if v is not None]
            worst = max(dead, default=0.0)
            bad = acc < 0.5 or (base is not None and acc < base - 0.05) or worst > DEAD
            if not bad:
                continue
            what = f"{act} ends at {acc:.0%} validation accuracy"
            if worst > DEAD:
                what += f" with up to {worst:.0%} of a layer's units dead"
            lines.append(what)
        if not lines:
            return []
        them = "it" if len(lines) == 1 else "them"
        return [
            "; ".join(lines) + f": {self.optimizer} at lr {self.lr:g} is too high for {them} as "
            "well, so this run shows how ReLU units die, not which activation trains best. Try "
            "--lr 0.01 --bias -1 (ReLU still loses units, the others keep theirs and train "
            "better), or 'actlab compare' for an accuracy comparison"
        ]
        return lines

    def render(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table

        from actlab.catalog import get as get_spec

        epochs = len(next(iter(self.reports.values())))
        table = Table(
            title=(
                f"Dead units per hidden layer over training ({self.optimizer}, lr {self.lr:g}, "
                f"bias init {self.bias:g}); measured on the validation set"
            ),
            caption_justify="left",
            caption=f"dead: f' = 0 on every validation sample (no gradient reaches the unit, so "
            f"it cannot recover); verdict above {DEAD:.0%}"
            + "".join(
                f"\n[yellow]{act} diverged (loss inf/NaN) in epoch {e}[/]"
                for act, losses in self.train_loss.items()
                if (e := next((i for i, v in enumerate(losses) if i and not math.isfinite(v)), 0))
            )
            + "".join(
                f"\n{act}: f' is exactly 0 only where it underflows (e.g. exp(x) = 0 in float32 "
                "below x = -104): those units are pushed so far negative that they are stuck too"
                for act in self.activations
                if get_spec(act).family != "relu" and self.mean_dead(act) > 0
            )
            + "".join(f"\n[yellow]{escape(line)}[/]" for line in self.caveats()),
        )
        table.add_column("activation")
        table.add_column("layer")
        for e in range(epochs):
            table.add_column("init" if e == 0 else f"ep {e}", justify="right")
        for act, reps in self.reports.items():
            for i in range(len(reps[0].activations)):
                cells = [_pct(r.activations[i].dead_fraction, DEAD) for r in reps]
                table.add_row(act if i == 0 else "", f"hidden {i + 1}", *cells)
            table.add_row("", "val accuracy", *[f"{v:.0%}" for v in self.val_accuracy[act]])
            table.add_section()
        return Group(table)

    def figures(self) -> dict[str, Figure]:
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
        axes = fig.subplots(1, len(self.reports), sharey=True, squeeze=False)[0]
        for ax, (act, reps) in zip(axes, self.reports.items(), strict=True):
            for i in range(len(reps[0].activations)):
                ys = [r.activations[i].dead_fraction for r in reps]
                ax.plot(
                    range(len(reps)),
                    [np.nan if v is None else v for v in ys],
                    marker="o",
                    label=f"hidden {i + 1}",
                )
            ax.set_title(act)
            ax.set_xlabel("epoch")
            ax.axhline(DEAD, color="grey", linestyle=":", linewidth=1)
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel("dead fraction")
        axes[0].set_ylim(-0.02, 1.02)
        axes[-1].legend(fontsize="small")
        fig.suptitle("Dying ReLU: dead units per layer over training")
        return {"dead_fraction": fig}


def demo_dying(
    activations: str | Iterable[Any] = ("relu", "leaky_relu", "elu"),
    *,
    depth: int = 4,
    width: int = 64,
    epochs: int = 5,
    lr: float = 0.1,
    bias: float = 0.0,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
    dataset: str = "digits",
    device: str | torch.device = "auto",
) -> DyingDemo:
    """Push ReLU networks into dying beside alternatives on the same setup.

    The push is a too-high learning rate (Adam at 0.1, 100x its usual 1e-3); a negative ``bias``
    for the hidden layers pushes further (units start half-dead). Every activation gets the same
    network, He initialisation, optimizer, learning rate and data order. At initialisation and
    after each epoch a fresh :class:`Monitor` measures the dead fraction per layer on the
    validation set (eval mode). Expect ReLU to lose most of its units for good while LeakyReLU
    keeps them all (its gradient is never 0); the learning rate still hurts everyone's accuracy.
    """
    depth = _check_int("depth", depth, 1, 100)
    width = _check_int("width", width, 1, 4096)
    epochs = _check_int("epochs", epochs, 1, 1000)
    batch_size = _check_int("batch_size", batch_size, 1, 1_000_000)
    lr = _check_float("lr", lr, 0.0, 100.0)
    bias = _check_float("bias", bias, -100.0, 100.0)
    if optimizer not in ("sgd", "adam"):
        raise ActlabError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    acts = _activations(activations, ("relu", "leaky_relu", "elu"))
    dev = resolve_device(device)
    split = _digits(dataset, seed)
    if split.task != "classification":
        raise ActlabError(f"the dying-ReLU demo needs a classification dataset, got {dataset!r}")
    Xtr, ytr, Xva, yva = (t.to(dev) for t in _tensors(split))
    loss_fn = _loss(split.task)
    reports: dict[str, tuple[Report, ...]] = {}
    accs: dict[str, tuple[float, ...]] = {}
    losses: dict[str, tuple[float, ...]] = {}
    with torch.random.fork_rng(devices=[]):
        for act in acts:
            model = _mlp(Xtr.shape[1], split.n_classes, depth, width, act, "he", seed, bias)
            model = model.to(dev)
            opt: torch.optim.Optimizer = (
                torch.optim.SGD(model.parameters(), lr=lr)
                if optimizer == "sgd"
                else torch.optim.Adam(model.parameters(), lr=lr)
            )
            gen = torch.Generator().manual_seed(seed)
            reps, acc, loss = [_eval_report(model, Xva)], [_accuracy(model, Xva, yva)], [math.nan]
            for _ in range(epochs):
                loss.append(_train_epoch(model, opt, Xtr, ytr, batch_size, gen, loss_fn))
                reps.append(_eval_report(model, Xva))
                acc.append(_accuracy(model, Xva, yva))
            reports[str(act)], accs[str(act)], losses[str(act)] = (
                tuple(reps),
                tuple(acc),
                tuple(loss),
            )
    return DyingDemo(depth, width, lr, bias, optimizer, tuple(reports), reports, accs, losses)


def _eval_report(model: nn.Module, X: torch.Tensor) -> Report:
    was = model.training
    model.eval()
    with Monitor(model) as mon, torch.no_grad():
        model(X)
    model.train(was)
    return mon.report()


def load_model(ref: str, activation: str | None = None) -> nn.Module:
    """Import ``module:function`` (or ``path/to/file.py:function``) and call it to get the model.

    A function taking a required argument is called with the activation spec string (the compare
    command's convention, ``function(spec) -> nn.Module``); ``activation`` defaults to 'relu' there.
    """
    from actlab.usercode import load_function

    func = load_function(ref)
    func_name = ref.rpartition(":")[2]
    try:
        params = inspect.signature(func).parameters.values()
        needs_arg = any(
            p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in params
        )
    except (TypeError, ValueError):
        needs_arg = False
    if not needs_arg and activation is not None:
        raise ActlabError(
            f"--activation was given but {func_name}() takes no argument; define "
            f"{func_name}(activation) to build the model with a chosen activation"
        )
    spec = None
    if needs_arg:
        from actlab.catalog import parse

        spec = str(parse(activation or "relu"))
    try:
        model = func(spec) if needs_arg else func()
    except ActlabError:
        raise
    except Exception as err:  # the user's code failed: one line, as compare says it
        call = f"{func_name}({spec!r})" if needs_arg else f"{func_name}()"
        raise ActlabError(
            f"--model: {ref}: {call} raised {type(err).__name__}: {err}; fix the function "
            "(it must return a torch.nn.Module)"
        ) from None
    if not isinstance(model, nn.Module):
        raise ActlabError(
            f"--model: {ref} returned {type(model).__name__}, expected a torch.nn.Module"
        )
    return model


def diagnose_model(
    model: nn.Module,
    split: Any,
    *,
    batches: int = 50,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    monitor_options: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> Report:
    """Train ``model`` for ``batches`` Adam steps on ``split`` (an :class:`actlab.data.Split`)
    under a Monitor and return its report; ``lr=0`` measures without changing the weights.

    Cross-entropy on logits for classification (the model must output one logit per class), MSE
    for regression (one output). ``device`` (see :func:`actlab.devices.resolve`) moves the model
    there first; ``None`` leaves it where it is (the data follow the model).
    """
    if not isinstance(model, nn.Module):
        raise ActlabError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batches = _check_int("batches", batches, 1, 10_000_000)
    batch_size = _check_int("batch_size", batch_size, 1, 1_000_000)
    lr = _check_float("lr", lr, 0.0, 100.0)
    if device is not None:
        model = model.to(resolve_device(device))
    Xtr, ytr, _, _ = _tensors(split)
    ref = next((p for p in model.parameters() if p.is_floating_point()), None)
    if ref is not None:
        Xtr, ytr = Xtr.to(ref.device, ref.dtype), ytr.to(ref.device)
        if split.task == "regression":
            ytr = ytr.to(ref.dtype)
    loss_fn = _loss(split.task)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr) if params and lr > 0 else None
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(Xtr), generator=gen)
    monitor = Monitor(model, **dict(monitor_options or {}))
    if not monitor.watched():
        raise ActlabError(
            f"nothing to diagnose in {type(model).__name__}: it has no activation module and no "
            "Linear/Conv layer; build it from torch.nn modules (activations as modules, e.g. "
            "nn.ReLU(), not F.relu)"
        )
    model.train()
    with monitor as mon:
        pos = 0
        for step in range(batches):
            if pos >= len(perm):
                perm, pos = torch.randperm(len(Xtr), generator=gen), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            xb, yb = Xtr[idx], ytr[idx]
            try:
                out = model(xb)
            except Exception as err:
                if step:
                    raise
                raise ActlabError(
                    f"the model failed on a batch of shape {tuple(xb.shape)} from {split.name!r} "
                    f"({split.X_train.shape[1]} features): {type(err).__name__}: {err}"
                ) from None
            if step == 0:
                _check_output(out, split)
            if split.task == "regression" and out.ndim == 1:
                out = out[:, None]
            loss = loss_fn(out, yb)
            if not params:
                continue
            model.zero_grad(set_to_none=True)
            loss.backward()
            if opt is not None:
                opt.step()
    return mon.report()


def _check_output(out: Any, split: Any) -> None:
    want = split.n_classes if split.task == "classification" else 1
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    ok = shape is not None and (
        (len(shape) == 2 and shape[1] == want) or (split.task == "regression" and len(shape) == 1)
    )
    if not ok:
        what = (
            f"{want} logits per row (one per class of {split.name!r})"
            if split.task == "classification"
            else "one value per row (regression)"
        )
        raise ActlabError(
            f"the model's output has shape {shape}, expected (batch, {want}): {what}; "
            "change the last layer's size"
        )
