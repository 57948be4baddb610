"""The rows every report shows: rankings, effects, chosen settings, notes and next steps."""

from __future__ import annotations

import json
from typing import Any

from actlab import data
from actlab.compare.analysis import Cell, _name
from actlab.compare.results import Results
from actlab.compare.stats import SENSIBLE_SEEDS, fmt

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

    name = (lambda k: k) if short else _name
    return ", ".join(f"{name(k)} {v:g}" if isinstance(v, float) else f"{name(k)} {v}"
                     for k, v in values.items())  # fmt: skip


def summary_rows(res: Results, cell: Cell | None = None) -> list[dict[str, str]]:
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


def next_steps_lines(res: Results) -> list[str]:
    """'reason:' then the command, for each next step the evidence calls for."""
    steps = getattr(res.analysis, "next_steps", [])
    return [f"{reason}:\n  {cmd}" for cmd, reason in steps]



def _at_epoch(res: Results) -> str:
    """Where the models were compared: each at its best validation epoch, or one epoch."""
    if getattr(res.analysis, "best_epoch", False):
        return f"at each model's best epoch (of ≤ {res.config.model.epochs})"
    return f"at epoch {res.final_epoch}"


def data_notes(d: dict[str, Any]) -> list[str]:
    """What the data loader decided for the user: an inferred task, rows left out."""
    return data.notes(str(d.get("task_note") or ""), int(d.get("dropped_rows") or 0),
                      str(d.get("column_note") or ""))


def effect_rows(res: Results) -> list[dict[str, str]]:
    """The studied factors' effect table as text cells."""
    out = []
    for e in res.analysis.effects:
        others = f" ({_values(e.others)})" if e.others else ""
        out.append(
            {
                "activation": e.activation,
                "change": f"{_name(e.factor)} {_fmt_value(e.base)} → {_fmt_value(e.value)}"
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


def chosen_rows(res: Results) -> list[dict[str, str]]:
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
