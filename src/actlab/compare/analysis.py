"""Selection on validation, then one honest test: what a grid of models says.

Every model is taken at its best validation epoch (``--epochs`` is a maximum; the engine keeps the
test-part outputs of the weights at that epoch and scores them once). For every activation and every
value of the *studied* factors (e.g. each depth), the *tuned* factors (e.g. the learning rate) are
chosen by the mean validation metric (the run's ``--metric``) over seeds at those epochs; a setting
with more diverged seeds loses to one with fewer, whatever its mean. The choice reads validation
metrics only: the test metrics of the chosen settings are then what the ranking, the confidence
intervals and the paired tests use (:func:`actlab.compare.stats.summarize`). Runs stored before
best-epoch selection are read as they were made: every model at the same, final epoch.

A studied factor also gets an effect table: within each activation, each value against the first
(e.g. depth 8 against depth 2), paired by seed (same seeds, so the same data order and split),
Holm-corrected over the activations and values of that factor.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actlab.compare import stats
from actlab.compare.config import METRICS, CompareConfig, metric_key

__all__ = ["Analysis", "Candidate", "Cell", "Effect", "analyse", "sensitivity"]


@dataclass
class Candidate:
    """One setting of the tuned factors for one activation, judged on validation data."""

    values: dict[str, Any]
    val: dict[int, float | None]  # seed -> final validation metric (None: diverged)
    mean: float | None
    n_failed: int


@dataclass
class Cell:
    """One value combination of the studied factors (``values``; empty when none is studied)."""

    values: dict[str, Any]
    summary: stats.Summary  # on the reported metric of each activation's chosen setting
    chosen: dict[str, dict[str, Any]]  # activation -> chosen values of the tuned factors
    candidates: dict[str, list[Candidate]]

    @property
    def label(self) -> str:
        return ", ".join(f"{_name(k)} {v:g}" if isinstance(v, float) else f"{_name(k)} {v}"
                         for k, v in self.values.items())  # fmt: skip


@dataclass
class Effect:
    """A studied factor's ``value`` against its first value ``base``, within one activation."""

    factor: str
    activation: str
    base: Any
    value: Any
    others: dict[str, Any]  # the other studied factors' values
    n: int  # seeds paired
    mean_base: float | None
    mean_value: float | None
    mean_diff: float | None  # value minus base
    p_value: float | None
    p_holm: float | None = None
    verdict: str = ""


@dataclass
class Analysis:
    metric: str  # what the ranking uses: test_* (or val_* without a test part)
    val_metric: str  # what selection uses
    higher_is_better: bool
    tuned: tuple[str, ...]
    studied: tuple[str, ...]
    cells: list[Cell]
    effects: list[Effect]
    headline: str
    winner: str | None
    on_test: bool  # the reported numbers come from the held-out test part
    notes: list[str] = field(default_factory=list)
    best_epoch: bool = True  # each model at its best validation epoch (False: runs before that)
    baselines: list[dict[str, Any]] = field(default_factory=list)  # name, metrics (baselines.py)
    warnings: list[str] = field(default_factory=list)  # convergence, edge of the grid (checks.py)
    next_steps: list[tuple[str, str]] = field(default_factory=list)  # (command, reason)

    @property
    def selection(self) -> str:
        """One paragraph saying what was tuned, on what, and what was reported on what."""
        parts = []
        if self.best_epoch:
            parts.append(
                f"Each model is taken at its best epoch: the epoch of its best {self.val_metric} "
                "(epochs is a maximum)."
            )
        if self.tuned:
            per = " and per " + ", ".join(map(_name, self.studied)) if self.studied else ""
            parts.append(
                f"Tuned per activation{per}: "
                f"{', '.join(map(_name, self.tuned))}, chosen by the mean {self.val_metric} over "
                f"seeds at {self._when} (validation data only; fewer diverged seeds first)."
            )
        else:
            parts.append("Nothing was tuned: every factor has one value or is studied.")
        if self.studied:
            parts.append(
                f"Studied (reported value by value): {', '.join(map(_name, self.studied))}."
            )
        if self.on_test:
            parts.append(
                f"Reported: {self.metric} of the chosen settings on the held-out test part, which "
                f"was scored once per model ({self._test_when}) and played no part in any choice."
            )
        else:
            parts.append(
                f"Reported: {self.metric}, the validation metric (no test part was scored)"
                + (", which the selection has seen: optimistic." if self.tuned else ".")
            )
        return " ".join(parts)

    @property
    def _when(self) -> str:
        if self.best_epoch:
            return "each model's best epoch"
        return "the final epoch"

    @property
    def _test_when(self) -> str:
        return "with its weights at its best validation epoch" if self.best_epoch else (
            "after its last epoch")


_NAMES = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "weight decay"}


def primary_metric(task: str, part: str = "test", metric: str | None = None) -> tuple[str, bool]:
    """The metric the comparison ranks by (on ``part``) and whether higher is better: the run's
    ``--metric`` (None: accuracy for classification, rmse for regression)."""
    name = metric or ("accuracy" if task == "classification" else "rmse")
    return f"{part}_{metric_key(name)}", METRICS[name][1]



def _name(factor: str) -> str:
    return _NAMES.get(factor, factor)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def analyse(config: CompareConfig, task: str, table: list[dict[str, Any]], *,
            complete: bool = True, target_scale: float = 1.0) -> Analysis:  # fmt: skip
    """Select, score and test: ``table`` holds one dict per model at the compared epoch."""
    val_metric, higher = primary_metric(task, "val", config.study.metric)
    test_metric, _ = primary_metric(task, "test", config.study.metric)
    tuned, studied = config.tuned, config.studied
    compared = [r for r in table if r["status"] != "diverged" and r.get("epoch") is not None]
    on_test = bool(compared) and all(_finite(r.get(test_metric)) for r in compared)
    metric = test_metric if on_test else val_metric
    sign = 1.0 if higher else -1.0
    margin = config.study.margin or stats.default_margin(metric, target_scale)
    values = {f: list(getattr(config.model, f)) for f in config.model.factors}
    models: dict[tuple, dict[int, dict[str, Any]]] = {}
    for r in table:
        key = (r["activation"], *(r[f] for f in studied), *(r[f] for f in tuned))
        models.setdefault(key, {})[int(r["seed"])] = r

    def score(row: dict[str, Any], name: str) -> float | None:
        if row["status"] == "diverged":
            return None
        return float(row[name]) if _finite(row.get(name)) else None

    def trained(key: tuple) -> list[tuple[int, dict[str, Any]]]:
        """(seed, row) of the models of ``key`` that finished an epoch or diverged."""
        rows = models.get(key, {}).items()
        return [(s, r) for s, r in rows if r.get("epoch") is not None or r["status"] == "diverged"]

    cells = []
    for combo in itertools.product(*(values[f] for f in studied)):
        chosen, candidates, scores = {}, {}, {}
        for act in config.study.activations:
            cands = []
            for t in itertools.product(*(values[f] for f in tuned)):
                val = {s: score(r, val_metric) for s, r in trained((act, *combo, *t))}
                ok = [v for v in val.values() if v is not None]
                cands.append(Candidate(dict(zip(tuned, t, strict=True)), val,
                                       float(np.mean(ok)) if ok else None,
                                       sum(v is None for v in val.values())))  # fmt: skip
            # fewest failures, then the best mean validation metric; ties: the first listed value
            best = min(
                cands,
                key=lambda c: (c.mean is None, c.n_failed, -sign * (c.mean or 0.0)),
            )
            chosen[act], candidates[act] = best.values, cands
            picked = trained((act, *combo, *best.values.values()))
            scores[act] = {s: score(r, metric) for s, r in sorted(picked)}
        summary = stats.summarize(scores, metric=metric, higher_is_better=higher, margin=margin)
        cells.append(Cell(dict(zip(studied, combo, strict=True)), summary, chosen, candidates))
    effects = _effects(cells, studied, values, higher)
    if len(cells) == 1:
        headline = cells[0].summary.headline
    else:
        headline = " ".join(f"At {c.label}: {c.summary.headline}" for c in cells)
    for sentence in effect_sentences(effects, metric):
        headline += " " + sentence
    winners = {c.summary.winner for c in cells}
    winner = winners.pop() if len(winners) == 1 else None
    notes = []
    if not on_test and config.data.test_fraction > 0 and complete:
        notes.append("No test metrics were found: the reported numbers are validation scores.")
    best_epoch = any("best_epoch" in r for r in compared)
    return Analysis(metric, val_metric, higher, tuned, studied, cells, effects, headline, winner,
                    on_test, notes, best_epoch)  # fmt: skip


def _effects(cells: list[Cell], studied: tuple[str, ...], values: dict[str, list[Any]],
             higher: bool) -> list[Effect]:  # fmt: skip
    by_values = {tuple(c.values[f] for f in studied): c for c in cells}
    out: list[Effect] = []
    for factor in studied:
        others = [f for f in studied if f != factor]
        for rest in itertools.product(*(values[f] for f in others)):
            family: list[Effect] = []
            fixed = dict(zip(others, rest, strict=True))

            def cell_at(v: Any, fixed: dict[str, Any] = fixed, factor: str = factor) -> Cell:
                return by_values[tuple(fixed.get(f, v) if f != factor else v for f in studied)]

            base = values[factor][0]
            base_rows = {r.activation: r for r in cell_at(base).summary.rows}
            for v in values[factor][1:]:
                for r in cell_at(v).summary.rows:
                    b = base_rows[r.activation]
                    n, test = stats.paired(r.values, b.values)
                    e = Effect(factor, r.activation, base, v, fixed, n, b.mean, r.mean, None, None)
                    if test is not None:
                        e.p_value, _, e.mean_diff = test
                    family.append(e)
            tested = [e for e in family if e.p_value is not None]
            for e, p in zip(tested, stats.holm([e.p_value for e in tested]), strict=True):  # type: ignore[misc]
                e.p_holm = p
            for e in family:
                if e.p_holm is None:
                    e.verdict = "too few seeds to test (a paired test needs 3)"
                elif e.p_holm < 0.05 and e.mean_diff:
                    better = (e.mean_diff > 0) == higher
                    e.verdict = f"significantly {'better' if better else 'worse'}"
                else:
                    e.verdict = "no significant change"
            out += family
    return out


def effect_sentences(effects: list[Effect], metric: str) -> list[str]:
    """One sentence per studied factor (and other studied values): what changed significantly."""
    families: dict[tuple, list[Effect]] = {}
    for e in effects:
        families.setdefault((e.factor, tuple(e.others.items())), []).append(e)
    out = []
    for (factor, others), family in families.items():
        where = "".join(f", {_name(k)} {v}" for k, v in others)
        changes = sorted({f"{e.base} → {e.value}" for e in family})
        head = f"{_name(factor).capitalize()} {' / '.join(changes)}{where}"
        sig = [e for e in family if e.verdict.startswith("significantly")]
        tested = [e for e in family if e.mean_diff is not None]
        if not tested:
            out.append(f"{head}: too few seeds for a paired test (it needs 3).")
            continue
        if sig:
            what = "; ".join(
                f"{e.activation} {e.verdict} at {e.value} ({metric} {e.mean_diff:+.4f}, "
                f"p = {e.p_holm:.3g})"
                for e in sig
            )
            rest = len(family) - len(sig)
            out.append(
                f"{head}: {what}" + (f"; {rest} other change(s) not significant." if rest else ".")
            )
        else:
            big = max(tested, key=lambda e: abs(e.mean_diff or 0.0))
            out.append(
                f"{head}: no activation changed significantly (paired by seed, Holm-corrected; "
                f"largest change {big.activation} {big.mean_diff:+.4f}, p = {big.p_holm:.3g})."
            )
    return out


def sensitivity(res: Any, factor: str) -> dict[str, dict[str, tuple[list, list, list]]]:
    """Validation metric vs one tuned factor: cell label -> activation -> (x, mean, sd).

    The other tuned factors stay at that activation's chosen values, so each line is a slice
    through the point that was chosen.
    """
    a = res.analysis
    out: dict[str, dict[str, tuple[list, list, list]]] = {}
    for cell in a.cells:
        lines = {}
        for act, cands in cell.candidates.items():
            pick = cell.chosen[act]
            xs, means, sds = [], [], []
            for c in cands:
                if any(c.values[f] != pick[f] for f in a.tuned if f != factor):
                    continue
                ok = [v for v in c.val.values() if v is not None]
                if not ok:
                    continue
                xs.append(c.values[factor])
                means.append(float(np.mean(ok)))
                sds.append(float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0)
            lines[act] = (xs, means, sds)
        out[cell.label] = lines
    return out
