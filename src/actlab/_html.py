"""One look for actlab's HTML pages, the gallery (``actlab.plot.gallery``) and the compare report
(``actlab.compare.report``): one stylesheet, one page skeleton, escaping and tables.

The pages need no network: the CSS is inline and no font, script or stylesheet is fetched.
Everything that may come from user data goes through ``esc``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Both pages: system fonts (DejaVu Sans where the others are missing, as on Linux servers),
# GitHub-like greys for rules and table heads, green for the best, amber for ties and notes.
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
color:#1b1f24;background:#fafafa;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 8px}
h2{margin-top:32px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h2 small{font-weight:normal;color:#57606a;font-size:.6em} .card h2{margin-top:.6em}
h4{margin:.6em 0 .2em} ul{margin:.2em 0 .4em 1.2em;padding:0}
nav a{margin-right:.8em;white-space:nowrap}
.intro{font-size:1.05em;max-width:60em}
.headline{background:#eef6ee;border-left:5px solid #2e7d32;padding:12px 16px;font-size:1.08em}
.headline.tie{background:#fff6e5;border-color:#e69500}
.headline p{margin:4px 0}
.note{background:#fff3cd;padding:8px 12px;border-left:4px solid #e0a800;margin:8px 0}
.selection{background:#eef3fb;border-left:5px solid #3066be;padding:10px 14px}
table{border-collapse:collapse;margin:12px 0;font-size:.92em;background:#fff}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6}tr.best td{background:#eef6ee;font-weight:600}
table.fields{width:100%} table.fields th{width:11em;font-weight:600;color:#414a53}
img{max-width:100%;height:auto;background:#fff;border:1px solid #d0d7de;border-radius:4px}
pre{background:#f0f3f6;padding:10px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
code{background:#f0f3f6;padding:1px 4px;border-radius:3px}
.muted{color:#57606a;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1.5em}
.card{border:1px solid #d0d7de;border-radius:8px;padding:0 1em 1em;background:#fff;margin:1.5em 0}
.cards .card{margin:0}
@media print{.card{break-inside:avoid}}
"""


def esc(value: Any) -> str:
    """``value`` as HTML text, quotes included (safe in attributes too)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: Iterable[str], lang: str = "en") -> str:
    """A whole self-contained page: the stylesheet inline, ``body`` (HTML) inside ``<main>``."""
    return "\n".join(
        [
            f'<!DOCTYPE html>\n<html lang="{esc(lang)}"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
            *body,
            "</main></body></html>\n",
        ]
    )


def table(rows: Sequence[Mapping[str, Any]], best_key: str | None = None) -> str:
    """Rows (dicts with the same keys) as a table, every cell escaped; a row whose ``best_key``
    is ``"best"`` is highlighted."""
    if not rows:
        return "<p class='muted'>no rows</p>"
    head = "".join(f"<th>{esc(k)}</th>" for k in rows[0])
    body = []
    for row in rows:
        cls = " class='best'" if best_key and row.get(best_key) == "best" else ""
        cells = "".join(f"<td>{esc(v)}</td>" for v in row.values())
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (name, value HTML) pairs; pairs with an empty value are left out."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs if v)
    return f"<table class='fields'>{rows}</table>"


def items(texts: Sequence[str]) -> str:
    """A bulleted list of escaped texts; nothing for no texts."""
    return "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in texts) + "</ul>" if texts else ""
