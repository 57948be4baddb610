"""Showing a diagnosis: rich tables and matplotlib figures drawn from the plain results.

The results (:class:`~actlab.diagnose.report.Report`, the demos' :class:`VanishingDemo` and
:class:`DyingDemo`) are plain data; as scikit-learn's ``*Display`` objects draw an estimator's
results, this module draws them: :func:`render` gives a rich renderable, :func:`figures` the
matplotlib figures by name. Only here are rich and matplotlib imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from actlab.catalog import get as get_spec
from actlab.diagnose.demos import DyingDemo, VanishingDemo
from actlab.diagnose.report import (
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

__all__ = ["figures", "gradient_flow_figure", "histogram_figure", "render"]


def render(result: Report | VanishingDemo | DyingDemo, title: str | None = None) -> Any:
    """A rich renderable of a report (``title`` above it) or a demo (their ``table()`` methods
    give the tidy rows)."""
    if isinstance(result, VanishingDemo):
        return _vanishing_table(result)
    if isinstance(result, DyingDemo):
        return _dying_table(result)
    return _report_table(result, title)


def figures(result: Report | VanishingDemo | DyingDemo) -> dict[str, Figure]:
    """The figures by name: a report's ``gradient_flow`` and ``activations`` (histograms over
    time), the vanishing demo's ``gradient_flow``, the dying demo's ``dead_fraction``."""
    if isinstance(result, VanishingDemo):
        return {"gradient_flow": _vanishing_figure(result)}
    if isinstance(result, DyingDemo):
        return {"dead_fraction": _dying_figure(result)}
    ws = result.weights
    last = next((w.grad_norm for w in reversed(ws) if w.grad_norm is not None), None)
    labels = [weight_label(k, w.name) for k, w in enumerate(ws, start=1)]
    flow = gradient_flow_figure({"": [w.grad_norm for w in ws]}, labels, reference=last)
    return {"gradient_flow": flow, "activations": histogram_figure(result.activations)}


# --- a report -------------------------------------------------------------------------------------


def _report_table(report: Report, title: str | None) -> Table:
    grid = Table(title=title, caption=_caption(report), caption_justify="left")
    for col in ("layer", "type", "grad norm", "÷ last", "out mean", "out std", "dead", "saturated"):
        grid.add_column(col, justify="left" if col in ("layer", "type") else "right")
    number = {"weight": 0, "activation": 0}  # weight layers and activations, each from 1
    for x in report.layers:
        number[x.kind] += 1
        if isinstance(x, WeightLayer):
            cells = [x.type, _num(x.grad_norm), _num(x.ratio_to_last), "", "", "", ""]
            grid.add_row(weight_label(number[x.kind], x.name), *cells)
            continue
        cells = [x.activation, "", "", _num(x.mean), _num(x.std), _pct(x.dead_fraction, DEAD),
                 _pct(x.saturated_fraction, SATURATED)]  # fmt: skip
        dim = "dim" if x.dead_fraction is None and x.saturated_fraction is None else ""
        grid.add_row(weight_label(number[x.kind], x.name, "act"), *cells, style=dim)
    return grid


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "–" if v is None else format(v, fmt)


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


# --- the demos ------------------------------------------------------------------------------------


def _vanishing_table(demo: VanishingDemo) -> Group:
    grid = Table(
        title=f"Gradient norm per weight layer, {demo.depth} hidden layers x {demo.width}",
        caption="first/last < 1e-2: vanishing; > 1e2: exploding; act k is the activation "
        "after layer k",
    )
    grid.add_column("layer")
    for r in demo.runs:
        grid.add_column(f"{r.activation}\n{r.init}\n{r.phase}", justify="right")
    for i, name in enumerate(demo.layers):
        grid.add_row(name, *[_num(r.grad_norms[i], ".2e") for r in demo.runs])
    grid.add_row(
        "[bold]first/last[/]",
        *[_ratio_cell(r.ratio) for r in demo.runs],
    )
    grid.add_row("val accuracy", *[f"{r.val_accuracy:.1%}" for r in demo.runs])
    summary = Table(
        title="Verdicts",
        caption="Glorot & Bengio (2010): through sigmoid layers with the standard init the "
        "first layer's gradient is orders of magnitude below the last's; ReLU with He init "
        "keeps it within an order of magnitude.",
    )
    for col in ("activation", "init", "phase", "first/last", "verdicts"):
        summary.add_column(col)
    for r in demo.runs:
        summary.add_row(
            r.activation, r.init, r.phase, _ratio_cell(r.ratio), _verdict_summary(r.report)
        )
    return Group(grid, summary)


def _vanishing_figure(demo: VanishingDemo) -> Figure:
    series, styles = {}, {}
    colours = {a: f"C{i}" for i, a in enumerate(dict.fromkeys(r.activation for r in demo.runs))}
    for r in demo.runs:
        key = f"{r.activation} ({r.init}), {r.phase}"
        series[key] = r.grad_norms
        styles[key] = {
            "color": colours[r.activation],
            "linestyle": "-" if r.phase == "init" else "--",
            "marker": "o" if r.phase == "init" else "s",
        }
    return gradient_flow_figure(
        series,
        list(demo.layers),
        f"Gradient flow, {demo.depth} hidden layers (Glorot & Bengio 2010)",
        styles=styles,
    )


def _verdict_summary(report: Report) -> str:
    """One cell: 'vanishing; dead: act 7 (20%), act 8 (14%)' or 'healthy'."""
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


def _dying_table(demo: DyingDemo) -> Table:
    epochs = len(next(iter(demo.reports.values())))
    table = Table(
        title=(
            f"Dead units per hidden layer over training ({demo.optimizer}, lr {demo.lr:g}, "
            f"bias init {demo.bias:g}); measured on the validation set"
        ),
        caption_justify="left",
        caption=f"dead: f' = 0 on every validation sample (no gradient reaches the unit, so "
        f"it cannot recover); verdict above {DEAD:.0%}"
        + "".join(
            f"\n[yellow]{act} diverged (loss inf/NaN) in epoch {e}[/]"
            for act, losses in demo.train_loss.items()
            if (e := next((i for i, v in enumerate(losses) if i and not math.isfinite(v)), 0))
        )
        + "".join(
            f"\n{act}: f' is exactly 0 only where it underflows (e.g. exp(x) = 0 in float32 "
            "below x = -104): those units are pushed so far negative that they are stuck too"
            for act in demo.activations
            if get_spec(act).family != "relu" and demo.mean_dead(act) > 0
        )
        + "".join(f"\n[yellow]{escape(line)}[/]" for line in demo.caveats()),
    )
    table.add_column("activation")
    table.add_column("layer")
    for e in range(epochs):
        table.add_column("init" if e == 0 else f"ep {e}", justify="right")
    for act, reps in demo.reports.items():
        for i in range(len(reps[0].activations)):
            cells = [_pct(r.activations[i].dead_fraction, DEAD) for r in reps]
            table.add_row(act if i == 0 else "", f"act {i + 1}", *cells)
        table.add_row("", "val accuracy", *[f"{v:.0%}" for v in demo.val_accuracy[act]])
        table.add_section()
    return table


def _dying_figure(demo: DyingDemo) -> Figure:
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    axes = fig.subplots(1, len(demo.reports), sharey=True, squeeze=False)[0]
    for ax, (act, reps) in zip(axes, demo.reports.items(), strict=True):
        for i in range(len(reps[0].activations)):
            ys = [r.activations[i].dead_fraction for r in reps]
            ax.plot(
                range(len(reps)),
                [np.nan if v is None else v for v in ys],
                marker="o",
                label=f"act {i + 1}",
            )
        ax.set_title(act)
        ax.set_xlabel("epoch")
        ax.axhline(DEAD, color="grey", linestyle=":", linewidth=1)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("dead fraction")
    axes[0].set_ylim(-0.02, 1.02)
    axes[-1].legend(fontsize="small")
    fig.suptitle("Dying ReLU: dead units per layer over training")
    return fig


# --- figures from plain data (the compare report draws with them too) -----------------------------


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
    for k, (ax, layer) in enumerate(zip(axes, layers, strict=False), start=1):
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
        ax.set_title(f"{weight_label(k, layer.name, 'act')}: {layer.activation}",
                     fontsize="small", loc="left")  # fmt: skip
    axes[-1].set_xlabel("batch")
    if images:
        fig.colorbar(images[-1], ax=list(axes), label="share of outputs (log)", shrink=0.8)
    fig.suptitle(title)
    return fig
