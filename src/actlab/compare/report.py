"""Reports of a comparison: a terminal table (rich), ``report.md`` and a self-contained
``report.html``.

The HTML page needs no network: CSS is inline and the figures are PNGs embedded as base64, drawn
with matplotlib's object API (``Figure``; no pyplot state); its style and skeleton are the
gallery's (``actlab._html``). Every name that comes from user data (dataset, CSV column and class
names) is escaped: in HTML with ``actlab._html.esc``, in the terminal as plain ``Text``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from actlab._html import esc, fields, page, table
from actlab.compare.config import FACTORS
from actlab.compare.stats import fmt
from actlab.errors import ActlabError, writing

MAX_NAMES = 60  # feature names listed in the report before "... and N more"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _ci(r: Any) -> str:
    return "–" if r.ci_low is None else f"{fmt(r.ci_low)}–{fmt(r.ci_high)}"


def _mean_std(r: Any) -> str:
    if r.mean is None:
        return "–"
    return fmt(r.mean) + ("" if r.std is None else f" ± {fmt(r.std)}")


def _failures(r: Any) -> str:
    total = len(r.values)
    return f"{r.n_failed}/{total}" if r.n_failed else "0"


def _seeds_needed(r: Any, margin: float | None = None) -> str:
    from actlab.compare.stats import SENSIBLE_SEEDS

    if r.verdict != "not distinguishable at this number of seeds":
        return ""
    if margin is not None and r.mean_diff is not None and abs(r.mean_diff) <= margin:
        return "< margin"
    if r.effect_size == 0.0:
        return "never (difference 0)"
    if r.seeds_needed is None or r.seeds_needed > SENSIBLE_SEEDS:
        return f"> {SENSIBLE_SEEDS}"
    return f"≈ {r.seeds_needed}"


def _values(values: dict[str, Any], short: bool = False) -> str:
    from actlab.compare.analysis import factor_label

    name = (lambda k: k) if short else factor_label
    return ", ".join(f"{name(k)} {v:g}" if isinstance(v, float) else f"{name(k)} {v}"
                     for k, v in values.items())  # fmt: skip


def summary_rows(res: Any, cell: Any = None) -> list[dict[str, str]]:
    """The results table of one studied cell as text cells (shared by all three formats)."""
    cell = cell if cell is not None else res.studies[0]
    rows = []
    for r in cell.summary.rows:
        chosen = (
            {"chosen": _values(cell.chosen.get(r.activation, {}), short=True)}
            if res.analysis.tuned
            else {}
        )
        rows.append(
            {
                "#": str(r.rank),
                "activation": r.activation,
                **chosen,
                "mean ± sd": _mean_std(r),
                "95% CI": _ci(r),
                "vs best": r.verdict,
                "p (Holm)": fmt_p(r.p_holm),
                "diverged": _failures(r),
                "seeds needed": _seeds_needed(r, cell.summary.margin),
            }
        )
    for b in getattr(res.analysis, "baselines", []):  # on the same split, fit by scikit-learn
        value = b["metrics"].get(res.metric)
        if value is None:
            continue
        rows.append({"#": "–", "activation": b["name"], **({"chosen": ""} if chosen else {}),
                     "mean ± sd": fmt(value), "95% CI": "–", "vs best": BASELINE,
                     "p (Holm)": "–", "diverged": "–", "seeds needed": ""})  # fmt: skip
    return rows


BASELINE = "baseline"
BASELINE_NOTE = (
    "baseline: scikit-learn, fit on the same training part and scored on the same test part (one "
    "fit, no seeds)."
)


def next_steps_lines(res: Any) -> list[str]:
    """'reason:' then the command, for each next step the evidence calls for."""
    steps = getattr(res.analysis, "next_steps", [])
    return [f"{reason}:\n  {cmd}" for cmd, reason in steps]


# ------------------------------------------------------------------------------------------
# terminal


# word columns wrap at spaces, but not below these widths: "activation" is the header,
# "distinguishable" the longest word of a verdict (narrower, rich cuts words in the middle)
WORD_WIDTH = {"activation": 10, "vs best": 15, "chosen": 8, "seeds": 5}


def _fit_columns(rows: list[dict[str, str]], width: int) -> list[str]:
    """Fit ``width`` without cutting a word or a number and without dropping a column: words wrap
    at spaces; if that is not enough, each confidence interval goes on two lines ("lo–" over
    "hi"). Returns [] (kept for callers that listed dropped columns: none are dropped now)."""
    if not rows:
        return []

    def need() -> int:
        total = -3  # each column: its padding (2) and one divider (the table has no outer edge)
        for key in rows[0]:
            widest = max(len(key), *(len(line) for r in rows for line in r[key].split("\n")))
            total += (min(widest, WORD_WIDTH[key]) if key in WORD_WIDTH else widest) + 3
        return total

    if need() > width and "95% CI" in rows[0]:
        for r in rows:
            r["95% CI"] = r["95% CI"].replace("–", "–\n", 1) if r["95% CI"] != "–" else "–"
    return []


def _longest_word(rows: list[dict[str, str]], key: str) -> int:
    return max((len(w) for r in rows for w in r[key].split()), default=1)


def _terminal_rows(res: Any, cell: Any) -> list[dict[str, str]]:
    rows = summary_rows(res, cell)
    for r in rows:  # the CI shows the spread; sd stays in the Markdown/HTML reports
        if "chosen" in r:  # short factor names: the terminal is narrow
            r["chosen"] = _values(cell.chosen.get(r["activation"], {}), short=True)
        r["mean ± sd"] = r["mean ± sd"].split(" ± ")[0]
        r["mean"] = r.pop("mean ± sd")
        r.update({k: r.pop(k) for k in ("95% CI", "vs best")})
        r["p"] = r.pop("p (Holm)")
        r["diverged"] = r.pop("diverged")
        r["seeds"] = r.pop("seeds needed")
    if rows and all(r["diverged"] in ("0", "–") for r in rows):  # said once below, not 0s
        for r in rows:
            del r["diverged"]
    if rows and not any(r["seeds"] for r in rows):
        for r in rows:
            del r["seeds"]
    return rows


def terminal(res: Any, console: Any) -> None:
    """Print each studied cell's table, the effects and the headline with rich (plain text)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    any_diverged = any_seeds = False
    dropped: list[str] = []
    for cell in res.studies:
        rows = _terminal_rows(res, cell)
        dropped += [k for k in _fit_columns(rows, console.width) if k not in dropped]
        where = f", {cell.label}" if cell.label else ""
        title = Text(f"{res.data['name']}{where}: {res.metric} {_at_epoch(res)}")
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                      show_edge=False)  # fmt: skip
        for row in rows:  # the headline says "at N seeds": keep the terminal column narrow
            row["vs best"] = row["vs best"].replace(" at this number of seeds", "")
        for key in rows[0] if rows else []:
            widest = max(len(key), *(len(line) for r in rows for line in r[key].split("\n")))
            words = key in WORD_WIDTH
            # fixed widths: numbers keep their full width (never cut); words wrap at spaces
            # within their width (rich's own layout cut the last column at 80 columns)
            fixed = min(widest, max(WORD_WIDTH[key], _longest_word(rows, key))) if words else widest
            table.add_column(
                key,
                justify="right" if key in ("#", "diverged") else "left",
                no_wrap=not words,
                width=fixed,
                overflow="fold" if words else "ellipsis",
            )
        for row in rows:
            style = "bold green" if row["vs best"] == "best" else None
            table.add_row(*(Text(v) for v in row.values()), style=style)
        console.print(table)
        any_diverged |= bool(rows) and "diverged" in rows[0]
        any_seeds |= bool(rows) and "seeds" in rows[0]
    legend = "p: paired t-test against the best, Holm-corrected." if "p" not in dropped else ""
    if any_seeds:
        legend += " seeds: seeds needed to separate it from the best (80% power)."
    if getattr(res.analysis, "baselines", None):
        legend += " " + BASELINE_NOTE
    legend = legend.strip()
    console.print(Text(legend, style="dim"))
    if not any_diverged:
        console.print("No model diverged.")
    if res.analysis.effects:
        table = Table(
            title=Text(f"Studied factors: each value against the first ({res.metric})"),
            title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
        )  # fmt: skip
        for row in effect_rows(res):
            row["p"] = row.pop("p (Holm)")
            row["diff"] = row.pop("difference")
            row["verdict"] = row.pop("verdict")
            row["mean"] = row["mean"].replace(" → ", " →\n")  # two numbers, never cut
            if not table.columns:
                for key in row:  # words wrap at spaces; numbers keep their width
                    words = key in ("activation", "change", "verdict")
                    table.add_column(key, no_wrap=not words,
                                     min_width=10 if words else None)  # fmt: skip
            table.add_row(*(Text(v) for v in row.values()))
        console.print(table)
    console.print(Text(res.analysis.selection, style="dim"))
    console.print(Text(res.headline, style="bold"))
    for note in [*res.notes, *(n for c in res.studies for n in c.summary.notes)]:
        console.print(Text(note, style="yellow"))
    for note in data_notes(res.data):
        console.print(Text(note, style="yellow"))
    for warning in getattr(res.analysis, "warnings", []):
        console.print(Text(warning, style="yellow"))
    steps = getattr(res.analysis, "next_steps", [])
    if steps:
        console.print(Text("Next steps:", style="bold"))
        for cmd, reason in steps:  # the reason wraps; the command stays whole, to be copied
            console.print(Text(f"- {reason}:"))
            console.print(Text(f"  {cmd}"), soft_wrap=True)


def _at_epoch(res: Any) -> str:
    """Where the models were compared: each at its best validation epoch, or one epoch."""
    if getattr(res.analysis, "best_epoch", False):
        return f"at each model's best epoch (of ≤ {res.config.model.epochs})"
    return f"at epoch {res.final_epoch}"


def data_notes(d: dict[str, Any]) -> list[str]:
    """What the data loader decided for the user: an inferred task, rows left out."""
    from actlab import data

    return data.notes(str(d.get("task_note") or ""), int(d.get("dropped_rows") or 0),
                      str(d.get("column_note") or ""))


def effect_rows(res: Any) -> list[dict[str, str]]:
    """The studied factors' effect table as text cells."""
    from actlab.compare.analysis import factor_label

    out = []
    for e in res.analysis.effects:
        others = f" ({_values(e.others)})" if e.others else ""
        out.append(
            {
                "activation": e.activation,
                "change": f"{factor_label(e.factor)} {_fmt_value(e.base)} → {_fmt_value(e.value)}"
                + others,
                "mean": f"{fmt(e.mean_base)} → {fmt(e.mean_value)}",
                "difference": "–" if e.mean_diff is None else f"{e.mean_diff:+.4f}",
                "p (Holm)": fmt_p(e.p_holm),
                "verdict": e.verdict,
            }
        )
    return out


def _fmt_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def chosen_rows(res: Any) -> list[dict[str, str]]:
    """Activation x studied cell -> the tuned values chosen on validation data."""
    out = []
    for act in res.config.study.activations:
        row = {"activation": act}
        for cell in res.studies:
            cands = {json_key(c.values): c for c in cell.candidates[act]}
            pick = cands[json_key(cell.chosen[act])]
            row[cell.label or "chosen"] = f"{_values(cell.chosen[act])} (val {fmt(pick.mean)})"
        out.append(row)
    return out


def json_key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


# ------------------------------------------------------------------------------------------ data
# for plots


class View:
    """What one studied cell's figures draw: the chosen models' history and that cell's stats."""

    def __init__(self, res: Any, cell: Any) -> None:
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


def _view(res: Any) -> View:
    """A figure's input: a :class:`View` as given, or a whole run's first studied cell."""
    return res if isinstance(res, View) else View(res, res.studies[0])


def _by_activation(res: Any) -> dict[str, list[dict[str, Any]]]:
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


def _colors(res: Any) -> dict[str, str]:
    # same order as plot.compare, so an activation has one colour in every figure
    acts = res.activations if isinstance(res, View) else res.config.study.activations
    return {a: f"C{i % 10}" for i, a in enumerate(acts)}


def _fit(fig: Any) -> None:
    """``fig.tight_layout()`` without its raw warning: with hundreds of activations the labels
    leave no room ("Tight layout not applied"), and the figure keeps its default margins."""
    import warnings

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


def _png(fig: Figure) -> str:
    # one draw per figure, not three: no bbox_inches="tight" (tight_layout has fitted the figure
    # already), and no layout engine (tight_layout leaves a placeholder one, for which savefig
    # draws the figure once more first); CPU for the 5 figures of a default run 1.6 -> 0.9 s
    fig.set_layout_engine(None)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def fig_learning_curves(res: Any) -> Figure:
    res = _view(res)
    fig = Figure(figsize=(11, 4.2))
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


def fig_per_seed(res: Any) -> Figure:
    res = _view(res)
    rows = res.stats.rows
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.0))
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
    import textwrap

    from matplotlib import rcParams

    size = size or float(_font_size(rcParams["axes.titlesize"]))
    # a character of DejaVu Sans averages ~0.6 em; keep 10% for the margins
    chars = int(0.9 * fig.get_figwidth() * 72 / (0.6 * size))
    return textwrap.fill(title, width=max(chars, 20))


def _font_size(value: Any) -> float:
    """A font size in points from rcParams (a number or a name such as 'large')."""
    from matplotlib.font_manager import FontProperties

    return float(FontProperties(size=value).get_size_in_points())


def _layer_means(res: Any, key: str, which: str) -> dict[str, np.ndarray]:
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


def fig_grad_norms(res: Any) -> Figure:
    res = _view(res)
    fig = Figure(figsize=(11, 4.0))
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


def fig_unit_health(res: Any) -> Figure:
    res = _view(res)
    fig = Figure(figsize=(11, 4.0))
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


def fig_activations(res: Any) -> Figure | None:
    """The activation functions and their derivatives; ``None`` if none can be drawn."""
    from actlab import catalog

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
    from actlab import plot

    fig = Figure(figsize=(11, 4.0))
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


def fig_heatmap(res: Any, factor: str) -> Figure:
    """Activation x value of a studied factor: mean reported metric, 95% CI in each cell."""
    from actlab.compare.analysis import factor_label

    a = res.analysis
    others = [f for f in a.studied if f != factor]
    panels: dict[str, dict[Any, Any]] = {}
    for cell in a.cells:
        key = _values({f: cell.values[f] for f in others})
        panels.setdefault(key, {})[cell.values[factor]] = cell
    acts = list(res.config.study.activations)
    n = len(panels)
    fig = Figure(figsize=(min(4.0 + 2.2 * max(len(v) for v in panels.values()), 11) * min(n, 2),
                          1.2 + 0.55 * len(acts)))  # fmt: skip
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


def fig_sensitivity(res: Any, factor: str) -> Figure:
    """Validation metric vs one tuned factor, a line per activation with a ±sd band over seeds."""
    from actlab.compare.analysis import factor_label, factor_scale, sensitivity

    a = res.analysis
    lines = sensitivity(res, factor)
    n = len(lines)
    fig = Figure(figsize=(min(5.5 * n, 11), 4.0))
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


# ------------------------------------------------------------------------------------------
# markdown


def reproduce_command(res: Any) -> str:
    """The stored command with ``--out NEW_DIR``: run verbatim with the old folder it would only
    be refused (the folder already holds this run)."""
    import re
    import shlex

    out = shlex.quote(str(res.directory))
    command = str(res.command)
    if command.endswith(f"--out {out}"):
        return command[: -len(out)] + "NEW_DIR"
    return re.sub(r"--out\s+\S+", "--out NEW_DIR", command) if "--out" in command else command


def resume_command(res: Any) -> str:
    import shlex

    return f"actlab compare --out {shlex.quote(str(res.directory))} --resume"


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # only these can open an HTML tag or comment


def _md_cell(value: Any) -> str:
    # quotes stay quotes and "p < 0.001" stays readable (a plain-text viewer showed '&lt; 0.001'):
    # only a '<' that could open a tag, and '&', are escaped, so that user-given names still
    # cannot inject HTML into a rendered report
    text = str(value).replace("&", "&amp;")
    return _TAG_START.sub("&lt;", text).replace("|", "\\|").replace("\n", " ")


def _md_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    return [
        "| " + " | ".join(_md_cell(k) for k in rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(_md_cell(v) for v in row.values()) + " |" for row in rows),
    ]


def _scope(res: Any) -> str:
    c = res.config
    grid = [f"{len(c.study.activations)} activations"]
    for f in ("depth", "width", "batch_size", "lr", "weight_decay"):
        values = getattr(c.model, f)
        if len(values) > 1:
            grid.append(f"{len(values)} {f.replace('_', ' ')}s")
    return (
        f"{' × '.join(grid)} × {c.study.seeds} seeds = {len(res.models)} models; {res.metric} "
        + (_at_epoch(res) if res.analysis.best_epoch else
           f"at epoch {res.final_epoch} of {c.model.epochs}")
    )


def markdown(res: Any) -> str:
    d = res.data
    lines = [
        f"# actlab compare: {_md_cell(d['name'])}",
        "",
        f"**{_md_cell(res.headline)}**",
        "",
    ]
    notes = [*res.notes, *(n for c in res.studies for n in c.summary.notes)]
    lines += [f"> {_md_cell(n)}" for n in notes]
    lines += [f"> **Warning:** {_md_cell(w)}" for w in res.analysis.warnings]
    lines += ["", _md_cell(_scope(res)) + ".", "", _md_cell(res.analysis.selection), ""]
    for cell in res.studies:
        if cell.label:
            lines += [f"## {_md_cell(cell.label)}", ""]
        lines += [*_md_table(summary_rows(res, cell)), ""]
    if res.analysis.tuned:
        lines += ["## Chosen on validation data", "", *_md_table(chosen_rows(res)), ""]
    if res.analysis.effects:
        lines += ["## Studied factors", "", *_md_table(effect_rows(res)), ""]
    if res.analysis.baselines:
        lines += [BASELINE_NOTE, ""]
    lines += [
        f"Method: {_md_cell(res.stats.method)}. Seeds needed: for 80% power from the observed "
        "paired effect size (a rough estimate).",
        "",
        "## Data",
        "",
        f"- dataset: {_md_cell(d['name'])} ({_md_cell(d['task'])}, target {_md_cell(d['target'])})",
        f"- rows: {_rows_text(res)}",
        f"- features ({d['n_features']}): {_md_cell(_names(d))}",
    ]
    if d.get("class_names"):
        lines.append(f"- classes: {_md_cell(', '.join(map(str, d['class_names'])))}")
    lines += [f"- note: {_md_cell(note)}" for note in data_notes(d)]
    lines += [
        "",
        "## Reproduce",
        "",
        "A new run with the same settings (NEW_DIR: a folder that does not exist yet):",
        "",
        "```",
        reproduce_command(res),
        "```",
        "",
        "Finish or extend this run where it is:",
        "",
        "```",
        resume_command(res),
        "```",
        "",
        f"Data fingerprint: `{res.fingerprint}`. Versions: "
        + ", ".join(f"{k} {v}" for k, v in res.versions.items())
        + ".",
        "",
        *[
            f"- session {i}: {s['versions'].get('device', 'cpu')}, "
            f"{s['versions'].get('backend', 'this process')}, {s['outcome'] or 'running or killed'}"
            for i, s in enumerate(res.sessions, 1)
        ],
        "",
        "The figures are in report.html. Every model and epoch: "
        "`actlab report DIR --csv rows.csv`.",
        "",
    ]
    if res.analysis.next_steps:
        lines += ["## Next steps", ""]
        for cmd, reason in res.analysis.next_steps:
            lines += [f"- {_md_cell(reason)}:", "", "  ```", f"  {cmd}", "  ```", ""]
    return "\n".join(lines)


def _rows_text(res: Any) -> str:
    d = res.data
    text = f"{d['n_train']} training, {d['n_val']} validation, {d.get('n_test', 0)} test"
    if res.config.data.resample_split:
        text += f" (a new split for every seed: split seed {res.config.data.split_seed} + seed)"
    return text


# ------------------------------------------------------------------------------------------ html


def _img(draw: Callable[[Any], Figure | None], res: Any, alt: str) -> str:
    """The figure ``draw(res)`` as an embedded PNG; a figure that cannot be drawn says why instead
    of stopping the report (the numbers are stored; the report must render whatever they are)."""
    try:
        fig = draw(res)
        if fig is None:
            return f"<p class='muted'>({esc(alt)}: nothing to draw)</p>"
        return f"<img alt='{esc(alt)}' src='data:image/png;base64,{_png(fig)}'>"
    except Exception as err:  # a figure must never cost the report
        return (
            f"<p class='muted'>({esc(alt)}: could not be drawn from these numbers: "
            f"{esc(type(err).__name__)}: {esc(err)})</p>"
        )


def _model_rows(res: Any) -> list[dict[str, Any]]:
    factors = [f for f in FACTORS if len(getattr(res.config.model, f)) > 1]
    keys = ["activation", "seed", *factors, "status", "epochs", "train_loss", "val_loss"]
    extra = sorted({k for r in res.table for k in r
                    if k.startswith(("val_", "test_")) and k != "val_loss"})  # fmt: skip
    out = []
    for r in res.table:
        row = {}
        for k in keys + extra:
            v = r.get(k)
            row[k] = fmt(v) if isinstance(v, float) else ("–" if v is None else v)
        out.append(row)
    return out


def _names(d: dict[str, Any]) -> str:
    names = [str(n) for n in d.get("feature_names", [])]
    more = f" … and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return ", ".join(names[:MAX_NAMES]) + more


def _headline_html(res: Any, tie: str) -> str:
    """The headline; with studied factors one line per value and one per factor's effect."""
    from actlab.compare.analysis import effect_sentences

    a = res.analysis
    if len(a.cells) == 1 and not a.effects:
        return f"<div class='headline{tie}'>{esc(res.headline)}</div>"
    lines = [f"<p><b>{esc(c.label)}:</b> {esc(c.summary.headline)}</p>" for c in a.cells]
    lines += [f"<p><b>{esc(s)}</b></p>" for s in effect_sentences(a.effects, a.metric)]
    return f"<div class='headline{tie}'>{''.join(lines)}</div>"


def html_page(res: Any) -> str:
    from actlab.compare.analysis import factor_label

    d = res.data
    shown = _names(d)
    classes = ", ".join(map(str, d.get("class_names", [])))
    config_rows = [
        {
            "setting": f"{section}.{k}",
            "value": json.dumps(v) if isinstance(v, (list, dict)) else ("–" if v is None else v),
        }
        for section, values in res.config.to_dict().items()
        for k, v in values.items()
    ]
    sessions = [
        {
            "started": datetime.fromtimestamp(s["started"]).strftime("%Y-%m-%d %H:%M:%S"),
            "outcome": s["outcome"] or "running or killed",
            "seconds": fmt((s["finished"] or s["started"]) - s["started"], 1),
            "device": s["versions"].get("device", "cpu"),
            "backend": s["versions"].get("backend", "this process"),
        }
        for s in res.sessions
    ]
    tie = "" if res.winner else " tie"
    all_notes = [*res.notes, *(n for c in res.studies for n in c.summary.notes)]
    notes = "".join(f"<div class='note'>{esc(n)}</div>" for n in all_notes)
    notes += "".join(f"<div class='note'><b>Warning:</b> {esc(w)}</div>"
                     for w in res.analysis.warnings)  # fmt: skip
    a = res.analysis
    parts = [
        f"<h1>actlab compare: {esc(d['name'])}</h1>",
        f"<p class='muted'>{esc(d['task'])}, {esc(_scope(res))}</p>",
        _headline_html(res, tie),
        notes,
        f"<p class='selection'>{esc(a.selection)}</p>",
        "<h2>Results</h2>",
    ]
    for cell in res.studies:
        if cell.label:
            parts.append(f"<h3>{esc(cell.label)}</h3>")
        parts += [
            table(summary_rows(res, cell), best_key="vs best"),
            _img(fig_per_seed, View(res, cell), "final metric per seed"),
        ]
    parts.append(
        (f"<p class='muted'>{esc(BASELINE_NOTE)}</p>" if a.baselines else "")
        + f"<p class='muted'>{esc(res.stats.method)}. “Seeds needed”: seeds for 80% power to "
        "separate that activation from the best, from the observed paired effect size (a rough "
        "estimate). A diverged model (loss NaN/inf) counts as a failure.</p>"
    )
    for factor in a.studied:
        parts += [
            f"<h2>Studied factor: {esc(factor_label(factor))}</h2>",
            "<p class='muted'>Each cell: the mean test score over seeds of the activation at its "
            "chosen setting, with its 95% CI; (best) and (worse): the paired verdict against the "
            "best activation at that value. The table pairs every value with the first by seed "
            "(same data order and split), within each activation, Holm-corrected.</p>",
            _img(lambda r, f=factor: fig_heatmap(r, f), res, f"heat map of {factor}"),
            table([r for r in effect_rows(res)
                   if r["change"].startswith(factor_label(factor) + " ")]),
        ]
    if a.tuned:
        parts += [
            "<h2>Tuned on validation data</h2>",
            "<p class='muted'>The value of each tuned factor that each activation got, chosen by "
            "its mean validation score over seeds "
            + ("at each model's best epoch" if a.best_epoch else "at the final epoch")
            + "; in brackets that score.</p>",
            table(chosen_rows(res)),
        ]
        for factor in a.tuned:
            parts.append(
                _img(lambda r, f=factor: fig_sensitivity(r, f), res, f"sensitivity to {factor}")
            )
        parts.append(
            "<p class='muted'>Sensitivity: the validation metric against each tuned factor, the "
            "other tuned factors held at the chosen values; band: ± sd over seeds; star: the "
            "chosen value. A steep line is an activation that is fragile to that factor.</p>"
        )
    for cell in res.studies:
        v = View(res, cell)
        at = f" — {esc(cell.label)}" if cell.label else ""
        parts += [
            f"<h2>Learning curves{at}</h2>",
            _img(fig_learning_curves, v, "learning curves"),
            f"<h2>Gradient flow{at}</h2>",
            "<p class='muted'>Gradient norm per weight layer at the first and the last epoch, "
            "log scale: a line falling towards the input is a vanishing gradient.</p>",
            _img(fig_grad_norms, v, "gradient norms per layer"),
            f"<h2>Dead and saturated units{at}</h2>",
            _img(fig_unit_health, v, "dead and saturated fractions"),
        ]
    parts += [
        "<h2>The activation functions</h2>",
        _img(fig_activations, res, "activation functions"),
        "<h2>Data</h2>",
        fields(
            (k, esc(v))
            for k, v in [
                ("dataset", d["name"]),
                ("task", d["task"]),
                ("target", d["target"]),
                ("rows", _rows_text(res)),
                ("features", f"{d['n_features']}: {shown}"),
                ("classes", classes),
                *(("note", note) for note in data_notes(d)),
            ]
        ),
        "<h2>Reproduce</h2>",
        "<p>A new run with the same settings (NEW_DIR: a folder that does not exist yet):</p>",
        f"<pre>{esc(reproduce_command(res))}</pre>",
        "<p>Finish or extend this run where it is:</p>",
        f"<pre>{esc(resume_command(res))}</pre>",
        table(config_rows),
        f"<p class='muted'>Data fingerprint (sha256 of the split): <code>{esc(res.fingerprint)}"
        "</code></p>",
        table([{"library": k, "version": v} for k, v in res.versions.items()]),
        "<h3>Sessions</h3>",
        table(sessions),
        "<details><summary>Every model at the compared epoch</summary>",
        table(_model_rows(res)),
        "</details>",
    ]
    if a.next_steps:
        parts.append("<h2>Next steps</h2>")
        parts += [f"<p>{esc(reason)}:</p><pre>{esc(cmd)}</pre>" for cmd, reason in a.next_steps]
    return page(f"actlab compare: {d['name']}", parts)


def write(res: Any) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` into the run directory; returns their paths."""
    directory = Path(res.directory)
    md = directory / "report.md"
    page = directory / "report.html"
    hint = (
        "the results in results.sqlite are intact; copy the run folder somewhere writable "
        f"(cp -r {directory} NEW) and run 'actlab report NEW'"
    )
    for path, text in ((md, markdown(res)), (page, html_page(res))):
        with writing(path, hint):
            path.write_text(text, encoding="utf-8")
    return {"markdown": md, "html": page}
