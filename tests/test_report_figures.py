"""The compare report's figure pipeline (issue 24 item 5, figures drawn faster): the fast path (a
pooled Agg renderer per figure size, RGB PNGs written without ``savefig``, the garbage collector
paused per figure) draws exactly the picture matplotlib's own canvas draws."""

from __future__ import annotations

import base64
import gc
import io
import threading

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from actlab.compare.report import figures


def _pixels_of_png(text: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    assert image.format == "PNG" and image.mode == "RGB"
    return np.asarray(image)


def _reference_pixels(fig) -> np.ndarray:
    """``fig`` drawn by a fresh FigureCanvasAgg (its own renderer): the picture it should be."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    assert (rgba[..., 3] == 255).all()  # opaque: RGB loses nothing
    return rgba[..., :3].copy()


def _log_legend_figure(scale: float, width: float = 6.0):
    """A report-like figure: two panels, a log axis (math text tick labels), a title, a legend
    outside the panels, fitted by the report's tight layout."""
    fig = figures._figure(width, 3.0)
    ax_a, ax_b = fig.subplots(1, 2)
    x = np.arange(1, 31)
    ax_a.plot(x, 1 - np.exp(-x / (5 * scale)), label="relu")
    ax_b.plot(x, scale * np.exp(-x / 7), label="relu")
    ax_b.plot(x, scale * np.exp(-x / 3), label="a long activation name")
    ax_b.set_yscale("log")
    ax_a.set_title(f"val_accuracy (scale {scale})")
    ax_b.set_xlabel("epoch")
    figures._legend(ax_b)
    figures._fit(fig)
    return fig


def test_png_is_the_picture_matplotlib_draws_even_after_other_figures_of_its_size():
    first = _log_legend_figure(1.0)
    figures._png(first)  # leaves its drawing in the pooled renderer of this size
    second = _log_legend_figure(50.0)  # same size, other ticks, labels and curves
    fast = _pixels_of_png(figures._png(second))
    assert fast.shape == (300, 600, 3)  # the report's 100 pixels per inch
    assert np.array_equal(fast, _reference_pixels(second))


def test_renderers_are_pooled_by_size_per_thread_and_bounded():
    a = _log_legend_figure(1.0).canvas.get_renderer()
    assert _log_legend_figure(2.0).canvas.get_renderer() is a  # same size: shared caches
    other = _log_legend_figure(1.0, width=7.0).canvas.get_renderer()
    assert other is not a and (other.width, other.height) == (700, 300)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(
        _log_legend_figure(1.0).canvas.get_renderer()))  # fmt: skip
    worker.start()
    worker.join()
    assert seen[0] is not a  # matplotlib's drawing is not thread-safe: one pool per thread
    for i in range(40):  # many sizes: the pool keeps the latest few, within its memory bound
        last = figures._figure(8.0 + i / 10, 4.0).canvas.get_renderer()
    pool = figures._RENDERERS.pool
    assert 1 < len(pool) < 40 and list(pool.values())[-1] is last
    assert sum(w * h for w, h, _ in pool) <= figures._POOL_PIXELS
    huge = figures._figure(figures._POOL_PIXELS / 100 / 2 + 1, 2.0).canvas.get_renderer()
    assert huge not in pool.values() and not pool  # one over the bound is not kept


@pytest.mark.parametrize("enabled", [True, False])
def test_no_gc_pauses_the_collector_and_restores_it(enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(ValueError), figures.no_gc():
            assert not gc.isenabled()
            raise ValueError("a figure that fails")
        assert gc.isenabled() is enabled  # as it was, also after an error
    finally:
        (gc.enable if was else gc.disable)()
