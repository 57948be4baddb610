"""The study checks its own evidence before a person reads its answer.

* **Baselines**: does any activation beat the majority class / logistic regression (mean / ridge)
  fit on the same split (:mod:`actlab.compare.baselines`)?
* **Convergence**: a chosen setting is *still improving* when at least half of its seeds that
  trained every epoch reached their best validation score in the last ``max(2, ceil(epochs /
  10))`` epochs (the last 3 of the default 30): their curves had not levelled off, so more epochs
  may change the answer.
* **Edge of the grid**: a tuned factor whose chosen value is the smallest or the largest value
  tried, for any activation: the best value may lie outside the grid.
* **Next steps**: the runnable commands the evidence calls for, each with its reason.
"""

from __future__ import annotations

import math
from typing import Any

from actlab.compare import stats
from actlab.compare.analysis import Analysis, _name
from actlab.compare.config import FACTORS, CompareConfig, command

__all__ = ["Step", "baseline_sentence", "best_baseline", "convergence", "edges", "next_steps"]

Step = tuple[str, str]  # (command, reason)


def tail_epochs(epochs: int) -> int:
    """How many of the last epochs count as 'still improving' (the module docstring's rule)."""
    return max(2, math.ceil(epochs / 10))


def best_baseline(baselines: list[dict[str, Any]], metric: str, higher: bool) -> dict | None:
    """The baseline with the best ``metric`` (None without baselines or that metric)."""
    scored = [b for b in baselines if math.isfinite(b["metrics"].get(metric, math.nan))]
    if not scored:
        return None
    sign = 1.0 if higher else -1.0
    return max(scored, key=lambda b: sign * b["metrics"][metric])


def baseline_sentence(analysis: Analysis, baselines: list[dict[str, Any]]) -> str:
    """A headline sentence when no activation beats the best baseline ('' otherwise)."""
    base = best_baseline(baselines, analysis.metric, analysis.higher_is_better)
    if base is None:
        return ""
    value = base["metrics"][analysis.metric]
    sign = 1.0 if analysis.higher_is_better else -1.0
    tops = [c.summary.rows[0] for c in analysis.cells if c.summary.rows]
    tops = [r for r in tops if r.mean is not None]
    if not tops or any(sign * r.mean > sign * value for r in tops):
        return ""
    top = max(tops, key=lambda r: sign * r.mean)
    return (
        f"No activation beats the {base['name']} baseline ({analysis.metric} "
        f"{stats.fmt(value)}; the best network, {top.activation}, scored {stats.fmt(top.mean)}): "
        "on these data the networks add nothing over a linear model."
    )


def convergence(config: CompareConfig, analysis: Analysis,
                table: list[dict[str, Any]]) -> list[str]:  # fmt: skip
    """'cell: activation' of the chosen settings that were still improving (module docstring)."""
    epochs = config.model.epochs
    tail = tail_epochs(epochs)
    out = []
    for cell in analysis.cells:
        for act, chosen in cell.chosen.items():
            want = {**cell.values, **chosen}
            rows = [r for r in table if r["activation"] == act and r["status"] == "done"
                    and all(r.get(k) == v for k, v in want.items())]  # fmt: skip
            full = [r for r in rows if r.get("epochs") == epochs and r.get("best_epoch")]
            late = [r for r in full if r["best_epoch"] > epochs - tail]
            if full and 2 * len(late) >= len(full):
                out.append(f"{cell.label}: {act}" if cell.label else act)
    return out


def _next_value(values: list[Any], up: bool) -> Any | None:
    """The next value beyond the grid on its own scale (log when every value is > 0)."""
    v = sorted(values)
    if len(v) < 2:
        return None
    a, b = (v[-2], v[-1]) if up else (v[1], v[0])
    if a <= 0 or b <= 0:
        if up:
            return b + (b - a)
        return None  # below 0 (weight decay) or 0 itself: nothing smaller
    new = b * (b / a)
    if isinstance(b, int):
        new = round(new)
        return new if new >= 1 and new != b else None
    return float(f"{new:.2g}")


def edges(config: CompareConfig, analysis: Analysis) -> list[tuple[str, Any, str, list[str], Any]]:
    """(factor, value, 'smallest'/'largest', activations, proposed next value) for each tuned
    factor whose chosen value is at an end of its values, for any activation."""
    out = []
    for factor in analysis.tuned:
        values = list(getattr(config.model, factor))
        if len(values) < 2 or not all(_is_number(v) for v in values):
            continue  # (a user's factor of names, e.g. --param scheduler=cosine,step: no ends)
        values.sort()
        for value, side in ((values[0], "smallest"), (values[-1], "largest")):
            acts = sorted({a for c in analysis.cells for a, ch in c.chosen.items()
                           if ch.get(factor) == value})  # fmt: skip
            if acts:
                out.append((factor, value, side, acts, _next_value(values, side == "largest")))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _command(config: CompareConfig, **changes: Any) -> str:
    """The command for this run's settings with ``changes``; a user's own factor (``--param``)
    changes inside ``param``."""
    flat = {k: v for k, v in config.flat().items() if v is not None}
    own = {k: changes.pop(k) for k in list(changes) if k not in flat and k not in FACTORS
           and any(k == name for name, _ in config.model.param or ())}  # fmt: skip
    if own:
        flat["param"] = tuple((name, tuple(own.get(name, values)))
                              for name, values in config.model.param)  # fmt: skip
    return command(CompareConfig.from_settings({**flat, **changes}), "NEW_DIR")


def next_steps(config: CompareConfig, analysis: Analysis, still: list[str],
               edge: list[tuple], extra: list[Step] | None = None) -> list[Step]:  # fmt: skip
    """The commands the evidence calls for, each with its reason (empty: the answer stands)."""
    steps: list[Step] = list(extra or [])
    if edge:
        grid: dict[str, list] = {}
        for factor, _, _, _, new in edge:
            if new is not None:
                grid.setdefault(factor, sorted(getattr(config.model, factor)))
                if new not in grid[factor]:
                    grid[factor] = sorted([*grid[factor], new])
        if grid:
            why = "; ".join(f"{', '.join(a)} chose the {side} {_name(f)} tried ({v:g})"
                            for f, v, side, a, _ in edge)  # fmt: skip
            steps.append((_command(config, **grid), f"widen the grid: {why}"))
    if still:
        epochs = 2 * config.model.epochs
        steps.append((
            _command(config, epochs=epochs),
            f"more epochs: {', '.join(still)} still improved in the last "
            f"{tail_epochs(config.model.epochs)} epochs (best validation score that late on at "
            "least half of the seeds)",
        ))  # fmt: skip
    need = [r.seeds_needed for c in analysis.cells for r in c.summary.rows
            if r.verdict == stats.TIED and r.seeds_needed is not None
            and r.seeds_needed <= stats.SENSIBLE_SEEDS and r.seeds_needed > config.study.seeds
            and (c.summary.margin is None or abs(r.mean_diff or 0.0) > c.summary.margin)]
    if need:
        n = max(need)
        steps.append((_command(config, seeds=n),
                      f"more seeds: about {n} would separate the rivals whose difference exceeds "
                      "the margin (80% power, a rough estimate)"))  # fmt: skip
    return steps
