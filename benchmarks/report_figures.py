"""The compare report's figure time, step by step, and against matplotlib's plain path (issue 24
item 5: figures drawn faster).

    .venv/bin/python benchmarks/report_figures.py                       # the default run's report
    .venv/bin/python benchmarks/report_figures.py --run DIR             # any run folder
    .venv/bin/python benchmarks/report_figures.py --epochs 1 --seeds 2  # smoke (CI)

``report.write`` is timed in this process (torch and SciPy loaded, as in ``actlab compare``) with
the report's pipeline and with the plain one it replaced, alternating, median of ``--repeats``:
a bare ``Figure`` (tight layout and ``savefig`` each on a renderer of their own), ``savefig``'s
RGBA PNG at zlib level 6, the garbage collector running. Then each figure of the report's
pipeline split into its steps (made and plotted, tight layout, drawn, PNG and base64), and whether
both pipelines give the same pixels.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import summary
from matplotlib.figure import Figure
from PIL import Image

from actlab import compare
from actlab.compare import report
from actlab.compare.report import documents, figures


def _plain_png(fig: Figure) -> str:
    """The PNG as the report wrote it before: ``savefig`` of the figure, RGBA, zlib level 6."""
    fig.set_layout_engine(None)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=figures.DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@contextlib.contextmanager
def plain_pipeline() -> Any:
    """The report's figures drawn the plain way (see the module's docstring)."""
    saved = figures._figure, figures._png, figures.no_gc
    figures._figure = lambda w, h: Figure(figsize=(w, h), dpi=figures.DPI)
    figures._png = _plain_png
    figures.no_gc = contextlib.nullcontext
    try:
        yield
    finally:
        figures._figure, figures._png, figures.no_gc = saved


def _figure_calls(res: compare.Results) -> list[tuple[Any, Any, str]]:
    """The (draw, input, alt) of every figure ``html_page`` embeds, in its order."""
    calls: list[tuple[Any, Any, str]] = []
    real = documents._img
    documents._img = lambda draw, r, alt: calls.append((draw, r, alt)) or ""
    try:
        documents.html_page(res)
    finally:
        documents._img = real
    return calls


def _pixels(png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"))


def steps(res: compare.Results) -> None:
    """Each figure of the report's pipeline, step by step (one draw each, after the timed writes:
    matplotlib's caches are warm, as they are from a report's second figure on)."""
    fit = figures._fit
    total: dict[str, float] = {}
    print(f"\n{'figure':34s} {'made':>7s} {'layout':>7s} {'drawn':>7s} {'PNG':>7s} {'KiB':>6s}"
          "  same pixels as the plain path")  # fmt: skip
    for draw, r, alt in _figure_calls(res):
        clock = {"layout": 0.0}

        def timed_fit(fig: Figure, _c: dict[str, float] = clock) -> None:
            t = time.perf_counter()
            fit(fig)
            _c["layout"] += time.perf_counter() - t

        figures._fit = timed_fit
        try:
            with figures.no_gc():
                t0 = time.perf_counter()
                try:
                    fig = draw(r)
                except Exception as err:  # the report shows it in words
                    print(f"{alt[:34]:34s} not drawn: {type(err).__name__}")
                    continue
                if fig is None:
                    continue
                t1 = time.perf_counter()
                fig.set_layout_engine(None)
                fig.canvas.draw()
                t2 = time.perf_counter()
                png = figures._png(fig)  # draws again: subtract the draw measured above
                t3 = time.perf_counter()
        finally:
            figures._fit = fit
        row = {"made": t1 - t0 - clock["layout"], "layout": clock["layout"], "drawn": t2 - t1,
               "PNG": max(t3 - t2 - (t2 - t1), 0.0)}  # fmt: skip
        with plain_pipeline():
            same = np.array_equal(_pixels(png), _pixels(figures._png(draw(r))))
        for k, v in row.items():
            total[k] = total.get(k, 0.0) + v
        print(f"{alt[:34]:34s} " + " ".join(f"{v:7.3f}" for v in row.values())
              + f" {len(png) * 3 / 4 / 1024:6.0f}  {'yes' if same else 'NO'}")  # fmt: skip
    print(f"{'all (s)':34s} " + " ".join(f"{v:7.3f}" for v in total.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run folder (default: make the default run)")
    parser.add_argument("--epochs", type=int, default=30, help="of the run made (default 30)")
    parser.add_argument("--seeds", type=int, default=5, help="of the run made (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="writes timed per pipeline")
    args = parser.parse_args()
    import scipy.stats  # noqa: F401 (as in `actlab compare`'s process: its heap, its collections)
    import torch  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="actlab-report-bench-") as tmp:
        if args.run is None:
            out = Path(tmp) / "run"
            compare.run("digits", out=out, epochs=args.epochs, seeds=args.seeds, report=False)
        else:
            out = Path(tmp) / "copy"  # write the reports into a copy: the user's run is kept
            out.mkdir()
            (out / "results.sqlite").write_bytes((args.run / "results.sqlite").read_bytes())
        res = compare.load(out)
        print(summary())
        print(f"run: {res.data['name']}, {len(res.models)} models, "
              f"{len(_figure_calls(res))} figures in its report")  # fmt: skip
        report.write(res)  # not timed: the first figure's one-off costs (fonts, math text)
        times: dict[str, list[float]] = {"report's pipeline": [], "plain pipeline": []}
        for _ in range(max(args.repeats, 1)):
            for name in times:  # alternating: both see the same machine
                with plain_pipeline() if name == "plain pipeline" else contextlib.nullcontext():
                    t = time.perf_counter()
                    report.write(res)
                    times[name].append(time.perf_counter() - t)
        fast, plain = (statistics.median(v) for v in times.values())
        for name, values in times.items():
            print(f"report.write, {name:18s} median {statistics.median(values):.3f} s "
                  f"(min {min(values):.3f})")  # fmt: skip
        print(f"ratio report's / plain: {fast / plain:.2f}")
        steps(res)


if __name__ == "__main__":
    main()
