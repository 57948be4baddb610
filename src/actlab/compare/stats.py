"""Honest statistics over seeds: which activation is best, and is the difference real?

Each activation was trained with the same seeds (same data order and the same split), so results
pair up by seed. Against the best activation we run a **paired t-test** (``scipy.stats.ttest_rel``)
on the per-seed differences. Why not Wilcoxon's signed-rank test: with 5 seeds its smallest possible
two-sided p-value is 2/2**5 = 0.0625, so it could never call anything significant at the default
number of seeds; the t-test is reasonable here because each per-seed score is an average over many
validation rows. The p-values are Holm-corrected for comparing the best with every other activation.
When the best is not separated from a rival, the observed paired effect size (mean difference /
standard deviation of the differences) gives the number of seeds a new experiment would need for 80%
power (noncentral t distribution).

A diverged model (loss became NaN/inf) is a failure: it is counted and shown, never silently
dropped, and an activation that failed on more seeds ranks below one that failed on fewer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as st

BEST = "best"
WORSE = "significantly worse"
TIED = "not distinguishable at this number of seeds"
EQUIVALENT = "practically equivalent"
POWER = 0.8
MAX_SEEDS = 10_000
# seeds-needed advice above this is replaced by a plain sentence: a study of more than 100 seeds
# per activation costs 20x the default run to separate a difference this small
SENSIBLE_SEEDS = 100
# With 2 pairs the t-test has 1 degree of freedom and rests entirely on normality: no verdicts.
MIN_PAIRS = 3
# Scores cannot leave these ranges, so neither may their confidence intervals.
METRIC_RANGE = {
    f"{part}_{name}": bounds
    for part in ("val", "test")
    for name, bounds in (
        ("accuracy", (0.0, 1.0)),
        ("balanced_accuracy", (0.0, 1.0)),
        ("macro_f1", (0.0, 1.0)),
        ("roc_auc", (0.0, 1.0)),
        ("log_loss", (0.0, math.inf)),
        ("rmse", (0.0, math.inf)),
        ("mae", (0.0, math.inf)),
        ("r2", (-math.inf, 1.0)),
    )
}


def default_margin(metric: str, target_scale: float = 1.0) -> float:
    """The smallest difference that matters when ``--margin`` is not given, by metric.

    Scores in [0, 1] (accuracy, balanced accuracy, macro-F1, ROC AUC) and R²: 0.01, one
    percentage point: in the default digits run (5 seeds, 360 test rows) the 95% CI of a paired
    difference is about ±0.01 wide, so one point is what that study can resolve, and it is 3-4
    test rows. log_loss: 0.02 nats (about the same change of accuracy near 97%). rmse / mae: 2% of
    the target's standard deviation (``target_scale``), which moves R² by about 0.04 x its RMSE.
    """
    name = metric.split("_", 1)[1] if metric.startswith(("val_", "test_")) else metric
    if name in ("rmse", "mae"):
        return 0.02 * float(target_scale)
    return 0.02 if name == "log_loss" else 0.01


def equivalence(a: Sequence[float], b: Sequence[float], margin: float,
                alpha: float = 0.05) -> tuple[float, float, float]:  # fmt: skip
    """Two one-sided paired t-tests (TOST) of ``a - b`` against ``±margin``: ``(p, lo, hi)``,
    p the larger one-sided p-value and (lo, hi) the 1 - 2 alpha confidence interval of the mean
    difference; the difference is practically equivalent to 0 when p < alpha, i.e. when the
    interval lies inside (-margin, margin)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean, n = float(d.mean()), d.size
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    if se == 0.0:
        inside = abs(mean) < margin
        return (0.0 if inside else 1.0), mean, mean
    t_crit = float(st.t.ppf(1 - alpha, n - 1))
    p_low = float(st.t.sf((mean + margin) / se, n - 1))  # H0: mean <= -margin
    p_high = float(st.t.cdf((mean - margin) / se, n - 1))  # H0: mean >= margin
    return max(p_low, p_high), mean - t_crit * se, mean + t_crit * se


@dataclass
class ActivationStats:
    """One activation over seeds (``values``: seed -> score, ``None`` when it diverged)."""

    activation: str
    values: dict[int, float | None]
    n_ok: int
    n_failed: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    rank: int = 0
    verdict: str = ""
    p_value: float | None = None  # paired t-test against the best, uncorrected
    p_holm: float | None = None
    mean_diff: float | None = None  # this minus the best, in the metric's units
    effect_size: float | None = None  # paired Cohen's d_z
    seeds_needed: int | None = (
        None  # to separate it from the best with 80% power; None: cannot be estimated
    )
    p_equivalence: float | None = None  # TOST against the margin (tied rivals)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "values"}


@dataclass
class Summary:
    metric: str
    higher_is_better: bool
    rows: list[ActivationStats]
    winner: str | None
    headline: str
    n_seeds: int
    alpha: float = 0.05
    method: str = ""  # method_text(n_seeds)
    notes: list[str] = field(default_factory=list)
    margin: float | None = None  # the smallest difference that matters (None: not judged)


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """Two-sided t-interval for the mean; ``None`` with fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    mean = float(x.mean())
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    half = float(st.t.ppf(0.5 + level / 2, df=x.size - 1)) * sem
    return mean - half, mean + half


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


def paired_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided paired t-test of ``a`` vs ``b``: ``(p_value, d_z)``.

    Zero variance of the differences is handled explicitly (SciPy would return NaN): identical
    results give p = 1; a constant non-zero difference is the t-test's limit p = 0.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    scale = max(abs(float(np.abs(a).max())), abs(float(np.abs(b).max())), 1e-300)
    if sd <= 1e-12 * scale:
        if abs(mean) <= 1e-12 * scale:
            return 1.0, 0.0
        return 0.0, math.copysign(math.inf, mean)
    p = float(st.ttest_rel(a, b).pvalue)
    return p, mean / sd


def paired(
    values: Mapping[int, float | None], base: Mapping[int, float | None]
) -> tuple[int, tuple[float, float, float] | None]:
    """Two score maps (seed -> score, None: diverged) paired by seed: the number of pairs and,
    with at least ``MIN_PAIRS``, ``(p_value, d_z, mean difference values - base)``."""
    common = sorted(s for s, v in values.items() if v is not None and base.get(s) is not None)
    if len(common) < MIN_PAIRS:
        return len(common), None
    a = [float(values[s]) for s in common]  # type: ignore[arg-type]
    b = [float(base[s]) for s in common]  # type: ignore[arg-type]
    return len(common), (*paired_test(a, b), float(np.mean(a) - np.mean(b)))


def power(dz: float, n: int, alpha: float) -> float:
    """Power of a two-sided paired t-test with ``n`` pairs for true effect size ``dz``."""
    df = n - 1
    crit = float(st.t.ppf(1 - alpha / 2, df))
    nc = abs(dz) * math.sqrt(n)
    value = float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))
    if not math.isfinite(value):  # SciPy's nct loses precision far in the tail: the limit is 0 or 1
        return 1.0 if nc > crit else 0.0
    return value


def seeds_needed(dz: float, alpha: float = 0.05, target: float = POWER) -> int | None:
    """Fewest seeds giving ``target`` power for effect size ``dz``; ``None`` if over 10,000."""
    if not math.isfinite(dz):
        return 2
    if dz == 0 or power(dz, MAX_SEEDS, alpha) < target:
        return None
    lo, hi = 2, MAX_SEEDS  # power grows with n: bisect for the first n that reaches the target
    while lo < hi:
        mid = (lo + hi) // 2
        if power(dz, mid, alpha) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def summarize(
    scores: Mapping[str, Mapping[int, float | None]],
    *,
    metric: str,
    higher_is_better: bool,
    alpha: float = 0.05,
    margin: float | None = None,
) -> Summary:
    """Statistics per activation from ``scores[activation][seed]`` (``None``: that model diverged).

    Seeds absent from an activation's mapping are models that were not trained (an interrupted run);
    they are neither scores nor failures.
    """
    rows: list[ActivationStats] = []
    for name, by_seed in scores.items():
        ok = [float(v) for v in by_seed.values() if v is not None]
        ci = confidence_interval(ok)
        if ci is not None and metric in METRIC_RANGE:
            lo, hi = METRIC_RANGE[metric]
            ci = (max(ci[0], lo), min(ci[1], hi))
        rows.append(
            ActivationStats(
                activation=name,
                values=dict(by_seed),
                n_ok=len(ok),
                n_failed=sum(v is None for v in by_seed.values()),
                mean=float(np.mean(ok)) if ok else None,
                std=float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
                ci_low=ci[0] if ci else None,
                ci_high=ci[1] if ci else None,
            )
        )
    sign = -1.0 if higher_is_better else 1.0

    def order(r: ActivationStats) -> tuple:
        # failures first (fewer is better), then the mean in the good direction; no score at all
        # goes last
        return (
            r.n_failed,
            r.mean is None,
            sign * r.mean if r.mean is not None else 0.0,
            r.activation,
        )

    rows.sort(key=order)
    for i, r in enumerate(rows, start=1):
        r.rank = i
    n = max((len(r.values) for r in rows), default=0)
    summary = Summary(metric, higher_is_better, rows, None, "", n, alpha, method_text(n),
                      margin=margin)  # fmt: skip
    if rows and all(r.values and r.n_failed == len(r.values) for r in rows):
        summary.headline = (
            "Every model diverged (its loss became NaN or infinite): nothing to compare; "
            "lower the learning rate (--lr) and run again."
        )
        return summary
    if not rows or rows[0].mean is None:
        summary.headline = "No results yet: no model finished an epoch."
        return summary
    best, rivals = rows[0], rows[1:]
    best.verdict = BEST
    m = len(rivals)
    tested: list[ActivationStats] = []
    for r in rivals:
        if r.n_failed > best.n_failed:
            r.verdict = f"diverged on {r.n_failed} of {len(r.values)} seeds"
        _, test = paired(r.values, best.values)
        if test is not None:
            r.p_value, r.effect_size, r.mean_diff = test
            tested.append(r)
    for r, p in zip(tested, holm([r.p_value for r in tested]), strict=True):  # type: ignore[misc]
        r.p_holm = p
    for r in rivals:
        if r.verdict:
            continue
        worse = r.p_holm is not None and r.p_holm < alpha and sign * (r.mean_diff or 0.0) > 0
        r.verdict = WORSE if worse else TIED
        if not worse and margin is not None and r.mean_diff is not None:
            common = [k for k, v in r.values.items() if v is not None and best.values.get(k)
                      is not None]  # fmt: skip
            r.p_equivalence, _, _ = equivalence([r.values[k] for k in common],  # type: ignore[misc]
                                                [best.values[k] for k in common], margin, alpha)
            if r.p_equivalence < alpha:
                r.verdict = EQUIVALENT
                continue
            if abs(r.mean_diff) <= margin:  # too small to matter: no seeds advice
                continue
        if not worse and r.effect_size is not None:
            # a fresh experiment comparing the best with m rivals at a Bonferroni-conservative level
            r.seeds_needed = seeds_needed(r.effect_size, alpha / max(m, 1))
    summary.headline = _headline(summary, best, rivals)
    summary.winner = (
        best.activation
        if all(r.verdict not in (TIED, EQUIVALENT) for r in rivals) and best.n_ok >= MIN_PAIRS
        else None
    )
    return summary


def method_text(n_seeds: int) -> str:
    """The method note, with the run's own number of seeds (it used to say 5 whatever it was)."""
    base = (
        "paired t-test (scipy.stats.ttest_rel) against the best activation across the same seeds, "
        "Holm-corrected"
    )
    if n_seeds < 2:
        return base
    smallest = 2.0 ** (1 - n_seeds)  # exact signed-rank test: all differences of one sign
    if smallest >= 0.05:
        why = (
            f"with {n_seeds} seeds its smallest two-sided p-value is {smallest:.3g}, so it could "
            "never reach 0.05"
        )
    else:
        why = (
            f"its smallest two-sided p-value with {n_seeds} seeds is {smallest:.3g}; the t-test "
            "is kept for one method at every number of seeds"
        )
    return f"{base}; Wilcoxon's signed-rank test is not used because {why}"


def fmt(x: float | None, digits: int = 4) -> str:
    """``digits`` decimals below 10 (accuracies), ``digits + 1`` significant digits above."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if not math.isfinite(x) or abs(x) >= 1e7:
        return f"{x:.{digits}g}"
    magnitude = math.floor(math.log10(abs(x))) if abs(x) >= 1 else -1
    return f"{x:.{max(digits - magnitude, 0) if magnitude >= 0 else digits}f}"


def _headline(s: Summary, best: ActivationStats, rivals: list[ActivationStats]) -> str:
    metric = s.metric
    n = s.n_seeds
    where = f"mean {metric} {fmt(best.mean)}"
    if best.ci_low is not None:
        where += f" (95% CI {fmt(best.ci_low)} to {fmt(best.ci_high)})"
    if not rivals:
        return f"Only one activation: {best.activation}, {where}. Nothing to compare."
    if best.n_ok < MIN_PAIRS:
        seeds = f"{best.n_ok} seed" + ("s" if best.n_ok != 1 else "")
        return (
            f"{best.activation} scored best ({where}), but with {seeds} a real difference "
            "cannot be told from luck (a paired test needs at least 3): run with --seeds 5 or more."
        )
    tied = [r for r in rivals if r.verdict == TIED]
    same = [r for r in rivals if r.verdict == EQUIVALENT]
    failed = [r for r in rivals if r.verdict.startswith("diverged")]
    failure_note = ""
    if failed:
        failure_note = " " + ", ".join(f"{r.activation} {r.verdict}" for r in failed) + "."
    if best.n_failed:
        failure_note += f" Note: even {best.activation} diverged on {best.n_failed} seed(s)."
    equivalent = ""
    if same:
        equivalent = (
            f" {', '.join(r.activation for r in same)} {'is' if len(same) == 1 else 'are'} "
            f"practically equivalent to {best.activation}: the 90% CI of the paired difference "
            f"lies within ±{fmt(s.margin)} {metric}, the smallest difference that matters "
            "(--margin; two one-sided tests)."
        )
    if not tied and same:
        return (
            f"{best.activation} has the best {where}; no activation is better by a difference "
            "that matters." + equivalent + failure_note
        )
    if not tied:
        return (
            f"{best.activation} wins: {where}; every other activation is significantly worse or "
            f"failed (paired t-test across {n} seeds, Holm-corrected, α = {s.alpha})."
            + failure_note
        )
    names = ", ".join(r.activation for r in tied)
    text = (
        f"No clear winner at {n} seeds: {best.activation} has the best {where}, but {names} "
        f"{'is' if len(tied) == 1 else 'are'} not distinguishable from it (paired t-test, "
        "Holm-corrected)."
    )
    # d_z = 0: a paired mean difference of exactly 0 (accuracies are multiples of 1/rows, so
    # this happens with different per-seed scores too, not only with identical ones)
    level = [r for r in tied if r.effect_size == 0.0 and s.margin is None]
    estimable = [r for r in tied if r.seeds_needed is not None]
    if level:
        text += (
            f" {', '.join(r.activation for r in level)} had the same mean score as "
            f"{best.activation} over these seeds (paired difference 0): no number of seeds would "
            "separate them at that difference."
        )
    small = [r for r in tied if s.margin is not None and r.mean_diff is not None
             and abs(r.mean_diff) <= s.margin]  # fmt: skip
    hard = [r for r in tied if r.seeds_needed is None and r.effect_size not in (0.0, None)
            and r not in small]  # fmt: skip
    text += equivalent
    if small:
        text += (
            f" {', '.join(r.activation for r in small)} "
            f"{'differs' if len(small) == 1 else 'differ'} from {best.activation} by less "
            f"than the margin ±{fmt(s.margin)}, too little to matter, but the seeds cannot yet "
            "rule out a larger difference."
        )
    sensible = [r for r in estimable if (r.seeds_needed or 0) <= SENSIBLE_SEEDS]
    if sensible:
        need = max(sensible, key=lambda r: r.seeds_needed or 0)
        text += (
            f" Telling {best.activation} and {need.activation} apart would take about "
            f"{need.seeds_needed} seeds (80% power, assuming the observed difference of "
            f"{fmt(need.mean_diff)} is real; a rough estimate)."
        )
    beyond = [r for r in estimable if (r.seeds_needed or 0) > SENSIBLE_SEEDS]
    if beyond:
        text += (
            f" Separating {', '.join(r.activation for r in beyond)} from {best.activation} would "
            f"take more than {SENSIBLE_SEEDS} seeds: not worth running; at this size of study "
            "treat them as equally good."
        )
    if hard:
        text += (
            f" {', '.join(r.activation for r in hard)} differ from {best.activation} by too little "
            f"to separate with fewer than {MAX_SEEDS} seeds: in practice, equivalent."
        )
    return text + failure_note
