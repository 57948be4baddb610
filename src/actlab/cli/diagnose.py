"""`actlab diagnose`: vanishing/exploding gradients, dead and saturated units, demos or yours."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from actlab import data
from actlab.cli._common import console, output_path, print_json, split_specs
from actlab.errors import ActlabError, real_arg, whole_arg, writing
from actlab.settings import DEMO, flag

DEMOS = ("vanishing", "dying-relu")
# options that only make sense in one mode, for a clear message instead of silently ignoring them
DEMO_ONLY = ("activations", "depth", "width", "epochs", "bias")
MODEL_ONLY = ("dataset", "csv", "target", "task", "drop_missing", "drop_columns", "batches",
              "activation")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="find vanishing/exploding gradients, dead and saturated units (demos or your model)",
        description=(
            "Watch gradients and activations layer by layer. --demo vanishing: deep MLPs on "
            "digits, gradient norm per layer at initialisation and after training "
            "(Glorot & Bengio 2010). "
            "--demo dying-relu: a ReLU network pushed into dying beside LeakyReLU/ELU. "
            "--model module:function: your own network (the function returns an nn.Module) on a "
            "built-in dataset or a CSV file."
        ),
    )
    what = p.add_argument_group("what to diagnose (one of)")
    what.add_argument("--demo", choices=DEMOS, help="run a built-in demonstration")
    what.add_argument(
        "--model",
        metavar="MODULE:FUNCTION",
        help="your model: module:function or path/to/file.py:function returning an nn.Module",
    )
    demo = p.add_argument_group("demo options")
    demo.add_argument(
        "--activations",
        nargs="+",
        metavar="SPEC",
        help="activations to compare (spaces or commas); "
        "default sigmoid,tanh,relu (vanishing) / relu,leaky_relu,elu (dying-relu)",
    )
    for name in ("depth", "width", "epochs"):  # declared once: actlab.settings, demo bounds
        _option(demo, name)
    demo.add_argument(
        "--bias", type=real_arg, help="dying-relu: hidden bias initialisation (default 0)"
    )
    model = p.add_argument_group("model options")
    model.add_argument("--dataset", help="built-in dataset (default digits); see 'actlab compare'")
    model.add_argument("--csv", metavar="PATH", help="CSV file instead of a built-in dataset")
    model.add_argument("--target", metavar="COLUMN", help="target column of the CSV file")
    model.add_argument(
        "--task", choices=("classification", "regression"), help="override the CSV task"
    )
    model.add_argument(
        "--drop-missing", action="store_true", default=None,
        help="leave out the CSV rows with a missing value (and say how many)",
    )  # fmt: skip
    model.add_argument(
        "--drop-columns", metavar="COLUMN[,COLUMN...]",
        help="leave these CSV columns out (an identifier, a constant, a leak of the target)",
    )  # fmt: skip
    model.add_argument("--batches", type=whole_arg, help="training steps to watch (default 50)")
    model.add_argument(
        "--activation",
        metavar="SPEC",
        help="passed to FUNCTION(activation) when it takes one (default relu)",
    )
    common = p.add_argument_group("common options")
    _option(common, "lr")
    _option(common, "batch_size", default=64)
    common.add_argument(
        "--seed", type=whole_arg, default=0, help="seed for init, data order and split"
    )
    common.add_argument("--plot", metavar="DIR", help="write the figures (PNG) into DIR")
    common.add_argument("--force", action="store_true", help="overwrite figures that exist")
    common.add_argument("--json", action="store_true", help="print the report as JSON")
    common.add_argument(
        "--device", metavar="DEVICE", default="auto",
        help="auto (CUDA, then MPS, then the CPU; default), cpu, cuda, cuda:N or mps",
    )  # fmt: skip
    p.set_defaults(func=handler)


def _option(group: argparse._ArgumentGroup, name: str, default: Any = None) -> None:
    """``--name`` from the demos' declaration of the setting (``actlab.settings.DEMO``); its
    bounds are checked once, by the demo (a one-line error, exit 2)."""
    s = DEMO[name]
    read = whole_arg if s.kind == "int" else real_arg
    group.add_argument(flag(name, s), type=read, default=default, help=s.help)


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n, None) is not None]


def _check(args: argparse.Namespace) -> None:
    if (args.demo is None) == (args.model is None):
        raise ActlabError(
            "give exactly one of --demo vanishing|dying-relu or --model module:function "
            "(e.g. 'actlab diagnose --demo vanishing')"
        )
    if args.demo is not None and (bad := _given(args, MODEL_ONLY)):
        raise ActlabError(f"{', '.join(bad)} only apply with --model, not with --demo")
    if args.model is not None and (bad := _given(args, DEMO_ONLY)):
        raise ActlabError(f"{', '.join(bad)} only apply with --demo, not with --model")
    if args.demo == "vanishing" and args.bias is not None:
        raise ActlabError("--bias only applies to --demo dying-relu")
    if args.model is not None:
        if args.csv is not None and args.dataset is not None:
            raise ActlabError("give --dataset NAME or --csv PATH --target COLUMN, not both")
        if (args.csv is None) != (args.target is None):
            raise ActlabError("--csv and --target go together: --csv data.csv --target label")
        if args.task is not None and args.csv is None:
            raise ActlabError(
                "--task only applies to --csv data (built-in datasets know their task)"
            )
        if args.drop_missing and args.csv is None:
            raise ActlabError(
                "--drop-missing applies to --csv data (built-in datasets have no gaps)"
            )
        if args.drop_columns and args.csv is None:
            raise ActlabError(
                "--drop-columns applies to --csv data (built-in datasets have fixed columns)"
            )


def _plot_dir(directory: str | None, names: tuple[str, ...], force: bool) -> list[Path]:
    """Check every figure path before any work is done (fail fast, never overwrite silently)."""
    if directory is None:
        return []
    d = Path(directory).expanduser()
    if d.exists() and not d.is_dir():
        raise ActlabError(f"--plot {directory!r} is a file; give a folder for the figures")
    with writing(d):
        d.mkdir(parents=True, exist_ok=True)
    return [output_path(d / f"{name}.png", (".png",), force) for name in names]


def handler(args: argparse.Namespace) -> int:
    from actlab import diagnose

    _check(args)
    options: dict[str, Any] = {
        "seed": args.seed, "batch_size": args.batch_size, "device": args.device,
    }  # fmt: skip
    for name in ("lr", "depth", "width", "epochs", "bias"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.activations is not None:
        options["activations"] = ",".join(split_specs(args.activations))

    if args.demo is not None:
        demo, figure = {
            "vanishing": (diagnose.demo_vanishing, "gradient_flow"),
            "dying-relu": (diagnose.demo_dying, "dead_fraction"),
        }[args.demo]
        paths = _plot_dir(args.plot, (figure,), args.force)
        result: Any = demo(**options)
        body = result.to_dict()
    else:
        paths = _plot_dir(args.plot, ("gradient_flow", "activations"), args.force)
        if args.csv is not None:
            drop = [c.strip() for c in (args.drop_columns or "").split(",") if c.strip()]
            dataset = data.load_csv(
                args.csv, args.target, task=args.task, drop_missing=bool(args.drop_missing),
                drop_columns=drop,
            )
        else:
            dataset = data.load(args.dataset or "digits")
        split = data.split(dataset, seed=args.seed)
        model = diagnose.load_model(args.model, args.activation)
        result = diagnose.diagnose_model(
            model, split, batches=50 if args.batches is None else args.batches, **options
        )
        body = result.to_dict(histograms=False)
        notes = data.notes(dataset.task_note, dataset.dropped_rows, dataset.column_note)
        if notes:
            body["data_notes"] = notes

    if args.json:
        print_json(body)
    else:
        title = None if args.demo else f"{args.model} on {split.name}: {result.forwards} batches"
        console.print(diagnose.render(result, title))
        for note in body.get("data_notes", []) if isinstance(body, dict) else []:
            console.print(note, style="yellow", markup=False)
    figures = diagnose.figures(result) if paths else {}
    for path in paths:
        figures[path.stem].savefig(path, dpi=120)
        if not args.json:
            console.print(f"wrote {path}")
    return 0
