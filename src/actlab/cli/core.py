"""`actlab list`, `info`, `eval` and `softmax`: the catalog and kernels from the terminal."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.table import Table

from actlab import catalog, kernels
from actlab.cli._common import console, err_console, output_path, print_json
from actlab.errors import ActlabError, read_number, real_arg

DTYPES = ("float16", "float32", "float64")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="table of every activation, its range and key properties")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="formula, derivative, parameters, properties, pros/cons")
    p.add_argument("name", help="activation name or alias, e.g. relu, swish")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "eval",
        help="evaluate an activation (or its derivative) at given points",
        description="Evaluate SPEC at the values X (negative numbers, inf and nan are accepted).",
    )
    p.add_argument("spec", help="activation spec, e.g. relu or leaky_relu:alpha=0.1")
    p.add_argument("x", nargs="+", metavar="X", help="input values")
    p.add_argument("--derivative", action="store_true", help="evaluate f'(x) instead of f(x)")
    p.add_argument("--dtype", choices=DTYPES, default="float64", help="computation dtype")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "softmax",
        help="softmax probabilities of a score vector (the article's example: 1 2 3 4 1 2 3)",
    )
    p.add_argument("z", nargs="*", metavar="Z", help="scores (logits)")
    p.add_argument(
        "--from", dest="from_file", metavar="FILE",
        help="read the scores from FILE ('-': standard input), separated by spaces, commas or "
        "new lines; for vectors too long for a command line",
    )  # fmt: skip
    p.add_argument(
        "--temperature",
        "-t",
        type=real_arg,
        nargs="+",
        default=[1.0],
        metavar="T",
        help="softmax(z / T); several values give one row (and one chart) each",
    )
    p.add_argument(
        "--plot", metavar="FILE", help="also draw the bar chart to FILE (.png/.svg/.pdf)"
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_softmax)


# --- list / info -------------------------------------------------------------------------------


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def spec_to_dict(spec: catalog.ActivationSpec) -> dict[str, Any]:
    """The whole spec as plain data (for `actlab info --json`)."""
    d = spec.data()
    d["params"] = [
        {
            "name": p.name,
            "default": p.default,
            "type": p.kind.__name__,
            "allowed": p.allowed(),
            "synonyms": list(p.synonyms),
            "description": p.description,
            "torch_only": p.torch_only,
        }
        for p in spec.params
    ]
    d["output_range_text"] = spec.range_text
    return d


def cmd_list(args: argparse.Namespace) -> int:
    specs = catalog.specs()
    if args.json:
        print_json(
            [
                {
                    "name": s.name,
                    "aliases": list(s.aliases),
                    "display_name": s.display_name,
                    "output_range": list(s.output_range),
                    "params": {p.name: p.default for p in s.params},
                    "properties": dataclasses.asdict(s.properties),
                    "family": s.family,
                    "year": s.year,
                }
                for s in specs
            ]
        )
        return 0
    table = Table(
        title=f"actlab catalog: {len(specs)} activations",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("range", no_wrap=True)
    for col in ("mono", "C^k", "0-mean", "sat"):
        table.add_column(col, no_wrap=True)
    table.add_column("parameters", overflow="fold", min_width=16)
    wide = console.width >= 110  # aliases only where they fit; `actlab info` always shows them
    if wide:
        table.add_column("aliases", overflow="fold")
    for s in specs:
        pr = s.properties
        table.add_row(
            s.name,
            s.range_text,
            _yes(pr.monotonic),
            pr.smoothness,
            _yes(pr.zero_centred),
            pr.saturating,
            " ".join(f"{p.name}={catalog.format_value(p.default)}" for p in s.params),
            *([" ".join(s.aliases)] if wide else []),
        )
    console.print(table)
    console.print("Details: actlab info NAME    Evaluate: actlab eval SPEC X...")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    spec = catalog.get(args.name)
    if args.json:
        print_json(spec_to_dict(spec))
        return 0
    pr = spec.properties
    out = console.print
    title = spec.display_name + (f"  (aliases: {', '.join(spec.aliases)})" if spec.aliases else "")
    out(f"[bold]{title}[/bold]   name: {spec.name}")
    out(f"  f(x):   {spec.formula}")
    out(
        f"  f'(x):  {spec.derivative_formula}"
        if spec.elementwise
        else f"  Jacobian: {spec.derivative_formula}"
    )
    out(f"  LaTeX:  {spec.formula_latex}")
    out(f"  range:  {spec.range_text}")
    out(
        f"  properties: monotonic={_yes(pr.monotonic)}, smoothness={pr.smoothness}, "
        f"zero-centred={_yes(pr.zero_centred)}, bounded below={_yes(pr.bounded_below)}, "
        f"bounded above={_yes(pr.bounded_above)}, saturates={pr.saturating}, "
        f"self-normalising={_yes(pr.self_normalising)}"
    )
    if spec.kink_convention:
        out(f"  convention: {spec.kink_convention}")
    if spec.params:
        out("  parameters:")
        for p in spec.params:
            syn = f" (also: {', '.join(p.synonyms)})" if p.synonyms else ""
            out(
                f"    {p.name}{syn} = {catalog.format_value(p.default)}: {p.description}; "
                f"{p.allowed()}" + ("  [PyTorch only]" if p.torch_only else "")
            )
    out(f"  initialisation: {spec.recommended_init}")
    for head, items in (
        ("pros", spec.pros),
        ("cons", spec.cons),
        ("typical use", spec.use),
        ("where libraries disagree", spec.disagreements),
    ):
        if items:
            out(f"  {head}:")
            for item in items:
                out(f"    - {item}")
    year = f" ({spec.year})" if spec.year else ""
    out(f"  reference{year}: {spec.reference}")
    return 0


# --- eval / softmax -----------------------------------------------------------------------------


def _numbers(values: list[str], what: str) -> np.ndarray:
    out = []
    for v in values:
        try:
            out.append(read_number(v, special=True))  # the one grammar: '1_0' is not 10
        except ValueError:
            raise ActlabError(f"{what} must be numbers (inf and nan allowed), got '{v}'") from None
    return np.array(out, dtype=np.float64)


def _fmt(v: float, dtype: np.dtype) -> str:
    if not math.isfinite(v):
        return str(v)
    return np.format_float_positional(dtype.type(v), unique=True, trim="-")


def note(text: str) -> None:
    """An actlab note on stderr (in place of a raw NumPy/matplotlib warning)."""
    err_console.print(f"actlab: note: {text}", soft_wrap=True, markup=False, highlight=False)


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` in ``dtype``; values beyond its range become +-inf with a note, no RuntimeWarning."""
    with np.errstate(over="ignore"):
        out = x.astype(dtype)
    over = np.isinf(out) & np.isfinite(x)
    if over.any():
        shown = ", ".join(f"{v:g}" for v in x[over][:3]) + (" ..." if over.sum() > 3 else "")
        note(
            f"{shown} overflowed to inf in {dtype.name} (largest finite value "
            f"{float(np.finfo(dtype).max):g}); that is what {dtype.name} arithmetic gives"
        )
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    act = catalog.parse(args.spec)
    dtype = np.dtype(args.dtype)
    x = _cast(_numbers(args.x, "X"), dtype)
    if args.derivative and not act.spec.elementwise:
        raise ActlabError(
            f"{act.name} is not elementwise, so it has a Jacobian, not a derivative; use "
            f"kernels.{act.name}_vjp in Python, or drop --derivative"
        )
    y = act.derivative(x) if args.derivative else act.forward(x)
    what = f"{act}'(x)" if args.derivative else f"{act}(x)"
    f = act.forward(x) if args.derivative else None  # f' is read beside f (issue 20)
    if args.json:
        print_json(
            {
                "spec": str(act),
                "derivative": bool(args.derivative),
                "dtype": dtype.name,
                "x": [float(v) for v in x],
                "y": [float(v) for v in y],
            }
        )
        return 0
    table = Table(title=f"{act.label}, {dtype.name}", header_style="bold")
    table.add_column("x", justify="right")
    if f is not None:
        table.add_column(f"{act}(x)", justify="right")
    table.add_column(what, justify="right")
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        beside = [] if f is None else [_fmt(float(f[i]), dtype)]
        table.add_row(_fmt(float(xi), dtype), *beside, _fmt(float(yi), dtype))
    console.print(table)
    return 0


def sig7(v: float) -> str:
    """7 significant digits, trailing zeros dropped (as NumPy printed the article's numbers)."""
    if not math.isfinite(v):
        return str(v)
    return np.format_float_positional(v, precision=7, unique=False, fractional=False, trim="-")


MAX_PRINTED = 50  # a longer vector prints its largest probabilities (all of them with --json)
MAX_BARS = 100  # a bar chart of more values is unreadable


def read_scores(source: str) -> np.ndarray:
    """Scores from a file or standard input ('-'): numbers separated by spaces, commas or lines."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ActlabError(f"--from: cannot read '{source}': {reason}") from None
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise ActlabError(f"--from: '{source}' holds no numbers; give scores separated by spaces")
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise ActlabError(
            f"--from: '{source}' holds '{bad[:40]}', which is not a number (inf and nan allowed)"
        ) from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _scaled(z: np.ndarray, t: float) -> np.ndarray:
    """z / t; scores that overflow (huge logits, tiny temperature) become +-inf with a note:
    softmax takes them as the limit (all the mass on the largest), not a RuntimeWarning."""
    with np.errstate(over="ignore"):
        out = z / t
    if (np.isinf(out) & np.isfinite(z)).any():
        note(
            f"z / {t:g} overflows float64 for some scores; they are taken as +-inf, so softmax "
            "gives their limit (the largest score takes all the probability)"
        )
    return out


def cmd_softmax(args: argparse.Namespace) -> int:
    if args.from_file is not None and args.z:
        raise ActlabError("give the scores either on the command line or with --from, not both")
    if args.from_file is None and not args.z:
        raise ActlabError("give scores, e.g. 'actlab softmax 1 2 3', or --from FILE (- for stdin)")
    z = read_scores(args.from_file) if args.from_file is not None else _numbers(args.z, "Z")
    for t in args.temperature:
        if not (math.isfinite(t) and t > 0):
            raise ActlabError(f"--temperature must be a positive finite number, got {t:g}")
    plot_path = output_path(args.plot, (".png", ".svg", ".pdf"), args.force) if args.plot else None
    if plot_path is not None and z.size > MAX_BARS:
        raise ActlabError(
            f"--plot draws one bar per score, unreadable for {z.size} scores; plot at most "
            f"{MAX_BARS} (or drop --plot)"
        )
    if np.isnan(z).any():
        note(
            "the scores hold NaN, so every probability is NaN (softmax divides by a sum that "
            "includes it); remove or replace the NaN"
        )
    rows = [(t, kernels.softmax(_scaled(z, t))) for t in args.temperature]
    if args.json:
        print_json(
            {
                "z": z.tolist(),
                "results": [
                    {"temperature": t, "probabilities": p.tolist(), "sum": float(p.sum())}
                    for t, p in rows
                ],
            }
        )
    else:
        for t, p in rows:
            head = "softmax(z)" if len(rows) == 1 and t == 1.0 else f"softmax(z / {t:g})"
            if p.size <= MAX_PRINTED:
                values = " ".join(sig7(float(v)) for v in p)
                console.print(f"{head} = [{values}]", soft_wrap=True, markup=False)
            else:
                top = np.argsort(-np.nan_to_num(p, nan=-1.0), kind="stable")[:10]
                values = ", ".join(f"z[{i}]: {sig7(float(p[i]))}" for i in top)
                console.print(
                    f"{head}: {p.size} values; the 10 largest: {values} (--json prints all)",
                    soft_wrap=True,
                    markup=False,
                )
            console.print(f"sum = {sig7(float(p.sum()))}", markup=False)
    if plot_path is not None:
        from actlab import plot

        temps = args.temperature if len(args.temperature) > 1 else args.temperature[0]
        fig = plot.softmax_bars(z, temperature=temps)
        plot.save(fig, plot_path, force=args.force)
        if not args.json:
            console.print(f"chart written to {plot_path}")
    return 0
