"""What a notebook shows: compact HTML tables, inline SVG curves, a progress bar.

Plain strings and NumPy only (no matplotlib, no ipywidgets): the ``_repr_html_`` of ``Results``,
``Activation`` and diagnose's ``Report`` are built here, and :class:`NotebookBar` draws
``compare.run``'s progress in a Jupyter output cell through ``IPython.display`` (one display
updated in place) when the run is started from a notebook.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = (
    "border-collapse:collapse;font-size:12px;font-family:system-ui,sans-serif;"
)
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 4) -> str:
    """A number for a table cell: 4 significant digits, '–' for None/NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          limit: int = 30) -> str:  # fmt: skip
    """A compact HTML table of ``rows`` (the first ``limit``; the rest counted)."""
    if not rows:
        return "<p><em>no rows</em></p>"
    cols = list(columns or rows[0])
    head = "".join(f'<th style="{_CELL}">{esc(c)}</th>' for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{esc(number(r.get(c)))}</td>' for c in cols)
        + "</tr>"
        for r in rows[:limit]
    )
    more = f"<p><em>… {len(rows) - limit} more rows</em></p>" if len(rows) > limit else ""
    return f'<table style="{STYLE}"><tr>{head}</tr>{body}</table>{more}'


def svg_curves(x: Any, curves: Iterable[tuple[str, Any, bool]], *, width: int = 320,
               height: int = 200) -> str:  # fmt: skip
    """An inline SVG of curves over ``x``: (label, y, dashed) each; axes through 0 when in view.

    Non-finite points break the line rather than stretch the axes."""
    import numpy as np

    xs = np.asarray(x, dtype=float)
    lines = [(label, np.asarray(y, dtype=float), dashed) for label, y, dashed in curves]
    finite = np.concatenate([y[np.isfinite(y)] for _, y, _ in lines]) if lines else np.zeros(1)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    x0, x1 = float(xs.min()), float(xs.max())

    def px(v: float) -> float:
        return (v - x0) / (x1 - x0) * (width - 20) + 10

    def py(v: float) -> float:
        return height - 10 - (v - lo) / (hi - lo) * (height - 20)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']  # fmt: skip
    if lo < 0 < hi:
        parts.append(f'<line x1="10" x2="{width - 10}" y1="{py(0):.1f}" y2="{py(0):.1f}" '
                     'stroke="#bbb"/>')  # fmt: skip
    if x0 < 0 < x1:
        parts.append(f'<line y1="10" y2="{height - 10}" x1="{px(0):.1f}" x2="{px(0):.1f}" '
                     'stroke="#bbb"/>')  # fmt: skip
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    for k, (label, ys, dashed) in enumerate(lines):
        segments, current = [], []
        for a, b in zip(xs, ys, strict=True):
            if math.isfinite(b):
                current.append(f"{px(a):.1f},{py(b):.1f}")
            elif current:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        for seg in segments:
            parts.append(f'<polyline fill="none" stroke="{colours[k % 4]}" stroke-width="2"'
                         f'{dash} points="{" ".join(seg)}"><title>{esc(label)}</title>'
                         "</polyline>")  # fmt: skip
        parts.append(f'<text x="{14 + 110 * k}" y="16" font-size="11" '
                     f'fill="{colours[k % 4]}">{esc(label)}</text>')  # fmt: skip
    parts.append(f'<text x="10" y="{height - 1}" font-size="10" fill="#666">{x0:g}</text>')
    parts.append(f'<text x="{width - 30}" y="{height - 1}" font-size="10" fill="#666">'
                 f"{x1:g}</text></svg>")  # fmt: skip
    return "".join(parts)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell), not a terminal."""
    import sys

    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:  # an IPython that cannot tell
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class NotebookBar:
    """``compare.run``'s progress as an HTML bar in the output cell, updated in place (at most
    every 0.2 s), showing group, epoch (or model), percentage, best so far and the ETA."""

    def __init__(self) -> None:
        from IPython.display import HTML, display

        self._html = HTML
        self.handle = display(HTML(self._render(0.0, "starting", "")), display_id=True)
        self.last = 0.0

    @staticmethod
    def _render(share: float, where: str, tail: str) -> str:
        pct = max(0.0, min(share, 1.0)) * 100
        return (f'<div style="font:12px system-ui,sans-serif">{esc(where)} · {pct:.0f}% '
                f'{esc(tail)}<div style="background:#eee;width:320px;height:8px">'
                f'<div style="background:#1f77b4;width:{pct * 3.2:.0f}px;height:8px"></div>'
                "</div></div>")  # fmt: skip

    def __call__(self, info: dict) -> None:
        now = time.monotonic()
        epochs = max(int(info.get("epochs") or 1), 1)
        steps = max(int(info.get("steps") or 1), 1)
        epoch = int(info.get("epoch") or 0)
        done = (max(epoch - 1, 0) + min(int(info.get("step") or 0), steps) / steps) / epochs
        groups, group = int(info.get("groups") or 1), int(info.get("group") or 0)
        share = (group + done) / groups
        if now - self.last < 0.2 and share < 1:
            return
        self.last = now
        where = f"{info.get('unit', 'epoch')} {epoch}/{epochs}"
        if groups > 1:
            where = f"group {group + 1}/{groups} · {where}"
        best = info.get("best")
        tail = f"best {best[0]} {best[1]:.4g}" if best else ""
        eta = info.get("eta_s")
        if eta is not None and math.isfinite(eta):
            tail += f" · ETA {eta:.0f} s"
        self.handle.update(self._html(self._render(share, where, tail)))

    def done(self, text: str) -> None:
        self.handle.update(self._html(self._render(1.0, text, "")))
