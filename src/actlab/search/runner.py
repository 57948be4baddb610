"""``actlab search``: screen -> race -> confirm, stored as it goes, within a time budget.

The phases and their share of ``budget`` (seconds): screening every candidate of the space (a few
seconds), racing (until 60% of the budget is spent), the confirmation study (the rest, less 5%
for the report). A phase that finished is never redone by ``resume=True``: the screened
candidates, every finished rung (with its survivors' weights) and the confirmation's own compare
store are in ``OUT/search.sqlite`` and ``OUT/confirm/``.

Determinism: the candidates, their screening (seeded draws), the racing models (same initial
weights and batch order for every candidate, from ``seed``) and the confirmation are functions of
the settings and ``seed``; the number of entrants is derived from the budget by timing one epoch of
a 256-candidate stack, so it is stored in the plan (and can be fixed with ``entrants=``), and later
rungs shrink only when the time left is short (then the machine's speed decides how many survive;
a resume continues from the stored survivors). A search whose plan fits its budget gives the same
result for the same seed (tested).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from scipy.stats import spearmanr

from actlab.compare.backends import Backend
from actlab.compare.config import CompareConfig
from actlab.compare.planning import _dataset, _splits
from actlab.data import Split
from actlab.errors import ActlabError
from actlab.search import confirm, expr, found, learn, primitives, race, screen
from actlab.search import report as rep
from actlab.search.expr import BINARY, UNARY
from actlab.search.primitives import Program
from actlab.search.race import race_lr
from actlab.search.state import FILE, State

__all__ = ["DEFAULTS", "SearchResult", "parse_budget", "run"]

# settings whose compare default does not suit a search (given ones win)
DEFAULTS: dict[str, Any] = {
    "activations": ("relu", "silu", "gelu"),  # the baselines
    "width": (64,),
    "lr": (1e-3, 3e-3, 1e-2),
    "epochs": 20,
}
STRATEGIES = ("race", "learn")
RACE_SHARE = 0.6  # of the budget: screening + racing (digits 10m: the confirmation took ~50 s)
REPORT_SHARE = 0.05  # kept for the report
def parse_budget(text: str | float | int) -> float:
    """Seconds from ``600``, ``"90s"``, ``"10m"`` or ``"1.5h"``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower()
        unit = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(s[-1:])
        try:
            value = float(s[:-1] if unit else s) * (unit or 1.0)
        except ValueError:
            value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ActlabError(
            f"--budget must be a positive time such as 600 (seconds), 90s, 10m or 1h, got {text!r}"
        )
    return value


@dataclass
class SearchResult:
    """What a search produced (``to_json()`` is ``actlab search --json``)."""

    directory: Path
    screened: dict[str, Any]
    raced: dict[str, Any]
    finalists: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    confirmation: dict[str, Any] | None
    headline: str
    phases: dict[str, float] = field(default_factory=dict)
    report_files: dict[str, Path] = field(default_factory=dict)
    complete: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "complete": self.complete,
            "headline": self.headline,
            "screened": self.screened,
            "raced": self.raced,
            "finalists": self.finalists,
            "baselines": self.baselines,
            "phases": self.phases,
            "reports": {k: str(v) for k, v in self.report_files.items()},
        }


def _settings(given: dict[str, Any]) -> tuple[CompareConfig, dict[str, Any]]:
    """The compare configuration of the search's data/network/study (defaults: :data:`DEFAULTS`)."""
    flat = {**DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    if flat.get("model") is not None:
        raise ActlabError("--model is not supported by search (it races MLPs); drop --model")
    c = CompareConfig.from_settings(flat)
    for f in ("depth", "width", "batch_size", "weight_decay"):
        if len(getattr(c.model, f)) > 1:
            raise ActlabError(f"search takes one value of --{f.replace('_', '-')}, got several")
    return c, flat


def _data(c: CompareConfig) -> tuple[Split, dict[str, Any]]:
    """compare's split of the configured data; the racing tensors (train and validation only)."""

    ds = _dataset(c)
    split = _splits(c, ds)[c.data.split_seed]
    classification = split.task == "classification"
    y_train, y_val = torch.from_numpy(split.y_train), torch.from_numpy(split.y_val)
    if not classification:
        y_train, y_val = y_train.reshape(len(y_train), -1), y_val.reshape(len(y_val), -1)
    data = {
        "X_train": torch.from_numpy(split.X_train), "y_train": y_train,
        "X_val": torch.from_numpy(split.X_val), "y_val": y_val,
        "classification": classification,
        "n_out": int(split.n_classes) if classification else int(y_train.shape[1]),
    }  # fmt: skip
    return split, data


def _check_out(out: Path, resume: bool) -> bool:
    """True when ``out`` holds a search to resume; refuses what would mix or lose results."""
    if out.exists() and not out.is_dir():
        raise ActlabError(f"--out '{out}' is a file, not a folder; choose a folder name")
    if State.exists(out):
        if not resume:
            raise ActlabError(
                f"'{out}' already holds a search; add --resume to finish or re-report it, or "
                "choose a new --out"
            )
        return True
    if resume:
        raise ActlabError(f"nothing to resume in '{out}': no {FILE} there; give the --out of a "
                          "search to finish")  # fmt: skip
    if out.is_dir() and any(out.iterdir()):
        raise ActlabError(f"--out '{out}' exists and is not empty; choose a new or empty folder")
    return False


def run(
    dataset: str | None = None,
    *,
    out: str | Path | None = None,
    budget: float | str = 600,
    space: str = "default",
    strategy: str = "race",
    seed: int = 0,
    finalists: int = 3,
    entrants: int | None = None,
    resume: bool = False,
    device: str = "auto",
    backend: str | Backend = "local",
    progress: Callable[[str], None] | None = None,
    report: bool = True,
    **settings: Any,
) -> SearchResult:
    """Search activations for the data; see the module docstring. ``settings`` are compare's
    (``csv``, ``target``, ``depth``, ``width``, ``seeds``, ``epochs``, ``lr``, ``activations``:
    the baselines, ...)."""

    start = time.monotonic()
    say = progress or (lambda s: None)
    seconds = parse_budget(budget)
    if strategy not in STRATEGIES:
        raise ActlabError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    for name, value, low in (("finalists", finalists, 1), ("seed", seed, 0),
                             ("entrants", entrants if entrants is not None else 1, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ActlabError(f"--{name} must be a whole number >= {low}, got {value!r}")
    if dataset is not None:
        settings["dataset"] = dataset
    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = Path(out) if out is not None else Path("actlab-runs") / f"search-{stamp}"
    directory = directory.expanduser()
    again = _check_out(directory, resume)
    if again:  # the stored settings, unless given again identically
        st = State.open(directory)
        stored = st.get("settings")
        st.close()
        ask = {"space": space, "strategy": strategy, "seed": seed, "finalists": finalists,
               "compare": {k: v for k, v in settings.items() if v is not None}}  # fmt: skip
        for k in ("space", "strategy", "seed", "finalists"):
            if k in stored and ask[k] != stored[k] and ask[k] != _signature_default(k):
                raise ActlabError(f"'{directory}' holds a search with --{k} {stored[k]}, not "
                                  f"{ask[k]}; resume with the stored settings")  # fmt: skip
        space, strategy, seed, finalists = (stored[k] for k in ("space", "strategy", "seed",
                                                                "finalists"))  # fmt: skip
        settings = {**stored["compare"], **ask["compare"]}
    c, flat = _settings(settings)
    sp = expr.load_space(space)
    split, data = _data(c)
    torch.manual_seed(seed)
    # -------- every check passed: the folder is made now
    if not again:
        directory.mkdir(parents=True, exist_ok=True)
    st = State.open(directory) if again else State.create(directory)
    phases: dict[str, float] = dict(st.get("phases", {}))
    try:
        if not again:
            st.set("settings", {"space": space, "strategy": strategy, "seed": seed,
                                "finalists": finalists, "budget": seconds,
                                "compare": {k: v for k, v in settings.items() if v is not None}})
        deadline = start + seconds
        cands = st.candidates()
        if not cands:
            say(f"screening the {sp.name} space")
            t0 = time.perf_counter()
            slot_list = expr.candidates(sp)
            keep, dup = primitives.dedup(slot_list)
            slot_list = [slot_list[i] for i in keep]
            feats = screen.screen(slot_list, depth=c.model.depth[0], width=c.model.width[0],
                                  seed=seed)  # fmt: skip
            st.put_candidates([(s, expr.text(expr.tree(s)), f)
                               for s, f in zip(slot_list, feats, strict=True)])  # fmt: skip
            phases["screen_s"] = time.perf_counter() - t0
            st.set("screen_info", {"generated": len(keep) + len(dup), "duplicates": len(dup)})
            st.set("phases", phases)
            cands = st.candidates()
        info = st.get("screen_info")
        valid = [x for x in cands if x["score"] > -1e300]
        if strategy == "learn":
            named = learn.run(directory, st, data, c, cands, seed=seed, finalists=finalists,
                              deadline=start + seconds * RACE_SHARE, say=say)  # fmt: skip
            rows, raced_done, entrant_ids, rungs = named["rows"], True, named["ids"], []
            phases["learn_s"] = named["learn"]["seconds"]
        else:
            rows, raced_done, entrant_ids, rungs = _race(
                st, data, c, valid, seed=seed, finalists=finalists, entrants=entrants,
                deadline=start + seconds * RACE_SHARE, start=start, seconds=seconds,
                phases=phases, say=say,
            )
        chosen = _finalists(st, directory, cands, rows, finalists)
        # ---------------------------------------------------------------- confirmation

        t0 = time.perf_counter()
        left = deadline - time.monotonic() - seconds * REPORT_SHARE
        files = {f["name"]: f"{f['file']}:{f['name']}" for f in chosen}
        conf_dir = directory / "confirm"
        compare_settings = {k: v for k, v in flat.items() if v is not None}
        compare_settings.pop("activations", None)
        say(f"confirming {len(files)} finalists against {', '.join(c.study.activations)}")
        conf = confirm.run(conf_dir, files, list(c.study.activations), compare_settings,
                           time_budget=max(left, 1.0), device=device, backend=backend,
                           resume=(conf_dir / "results.sqlite").exists())  # fmt: skip
        phases["confirm_s"] = phases.get("confirm_s", 0.0) + time.perf_counter() - t0
        st.set("phases", phases)
        result = _result(directory, st, cands, info, rows, rungs, entrant_ids, chosen, conf,
                         raced_done, phases)  # fmt: skip
        result.raced["strategy"] = strategy
        if strategy == "learn":
            result.raced["learn"] = st.get("learn")
        st.set("status", "complete" if result.complete else "stopped")
    finally:
        st.close()
    if report:
        t0 = time.perf_counter()
        result.report_files = rep.write(result, data_name=split.name)
        result.phases["report_s"] = time.perf_counter() - t0
    return result


def _signature_default(key: str) -> Any:
    return {"space": "default", "strategy": "race", "seed": 0, "finalists": 3}[key]


def _race(st: State, data: dict[str, Any], c: CompareConfig, valid: list[dict[str, Any]], *,
          seed: int, finalists: int, entrants: int | None, deadline: float, start: float,
          seconds: float, phases: dict[str, float],
          say: Callable[[str], None]) -> tuple:  # fmt: skip
    """Plan (stored) and run the successive-halving race; returns rows, finished, ids, rungs."""
    plan = st.get("plan")
    ranked = sorted(valid, key=lambda x: (-x["score"], x["id"]))
    if plan is not None and not st.rungs() and entrants is None:
        plan = None  # no rung finished yet: plan again for this (resumed) budget
    if plan is None:
        per = _calibrate(data, c, ranked, seed)
        available = deadline - time.monotonic()
        k = entrants or _entrants(available, per, len(ranked), finalists, c.model.epochs)
        k = max(1, min(k, len(ranked)))
        rungs = race.plan(k, finalists, c.model.epochs)
        plan = {"entrants": [x["id"] for x in ranked[:k]], "rungs": [[r.size, r.epochs]
                for r in rungs], "model_epoch_s": per, "lr": race_lr(c)}  # fmt: skip
        st.set("plan", plan)
    ids = plan["entrants"]
    rungs = [race.Rung(*r) for r in plan["rungs"]]
    by_id = {x["id"]: x for x in valid}
    t0 = time.perf_counter()
    rows, finished = race.race(
        [tuple(by_id[i]["slots"]) for i in ids], ids, data, rungs,
        depth=c.model.depth[0], width=c.model.width[0], seed=seed, lr=plan["lr"],
        batch_size=c.model.batch_size[0], done=st.rungs(), on_rung=st.put_rung,
        deadline=deadline, progress=say,
    )  # fmt: skip
    phases["race_s"] = phases.get("race_s", 0.0) + time.perf_counter() - t0
    st.set("phases", phases)
    return rows, finished, ids, rungs


def _calibrate(data: dict[str, Any], c: CompareConfig, ranked: list[dict[str, Any]],
               seed: int) -> float:  # fmt: skip
    """Seconds per model-epoch of the generic path: one epoch of up to 256 of the candidates."""
    # a mixed stack like the first rung's (a 32-model stack of one shape underestimated the cost
    # per model-epoch of 2,146 mixed candidates ~3x on the loaded test machine)
    probe = [tuple(x["slots"]) for x in ranked[:: max(1, len(ranked) // 256)]][:256]
    probe = probe or [("mul", "x", "sigmoid")]
    stack = race.Stack(probe, data, depth=c.model.depth[0], width=c.model.width[0], seed=seed,
                       lr=race_lr(c), batch_size=c.model.batch_size[0])  # fmt: skip
    t0 = time.perf_counter()
    stack.run_epoch()
    stack.evaluate()
    return (time.perf_counter() - t0) / len(probe)


def _entrants(seconds: float, per: float, n: int, finalists: int, max_epochs: int) -> int:
    """The most entrants whose race fits ``seconds`` (bisection on the plan's cost)."""
    lo, hi = 1, max(1, n)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if race.cost(race.plan(mid, finalists, max_epochs)) * per * 1.3 <= seconds:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _finalists(st: State, directory: Path, cands: list[dict[str, Any]], rows: list[dict[str, Any]],
               n: int) -> list[dict[str, Any]]:  # fmt: skip
    """The best of the last finished rung, written as OUT/found/<name>.py (once)."""
    stored = st.finalists()
    if stored:
        return stored
    if not rows:
        raise ActlabError("the budget ran out before the first racing rung finished; give a "
                          "larger --budget (or --resume with more time)")  # fmt: skip
    last = max(r["rung"] for r in rows)
    best = sorted((r for r in rows if r["rung"] == last and r["val_score"] > -1e300),
                  key=lambda r: (-r["val_score"], r["val_loss"], r["cand"]))  # fmt: skip
    by_id = {x["id"]: x for x in cands}
    best = _distinct(best, by_id, n)
    out = []
    for k, r in enumerate(best, start=1):
        name = f"found{k}"
        t = expr.tree(by_id[r["cand"]]["slots"])
        b = r["betas"]
        s = by_id[r["cand"]]["slots"]
        order = {"u1": b[0], "u2": b[1], "b": b[2]}
        # betas in print order: u1's, u2's, then b's (params() walks children first)
        betas = [order[k2] for k2, prim in (("u1", s[1]), ("u2", s[2]), ("b", s[0]))
                 if _has_beta(prim) and not (k2 == "u2" and s[0] == "first")]  # fmt: skip
        note = (f"Raced on validation: score {r['val_score']:.4f} after {r['epochs']} epochs "
                f"(candidate {r['cand']}).")  # fmt: skip
        path = found.write(directory / "found", name, t, betas, note)
        st.put_finalist(name, r["cand"], expr.text(t), str(path.resolve()), betas)
    out = st.finalists()
    return out


def _distinct(ranked: list[dict[str, Any]], by_id: dict[int, Any],
              n: int) -> list[dict[str, Any]]:  # fmt: skip
    """The first ``n`` of ``ranked`` whose curves (learned betas, on [-4, 4]) differ from every
    one kept before by more than 5% RMS of its range: three variants of one curve (min(x, erf(x)),
    min(1.006 x, erf(x)), ...) would confirm the same thing three times."""

    x = torch.linspace(-4, 4, 81)
    kept: list[tuple[dict[str, Any], Any]] = []
    for r in ranked:
        prog = Program([tuple(by_id[r["cand"]]["slots"])])
        with torch.no_grad():
            y = prog(x[None], torch.tensor([r["betas"]], dtype=torch.float32))[0]
        scale = float(y.max() - y.min()) or 1.0
        if all(float((y - z).square().mean().sqrt()) > 0.05 * scale for _, z in kept):
            kept.append((r, y))
        if len(kept) == n:
            break
    return [r for r, _ in kept]


def _has_beta(prim: str) -> bool:

    p = UNARY.get(prim) or BINARY.get(prim)
    return p is not None and p.beta is not None


def _spearman(cands: list[dict[str, Any]], rows: list[dict[str, Any]]) -> float | None:

    first = [r for r in rows if r["rung"] == 0]
    score = {x["id"]: x["score"] for x in cands}
    pairs = [(score[r["cand"]], r["val_score"]) for r in first if r["val_score"] > -1e300]
    if len(pairs) < 5:
        return None
    rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if rho != rho else float(rho)


def _result(directory: Path, st: State, cands: list, info: dict, rows: list, rungs: list,
            ids: list, chosen: list, conf: dict, raced_done: bool,
            phases: dict) -> SearchResult:  # fmt: skip
    """Assemble the result (and its headline) from the stored phases."""
    valid = sum(x["score"] > -1e300 for x in cands)
    reasons: dict[str, int] = {}
    for x in cands:
        if x["reason"]:
            reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
    screened = {"generated": info["generated"], "duplicates": info["duplicates"],
                "screened": len(cands), "passed": valid, "refused": reasons,
                "seconds": phases.get("screen_s")}  # fmt: skip
    actual = [sum(1 for x in rows if x["rung"] == k) for k in range(len(rungs))]
    raced = {"entrants": len(ids), "rungs": [{"size": a or r.size, "epochs": r.epochs,
                                              "finished": bool(a)}
                                             for r, a in zip(rungs, actual, strict=True)],
             "finished": raced_done, "model_epochs": sum(len(r["curve"]) for r in rows),
             "spearman_screen_vs_val": _spearman(cands, rows), "seconds": phases.get("race_s"),
             "rows": rows}  # fmt: skip
    table = {r["activation"]: r for r in conf["table"]}
    finals = []
    for f in chosen:
        row = table.get(f["name"], {})
        finals.append({
            "name": f["name"], "formula": f["formula"], "file": f["file"], "betas": f["betas"],
            "candidate": f["cand"],
            "latex": _latex(f["formula"]), "test_mean": row.get("mean"),
            "ci": [row.get("ci_low"), row.get("ci_high")], "chosen": row.get("chosen"),
            "vs": conf["verdicts"].get(f["name"], {}),
            "p_holm": {b: v["p_holm"] for b, v in conf["verdicts"].get(f["name"], {}).items()},
            "better_than": [b for b, v in conf["verdicts"].get(f["name"], {}).items()
                            if v["better"]],
        })  # fmt: skip
    base = [{"name": a, "test_mean": table.get(a, {}).get("mean"),
             "ci": [table.get(a, {}).get("ci_low"), table.get(a, {}).get("ci_high")],
             "chosen": table.get(a, {}).get("chosen")}
            for a in conf["verdicts"].get(chosen[0]["name"], {}) ] if chosen else []  # fmt: skip
    wins = [f"{f['name']} ({f['formula']}) beats {', '.join(f['better_than'])}"
            for f in finals if f["better_than"]]  # fmt: skip
    metric = conf["metric"]
    if wins:
        headline = ("Found: " + "; ".join(wins) + f" on the held-out {metric} (paired t-test, "
                    "Holm-corrected over finalists x baselines, alpha 0.05).")  # fmt: skip
    else:
        names = ", ".join(b["name"] for b in base)
        headline = (f"No find beats the baselines ({names}): no finalist's held-out {metric} is "
                    "higher by a paired Holm-corrected test (alpha 0.05).")  # fmt: skip
    complete = raced_done and conf["complete"]
    if not complete:
        headline += " The search is unfinished (budget spent); finish it with --resume."
    return SearchResult(directory, screened, raced, finals, base, conf, headline, dict(phases),
                        complete=complete)  # fmt: skip


def _latex(formula: str) -> str:

    return expr.latex(expr.parse(formula))
