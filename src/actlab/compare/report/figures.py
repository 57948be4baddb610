"""The report's figures, drawn with matplotlib's object API (``Figure``; no pyplot state)."""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import math
import textwrap
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from PIL import Image

from actlab import catalog, plot
from actlab.compare.analysis import Cell, factor_label, factor_scale, sensitivity
from actlab.compare.report.rows import (
    _fmt_value,
    _values,
)
from actlab.compare.results import Results
from actlab.compare.stats import fmt
from actlab.errors import ActlabError


class View:
    """What one studied cell's figures draw: the chosen models' history and that cell's stats."""

    def __init__(self, res: Results, cell: Cell) -> None:
        self.activations = list(res.config.study.activations)
        self.metric = res.metric  # the reported (test) metric
        self.curve_metric = res.analysis.val_metric  # per epoch: validation only
        self.final_epoch = res.final_epoch
        self.stats = cell.summary
        self.label = cell.label
        wanted = {(a, *cell.values.values(), *cell.chosen[a].values()) for a in self.activations}
        keys = [*cell.values, *res.analysis.tuned]
        self.history = [
            r for r in res.history
            if (r["activation"], *(r["cell"][k] for k in keys)) in wanted
        ]  # fmt: skip


def _view(res: Results) -> View:
    """A figure's input: a :class:`View` as given, or a whole run's first studied cell."""
    return res if isinstance(res, View) else View(res, res.studies[0])


def _by_activation(res: Results) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {a: [] for a in res.activations}
    for row in res.history:
        out.setdefault(row["activation"], []).append(row)
    return out


def _band(values: dict[int, list[float]], log: bool = False,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Epochs, centre, lower and upper edge over seeds of finite values (no NumPy empty-slice
    warnings): mean ± sd, or with ``log`` (a log-scale axis) the geometric mean ×/÷ the geometric
    sd of the positive values, which stays positive (mean − sd broke into fragments there)."""
    epochs = np.array(sorted(values), dtype=float)
    centre, low, high = [], [], []
    for e in sorted(values):
        v = np.array([x for x in values[e] if x is not None and math.isfinite(x)], dtype=float)
        if log:
            v = np.log(v[v > 0])
        m = v.mean() if v.size else np.nan
        s = v.std(ddof=1) if v.size > 1 else 0.0
        if log:
            m, lo, hi = np.exp(m), np.exp(m - s), np.exp(m + s)
        else:
            lo, hi = m - s, m + s
        centre.append(m)
        low.append(lo)
        high.append(hi)
    return epochs, np.array(centre), np.array(low), np.array(high)


def _colors(res: Results) -> dict[str, str]:
    # same order as plot.compare, so an activation has one colour in every figure
    acts = res.activations if isinstance(res, View) else res.config.study.activations
    return {a: f"C{i % 10}" for i, a in enumerate(acts)}


def _fit(fig: Any) -> None:
    """``fig.tight_layout()`` without its raw warning: with hundreds of activations the labels
    leave no room ("Tight layout not applied"), and the figure keeps its default margins."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tight layout not applied", category=UserWarning)
        fig.tight_layout()


def _legend(ax: Any, at: Any = None) -> None:
    """``ax``'s legend outside the panels, right of ``at`` (default ``ax``): it hides no data.

    (``loc="best"`` still covered curves: the CSV run's sigmoid, whose last epochs run across
    every corner of the panel.) ``_fit``'s tight layout makes room for it.
    """
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # an empty legend would only warn
        (at if at is not None else ax).legend(handles, labels, fontsize="small",
                                              loc="upper left", bbox_to_anchor=(1.02, 1.0),
                                              borderaxespad=0.0)  # fmt: skip


def _at(v: Any) -> str:
    return f" — {v.label}" if getattr(v, "label", "") else ""


def _drawable_on_log(ax: Any) -> bool:
    """Whether the lines on ``ax`` hold a positive finite value (a log axis needs one)."""
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if np.any(np.isfinite(y) & (y > 0)):
            return True
    return False


def _log_or_say(ax: Any, why: str) -> None:
    """Log scale when something can be drawn on it, else a linear axis that says why it is empty.

    matplotlib raises while drawing a log axis with no positive value (every gradient zero after a
    huge learning rate, every loss NaN), which used to stop the whole report.
    """
    if _drawable_on_log(ax):
        ax.set_yscale("log", nonpositive="mask")
        return
    for line in list(ax.get_lines()):
        line.remove()
    for coll in list(ax.collections):
        coll.remove()
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="0.35",
            wrap=True)  # fmt: skip


DPI = 100  # pixels per inch of the report's PNGs
_RENDERERS = threading.local()  # per thread: matplotlib's drawing is not thread-safe
_POOL_PIXELS = 4_000_000  # renderers kept per thread, 4 bytes a pixel: 16 MB, eight 1100 x 420


class _Canvas(FigureCanvasAgg):
    """An Agg canvas whose renderer comes from a small per-thread pool, by pixel size.

    matplotlib caches text sizes and parsed math text (the log axes' ``10^{-2}``) per renderer,
    and a figure without a canvas got one renderer for ``tight_layout`` and another for
    ``savefig``: everything was measured twice, and again for every figure. Here the layout, the
    drawing and every figure of the same size share one renderer and its caches. So a canvas's
    pixels are those of the last figure of its size drawn in this thread: read them right after
    drawing (``_png`` and ``savefig`` do).
    """

    def get_renderer(self) -> RendererAgg:
        """The pooled renderer of this canvas's pixel size (made on first use)."""
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        pool = getattr(_RENDERERS, "pool", None)
        if pool is None:
            pool = _RENDERERS.pool = OrderedDict()
        renderer = pool.pop(key, None) or RendererAgg(w, h, self.figure.dpi)
        pool[key] = renderer  # the most recently used last; the oldest go first
        while pool and sum(k[0] * k[1] for k in pool) > _POOL_PIXELS:
            pool.popitem(last=False)
        self.renderer, self._lastKey = renderer, key
        return renderer


def _figure(width: float, height: float) -> Figure:
    """A report figure of ``width`` x ``height`` inches on a pooled Agg canvas (see
    :class:`_Canvas`), at the report's resolution whatever the user's matplotlibrc says."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    _Canvas(fig)
    return fig


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while one figure is made (then as it was).

    A figure allocates tens of thousands of matplotlib objects, which set off full collections
    that walk the whole heap: in ``actlab compare``'s process (torch and SciPy loaded) one takes
    0.14 s, and they were 20% of the report (showcase grid: 1.26 -> 0.99 s with this, the same
    peak memory). Paused for one figure only, its garbage (reference cycles) is freed by the
    next collection after it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _png(fig: Figure) -> str:
    """``fig`` drawn once as a base64 PNG.

    One draw, not three: no bbox_inches="tight" (tight_layout has fitted the figure already) and
    no layout engine (tight_layout leaves a placeholder one, for which savefig drew the figure
    once more first). The figure's background is opaque, so the pixels go out as RGB at zlib
    level 3 (was savefig's RGBA at level 6): the same picture in 0.55x the encoding time and
    about 5% fewer bytes (the 4 figures of a default run: 45 -> 25 ms, 228 -> 217 KiB).
    """
    fig.set_layout_engine(None)
    canvas = fig.canvas if isinstance(fig.canvas, _Canvas) else _Canvas(fig)
    canvas.draw()
    image = Image.frombytes("RGB", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBX")
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=3)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def fig_learning_curves(res: Results) -> Figure:
    res = _view(res)
    fig = _figure(11, 4.2)
    ax_m, ax_l = fig.subplots(1, 2)
    colors = _colors(res)
    for act, rows in _by_activation(res).items():
        metric: dict[int, list[float]] = {}
        loss: dict[int, list[float]] = {}
        for r in rows:
            if r["diverged"]:
                continue
            metric.setdefault(r["epoch"], []).append(r.get(res.curve_metric))
            loss.setdefault(r["epoch"], []).append(r["train_loss"])
        for ax, values in ((ax_m, metric), (ax_l, loss)):
            if not values:
                continue
            e, m, lo, hi = _band(values, log=ax is ax_l)
            ax.plot(e, m, color=colors[act], label=act, linewidth=1.8)
            ax.fill_between(e, lo, hi, color=colors[act], alpha=0.18, linewidth=0)
    ax_m.set_title(f"{res.curve_metric} (mean ± sd over seeds){_at(res)}")
    ax_l.set_title("training loss (geometric mean ×/÷ geometric sd)")
    _log_or_say(ax_l, "nothing to draw: every training loss is zero, NaN or infinite")
    for ax in (ax_m, ax_l):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.4)
    if ax_l.get_legend_handles_labels()[0]:  # outside, right of the panels: it hides no curve
        ax_l.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    borderaxespad=0.0)  # fmt: skip
    _fit(fig)
    return fig


def fig_per_seed(res: Results) -> Figure:
    res = _view(res)
    rows = res.stats.rows
    fig = _figure(max(6.0, 1.1 * len(rows) + 2), 4.0)
    ax = fig.subplots()
    colors = _colors(res)
    rng = np.random.default_rng(0)  # fixed jitter: the picture is the same on every render
    ok_values = [v for r in rows for v in r.values.values() if v is not None]
    low = min(ok_values) if ok_values else 0.0
    for i, r in enumerate(rows):
        xs = i + rng.uniform(-0.12, 0.12, size=len(r.values))
        ys = np.array([np.nan if v is None else v for _, v in sorted(r.values.items())], float)
        # one collection per activation (a scatter call per dot took 0.2 s for 35 dots)
        ax.scatter(xs, ys, color=colors.get(r.activation, "C0"), s=28, zorder=3)
        if np.isnan(ys).any():
            ax.scatter(xs[np.isnan(ys)], np.full(int(np.isnan(ys).sum()), low), marker="x",
                       color="red", s=50, zorder=4)  # fmt: skip
        if r.mean is not None:
            ax.hlines(r.mean, i - 0.3, i + 0.3, color="black", linewidth=2, zorder=5)
            if r.ci_low is not None:
                ax.vlines(i + 0.32, r.ci_low, r.ci_high, color="0.3", linewidth=1.5)
    ax.set_xticks(range(len(rows)), [r.activation for r in rows], rotation=20)
    ax.set_ylabel(res.metric)
    better = "higher" if res.stats.higher_is_better else "lower"
    title = (f"{res.metric} per seed (dots), mean (bar), 95% CI (line); {better} is better; "
             f"red × = diverged{_at(res)}")  # fmt: skip
    ax.set_title(_wrap_title(title, fig))
    ax.grid(True, axis="y", alpha=0.4)
    _fit(fig)
    return fig


def _wrap_title(title: str, fig: Figure, size: float | None = None) -> str:
    """``title`` broken at spaces into lines that fit ``fig``'s width (with 4 or fewer activations
    the per-seed figure is 6 inches wide and one line was cut on both sides)."""
    size = size or float(_font_size(rcParams["axes.titlesize"]))
    # a character of DejaVu Sans averages ~0.6 em; keep 10% for the margins
    chars = int(0.9 * fig.get_figwidth() * 72 / (0.6 * size))
    return textwrap.fill(title, width=max(chars, 20))


def _font_size(value: Any) -> float:
    """A font size in points from rcParams (a number or a name such as 'large')."""
    return float(FontProperties(size=value).get_size_in_points())


def _layer_means(res: Results, key: str, which: str) -> dict[str, np.ndarray]:
    """Per activation: mean over seeds of the per-layer list ``key`` at the first or final epoch."""
    out = {}
    for act, rows in _by_activation(res).items():
        want = 1 if which == "first" else res.final_epoch
        lists = [r[key] for r in rows if r["epoch"] == want and not r["diverged"] and r[key]]
        if lists:
            width = min(len(v) for v in lists)
            arr = np.array([v[:width] for v in lists], dtype=float)
            out[act] = arr.mean(axis=0)
    return out


def fig_grad_norms(res: Results) -> Figure:
    res = _view(res)
    fig = _figure(11, 4.0)
    axes = fig.subplots(1, 2, sharey=True)
    colors = _colors(res)
    for ax, which in zip(axes, ("first", "final"), strict=True):
        for act, norms in _layer_means(res, "grad_norms", which).items():
            layers = np.arange(1, len(norms) + 1)
            ax.plot(layers, norms, marker="o", color=colors[act], label=act)
            ax.set_xticks(layers)
        epoch = 1 if which == "first" else res.final_epoch
        ax.set_title(f"gradient norm per layer, epoch {epoch}{_at(res)}")
        ax.set_xlabel("weight layer (input → output)")
        _log_or_say(
            ax,
            "nothing to draw: every gradient norm is zero or not finite\n"
            "(training stalled or diverged; try a lower --lr)",
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("mean gradient norm (log scale)")
    _legend(axes[0], at=axes[-1])
    _fit(fig)
    return fig


def fig_unit_health(res: Results) -> Figure:
    res = _view(res)
    fig = _figure(11, 4.0)
    axes = fig.subplots(1, 2)
    colors = _colors(res)
    acts = list(res.activations)
    for ax, key, title in (
        (axes[0], "dead_fraction", "dead units (never active on validation data)"),
        (axes[1], "saturated_fraction", "saturated units (|f′| < 0.01 on most rows)"),
    ):
        # NaN: not measured (saturation is only defined for activations bounded on both sides)
        means = {
            act: v for act, v in _layer_means(res, key, "final").items() if np.isfinite(v).any()
        }
        n_layers = max((len(v) for v in means.values()), default=0)
        shown = [a for a in acts if a in means]  # bars of the measured ones, centred on the ticks
        width = 0.8 / max(len(shown), 1)
        for i, act in enumerate(shown):
            x = np.arange(1, len(means[act]) + 1) + (i - (len(shown) - 1) / 2) * width
            # a bar of height 0 is invisible: its legend entry says so instead of showing a colour
            # with no bar
            zero = not np.nanmax(means[act]) > 0
            label = f"{act}: 0 in every layer" if zero else act
            ax.bar(x, means[act], width=width, color=colors[act], label=label)
        say = dict(ha="center", va="center", transform=ax.transAxes, color="0.35")
        if not means and key == "saturated_fraction":
            ax.text(0.5, 0.5, "not measured: no activation here is bounded on both sides",
                    wrap=True, **say)  # fmt: skip
        elif means and max(float(np.nanmax(v)) for v in means.values()) == 0:
            what = "dead" if key == "dead_fraction" else "saturated"
            ax.text(0.5, 0.5, f"no {what} units in any model", **say)
        ax.set_xticks(np.arange(1, n_layers + 1))
        ax.set_xlabel("hidden layer")
        ax.set_title(f"{title}, epoch {res.final_epoch}{_at(res)}", fontsize="medium")
        # zoom in when every fraction is small, so a few dead units are still visible
        top = max((float(np.nanmax(v)) for v in means.values()), default=0.0)
        ax.set_ylim(0, 1 if top > 0.45 else max(0.05, round(top * 1.25 + 0.005, 2)))
        ax.grid(True, axis="y", alpha=0.4)
        _legend(ax)  # each panel names its own bars
    axes[0].set_ylabel("fraction of units (mean over seeds)")
    _fit(fig)
    return fig


def fig_activations(res: Results) -> Figure | None:
    """The activation functions and their derivatives; ``None`` if none can be drawn."""
    acts = []
    for spec in res.config.study.activations:
        try:
            act = catalog.parse(spec)
        except ActlabError:  # a name from an older catalog: the report still renders without it
            continue
        if getattr(act.spec, "elementwise", True):
            acts.append(act)
    if not acts:
        return None

    fig = _figure(11, 4.0)
    ax_f, ax_d = fig.subplots(1, 2)
    colors = _colors(res)
    x = np.linspace(-5, 5, 801)
    plot.compare(acts, ax=ax_f, title="activation f(x)")
    for act in acts:  # jumps of f' (ReLU at 0) are gaps, not vertical lines
        ax_d.plot(*plot.breaks(x, act.derivative(x)), color=colors[str(act)], label=act.label)
    ax_d.axhline(0.01, color="0.5", linestyle=":", linewidth=1)
    ax_d.set_title("derivative f′(x) (dotted: 0.01, the saturation threshold)")
    ax_d.set_xlabel("x")
    ax_d.grid(True, alpha=0.4)
    _fit(fig)
    return fig


def fig_heatmap(res: Results, factor: str) -> Figure:
    """Activation x value of a studied factor: mean reported metric, 95% CI in each cell."""
    a = res.analysis
    others = [f for f in a.studied if f != factor]
    panels: dict[str, dict[Any, Any]] = {}
    for cell in a.cells:
        key = _values({f: cell.values[f] for f in others})
        panels.setdefault(key, {})[cell.values[factor]] = cell
    acts = list(res.config.study.activations)
    n = len(panels)
    fig = _figure(min(4.0 + 2.2 * max(len(v) for v in panels.values()), 11) * min(n, 2),
                  1.2 + 0.55 * len(acts))
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    all_means = [r.mean for c in a.cells for r in c.summary.rows if r.mean is not None]
    lo, hi = (min(all_means), max(all_means)) if all_means else (0.0, 1.0)
    cmap = "viridis" if a.higher_is_better else "viridis_r"
    for ax, (title, by_value) in zip(axes, panels.items(), strict=True):
        values = list(by_value)
        grid = np.full((len(acts), len(values)), np.nan)
        text = [["" for _ in values] for _ in acts]
        for j, v in enumerate(values):
            rows = {r.activation: r for r in by_value[v].summary.rows}
            for i, act in enumerate(acts):
                r = rows.get(act)
                if r is None or r.mean is None:
                    text[i][j] = "no score"
                    continue
                grid[i, j] = r.mean
                ci = "" if r.ci_low is None else f"\n[{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
                failed = f"\n{r.n_failed} diverged" if r.n_failed else ""
                mark = {"best": " (best)", "significantly worse": " (worse)"}.get(r.verdict, "")
                text[i][j] = f"{fmt(r.mean)}{mark}{ci}{failed}"
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=lo,
                          vmax=hi if hi > lo else lo + 1e-9, aspect="auto")  # fmt: skip
        mid = (lo + hi) / 2
        for i in range(len(acts)):
            for j in range(len(values)):
                light = not np.isfinite(grid[i, j]) or (
                    (grid[i, j] < mid) == a.higher_is_better
                )  # dark end of viridis: white text
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize="small",
                        color="white" if light and np.isfinite(grid[i, j]) else "black")
        ax.set_xticks(range(len(values)), [_fmt_value(v) for v in values])
        ax.set_yticks(range(len(acts)), acts)
        ax.set_xlabel(factor_label(factor))
        ax.set_title(f"{res.metric}: mean, 95% CI" + (f" — {title}" if title else ""),
                     fontsize="medium")  # fmt: skip
        fig.colorbar(image, ax=ax, fraction=0.04)
    _fit(fig)
    return fig


def fig_sensitivity(res: Results, factor: str) -> Figure:
    """Validation metric vs one tuned factor, a line per activation with a ±sd band over seeds."""
    a = res.analysis
    lines = sensitivity(res, factor)
    n = len(lines)
    fig = _figure(min(5.5 * n, 11), 4.0)
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False, sharey=True)[0])
    colors = _colors(res)
    values = list(getattr(res.config.model, factor))
    log = factor_scale(factor) == "log" and all(
        isinstance(v, (int, float)) and v > 0 for v in values)
    for ax, (label, by_act) in zip(axes, lines.items(), strict=True):
        cell = next(c for c in a.cells if c.label == label)
        for act, (xs, means, sds) in by_act.items():
            if not xs:
                continue
            m, sd = np.array(means), np.array(sds)
            ax.plot(xs, m, marker="o", color=colors[act], label=act)
            ax.fill_between(xs, m - sd, m + sd, color=colors[act], alpha=0.15, linewidth=0)
            pick = cell.chosen[act][factor]
            if pick in xs:
                ax.scatter([pick], [means[xs.index(pick)]], marker="*", s=160,
                           color=colors[act], edgecolor="black", zorder=5)  # fmt: skip
        if log:
            ax.set_xscale("log")
        ax.set_xticks(values, [_fmt_value(v) for v in values])
        ax.minorticks_off()
        ax.set_xlabel(factor_label(factor))
        ax.set_title(f"validation {a.val_metric.removeprefix('val_')} vs {factor_label(factor)}"
                     + (f" — {label}" if label else ""), fontsize="medium")  # fmt: skip
        ax.grid(True, alpha=0.4)
    axes[0].set_ylabel(f"{a.val_metric} (mean ± sd over seeds)")
    _legend(axes[0], at=axes[-1])
    _fit(fig)
    return fig
