"""`actlab plot` and `actlab gallery`: pictures from the terminal.

Overwrite policy: nothing is replaced silently. An existing output file (or gallery file) is an
error (exit 2) unless ``--force`` is given; the output folder must exist, and only .png, .svg and
.pdf are written. Without ``-o`` and ``--show``, ``plot`` writes ``<name>.png`` in the current
folder under the same rules.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actlab.catalog import split_specs
from actlab.cli._common import console, output_path
from actlab.errors import ActlabError, real_arg

# Backends that cannot open a window; --show on them would silently do nothing.
_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="draw activations (and derivatives) to PNG/SVG/PDF",
        description=(
            "Draw one activation (the article's figure for it, with saturation and dead zones\n"
            "shaded) or several on one chart. A bare name uses the default parameters\n"
            "(leaky_relu: PyTorch's alpha=0.01); give name:key=value to choose. Without -o or\n"
            "--show the picture goes to NAME.png here. Existing files are never replaced\n"
            "without --force.\n"
            "Softmax is not elementwise: use `actlab softmax Z... --plot FILE` for its bars."
        ),
        epilog=(
            "examples:  actlab plot sigmoid --lang ru -o sigmoid.png\n"
            "           actlab plot relu,elu,gelu --derivative -o cmp.svg\n"
            "           actlab plot leaky_relu:alpha=0.01 leaky_relu:alpha=0.1 "
            "leaky_relu:alpha=0.3 -o family.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="activation specs (spaces or commas)")
    p.add_argument("--derivative", "-d", action="store_true", help="overlay f' (dashed)")
    p.add_argument("--xlim", nargs=2, type=real_arg, metavar=("A", "B"), help="x window")
    p.add_argument("--ylim", nargs=2, type=real_arg, metavar=("A", "B"), help="y window")
    p.add_argument("--lang", choices=("en", "ru"), default="en", help="caption language")
    p.add_argument("--no-shade", action="store_true", help="do not shade saturation/dead zones")
    p.add_argument("-o", "--output", metavar="FILE", help="output .png, .svg or .pdf")
    p.add_argument("--show", action="store_true", help="open a window (needs a display)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "gallery",
        help="one picture per activation, an overview grid and an index.html",
        description=(
            "Render every activation with its derivative, an overview grid and the softmax chart "
            "into DIR, plus index.html with formulas and properties (images by relative path)."
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default="actlab-gallery",
        help="folder to write (default: actlab-gallery; its parent must exist)",
    )
    p.add_argument("--lang", choices=("en", "ru"), default="en", help="caption language")
    p.add_argument("--force", action="store_true", help="replace existing gallery files")
    p.set_defaults(func=cmd_gallery)


def _default_name(specs: list[str]) -> str:
    names = dict.fromkeys(s.split(":", 1)[0].strip().lower() for s in specs)  # ordered, unique
    return "-".join(names)[:80] + ".png"


def _pyplot_axes():  # pragma: no cover - needs a display
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend().lower()
    if backend in _NON_INTERACTIVE:
        raise ActlabError(
            f"--show needs a display, but matplotlib's backend is '{backend}' (no window "
            f"possible here); save the picture with -o FILE.png instead"
        )
    from actlab import plot

    return plt, plt.figure(figsize=plot.FIGSIZE, layout="constrained").add_subplot()


def cmd_plot(args: argparse.Namespace) -> int:
    from actlab import plot  # matplotlib: only the commands that draw pay for it

    specs = split_specs(args.specs)
    if not specs:
        raise ActlabError("no activation given; e.g. actlab plot sigmoid")
    target = args.output or (None if args.show else _default_name(specs))
    path = output_path(target, plot.FORMATS, args.force) if target else None

    plt, ax = _pyplot_axes() if args.show else (None, None)
    common = {
        "derivative": args.derivative,
        "xlim": args.xlim,
        "ylim": args.ylim,
        "lang": args.lang,
        "ax": ax,
    }
    if len(specs) == 1:
        ax = plot.curve(specs[0], shade=not args.no_shade, **common)
    else:
        # the first activation's saturation and dead zones are shaded, as the README says
        ax = plot.compare(specs, shade=not args.no_shade, **common)
    if path is not None:
        plot.save(ax.figure, path, force=args.force)
        console.print(f"wrote {path}")
    if plt is not None:  # pragma: no cover - needs a display
        plt.show()
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from actlab import plot

    index = plot.gallery(Path(args.output), lang=args.lang, force=args.force)
    console.print(f"wrote {index} (open it in a browser)")
    return 0
