"""Issue 20, what a person reads: reports, reprs and console answers that read right."""

from __future__ import annotations

import pytest

from actlab.cli import main


def test_markdown_keeps_less_than_readable_and_still_blocks_tags():
    from actlab.compare.report import _md_cell

    assert _md_cell("< 0.001") == "< 0.001"  # was '&lt; 0.001' in report.md
    assert _md_cell("a<b") == "a&lt;b"
    assert "<script" not in _md_cell("<script>alert(1)</script>")
    assert "<!--" not in _md_cell("<!-- x -->") and _md_cell("x | y") == "x \\| y"


def test_results_and_monitor_reports_have_short_reprs(tmp_path):
    import torch

    from actlab import compare, diagnose

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh"], seeds=2, epochs=2,
                      report=False)  # fmt: skip
    text = repr(res)
    assert len(text) < 400 and "iris" in text and ".table" in text and "4 models" in text
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with diagnose.Monitor(net) as mon:
        for _ in range(3):
            net(torch.randn(16, 4)).sum().backward()
    text = repr(mon.report())
    assert len(text) < 400 and ".table()" in text and "1 activation and 2 weight layers" in text


def test_recommend_gives_each_reason_once(capsys):
    from actlab import advice

    assert main(["recommend", "--task", "hidden", "--depth", "20"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps lines
    rec = advice.recommend(task="hidden", depth=20)
    for c in rec.candidates:
        first = c.reason.split(". ")[0]
        assert out.count(" ".join(first.split()[:6])) == 1, c.label


def test_eval_derivative_shows_f_beside_f_prime(capsys):
    assert main(["eval", "relu", "-2", "3", "--derivative"]) == 0
    out = capsys.readouterr().out
    assert "relu(x)" in out and "relu'(x)" in out
    row = next(line for line in out.splitlines() if " 3 " in line)
    assert [c for c in row.replace("│", " ").split()] == ["3", "3", "1"]




def test_console_tables_at_80_columns_never_cut_words_or_drop_columns(tmp_path):
    import io

    from rich.console import Console

    from actlab import compare
    from actlab.compare import report

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "sigmoid"], seeds=3,
                      epochs=2, depth=[1, 2], lr=[1e-3, 3e-3], report=False)  # fmt: skip
    console = Console(width=80, file=io.StringIO())
    report.terminal(res, console)
    text = console.file.getvalue()
    assert "…" not in text and "Too narrow" not in text
    # (a next step's command stays on one line, to be copied whole)
    assert max(len(line) for line in text.splitlines() if "actlab compare" not in line) <= 80
    headers = [line for line in text.splitlines() if line.startswith("#   activation")]
    assert len(headers) == 2
    for cell in res.studies:  # every column of the results table is there
        keys = report._terminal_rows(res, cell)[0].keys()
        assert all(k in headers[0].split("   ") or k in headers[0] for k in keys)
    words = ("distinguishable", "regression", "equivalent", "activation")
    for token in text.split():  # a word is printed whole, never split across lines
        assert not any(w.startswith(token) and token != w and len(token) >= 3 for w in words), token


def test_plot_overlay_shades_and_keeps_every_derivative_visible(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from actlab import plot

    seen = {}
    real = plot.compare

    def spy(specs, **kw):
        seen.update(kw)
        return real(specs, **kw)

    monkeypatch.setattr(plot, "compare", spy)
    assert main(["plot", "relu", "elu", "silu", "--derivative", "-o", str(tmp_path / "c.png")]) == 0
    assert seen["shade"] is True  # the README says the zones are shaded
    ax = real(["relu", "elu", "silu"], derivative=True, shade=True)
    assert ax.patches, "ReLU's dead zone is shaded"
    dashed = [ln for ln in ax.get_lines() if "f′" in ln.get_label()]
    assert len(dashed) == 3
    assert len({str(ln.get_linestyle()) + str(ln._dash_pattern) for ln in dashed}) == 3
    relu = next(ln for ln in dashed if ln.get_label().startswith("ReLU"))
    assert relu.get_zorder() == max(ln.get_zorder() for ln in dashed)  # drawn on top


def test_per_seed_title_fits_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from actlab import compare
    from actlab.compare import report

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh", "elu"], seeds=2,
                      epochs=1, report=False)  # fmt: skip
    fig = report.fig_per_seed(res)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.axes[0].title.get_window_extent(canvas.get_renderer())
    width = fig.get_figwidth() * fig.dpi
    assert box.x0 >= 0 and box.x1 <= width, (box, width)  # not cut on either side


def test_log_scale_loss_band_is_geometric_and_stays_positive():
    import numpy as np

    from actlab.compare.report import _band

    values = {1: [1.0, 0.01, 0.1], 2: [0.5, 0.5, 0.5]}
    _, m, lo, hi = _band(values, log=True)
    logs = np.log([1.0, 0.01, 0.1])
    assert m[0] == pytest.approx(np.exp(logs.mean()))
    assert lo[0] == pytest.approx(np.exp(logs.mean() - logs.std(ddof=1)))
    assert hi[0] / m[0] == pytest.approx(m[0] / lo[0])  # × and ÷ the same factor
    assert (lo > 0).all()  # arithmetic mean - sd is negative here: a log axis drops it
    _, m2, lo2, _ = _band(values)
    assert lo2[0] < 0 and m2[0] == pytest.approx(0.37)


def test_learning_curve_legend_hides_no_data(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from actlab import compare
    from actlab.compare import report

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh", "sigmoid"], seeds=2,
                      epochs=3, report=False)  # fmt: skip
    fig = report.fig_learning_curves(res)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    box = legends[0].get_window_extent(r)
    for ax in fig.axes:  # outside every panel's data area
        assert not box.overlaps(ax.get_window_extent(r)), (box, ax.get_window_extent(r))
    assert box.x1 <= fig.get_figwidth() * fig.dpi  # and inside the figure


def test_unit_health_bars_centre_on_their_ticks_and_zero_entries_say_so(tmp_path):
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from actlab import compare
    from actlab.compare import report

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh", "sigmoid"], seeds=2,
                      epochs=2, depth=2, report=False)  # fmt: skip
    fig = report.fig_unit_health(res)
    for ax in fig.axes:
        bars = [p for p in ax.patches if p.get_width() > 0]
        if not bars:
            continue
        centres = np.array([p.get_x() + p.get_width() / 2 for p in bars])
        for tick in ax.get_xticks():  # each layer's group of bars is centred on its tick
            group = centres[np.abs(centres - tick) < 0.5]
            assert group.mean() == pytest.approx(tick)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert not any(label.endswith("(0)") for label in labels)


def test_other_compare_figures_keep_legends_off_the_data(tmp_path):
    """Issue 20 item 12: the gradient-norm, sensitivity and unit-health legends sit outside every
    panel (loc='best' still covered curves), inside the figure; measured on the drawn boxes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from actlab import compare
    from actlab.compare import report

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh", "sigmoid"], seeds=2,
                      epochs=2, depth=2, lr=[1e-3, 1e-2], tune="lr", report=False)  # fmt: skip
    figs = {"grad_norms": report.fig_grad_norms(res), "unit_health": report.fig_unit_health(res),
            "sensitivity": report.fig_sensitivity(res, "lr")}  # fmt: skip
    for name, fig in figs.items():
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        r = canvas.get_renderer()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends, name
        for legend in legends:
            box = legend.get_window_extent(r)
            for ax in fig.axes:  # no panel's data area (so no line, band or bar) under it
                assert not box.overlaps(ax.get_window_extent(r)), (name, box)
            assert box.x0 >= 0 and box.x1 <= fig.get_figwidth() * fig.dpi, name  # not cut off


def test_tuned_section_says_the_choice_was_made_at_the_best_epoch(tmp_path):
    from actlab import compare

    compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh"], seeds=2, epochs=2,
                lr=[1e-3, 1e-2], tune="lr")  # fmt: skip
    html = (tmp_path / "r" / "report.html").read_text()
    section = html[html.index("Tuned on validation data"):][:600]
    assert "at each model's best epoch" in section and "final epoch" not in section
