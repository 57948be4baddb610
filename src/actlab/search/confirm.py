"""Confirmation: the finalists against the baselines in the fair study (``actlab.compare.run``).

Each activation gets its own learning rate, chosen on validation data over the lr grid; the chosen
settings are scored once on the held-out test part (``compare`` does all of that). Here the paired
t-test of every finalist against every baseline (paired by seed, on those test scores),
Holm-corrected over the whole family (finalists x baselines): a finalist is *better than* a
baseline only when its corrected p is below alpha and its mean is higher.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actlab import compare
from actlab.compare import stats

__all__ = ["run", "verdicts"]

ALPHA = 0.05


def verdicts(scores: dict[str, dict[int, float | None]], finalists: Sequence[str],
             baselines: Sequence[str], higher: bool) -> dict[str, dict[str, Any]]:  # fmt: skip
    """For each finalist: per baseline ``{p, p_holm, diff, better}`` (Holm over the family)."""
    tests: list[tuple[str, str, float, float]] = []
    out: dict[str, dict[str, Any]] = {f: {} for f in finalists}
    for f in finalists:
        for b in baselines:
            n, test = stats.paired(scores.get(f, {}), scores.get(b, {}))
            if test is None:
                out[f][b] = {"p": None, "p_holm": None, "diff": None, "better": False, "pairs": n}
                continue
            p, _, diff = test
            tests.append((f, b, p, diff))
    adjusted = stats.holm([t[2] for t in tests])
    for (f, b, p, diff), ph in zip(tests, adjusted, strict=True):
        better = ph < ALPHA and (diff > 0 if higher else diff < 0)
        out[f][b] = {"p": p, "p_holm": ph, "diff": diff, "better": better}
    return out


def run(out: Path, files: dict[str, str], baselines: Sequence[str], settings: dict[str, Any],
        *, time_budget: float | None, device: str, backend: Any = "local",
        resume: bool = False) -> dict[str, Any]:  # fmt: skip
    """Run (or finish) the study in ``out`` on ``files`` (finalist name -> ``file.py:fn``) and the
    baselines; returns the table, the verdicts and where the report is."""
    acts = [*files.values(), *baselines]
    res = compare.run(out=out, resume=resume, time_budget=time_budget, device=device,
                      backend=backend, **{**settings, "activations": acts})  # fmt: skip
    summary = res.stats
    by_act = {r.activation: r for r in summary.rows}
    label = {ref: name for name, ref in files.items()}
    scores = {label.get(a, a): dict(r.values) for a, r in by_act.items()}
    table = [{"activation": label.get(r.activation, r.activation), "mean": r.mean,
              "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n_ok, "rank": r.rank,
              "chosen": res.studies[0].chosen.get(r.activation, {})}
             for r in summary.rows]  # fmt: skip
    ver = verdicts(scores, list(files), list(baselines), summary.higher_is_better)
    return {
        "table": table,
        "verdicts": ver,
        "metric": summary.metric,
        "higher_is_better": summary.higher_is_better,
        "complete": res.complete,
        "selection": res.analysis.selection,
        "report": str(res.report_files.get("html", "")),
        "directory": str(res.directory),
        "scores": scores,
    }
