"""`actlab compare` (train and compare activations) and `actlab report DIR` (re-render a run)."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from actlab import compare
from actlab.cli._common import (
    console,
    err_console,
    output_path,
    print_json,
    split_specs,
    stdout_to_stderr,
)
from actlab.compare import config, export, trackers
from actlab.compare.progress import PlainProgress
from actlab.errors import read_number

EXAMPLES = """examples:
  actlab compare                                   # digits, 7 activations x 5 seeds
  actlab compare --dataset moons --noise 0.3 --activations relu,tanh --seeds 10
  actlab compare --csv data.csv --target price --task regression
  actlab compare --dataset spirals --activations sigmoid,tanh,relu,silu --depth 2,8 \
      --lr 1e-3,1e-2 --seeds 5                     # a grid: lr tuned per activation, depth studied
  actlab compare --objective train.py:fit --param scheduler=cosine,step
                                                   # your own training loop, called per model
  actlab compare --out actlab-runs/mine --resume   # finish an interrupted run
  actlab compare --device cuda                     # on a GPU
  actlab compare --backend ray --ray-address HOST:6379   # groups as tasks on a Ray cluster
  actlab report actlab-runs/mine                   # re-render its report
  actlab report actlab-runs/mine --csv rows.csv    # one tidy row per model x epoch
"""


def _seconds(text: str) -> float:
    try:
        value = float(read_number(text))  # the one number grammar (no '1_0', no '٥')
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser(
        "compare",
        help="train one network with several activations x factor values x seeds and compare "
        "them honestly",
        description=(
            "Train the same network with each activation, each value of the listed factors and "
            "several seeds (models sharing a shape train at once), store every epoch in "
            "OUT/results.sqlite, choose each activation's tuned factors on validation data, and "
            "report the chosen settings' test scores with confidence intervals and paired tests. "
            "Unset options take the defaults (or, with --resume, the stored run's settings)."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_arguments(p)  # every setting, generated from actlab.compare.config
    run = p.add_argument_group("run")
    run.add_argument(
        "--out", metavar="DIR", help="run folder (default: a new actlab-runs/<dataset>-<time>)"
    )
    run.add_argument(
        "--resume", action="store_true", help="finish the run in --out (only what is missing)"
    )
    run.add_argument(
        "--time-budget", type=_seconds, metavar="SECONDS",
        help="stop cleanly at the first epoch boundary after this many seconds",
    )  # fmt: skip
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    config.add_arguments(p, config.COMPUTE)  # --device, --backend, --ray-address
    p.set_defaults(func=cmd_compare)

    r = sub.add_parser(
        "report",
        help="re-render a compare run's report from its stored results; export its rows",
        description="Recompute the statistics and rewrite DIR/report.md and DIR/report.html "
        "from DIR/results.sqlite alone (no training). --csv / --json FILE export one tidy row per "
        "model and epoch (every factor, seed, split and metric) for pandas and friends.",
    )
    r.add_argument("directory", metavar="DIR", help="a folder written by 'actlab compare'")
    r.add_argument(
        "--json", nargs="?", const="-", metavar="FILE",
        help="without FILE: print the results as JSON; with FILE (.json): write the tidy rows",
    )  # fmt: skip
    r.add_argument("--csv", metavar="FILE", help="write the tidy rows as CSV (.csv)")
    r.add_argument(
        "--to", metavar="TRACKER[,TRACKER...]",
        help="export the run to mlflow, tensorboard and/or wandb (offline, in DIR)",
    )  # fmt: skip
    r.add_argument("--force", action="store_true", help="overwrite an existing --csv/--json FILE")
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
        "notes": [*res.notes, *(n for c in res.studies for n in c.summary.notes)],
        "method": res.stats.method,
        "selection": res.analysis.selection,
        "tuned": list(res.analysis.tuned),
        "studied": list(res.analysis.studied),
        "chosen": [{"values": c.values, "chosen": c.chosen} for c in res.studies],
        "effects": [e.__dict__ for e in res.analysis.effects],
        "baselines": [{"name": b["name"], "metric": res.metric,
                       "test_metric": b["metrics"].get(res.metric)}
                      for b in res.analysis.baselines],  # same split, same test part
        "warnings": list(res.analysis.warnings),
        "next_steps": [{"command": c, "reason": r} for c, r in res.analysis.next_steps],
        "summary": res.summary,
        "models": res.table,
        "config": res.config.to_dict(),
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
            TextColumn("[bold]{task.fields[epoch]}"),
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
        where = f"{info.get('unit', 'epoch')} {epoch}/{epochs}"  # (--objective: model k/n)
        if int(info.get("groups") or 1) > 1:  # a grid trains group by group (one per cell)
            where = f"group {int(info['group']) + 1}/{info['groups']} · {where}"  # (0-based)
        fields = {"epoch": where, "best": best_text, "eta": eta_text}
        if self.task is None:
            self.task = self.progress.add_task("train", total=epochs, **fields)
        self.progress.update(self.task, completed=done, total=epochs, **fields)


def cmd_compare(args: argparse.Namespace) -> int:
    from actlab.compare import backends  # torch: only the commands that train import it

    compute = config.compute_from_namespace(args)
    backend = backends.make(compute.backend, ray_address=compute.ray_address)
    quiet = args.json or not console.is_terminal
    status = err_console if args.json else console
    where: dict[str, Path] = {}

    def on_start(directory: Path, new: bool) -> None:
        where["dir"] = directory
        verb = "Writing results to" if new else "Resuming the run in"
        status.print(f"{verb} {directory}", soft_wrap=True, markup=False)

    settings = config.from_namespace(args)  # the declared settings that were given
    if args.activations:
        settings["activations"] = split_specs(args.activations)

    # not on a terminal (piped, logged) or with --json: a plain line to stderr every few seconds
    bar = contextlib.nullcontext(PlainProgress()) if quiet else _Bar()
    start = time.perf_counter()
    # --json: stdout carries the JSON alone; anything printed meanwhile (user code) goes to stderr
    aside = stdout_to_stderr() if args.json else contextlib.nullcontext()
    try:
        with _sigterm_as_interrupt(), aside, bar as progress:
            res = compare.run(
                out=args.out, resume=args.resume, time_budget=args.time_budget,
                progress=progress, on_start=on_start, device=compute.device, backend=backend,
                max_models=compute.max_models, max_memory=compute.max_memory,
                objective_timeout=compute.objective_timeout, track=compute.track, **settings,
            )  # fmt: skip
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
        print_json({**results_json(res), "seconds": seconds, "phases": res.phases})
        return 0
    _show(res)
    if not res.complete:
        console.print(
            f"Stopped at epoch {res.final_epoch} of {res.config.model.epochs} "
            f"(--time-budget). Finish with: actlab compare --out {res.directory} --resume",
            soft_wrap=True,
            markup=False,
        )
    console.print(f"done in {seconds:.1f} s", markup=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from actlab.compare import report  # matplotlib, scipy: only when a report is drawn

    # check the export paths before any work: a typo must not cost a re-render
    csv_path = output_path(args.csv, [".csv"], args.force) if args.csv else None
    json_file = args.json if args.json not in (None, "-") else None
    json_path = output_path(json_file, [".json"], args.force) if json_file else None
    if args.to:
        trackers.check(args.to)  # before any work
    res = compare.load(args.directory)
    res.report_files = report.write(res)
    if args.to:
        took = trackers.export(res, args.to)
        err_console.print(f"exported {len(res.models)} models to {', '.join(took) or 'nothing'}",
                          markup=False)  # fmt: skip
    if csv_path is not None:
        export.write_csv(res, csv_path)
        err_console.print(f"wrote {len(res.history)} rows to {csv_path}", markup=False)
    if json_path is not None:
        export.write_json(res, json_path)
        err_console.print(f"wrote {len(res.history)} rows to {json_path}", markup=False)
    if args.json == "-":
        print_json(results_json(res))
    elif csv_path is None and json_path is None:
        _show(res)
    return 0
