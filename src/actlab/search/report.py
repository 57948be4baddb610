"""The search's report: ``OUT/report.md`` and ``OUT/report.html`` (figures embedded as PNG).

The funnel (generated -> distinct -> passed the screen -> raced -> finalists -> confirmed, with
counts and seconds), the screen's Spearman correlation with the first rung's validation scores,
the finalists' curves and derivatives beside the baselines', the racing curves, and the
confirmation table with each finalist's Holm-corrected p against each baseline.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from actlab import catalog
from actlab._html import esc, fields, items, page, table
from actlab.kernels import _rational64

__all__ = ["figures", "html_page", "markdown", "write"]


def _metric_label(metric: str) -> str:
    """The column of the held-out score: 'test_accuracy' as it is, 'rmse' as 'test rmse'."""
    return metric if metric.startswith("test") else f"test {metric}"


def _f(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"
    return str(x)


def _s(x: Any) -> str:
    return "–" if x is None else f"{x:.1f} s"


def funnel(res: Any) -> list[dict[str, Any]]:
    """The funnel rows (stage, count, seconds)."""
    s, r = res.screened, res.raced
    conf = res.confirmation or {}
    if r.get("learn"):
        learn = r["learn"]
        middle = [
            {"stage": "rational activation trained per layer, validation score "
             f"{_f(learn['val_score'])}", "count": len(learn["coefficients"]),
             "time": _s(learn.get("seconds"))},
            {"stage": "expressions matched to the learned curves (least squares)",
             "count": learn["matched"], "time": ""},
        ]  # fmt: skip
    else:
        done = [g for g in r["rungs"] if g.get("finished", True)]
        last = done[-1]["size"] if done else len(res.finalists)
        middle = [
            {"stage": "raced (successive halving on validation)", "count": r["entrants"],
             "time": _s(r["seconds"])},
            {"stage": f"last finished rung ({len(done)} of {len(r['rungs'])})", "count": last,
             "time": ""},
        ]  # fmt: skip
    return [
        {"stage": "generated (core units of the space + seeds)", "count": s["generated"],
         "time": ""},
        {"stage": "distinct (dedup on the probe grid)", "count": s["screened"], "time": ""},
        {"stage": "passed the screen at initialisation", "count": s["passed"],
         "time": _s(s["seconds"])},
        *middle,
        {"stage": "finalists confirmed (fair study, held-out test)", "count": len(res.finalists),
         "time": _s(res.phases.get("confirm_s"))},
        {"stage": "of them better than a baseline (paired, Holm)",
         "count": sum(bool(f["better_than"]) for f in res.finalists) if conf else 0, "time": ""},
    ]  # fmt: skip


def _conf_rows(res: Any) -> list[dict[str, Any]]:
    conf = res.confirmation or {}
    baselines = [b["name"] for b in res.baselines]
    formula = {f["name"]: f["formula"] for f in res.finalists}
    rows = []
    for t in conf.get("table", []):
        name = t["activation"]
        row = {"rank": t["rank"], "activation": name, "formula": formula.get(name, "(baseline)"),
               _metric_label(conf.get("metric", "")): _f(t["mean"]),
               "95% CI": f"{_f(t['ci_low'])} – {_f(t['ci_high'])}",
               "chosen lr": _f((t.get("chosen") or {}).get("lr"), 4), "seeds": t["n"]}  # fmt: skip
        ver = conf["verdicts"].get(name)
        for b in baselines:
            v = (ver or {}).get(b)
            row[f"p_holm vs {b}"] = "" if v is None else _verdict(v)
        rows.append(row)
    return rows


def _verdict(v: dict[str, Any]) -> str:
    """p_holm with the direction where it is significant."""
    if v["p_holm"] is None:
        return "–"
    text = _f(v["p_holm"], 3)
    if v["better"]:
        return text + " (better)"
    if v["p_holm"] < 0.05:
        return text + " (worse)"
    return text


def _rung_rows(res: Any) -> list[dict[str, Any]]:
    rows = res.raced["rows"]
    out = []
    for k, rung in enumerate(res.raced["rungs"]):
        mine = [r for r in rows if r["rung"] == k and r["val_score"] > -1e300]
        best = max(mine, key=lambda r: r["val_score"], default=None)
        out.append({"rung": k + 1, "candidates": rung["size"], "epochs": rung["epochs"],
                    "finished": "yes" if rung.get("finished", True) else "no (budget)",
                    "best val score": _f(best["val_score"]) if best else "–"})  # fmt: skip
    return out


def figures(res: Any) -> dict[str, Any]:
    """matplotlib figures: ``curves`` (finalists and baselines, f and f') and ``racing``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    figs = {}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    for f in res.finalists:
        act = catalog.parse(f"{f['file']}:{f['name']}")
        y = act.forward(x.numpy())
        d = act.derivative(x.numpy())
        a1.plot(x, y, lw=2, label=f"{f['name']}: {f['formula']}")
        a2.plot(x, d, lw=2, label=f["name"])
    for b in res.baselines:
        act = catalog.parse(b["name"])
        a1.plot(x, act.forward(x.numpy()), "--", lw=1, label=b["name"])
        a2.plot(x, act.derivative(x.numpy()), "--", lw=1, label=b["name"])
    a1.set(title="f(x)", xlabel="x", ylim=(-3, 5))
    a2.set(title="f'(x)", xlabel="x", ylim=(-1.5, 2.5))
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    figs["curves"] = fig
    if res.raced.get("learn"):
        figs["racing"] = _learned(res, plt, x)
        return figs
    fig, ax = plt.subplots(figsize=(11, 4))
    rows = res.raced["rows"]
    fin = {f["name"]: f for f in res.finalists}
    cand_of = {f["name"]: _cand(res, f) for f in fin.values()}
    by_cand: dict[int, list[float]] = {}
    for r in sorted(rows, key=lambda r: r["rung"]):
        by_cand.setdefault(r["cand"], []).extend(r["curve"])
    for c, curve in by_cand.items():
        if c not in cand_of.values():
            ax.plot(range(1, len(curve) + 1), curve, color="0.6", lw=0.5, alpha=0.4)
    for name, c in cand_of.items():
        curve = by_cand.get(c, [])
        ax.plot(range(1, len(curve) + 1), curve, lw=2, label=f"{name}: {fin[name]['formula']}")
    ax.set(title="racing: validation score per epoch (grey: eliminated)", xlabel="epoch",
           ylabel="validation score")  # fmt: skip
    ax.set_xscale("log")
    finite = [v for c in by_cand.values() for v in c if v > -1e300]
    if finite:
        lo = sorted(finite)[len(finite) // 10]
        ax.set_ylim(lo, max(finite) + 0.01 * (max(finite) - lo + 1e-9))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    figs["racing"] = fig
    return figs


def _learned(res: Any, plt: Any, x: Any) -> Any:
    """The learned rational curve of each layer and the finalists named after them."""
    fig, ax = plt.subplots(figsize=(11, 4))
    xs = x.numpy()
    for k, (a, b) in enumerate(res.raced["learn"]["coefficients"], start=1):
        ax.plot(xs, _rational64(xs, a, b), lw=2.5, label=f"learned rational, layer {k}")
    for f in res.finalists:
        act = catalog.parse(f"{f['file']}:{f['name']}")
        ax.plot(xs, act.forward(xs), "--", lw=1.5, label=f"{f['name']}: {f['formula']}")
    ax.set(title="learned curves (solid) and the nearest expressions (dashed)", xlabel="x",
           ylim=(-3, 5))  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _cand(res: Any, f: dict[str, Any]) -> int | None:
    return f.get("candidate")


def markdown(res: Any, images: dict[str, str] | None = None) -> str:
    """The Markdown report (``images``: figure name -> file name beside it)."""
    lines = [f"# actlab search: {res.data_name}", "", res.headline, "", "## Funnel", ""]
    lines += _md_table(funnel(res))
    if not res.raced.get("learn"):
        rho = res.raced.get("spearman_screen_vs_val")
        lines += ["", f"Spearman ρ between the screen's score and the first rung's validation "
                  f"score: {_f(rho, 3)} (over {res.raced['entrants']} raced candidates)."]
    lines += [""]
    if res.raced.get("learn"):
        learn = res.raced["learn"]
        lines += [f"Strategy learn: a rational activation per layer reached validation score "
                  f"{_f(learn['val_score'])}; its curves were matched by least squares to "
                  f"{learn['matched']} expressions (the finalists are the nearest).", ""]
    lines += ["## Finalists", ""]
    for f in res.finalists:
        lines += [f"- **{f['name']}**: `{f['formula']}`  —  $ {f['latex']} $  "
                  f"(file `{f['file']}`, betas {[round(b, 4) for b in f['betas']]})"]  # fmt: skip
    lines += ["", "## Confirmation (fair study, held-out test)", ""]
    lines += _md_table(_conf_rows(res))
    if res.confirmation:
        lines += ["", res.confirmation.get("selection", ""),
                  f"Full study report: `{res.confirmation.get('report')}`"]  # fmt: skip
    lines += ["", "## Racing", ""]
    lines += _md_table(_rung_rows(res))
    for name, file in (images or {}).items():
        lines += ["", f"![{name}]({file})"]
    return "\n".join(lines) + "\n"


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r[k]).replace("|", "\\|") for k in keys) + " |" for r in rows]
    return out


def html_page(res: Any, pngs: dict[str, str]) -> str:
    """The HTML report (figures as base64 PNG)."""
    rho = res.raced.get("spearman_screen_vs_val")
    learn = bool(res.raced.get("learn"))
    rho_text = "" if learn else (
        f"<p>Spearman ρ between the screen's score and the first rung's validation score: "
        f"<strong>{esc(_f(rho, 3))}</strong> over {res.raced['entrants']} raced candidates.</p>")
    parts = [
        f"<h1>actlab search: {esc(res.data_name)}</h1>",
        f"<p class='headline'><strong>{esc(res.headline)}</strong></p>",
        "<h2>Funnel</h2>", table(funnel(res)),
        rho_text,
        "<h2>Finalists</h2>",
        table([{"name": f["name"], "formula": f["formula"], "betas": ", ".join(
            f"{b:.4g}" for b in f["betas"]), "file": f["file"],
            "better than": ", ".join(f["better_than"]) or "none"} for f in res.finalists]),
        f"<img alt='finalists and baselines' src='data:image/png;base64,{pngs['curves']}'>",
        "<h2>Confirmation (fair study, held-out test)</h2>", table(_conf_rows(res)),
        items([res.confirmation.get("selection", "")] if res.confirmation else []),
        fields([("study report", esc(res.confirmation.get("report", "")))])
        if res.confirmation else "",
        "<h2>Learned curves</h2>" if learn else "<h2>Racing</h2>",
        "" if learn else table(_rung_rows(res)),
        f"<img alt='racing curves' src='data:image/png;base64,{pngs['racing']}'>",
        "<h2>Time</h2>",
        table([{"phase": k, "seconds": _f(v, 1)} for k, v in res.phases.items()]),
    ]  # fmt: skip
    return page(f"actlab search: {res.data_name}", parts)


def write(res: Any, data_name: str = "") -> dict[str, Path]:
    """Write the figures, ``report.md`` and ``report.html`` into the search folder."""
    import matplotlib.pyplot as plt

    res.data_name = data_name
    directory = Path(res.directory)
    pngs, files = {}, {}
    for name, fig in figures(res).items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        path = directory / f"{name}.png"
        path.write_bytes(buf.getvalue())
        pngs[name] = base64.b64encode(buf.getvalue()).decode("ascii")
        files[name] = path.name
    md, html = directory / "report.md", directory / "report.html"
    md.write_text(markdown(res, files), encoding="utf-8")
    html.write_text(html_page(res, pngs), encoding="utf-8")
    return {"markdown": md, "html": html}
