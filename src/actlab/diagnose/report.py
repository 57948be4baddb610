"""What a diagnosis found: per-layer records, verdicts against the thresholds, tables, figures.

The thresholds and the advice that goes with each problem live here; :class:`Report` renders
(rich table, dict, caption) and draws (:func:`gradient_flow_figure`, :func:`histogram_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from actlab.health import MAJORITY, SATURATION

VANISHING = 1e-2  # first/last weight-gradient norm ratio below this: vanishing gradients
EXPLODING = 1e2  # ... above this: exploding gradients
DEAD = 0.10  # more than this fraction of a layer's units dead: a problem
SATURATED = 0.50  # more than this fraction saturated: a problem

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
