"""Pictures: the plotted data are the kernels' values, the article's figures are reproduced (without
its slips), files are valid and not blank, and the CLI refuses bad output paths with exit 2."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from actlab import _html, catalog, kernels, plot
from actlab.cli import main
from actlab.errors import ActlabError

# The article's figures, copied from its code (not from the catalog), so the catalog is checked too.
ARTICLE = {
    "sigmoid": dict(
        title="График сигмоиды", ylabel="sigmoid(x)", xlim=(-10, 10), ylim=(0, 1), lw=5
    ),
    "relu": dict(title="График функции ReLU", ylabel="ReLU(x)", xlim=(-5, 5), ylim=(-0.5, 5), lw=5),
    "leaky_relu": dict(
        title="График функции Leaky ReLU",
        ylabel="Leaky ReLU(x)",
        xlim=(-5, 5),
        ylim=(-0.5, 5),
        lw=5,
    ),
    "elu": dict(title="График функции ELU", ylabel="ELU(x)", xlim=(-5, 5), ylim=(-2, 5), lw=5),
    "silu": dict(
        title="График функции SiLU", ylabel="SiLU(x)", xlim=(-5, 5), ylim=(-1.5, 1.5), lw=2
    ),
    "tanh": dict(
        title="График гиперболического тангенса",
        ylabel="tanh(x)",
        xlim=(-10, 10),
        ylim=(-1, 1),
        lw=5,
    ),
}
ARTICLE_SOFTMAX = [0.02364054, 0.06426166, 0.1746813, 0.474833, 0.02364054, 0.06426166, 0.1746813]


def curves(ax: Axes) -> list:
    """The labelled data lines (the zero axes drawn for orientation are unlabelled)."""
    return [ln for ln in ax.lines if not ln.get_label().startswith("_")]


def finite(line) -> tuple[np.ndarray, np.ndarray]:
    """Line data without the NaN gaps inserted at jumps of f'."""
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    keep = np.isfinite(y)
    return x[keep], y[keep]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def ink_fraction(path: Path) -> float:
    """Share of pixels that are not (near) white."""
    img = mpimg.imread(path)[..., :3]
    return float(np.mean(np.any(img < 0.95, axis=-1)))


# ----------------------------------------------------------------------------- data = kernels


@pytest.mark.parametrize(
    "spec", ["sigmoid", "relu", "leaky_relu:alpha=0.3", "elu:alpha=0.5", "silu", "gelu", "relu6"]
)
def test_curve_data_equal_kernels(spec: str) -> None:
    ax = plot.curve(spec, derivative=True)
    f_line, d_line = curves(ax)
    act = catalog.parse(spec)
    x, y = finite(f_line)
    np.testing.assert_array_equal(y, catalog.forward(act, x))
    xd, yd = finite(d_line)
    np.testing.assert_array_equal(yd, catalog.derivative(act, xd))
    # Nothing of the grid is lost to the gaps: only inserted NaN points differ.
    assert len(xd) == len(x) and np.array_equal(xd, x)


def test_each_curve_drawn_once_and_dense_over_visible_window() -> None:
    ax = plot.curve("sigmoid")  # the article drew it twice, 1000 points over [-100, 100]
    ys = [tuple(np.asarray(ln.get_ydata(), float)) for ln in ax.lines]
    assert len(ys) == len(set(ys)), "some line is drawn twice"
    (line,) = curves(ax)
    x = np.asarray(line.get_xdata(), float)
    assert x.min() == -10 and x.max() == 10  # sampled over the visible window only
    assert np.max(np.diff(x)) <= 20 / 1000  # at least 1000 intervals inside the window
    assert 0.0 in x  # the kink/centre point is a sample


def test_derivative_is_dashed_second_colour_with_own_legend_entry() -> None:
    ax = plot.curve("tanh", derivative=True, shade=False)
    f_line, d_line = curves(ax)
    assert d_line.get_linestyle() == "--" and f_line.get_linestyle() == "-"
    assert d_line.get_color() != f_line.get_color()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f_line.get_label(), d_line.get_label()]
    assert "derivative" in d_line.get_label()


def test_derivative_jump_is_a_gap_not_a_vertical_line() -> None:
    ax = plot.curve("relu", derivative=True, shade=False)
    _, d_line = curves(ax)
    x, y = np.asarray(d_line.get_xdata(), float), np.asarray(d_line.get_ydata(), float)
    gaps = np.flatnonzero(np.isnan(y))
    assert len(gaps) == 1 and 0 < x[gaps[0]] < 0.01  # the jump of relu' at 0
    # ...while a continuous derivative (sigmoid) gets none
    _, d_sig = curves(plot.curve("sigmoid", derivative=True, shade=False))
    assert not np.isnan(np.asarray(d_sig.get_ydata(), float)).any()


# ----------------------------------------------------------------------------- the article


@pytest.mark.parametrize("name", sorted(ARTICLE))
def test_article_figures_in_russian(name: str) -> None:
    want = ARTICLE[name]
    ax = plot.curve(name, lang="ru")
    assert ax.get_title() == want["title"]
    assert ax.get_xlabel() == "x"
    assert ax.get_ylabel() == want["ylabel"]
    assert ax.get_xlim() == pytest.approx(want["xlim"])
    assert ax.get_ylim() == pytest.approx(want["ylim"])
    assert ax.xaxis.get_gridlines()[0].get_visible()
    (line,) = curves(ax)
    assert line.get_linewidth() == want["lw"]


def test_bare_leaky_relu_uses_pytorchs_slope_0_01() -> None:
    (line,) = curves(plot.curve("leaky_relu"))  # one default everywhere (list, eval, figures)
    x, y = finite(line)
    np.testing.assert_allclose(y, np.where(x > 0, x, 0.01 * x), rtol=0, atol=1e-15)
    # explicit parameters win over the article's
    (line,) = curves(plot.curve("leaky_relu:alpha=0.01"))
    x, y = finite(line)
    np.testing.assert_allclose(y, np.where(x > 0, x, 0.01 * x), rtol=0, atol=1e-15)


def test_english_is_the_default() -> None:
    ax = plot.curve("sigmoid")
    assert ax.get_title() == "Sigmoid"
    assert not re.search("[а-яА-Я]", ax.get_title() + ax.get_legend().get_texts()[-1].get_text())


def test_russian_renders_without_missing_glyphs(tmp_path: Path) -> None:
    ax = plot.curve("sigmoid", derivative=True, lang="ru")
    assert ax.title.get_fontname() == "DejaVu Sans"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font" would be a UserWarning
        plot.save(ax.figure, tmp_path / "ru.png")
        plot.save(plot.compare("relu,elu", derivative=True, lang="ru").figure, tmp_path / "c.svg")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("производная" in t for t in texts) and any("насыщение" in t for t in texts)


# ----------------------------------------------------------------------------- shading


def test_saturation_and_dead_zones() -> None:
    x = np.linspace(-10, 10, 20001)
    sig = plot.regions(x, catalog.derivative("sigmoid", x))
    # sigmoid'(x) = 0.01 at |x| = 2 * acosh(sqrt(25)) = 4.5951...
    edge = 2 * np.arccosh(5.0)
    assert sig["dead"] == []
    (left, right) = sig["saturation"]
    assert left[0] == -10 and abs(left[1] + edge) < 2e-3
    assert right[1] == 10 and abs(right[0] - edge) < 2e-3

    relu = plot.regions(x, catalog.derivative("relu", x))
    assert relu["saturation"] == [] and relu["dead"] == [(-10.0, 0.0)]

    # SiLU's f' crosses zero at its minimum: a turning point, not saturation
    xs = np.linspace(-5, 5, 2001)
    assert plot.regions(xs, catalog.derivative("silu", xs)) == {"dead": [], "saturation": []}


def test_shading_is_drawn_and_labelled() -> None:
    ax = plot.curve("relu6", derivative=True)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ReLU6", "ReLU6: derivative f′", "dead zone: f′ = 0"]
    spans = [p for p in ax.patches if p.get_label() and not p.get_label().startswith("_")]
    assert len(spans) == 1  # one legend entry, though there are two dead zones
    assert len(ax.patches) == 2
    ax = plot.curve("sigmoid", shade=False)
    assert not ax.patches and len(ax.get_legend().get_texts()) == 1


# ----------------------------------------------------------------------------- compare


def test_parameter_family() -> None:
    specs = ["leaky_relu:alpha=0.01", "leaky_relu:alpha=0.1", "leaky_relu:alpha=0.3"]
    ax = plot.compare(specs, derivative=True)
    lines = curves(ax)
    assert len(lines) == 6
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [ln.get_label() for ln in lines]
    assert legend[0::2] == [
        "negative_slope=0.01",
        "negative_slope=0.1",
        "negative_slope=0.3",
    ]
    assert ax.get_title().startswith("Leaky ReLU")
    for spec, f_line, d_line in zip(specs, lines[0::2], lines[1::2], strict=True):
        x, y = finite(f_line)
        np.testing.assert_array_equal(y, catalog.forward(spec, x))
        xd, yd = finite(d_line)
        np.testing.assert_array_equal(yd, catalog.derivative(spec, xd))
        assert f_line.get_color() == d_line.get_color()  # pairs share a colour
    assert len({ln.get_color() for ln in lines}) == 3


def test_compare_mixed_and_comma_string() -> None:
    ax = plot.compare("relu, elu,gelu")
    assert [ln.get_label() for ln in curves(ax)] == ["ReLU", "ELU", "GELU"]
    assert ax.get_xlim() == (-5.0, 5.0)
    with pytest.raises(ActlabError, match="twice"):
        plot.compare(["relu", "relu"])


# ----------------------------------------------------------------------------- softmax


def test_softmax_bars_article_example() -> None:
    fig = plot.softmax_bars([1, 2, 3, 4, 1, 2, 3])
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, ARTICLE_SOFTMAX, atol=5e-9)
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"{h:.3f}" for h in heights]  # each bar's value is written on it
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "Softmax Distribution",
        "Class",
        "Probability",
    )


def test_softmax_bars_temperatures_side_by_side() -> None:
    z = np.array([1.0, 2.0, 3.0, 4.0])
    fig = plot.softmax_bars(z, temperature=[0.5, 1, 4])
    assert [a.get_title() for a in fig.axes] == ["T = 0.5", "T = 1", "T = 4"]
    for ax, t in zip(fig.axes, [0.5, 1.0, 4.0], strict=True):
        np.testing.assert_allclose([p.get_height() for p in ax.patches], kernels.softmax(z / t))
    # shared y axis, so flattening is visible
    assert len({a.get_ylim() for a in fig.axes}) == 1


@pytest.mark.parametrize(
    ("z", "t", "match"),
    [
        ([], 1.0, "non-empty"),
        ([1, np.nan], 1.0, "finite"),
        ([1, 2], 0.0, "> 0"),
        ([1], [], "list"),
        ([1e300, 0], 1e-300, "overflows"),
    ],
)
def test_softmax_bars_bad_input(z, t, match: str) -> None:
    with pytest.raises(ActlabError, match=match):
        plot.softmax_bars(z, temperature=t)


# ----------------------------------------------------------------------------- bad input


def test_softmax_has_no_curve() -> None:
    with pytest.raises(ActlabError, match="actlab softmax"):
        plot.curve("softmax")
    with pytest.raises(ActlabError, match="not elementwise"):
        plot.compare(["relu", "log_softmax"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lang": "de"}, "lang must be one of"),
        ({"xlim": (5, -5)}, "low < high"),
        ({"ylim": (0, float("inf"))}, "finite"),
        ({"xlim": (1,)}, "two numbers"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ActlabError, match=match):
        plot.curve("relu", **kwargs)


def test_user_axes_and_limits() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.curve("elu", ax=ax, xlim=(-2, 3), ylim=(-1, 2)) is ax
    assert ax.get_xlim() == (-2, 3) and ax.get_ylim() == (-1, 2)
    x = np.asarray(curves(ax)[0].get_xdata(), float)
    assert x.min() == -2 and x.max() == 3


# ----------------------------------------------------------------------------- files


def test_save_png_svg_pdf(tmp_path: Path) -> None:
    fig = plot.curve("gelu", derivative=True).figure
    w_in, h_in = fig.get_size_inches()

    png = plot.save(fig, tmp_path / "g.png", dpi=100)
    assert png_size(png) == (round(w_in * 100), round(h_in * 100))
    assert ink_fraction(png) > 0.05

    svg = plot.save(fig, tmp_path / "g.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert root.get("width") == f"{w_in * 72:g}pt" and root.get("height") == f"{h_in * 72:g}pt"
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10

    pdf = plot.save(fig, tmp_path / "g.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert box and (float(box[1]), float(box[2])) == (w_in * 72, h_in * 72)


def test_blank_figure_is_detected_as_blank(tmp_path: Path) -> None:
    # guards the "not blank" check above: an empty figure has (almost) no ink
    path = plot.save(Figure(figsize=(3, 2)), tmp_path / "blank.png", dpi=50)
    assert ink_fraction(path) < 0.001


def test_save_refuses_bad_paths(tmp_path: Path) -> None:
    fig = plot.curve("relu").figure
    with pytest.raises(ActlabError, match=r"unknown file type '\.jpg'"):
        plot.save(fig, tmp_path / "a.jpg")
    with pytest.raises(ActlabError, match="does not exist"):
        plot.save(fig, tmp_path / "missing" / "a.png")
    target = tmp_path / "a.png"
    target.write_bytes(b"mine")
    with pytest.raises(ActlabError, match="already exists"):
        plot.save(fig, target)
    assert target.read_bytes() == b"mine"  # untouched
    plot.save(fig, target, force=True)
    assert png_size(target)[0] > 100


# ----------------------------------------------------------------------------- gallery


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("g") / "gallery"
    index = plot.gallery(out, lang="ru")
    assert index == out / "index.html"
    return out


def test_gallery_files(gallery_dir: Path) -> None:
    page = (gallery_dir / "index.html").read_text(encoding="utf-8")
    elementwise = [n for n in catalog.names() if catalog.get(n).elementwise]
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert set(srcs) == {f"{n}.png" for n in elementwise} | {"overview.png", "softmax.png"}
    for src in srcs:  # relative references to files that exist, are PNGs and have content
        path = gallery_dir / src
        assert "/" not in src and path.is_file()
        w, h = png_size(path)
        assert w >= 600 and h >= 400
    for name in ("relu", "sigmoid", "overview", "softmax"):
        assert ink_fraction(gallery_dir / f"{name}.png") > 0.03
    for n in elementwise:  # formula and properties for every activation
        spec = catalog.get(n)
        assert f'id="{n}"' in page
        assert spec.formula.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page
    assert 'lang="ru"' in page and "Свойства" in page and "http" not in page.split("<body>")[0]
    assert f"<style>{_html.CSS}</style>" in page  # one look: the compare report's stylesheet


def test_gallery_does_not_overwrite(gallery_dir: Path) -> None:
    before = (gallery_dir / "index.html").stat().st_mtime_ns
    with pytest.raises(ActlabError, match="already exists"):
        plot.gallery(gallery_dir)
    assert (gallery_dir / "index.html").stat().st_mtime_ns == before
    with pytest.raises(ActlabError, match="does not exist"):
        plot.gallery(gallery_dir / "no" / "such")


# ----------------------------------------------------------------------------- CLI


def test_cli_plot_writes_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "s.png"
    assert main(["plot", "sigmoid", "--lang", "ru", "-o", str(out)]) == 0
    assert png_size(out)[0] > 500 and ink_fraction(out) > 0.03
    assert "s.png" in capsys.readouterr().out
    # exists: refused, then --force replaces it
    assert main(["plot", "sigmoid", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["plot", "sigmoid", "-o", str(out), "--force", "--derivative"]) == 0
    out2 = tmp_path / "fam.svg"
    argv = ["plot", "leaky_relu:alpha=0.01,leaky_relu:alpha=0.1", "leaky_relu:alpha=0.3"]
    assert main([*argv, "--xlim", "-3", "3", "-o", str(out2)]) == 0
    assert out2.read_text().count("negative_slope") >= 3


def test_cli_plot_default_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plot", "relu", "elu"]) == 0
    assert (tmp_path / "relu-elu.png").is_file()
    assert main(["plot", "relu", "elu"]) == 2  # no silent overwrite of the default name either


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plot", "relu", "-o", "{tmp}/a.jpg"], "unknown file type"),
        (["plot", "relu", "-o", "{tmp}/nope/a.png"], "does not exist"),
        (["plot", "softmax", "-o", "{tmp}/a.png"], "actlab softmax"),
        (["plot", "relux", "-o", "{tmp}/a.png"], "did you mean"),
        (["plot", "relu", "--xlim", "5", "-5", "-o", "{tmp}/a.png"], "low < high"),
        (["gallery", "-o", "{tmp}/nope/g"], "does not exist"),
    ],
)
def test_cli_errors_exit_2(argv, message, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error:") and message in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plot", "relu", "--lang", "de"])
    assert exc.value.code == 2


def test_import_is_headless() -> None:
    code = (
        "import sys;import actlab.plot, actlab.cli.plot;print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # no pyplot state, no backend switch at import
