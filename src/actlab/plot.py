"""Pictures: activation curves with their derivatives, comparisons, softmax bars and a gallery.

Every figure is a plain ``matplotlib.figure.Figure`` (no pyplot state, no backend switch), so
importing actlab never disturbs a notebook and saving works headless. Draw into your own Axes with
``ax=`` to compose figures; only the CLI's ``--show`` goes through pyplot.

The article's figures are reproduced from the catalog's ``spec.plot`` defaults (its limits, labels
and titles, in English or Russian) without its slips: each curve is drawn once, and it is sampled
densely over the *visible* window instead of 1000 points over [-100, 100].
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from actlab import catalog, kernels
from actlab._html import esc, fields, items
from actlab._html import page as html_page
from actlab.errors import ActlabError, output_path, suggest, writing
from actlab.health import SATURATION

__all__ = [
    "DEAD",
    "FORMATS",
    "SATURATION",
    "compare",
    "curve",
    "gallery",
    "save",
    "softmax_bars",
]

FORMATS = (".png", ".svg", ".pdf")
DEAD = 0.0  # f' exactly zero: no gradient at all
NUM_POINTS = (
    2001  # samples over the visible window; odd so that 0 is a sample of a symmetric window
)
FIGSIZE = (7.0, 4.5)
DPI = 150

# Colours: f in the first colour, f' in the second, shading in soft tints that print in grey too.
F_COLOR, DF_COLOR = "C0", "C1"
SAT_COLOR, DEAD_COLOR = "#f6c85f", "#d9534f"

# Every phrase a figure or the gallery shows, in English and Russian (plot_text.json): "text" by
# key, "phrases" the plain words of the gallery's "Properties" row ("bounded": below, above as 0/1)
_WORDS = json.loads(resources.files("actlab").joinpath("plot_text.json").read_text("utf-8"))
_TEXT = {
    lang: {k: v.replace("{saturation}", f"{SATURATION:g}") for k, v in d.items()}
    for lang, d in _WORDS["text"].items()
}
_PHRASES = _WORDS["phrases"]
_INIT = {"he": "He (Kaiming)", "glorot": "Glorot (Xavier)", "lecun": "LeCun", "none": "—"}


def _properties(props: catalog.Properties, lang: str) -> str:
    w = _PHRASES[lang]
    parts = [
        w["monotonic"][0 if props.monotonic else 1],
        w["smoothness"].get(props.smoothness, props.smoothness),
        w["zero_centred"][0 if props.zero_centred else 1],
        w["bounded"][f"{int(props.bounded_below)}{int(props.bounded_above)}"],
        w["saturating"].get(props.saturating, props.saturating),
    ]
    if props.self_normalising:
        parts.append(w["self_normalising"])
    return ", ".join(parts)


# The article's softmax example vector, reused by the gallery.
ARTICLE_Z = (1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0)


# --------------------------------------------------------------------------- validation helpers

SpecLike = str | catalog.Activation | catalog.ActivationSpec  # what the figures accept


def _lang(lang: str) -> dict[str, str]:
    if not isinstance(lang, str) or lang not in _TEXT:
        raise ActlabError(
            f"lang must be one of {', '.join(repr(k) for k in _TEXT)}, got {lang!r}"
            + suggest(str(lang), _TEXT)
        )
    return _TEXT[lang]


MAX_LIMIT = 1e12  # largest |bound| of a plot window (see _limits)


def _limits(name: str, value: Sequence[float] | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ActlabError(f"{name} must be two numbers (low, high), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ActlabError(
            f"{name} must be two finite numbers with low < high, got ({lo:g}, {hi:g}); "
            f"e.g. {name}=(-5, 5)"
        )
    big = max(abs(lo), abs(hi))
    if big > MAX_LIMIT or hi - lo < 1e-9 * max(big, 1.0):
        # beyond ~1e15 a float grid has gaps and matplotlib's tick solver fails (LinAlgError at
        # +-1e308); a window narrower than 1e-9 of its position rounds to one point
        raise ActlabError(
            f"{name} ({lo:.15g}, {hi:.15g}) cannot be drawn: use bounds within +-{MAX_LIMIT:g} "
            f"and a width of at least 1e-9 of their size; e.g. {name}=(-5, 5)"
        )
    return lo, hi


def _activation(spec: SpecLike) -> catalog.Activation:
    """Accept an Activation, an ActivationSpec or a spec string.

    A bare name ("leaky_relu", or an ActivationSpec) draws the article's figure, so it takes the
    parameters of ``spec.plot.params`` (e.g. Leaky ReLU's slope, PyTorch's 0.01); a string with
    explicit parameters or an Activation is drawn exactly as given.
    """
    if isinstance(spec, catalog.Activation):
        act = spec
    elif isinstance(spec, catalog.ActivationSpec) or (isinstance(spec, str) and ":" not in spec):
        base = spec if isinstance(spec, catalog.ActivationSpec) else catalog.get(spec)
        act = catalog.parse(base, **dict(base.plot.params or {}))
    elif isinstance(spec, str):
        act = catalog.parse(spec)
    else:
        raise ActlabError(
            f"spec must be an activation name or spec string like 'leaky_relu:alpha=0.1', "
            f"got {type(spec).__name__}"
        )
    if not act.spec.elementwise:
        raise ActlabError(
            f"{act.name} is not elementwise (it maps a whole vector to a distribution), so it has "
            f"no single curve to draw; draw it as bars instead: "
            f"actlab.plot.softmax_bars([1, 2, 3, 4, 1, 2, 3]) or "
            f"`actlab softmax 1 2 3 4 1 2 3 --plot softmax.png`"
        )
    return act


def _grid(xlim: tuple[float, float], num: int) -> np.ndarray:
    """Dense samples over the visible window, with 0 included (where most kinks sit)."""
    if int(num) < 2:
        raise ActlabError(f"num must be at least 2 sample points, got {num!r}")
    x = np.linspace(xlim[0], xlim[1], int(num))
    if xlim[0] < 0.0 < xlim[1]:
        x = np.union1d(x, [0.0])
    return x


@contextmanager
def _style() -> Iterator[None]:
    # Text properties are fixed when an artist is made, so the font set here is the one that
    # renders: DejaVu Sans has Cyrillic, which the Russian captions need.
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}):
        yield


def _new_axes(figsize: tuple[float, float] = FIGSIZE) -> Axes:
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def breaks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN gap where ``y`` jumps (ReLU's f' at 0), so no false vertical segment is drawn.

    A step is a jump when it is more than ten times both neighbouring steps: on a dense grid a
    continuous curve changes smoothly from one step to the next, a discontinuity does not.
    """
    d = np.abs(np.diff(y))
    if d.size < 3:
        return x, y
    nb = np.maximum(np.concatenate(([0.0], d[:-1])), np.concatenate((d[1:], [0.0])))
    jumps = np.flatnonzero((d > 1e-3) & (d > 10.0 * nb))
    if jumps.size == 0:
        return x, y
    mid = (x[jumps] + x[jumps + 1]) / 2.0
    return np.insert(x, jumps + 1, mid), np.insert(y.astype(np.float64), jumps + 1, np.nan)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges [start, stop] (inclusive) of consecutive True values."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def regions(x: np.ndarray, dy: np.ndarray) -> dict[str, list[tuple[float, float]]]:
    """Intervals of ``x`` where the derivative ``dy`` is exactly zero ("dead") or below the
    saturation threshold ("saturation").

    Saturation is an asymptotic effect, so only runs that reach an end of the window count; an
    interior dip (SiLU's minimum, where f' crosses zero) is a turning point, not saturation.
    Dead zones need at least two consecutive samples (a single zero at a kink is not a zone).
    """
    dead_mask = dy == DEAD
    sat_mask = (np.abs(dy) < SATURATION) & ~dead_mask
    last = len(x) - 1
    dead = [(float(x[a]), float(x[b])) for a, b in _runs(dead_mask) if b > a]
    sat = []
    for a, b in _runs(sat_mask):
        if b > a and (a == 0 or b == last):
            # Extend to the neighbour when it is dead, so the bands meet without a gap.
            a2 = a - 1 if a > 0 and dead_mask[a - 1] else a
            b2 = b + 1 if b < last and dead_mask[b + 1] else b
            sat.append((float(x[a2]), float(x[b2])))
    return {"dead": dead, "saturation": sat}


def _shade(ax: Axes, x: np.ndarray, dy: np.ndarray, text: dict[str, str], label: bool) -> None:
    found = regions(x, dy)
    for key, color, alpha, hatch in (
        ("saturation", SAT_COLOR, 0.35, None),
        ("dead", DEAD_COLOR, 0.15, "//"),
    ):
        for i, (lo, hi) in enumerate(found[key]):
            ax.axvspan(
                lo,
                hi,
                facecolor=color,
                alpha=alpha,
                hatch=hatch,
                edgecolor=color if hatch else "none",
                linewidth=0,
                zorder=0,
                label=text[key] if label and i == 0 else None,
            )


def _frame(
    ax: Axes, xlim: tuple[float, float], ylim: Sequence[float] | None, axis_width: float = 0.8
) -> None:
    """The window, a grid and the lines x = 0 and y = 0: what every curve panel shares."""
    ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.5)
    ax.axhline(0, color="0.3", linewidth=axis_width, zorder=1)
    ax.axvline(0, color="0.3", linewidth=axis_width, zorder=1)


def _spec_text(value: Any, lang: str) -> str:
    if isinstance(value, dict):
        return str(value.get(lang) or value.get("en") or "")
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- public API


# Legend boxes tried in order, in axes coordinates (x0, y0, x1, y1), sized for a small legend.
_LEGEND_SPOTS = {
    "upper left": (0.0, 0.62, 0.5, 1.0),
    "upper right": (0.5, 0.62, 1.0, 1.0),
    "lower right": (0.5, 0.0, 1.0, 0.38),
    "lower left": (0.0, 0.0, 0.5, 0.38),
    "center right": (0.5, 0.31, 1.0, 0.69),
    "center left": (0.0, 0.31, 0.5, 0.69),
    "upper center": (0.25, 0.62, 0.75, 1.0),
    "lower center": (0.25, 0.0, 0.75, 0.38),
}


def _legend(ax: Axes) -> None:
    """Put the legend where the fewest curve points are.

    matplotlib's "best" also avoids the shaded bands, which cover whole heights, so it often
    ends up on top of a curve; here only the drawn lines count.
    """
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    pts = [
        np.column_stack(((ln.get_xdata() - x0) / (x1 - x0), (ln.get_ydata() - y0) / (y1 - y0)))
        for ln in ax.lines
        if not ln.get_label().startswith("_")
    ]
    xy = np.concatenate(pts) if pts else np.empty((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    n_entries = len(ax.get_legend_handles_labels()[1])
    grow = max(0.0, 0.07 * (n_entries - 3))  # taller boxes for longer legends
    best, fewest = "best", None
    for loc, (a, b, c, d) in _LEGEND_SPOTS.items():
        b2, d2 = (b - grow, d) if loc.startswith("upper") else (b, d + grow)
        inside = int(
            np.count_nonzero(
                (xy[:, 0] >= a) & (xy[:, 0] <= c) & (xy[:, 1] >= b2) & (xy[:, 1] <= d2)
            )
        )
        if fewest is None or inside < fewest:
            best, fewest = loc, inside
    ax.legend(loc=best, fontsize="small", framealpha=0.9)


def curve(
    spec: SpecLike,
    ax: Axes | None = None,
    derivative: bool = False,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    lang: str = "en",
    shade: bool = True,
    *,
    num: int = NUM_POINTS,
    color: str | None = None,
    label: str | None = None,
    title: str | None = None,
    legend: bool = True,
) -> Axes:
    """Draw one activation f (and its derivative f′, dashed, when ``derivative=True``).

    ``spec`` is a name ("sigmoid"), a spec string ("elu:alpha=0.5"), an ``Activation`` or an
    ``ActivationSpec``. Limits, labels, title and line width default to the catalog's figure for
    that activation (``spec.plot``), in English or, with ``lang="ru"``, the article's Russian
    captions. With ``shade=True`` the x ranges where |f′| < 0.01 (saturation) and f′ = 0 (dead
    zone) are shaded and named in the legend. Returns the Axes (a new Figure's when ``ax`` is None).
    """
    text = _lang(lang)
    act = _activation(spec)
    defaults = act.spec.plot
    xlim_ = _limits("xlim", xlim) or _limits("xlim", defaults.xlim) or (-5.0, 5.0)
    ylim_ = _limits("ylim", ylim) or _limits("ylim", defaults.ylim)
    x = _grid(xlim_, num)
    y = catalog.forward(act, x)
    with _style():
        if ax is None:
            ax = _new_axes()
        lw = float(defaults.linewidth or 2.0)
        name = label or act.label
        ax.plot(*breaks(x, y), color=color or F_COLOR, linewidth=lw, label=name, zorder=3)
        if derivative or shade:
            dy = catalog.derivative(act, x)
        if derivative:
            ax.plot(
                *breaks(x, dy),
                color=DF_COLOR if color is None else color,
                linestyle="--",
                linewidth=max(1.5, 0.6 * lw),
                label=text["dlabel"].format(name=name),
                zorder=4,
            )
        if shade:
            _shade(ax, x, dy, text, label=True)
        ax.set_xlabel(_spec_text(defaults.xlabel, lang) or "x")
        ax.set_ylabel(_spec_text(defaults.ylabel, lang) or f"{act.name}(x)")
        ax.set_title(title if title is not None else _spec_text(defaults.title, lang))
        _frame(ax, xlim_, ylim_)
        if legend:
            _legend(ax)
    return ax


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).lower() if isinstance(v, bool) else str(v)


def _labels(acts: Sequence[catalog.Activation]) -> tuple[list[str], str | None]:
    """Legend labels that tell the curves apart, and the family name when all share one function.

    Members of a parameter family are labelled by the parameters that vary (including ones left
    at their default, which ``Activation.label`` would omit): "negative_slope=0.01".
    """
    groups: dict[str, list[catalog.Activation]] = {}
    for a in acts:
        groups.setdefault(a.name, []).append(a)
    labels = []
    for a in acts:
        group = groups[a.name]
        if len(group) == 1:
            labels.append(a.label)
            continue
        varying = [p.name for p in a.spec.params if len({g.params[p.name] for g in group}) > 1]
        inner = ", ".join(f"{k}={_value(a.params[k])}" for k in varying)
        labels.append(inner if len(groups) == 1 else f"{a.spec.display_name} ({inner})")
    family = acts[0].spec.display_name if len(groups) == 1 and len(acts) > 1 else None
    return labels, family


MAX_CURVES = 10  # matplotlib's default cycle (tab10): an 11th curve repeats a colour; measured:
# 16 curves with f' (32 legend rows) no longer fit the 6.4 x 4.5 in figure and 20 make
# constrained_layout give up with a warning
_DASHES = ((6, 3), (2, 2), (8, 3, 2, 3), (4, 4), (1, 3), (10, 4))  # one per derivative line


def compare(
    specs: Sequence[SpecLike] | str,
    derivative: bool = False,
    ax: Axes | None = None,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    lang: str = "en",
    shade: bool = False,
    *,
    num: int = NUM_POINTS,
    title: str | None = None,
) -> Axes:
    """Several activations on one Axes, one colour each, with a legend.

    ``specs`` is a list of names/spec strings/Activations, or one string separated by commas;
    a parameter family works too: ``compare(["leaky_relu:alpha=0.01", "leaky_relu:alpha=0.3"])``.
    With ``derivative=True`` each f′ is dashed in its function's colour. The window is
    ``xlim`` or (-5, 5); y autoscales unless ``ylim`` is given. ``shade`` shades the saturation and
    dead zones of the first activation only (more would hide each other).
    """
    text = _lang(lang)
    items = [s for s in specs.split(",") if s.strip()] if isinstance(specs, str) else list(specs)
    if not items:
        raise ActlabError("compare needs at least one activation, e.g. compare(['relu', 'elu'])")
    if len(items) > MAX_CURVES:
        raise ActlabError(
            f"one figure shows at most {MAX_CURVES} activations (its palette has {MAX_CURVES} "
            f"distinct colours, and the legend of more overflows the figure), got {len(items)}; "
            "split them over several plots"
        )
    acts = [_activation(s.strip() if isinstance(s, str) else s) for s in items]
    seen: set[str] = set()
    for act in acts:
        if str(act) in seen:  # drawing a curve twice is the article's slip, not a comparison
            raise ActlabError(f"activation '{act}' is listed twice; give each one once")
        seen.add(str(act))
    labels, family = _labels(acts)
    xlim_ = _limits("xlim", xlim) or (-5.0, 5.0)
    ylim_ = _limits("ylim", ylim)
    x = _grid(xlim_, num)
    with _style():
        if ax is None:
            ax = _new_axes()
        for i, (act, name) in enumerate(zip(acts, labels, strict=True)):
            color = f"C{i % 10}"
            fx = catalog.forward(act, x)
            ax.plot(*breaks(x, fx), color=color, linewidth=2.0, label=name)
            if derivative or (shade and i == 0):
                dy = catalog.derivative(act, x)
            if derivative:
                # derivatives often coincide (ReLU's, ELU's and Leaky ReLU's are all 1 for x > 0):
                # each gets its own dash pattern, and earlier ones are drawn on top, so the
                # first line is whole and the others show through its gaps
                ax.plot(
                    *breaks(x, dy),
                    color=color,
                    linestyle=(0, _DASHES[i % len(_DASHES)]),
                    linewidth=1.5,
                    label=text["dlabel"].format(name=name),
                    zorder=2.9 - 0.01 * i,
                )
            if shade and i == 0:
                _shade(ax, x, dy, text, label=True)
        if title is None:
            if family:
                title = text["params_title_d" if derivative else "params_title"].format(name=family)
            else:
                title = text["compare_d" if derivative else "compare"]
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
        ax.set_title(title)
        _frame(ax, xlim_, ylim_)
        _legend(ax)
    return ax


def softmax_bars(
    z: Sequence[float] | np.ndarray,
    temperature: float | Sequence[float] = 1.0,
    ax: Axes | None = None,
    lang: str = "en",
    *,
    decimals: int = 3,
) -> Figure:
    """The article's bar chart of softmax(z / T), each bar labelled with its probability.

    A list of temperatures draws one panel per temperature, side by side with a shared y axis, so
    the flattening (T > 1) and sharpening (T < 1) are easy to see. ``ax`` is only accepted with a
    single temperature. Returns the Figure.
    """
    text = _lang(lang)
    try:
        zs = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError):
        raise ActlabError(f"z must be a list of numbers, got {z!r}") from None
    if zs.ndim != 1 or zs.size == 0:
        raise ActlabError(f"z must be a non-empty 1-D list of scores, got shape {zs.shape}")
    if not np.all(np.isfinite(zs)):
        raise ActlabError("z must contain only finite numbers (no nan/inf)")
    temps = [temperature] if np.ndim(temperature) == 0 else list(temperature)  # type: ignore[arg-type]
    if not temps:
        raise ActlabError("temperature must be a positive number or a non-empty list of them")
    try:
        temps_f = [float(t) for t in temps]
    except (TypeError, ValueError):
        raise ActlabError(f"temperature must be positive numbers, got {temperature!r}") from None
    for t in temps_f:
        if not (math.isfinite(t) and t > 0):
            raise ActlabError(f"temperature must be a finite number > 0, got {t:g}; e.g. 1.0")
    if ax is not None and len(temps_f) > 1:
        raise ActlabError(
            "ax= takes a single temperature; several temperatures need their own panels"
        )
    with np.errstate(over="ignore"):
        scaled = [zs / t for t in temps_f]
    if not all(np.all(np.isfinite(v)) for v in scaled):
        raise ActlabError(
            f"z / temperature overflows for temperature {min(temps_f):g}; use a larger temperature"
        )
    probs = [kernels.softmax(v) for v in scaled]
    # Captions come from the catalog's softmax entry (the article's own, which are English in
    # both languages); the built-in texts are only a fallback.
    d = catalog.get("softmax").plot
    title = _spec_text(d.title, lang) or text["softmax"]
    xlabel = _spec_text(d.xlabel, lang) or text["class"]
    ylabel = _spec_text(d.ylabel, lang) or text["probability"]
    top = float(max(p.max() for p in probs))
    n = zs.size
    with _style():
        if ax is None:
            width = min(4.5 + 0.25 * n, 8.0) * len(temps_f) ** 0.8
            fig = Figure(figsize=(max(width, 6.0), 4.5), layout="constrained")
            axes = fig.subplots(1, len(temps_f), sharey=True, squeeze=False)[0]
        else:
            fig, axes = ax.figure, [ax]
        for i, (axis, t, p) in enumerate(zip(axes, temps_f, probs, strict=True)):
            bars = axis.bar(np.arange(n), p, color=f"C{i % 10}", edgecolor="0.2", linewidth=0.5)
            small = n > 8
            axis.bar_label(
                bars,
                labels=[f"{v:.{decimals}f}" for v in p],
                padding=2,
                fontsize="x-small" if small else "small",
                rotation=90 if small else 0,
            )
            axis.set_xticks(np.arange(n))
            axis.set_xlabel(xlabel)
            axis.set_ylim(0, min(1.0, top) * (1.3 if small else 1.15))
            axis.grid(True, axis="y", alpha=0.5)
            axis.set_axisbelow(True)
            if len(temps_f) > 1:
                axis.set_title(f"T = {t:g}")
        axes[0].set_ylabel(ylabel)
        if len(temps_f) == 1:
            suffix = "" if temps_f[0] == 1.0 else f" (T = {temps_f[0]:g})"
            axes[0].set_title(title + suffix)
        else:
            fig.suptitle(title)
    return fig


def save(fig: Figure | Axes, path: str | Path, force: bool = False, *, dpi: int = DPI) -> Path:
    """Write a figure to PNG, SVG or PDF (chosen by the suffix) and return the path.

    Overwrite policy: an existing file is never replaced unless ``force=True``; the folder must
    exist (it is not created), and only .png, .svg and .pdf are accepted.
    """
    figure = fig.figure if isinstance(fig, Axes) else fig
    if not isinstance(figure, Figure):
        raise ActlabError(f"save needs a matplotlib Figure or Axes, got {type(fig).__name__}")
    p = output_path(path, FORMATS, force, force_hint="force=True (CLI: --force)")
    with writing(p), _style():
        figure.savefig(p, format=p.suffix.lower()[1:], dpi=dpi)
    return p


# --------------------------------------------------------------------------- gallery


def _overview(acts: Sequence[catalog.Activation], lang: str) -> Figure:
    text = _lang(lang)
    ncols = 4
    nrows = math.ceil(len(acts) / ncols)
    with _style():
        fig = Figure(figsize=(4.0 * ncols, 3.0 * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, act in zip(axes, acts, strict=False):
            d = act.spec.plot
            xlim = _limits("xlim", d.xlim) or (-5.0, 5.0)
            x = _grid(xlim, 801)
            dy = catalog.derivative(act, x)
            _shade(ax, x, dy, text, label=False)
            ax.plot(*breaks(x, catalog.forward(act, x)), color=F_COLOR, linewidth=2.0)
            ax.plot(*breaks(x, dy), color=DF_COLOR, linestyle="--", linewidth=1.5)
            ax.set_title(act.label, fontsize="medium")
            ax.tick_params(labelsize="small")
            _frame(ax, xlim, d.ylim, axis_width=0.6)
        for ax in axes[len(acts) :]:
            ax.set_visible(False)
        handles = [
            Line2D([], [], color=F_COLOR, linewidth=2.0, label="f(x)"),
            Line2D(
                [],
                [],
                color=DF_COLOR,
                linestyle="--",
                linewidth=1.5,
                label=f"f′(x) ({text['derivative']})",
            ),
            Patch(facecolor=SAT_COLOR, alpha=0.35, label=text["saturation"]),
            Patch(
                facecolor=DEAD_COLOR,
                alpha=0.15,
                hatch="//",
                edgecolor=DEAD_COLOR,
                label=text["dead"],
            ),
        ]
        fig.suptitle(text["overview"], fontsize="x-large")
        fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
    return fig


def _card(act: catalog.Activation, image: str, lang: str) -> str:
    text = _lang(lang)
    spec = act.spec
    drawn = ", ".join(
        f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in act.params.items()
    )
    ref = str(spec.reference or "").strip()
    if ref in ("", "-", "—"):
        ref = ""
    rows = [
        (text["formula"], f"<code>{esc(spec.formula)}</code>"),
        (text["dformula"], f"<code>{esc(spec.derivative_formula)}</code>"),
        (text["params"], esc(drawn)),
        (text["range"], esc(spec.range_text.replace("-inf", "−∞").replace("inf", "∞"))),
        (text["properties"], esc(_properties(spec.properties, lang))),
        (text["init"], esc(_INIT.get(spec.recommended_init, str(spec.recommended_init)))),
        (text["family"], esc(str(spec.family))),
        (text["kink"], esc(str(spec.kink_convention or ""))),
        (text["introduced"], esc(f"{spec.year}: {ref}" if spec.year and ref else ref)),
    ]
    lists = ""
    for key in ("pros", "cons", "use", "disagreements"):
        texts = [str(s) for s in (getattr(spec, key, ()) or ())]
        if texts:
            lists += f"<h4>{esc(text[key])}</h4>{items(texts)}"
    aliases = ", ".join(spec.aliases)
    sub = f"<code>{esc(spec.name)}</code>" + (f" ({esc(aliases)})" if aliases else "")
    return (
        f'<section class="card" id="{esc(spec.name)}">'
        f"<h2>{esc(spec.display_name)} <small>{sub}</small></h2>"
        f'<img src="{esc(image)}" alt="{esc(spec.display_name)}" loading="lazy">'
        f"{fields(rows)}{lists}</section>"
    )


def _gallery_activations() -> list[catalog.Activation]:
    """Every elementwise activation, the built-ins and those added by ``actlab.register``."""
    return [_activation(s) for s in catalog.specs() if s.elementwise]


def gallery(
    directory: str | Path, lang: str = "en", *, force: bool = False, dpi: int = 120
) -> Path:
    """Write one PNG per elementwise activation, ``overview.png``, ``softmax.png`` and an
    ``index.html`` that shows them all with formula and properties. Returns the index path.

    The folder is created if its parent exists. Images are referenced by relative paths, so the
    folder can be moved or zipped as a whole. Existing files are not overwritten unless
    ``force=True``.
    """
    text = _lang(lang)
    out = Path(directory).expanduser()
    if out.exists() and not out.is_dir():
        raise ActlabError(f"gallery folder {str(out)!r} is a file; give a folder name")
    if not out.parent.is_dir():
        raise ActlabError(
            f"cannot create gallery folder {str(out)!r}: {str(out.parent)!r} does not exist"
        )
    acts = _gallery_activations()
    files = [f"{a.name}.png" for a in acts] + ["overview.png", "softmax.png", "index.html"]
    if not force:
        clash = [f for f in files if (out / f).exists()]
        if clash:
            raise ActlabError(
                f"{str(out / clash[0])!r} already exists ({len(clash)} gallery file(s) would be "
                f"replaced); pass force=True (CLI: --force) or choose another folder"
            )
    with writing(out):
        out.mkdir(exist_ok=True)

    cards = []
    for act in acts:
        ax = curve(act, derivative=True, lang=lang)
        save(ax.figure, out / f"{act.name}.png", force=True, dpi=dpi)
        cards.append(_card(act, f"{act.name}.png", lang))
    save(_overview(acts, lang), out / "overview.png", force=True, dpi=dpi)
    save(
        softmax_bars(ARTICLE_Z, [0.5, 1.0, 2.0], lang=lang),
        out / "softmax.png",
        force=True,
        dpi=dpi,
    )

    nav = " ".join(f'<a href="#{esc(a.name)}">{esc(a.spec.display_name)}</a>' for a in acts)
    softmax = [(text["formula"], f"<code>{esc(catalog.get('softmax').formula)}</code>")]
    body = [
        f'<h1>{esc(text["gallery"])}</h1><p class="intro">{esc(text["intro"])}</p>',
        f"<nav><strong>{esc(text['contents'])}:</strong> {nav} "
        f'<a href="#softmax">Softmax</a></nav>',
        f'<p><img src="overview.png" alt="{esc(text["overview"])}"></p>',
        f'<div class="cards">{"".join(cards)}</div>',
        f'<section class="card" id="softmax"><h2>Softmax</h2>'
        f"<p>{esc(text['softmax_note'])}</p>{fields(softmax)}"
        f'<img src="softmax.png" alt="{esc(text["softmax"])}"></section>',
    ]
    page = html_page(text["gallery"], body, lang)
    index = out / "index.html"
    with writing(index):
        index.write_text(page, encoding="utf-8")
    return index
