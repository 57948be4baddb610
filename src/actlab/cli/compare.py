"""`actlab compare` (train and compare activations) and `actlab report DIR` (re-render a run)."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from actlab.cli._common import console, err_console, print_json, split_specs

EXAMPLES = """examples:
  actlab compare                                   # digits, 7 activations x 5 seeds
  actlab compare --dataset moons --noise 0.3 --activations relu,tanh --seeds 10
  actlab compare --csv data.csv --target price --task regression
  actlab compare --out actlab-runs/mine --resume   # finish an interrupted run
  actlab compare --device cuda                     # on a GPU
  actlab compare --backend ray --ray-address HOST:6379   # groups as tasks on a Ray cluster
  actlab report actlab-runs/mine                   # re-render its report
"""


def _whole(low: int) -> Callable[[str], int]:
    """argparse type: a whole number >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}")
        return value

    return parse


_positive_int, _nonneg_int = _whole(1), _whole(0)


def _number(low: float, high: float = math.inf, *, open_low: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if open_low else value >= low) and value < high
        if not ok:
            bound = f"{'>' if open_low else '>='} {low:g}"
            if high < math.inf:
                bound += f" and < {high:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text}")
        return value

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="train one network with several activations x seeds and compare them honestly",
        description=(
            "Train the same network with each activation and several seeds (all models at once), "
            "store every epoch in OUT/results.sqlite, and report which activation is better, "
            "with confidence intervals and paired tests. Unset options take the defaults (or, "
            "with --resume, the stored run's settings)."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    src = data.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        metavar="NAME",
        help="built-in dataset: digits (default), iris, wine, breast_cancer, diabetes, moons, "
        "circles, spirals, xor",
    )
    src.add_argument("--csv", metavar="PATH", help="a CSV file with a header row (use --target)")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict")
    data.add_argument("--task", choices=("classification", "regression"), help="override inference")
    data.add_argument(
        "--drop-missing", action="store_true",
        help="leave out the CSV rows with a missing value (they are counted in the report)",
    )  # fmt: skip
    data.add_argument(
        "--noise", type=_number(0.0, open_low=False), metavar="X",
        help="noise level of the synthetic datasets (moons, circles, spirals, xor)",
    )  # fmt: skip
    data.add_argument(
        "--val-fraction", type=_number(0.0, 1.0, open_low=True), metavar="F",
        help="share of rows held out for validation, 0 < F < 1 (default 0.2)",
    )  # fmt: skip
    data.add_argument(
        "--split-seed", type=_nonneg_int, metavar="N", help="seed of the split (default 0)"
    )
    model = p.add_argument_group("models")
    model.add_argument(
        "--activations", nargs="+", metavar="SPEC",
        help="activations, space- or comma-separated (default: sigmoid tanh relu leaky_relu elu "
        "silu gelu); parameters as in leaky_relu:alpha=0.1",
    )  # fmt: skip
    model.add_argument("--seeds", type=_positive_int, metavar="N", help="seeds per activation (5)")
    model.add_argument("--depth", type=_positive_int, metavar="N", help="hidden layers (2)")
    model.add_argument("--width", type=_positive_int, metavar="N", help="units per layer (128)")
    model.add_argument(
        "--model", metavar="MODULE:FUNCTION",
        help="your own network: FUNCTION(activation_spec) -> torch.nn.Module",
    )  # fmt: skip
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs (30)")
    train.add_argument("--batch-size", type=_positive_int, metavar="N", help="batch size (64)")
    train.add_argument(
        "--lr", type=_number(0.0, open_low=True), metavar="X", help="learning rate (1e-3)"
    )
    train.add_argument("--optimizer", choices=("adam", "sgd"), help="optimizer (adam)")
    train.add_argument(
        "--weight-decay", type=_number(0.0, open_low=False), metavar="X", help="weight decay (0)"
    )
    train.add_argument(
        "--init", choices=("auto", "he", "glorot", "lecun", "torch"),
        help="weight init; auto = He for ReLU-like, Glorot for sigmoid/tanh, LeCun for SELU",
    )  # fmt: skip
    run = p.add_argument_group("run")
    run.add_argument(
        "--out", metavar="DIR", help="run folder (default: a new actlab-runs/<dataset>-<time>)"
    )
    run.add_argument(
        "--resume", action="store_true", help="finish the run in --out (only what is missing)"
    )
    run.add_argument(
        "--time-budget", type=_number(0.0, open_low=True), metavar="SECONDS",
        help="stop cleanly at the first epoch boundary after this many seconds",
    )  # fmt: skip
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    where = p.add_argument_group("where to train")
    where.add_argument(
        "--device", metavar="DEVICE", default="auto",
        help="auto (CUDA, then MPS, then the CPU; default), cpu, cuda, cuda:N or mps",
    )  # fmt: skip
    where.add_argument(
        "--backend", choices=("local", "ray"), default="local",
        help="local: this process (default); ray: each group of models as a Ray task "
        '(pip install "actlab[ray]")',
    )  # fmt: skip
    where.add_argument(
        "--ray-address", metavar="ADDRESS",
        help="the Ray cluster to use ('ray start --head' prints it); default: a Ray instance "
        "started on this machine, or a new one",
    )  # fmt: skip
    p.set_defaults(func=cmd_compare)

    r = sub.add_parser(
        "report",
        help="re-render a compare run's report from its stored results",
        description="Recompute the statistics and rewrite DIR/report.md and DIR/report.html "
        "from DIR/results.sqlite alone (no training).",
    )
    r.add_argument("directory", metavar="DIR", help="a folder written by 'actlab compare'")
    r.add_argument("--json", action="store_true", help="print the results as JSON")
    r.set_defaults(func=cmd_report)


# ------------------------------------------------------------------------------------------ output


def results_json(res: Any) -> dict[str, Any]:
    return {
        "directory": str(res.directory),
        "complete": res.complete,
        "metric": res.metric,
        "higher_is_better": res.stats.higher_is_better,
        "epoch": res.final_epoch,
        "winner": res.winner,
        "headline": res.headline,
        "notes": res.stats.notes,
        "method": res.stats.method,
        "summary": res.summary,
        "models": res.table,
        "config": res.config,
        "command": res.command,
        "reports": {k: str(v) for k, v in res.report_files.items()},
    }


def _show(res: Any) -> None:
    from actlab.compare import report

    report.terminal(res, console)
    for kind, path in res.report_files.items():
        console.print(f"{kind} report: {path}", soft_wrap=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` behaves like Ctrl-C: the epoch in flight is dropped and the store closed cleanly."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Bar:
    """A rich progress bar fed by the engine's progress dicts (epochs, best so far, ETA)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            transient=True,
        )
        self.task: Any = None

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, info: dict) -> None:
        epochs = max(int(info.get("epochs") or 1), 1)
        steps = max(int(info.get("steps") or 1), 1)
        epoch = int(info.get("epoch") or 0)
        done = max(epoch - 1, 0) + min(int(info.get("step") or 0), steps) / steps
        best = info.get("best")
        best_text = "–"
        if best:
            label, value = best
            best_text = f"{label} {value:.4g}".replace("[", "\\[")
        eta = info.get("eta_s")
        eta_text = (
            "–"
            if eta is None or not math.isfinite(eta)
            else time.strftime("%M:%S" if eta < 3600 else "%H:%M:%S", time.gmtime(max(eta, 0)))
        )
        fields = {"epoch": f"{epoch}/{epochs}", "best": best_text, "eta": eta_text}
        if self.task is None:
            self.task = self.progress.add_task("train", total=epochs, **fields)
        self.progress.update(self.task, completed=done, total=epochs, **fields)


def cmd_compare(args: argparse.Namespace) -> int:
    from actlab import compare
    from actlab.compare import backends

    backend = backends.make(args.backend, ray_address=args.ray_address)
    quiet = args.json or not console.is_terminal
    status = err_console if args.json else console
    where: dict[str, Path] = {}

    def on_start(directory: Path, new: bool) -> None:
        where["dir"] = directory
        verb = "Writing results to" if new else "Resuming the run in"
        status.print(f"{verb} {directory}", soft_wrap=True, markup=False)

    activations = split_specs(args.activations) if args.activations else None
    settings = {
        "csv": args.csv, "target": args.target, "task": args.task, "noise": args.noise,
        "drop_missing": True if args.drop_missing else None,
        "activations": activations, "seeds": args.seeds, "depth": args.depth,
        "width": args.width, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "optimizer": args.optimizer, "weight_decay": args.weight_decay, "init": args.init,
        "val_fraction": args.val_fraction, "split_seed": args.split_seed, "model": args.model,
        "out": args.out, "resume": args.resume, "time_budget": args.time_budget,
        "device": args.device, "backend": backend,
    }  # fmt: skip
    bar = contextlib.nullcontext(None) if quiet else _Bar()
    start = time.perf_counter()
    try:
        with _sigterm_as_interrupt(), bar as progress:
            res = compare.run(args.dataset, progress=progress, on_start=on_start, **settings)
    except KeyboardInterrupt:
        if "dir" not in where:
            raise
        err_console.print(
            f"actlab: interrupted; every finished epoch is saved in {where['dir']}. Finish the "
            f"run with: actlab compare --out {where['dir']} --resume",
            soft_wrap=True,
            markup=False,
        )
        return 130
    seconds = time.perf_counter() - start
    if args.json:
        print_json({**results_json(res), "seconds": seconds})
        return 0
    _show(res)
    if not res.complete:
        console.print(
            f"Stopped at epoch {res.final_epoch} of {res.config['train']['epochs']} "
            f"(--time-budget). Finish with: actlab compare --out {res.directory} --resume",
            soft_wrap=True,
            markup=False,
        )
    console.print(f"done in {seconds:.1f} s", markup=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from actlab import compare
    from actlab.compare import report

    res = compare.load(args.directory)
    res.report_files = report.write(res)
    if args.json:
        print_json(results_json(res))
    else:
        _show(res)
    return 0
