"""Notebooks: the objects' HTML and text reprs, and examples/quickstart.ipynb run top to bottom."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import actlab
from actlab import _notebook, compare

ROOT = Path(__file__).resolve().parents[1]


def test_an_activation_shows_its_curve_and_parameters() -> None:
    act = actlab.parse("leaky_relu:alpha=0.1")
    assert repr(act) == "Activation('leaky_relu:negative_slope=0.1')"
    page = act._repr_html_()
    assert page.count("<polyline") == 2 and "negative_slope" in page and "0.1" in page
    # the solid curve is f itself: its points map back onto leaky_relu over the plot range
    points = re.search(r'<polyline[^>]*points="([^"]+)"', page).group(1).split()
    xs, ys = np.array([[float(v) for v in p.split(",")] for p in points]).T
    assert np.all(np.diff(xs) > 0) and ys[0] > ys[len(ys) // 2] > ys[-1]  # SVG y grows down
    assert "<polyline" not in actlab.parse("softmax")._repr_html_()  # not elementwise: no curve


def test_svg_breaks_the_line_at_non_finite_points() -> None:
    svg = _notebook.svg_curves([0.0, 1.0, 2.0, 3.0], [("f", [0.0, np.inf, 1.0, 2.0], False)])
    assert svg.count("<polyline") == 2 and "inf" not in svg.split("<text")[0]


def test_results_show_a_ranking_table(tmp_path: Path) -> None:
    res = compare.run("iris", activations=["relu", "tanh"], seeds=3, epochs=1, width=8,
                      out=tmp_path / "o", report=False)  # fmt: skip
    page = res._repr_html_()
    assert page.count("<tr>") == 1 + 2 and "relu" in page and "tanh" in page
    assert res.headline.split(":")[0] in page and "95% CI" in page


def test_a_diagnose_report_shows_verdicts_and_layers() -> None:
    import torch
    from torch import nn

    from actlab.diagnose import Monitor

    torch.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(8, 8), nn.Sigmoid())],
                          nn.Linear(8, 2))  # fmt: skip
    with Monitor(model) as mon:
        loss = nn.functional.cross_entropy(model(torch.randn(32, 8)), torch.randint(0, 2, (32,)))
        loss.backward()
    report = mon.report()
    assert repr(report).startswith(
        "Report(6 activation and 7 weight layers, 1 forward / 1 backward"
    )
    assert "vanishing" in repr(report) and "vanishing" in report._repr_html_()
    assert report._repr_html_().count("<tr>") == 1 + len(report.layers)


def test_no_notebook_bar_outside_a_kernel() -> None:
    assert not _notebook.in_notebook()


@pytest.mark.slow
def test_the_quickstart_notebook_runs_top_to_bottom() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()  # fmt: skip
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    assert any("<polyline" in h for h in html)  # the activation's curve
    assert any("done: 9 models" in h for h in html)  # the progress bar, finished
    assert any("95% CI" in h and "silu" in h for h in html)  # the ranking
    assert any("vanishing" in h for h in html)  # the diagnosis
