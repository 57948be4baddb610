"""The terminal report: the ranking tables with rich, columns fitted to the width."""

from __future__ import annotations

from typing import Any

from actlab.compare.analysis import Cell
from actlab.compare.report.rows import (
    BASELINE_NOTE,
    _at_epoch,
    _values,
    data_notes,
    effect_rows,
    summary_rows,
)
from actlab.compare.results import Results

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


def _terminal_rows(res: Results, cell: Cell) -> list[dict[str, str]]:
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


def terminal(res: Results, console: Any) -> None:
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
