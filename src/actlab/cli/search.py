"""`actlab search`: discover an activation for the data and confirm it with the fair study."""

from __future__ import annotations

import argparse
import time

from actlab.cli._common import console, err_console, print_json, split_specs
from actlab.compare import config
from actlab.errors import ActlabError, whole_arg

EXAMPLES = """examples:
  actlab search --dataset digits --budget 10m               # screen, race, confirm in 10 minutes
  actlab search --dataset moons --space small --budget 2m --out runs/s
  actlab search --space my_primitives.txt --budget 30m      # a file listing primitives
  actlab search --out runs/s --resume                       # finish a stopped search
  actlab compare --activations runs/s/found/found1.py:found1 relu silu   # use a find
"""


def register(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser(
        "search",
        help="search activations built from primitives for this data, then confirm the finalists "
        "against relu/silu/gelu in the fair study",
        description=(
            "Screen every core unit b(u1(x), u2(x)) of the search space at initialisation, race "
            "the best on validation data by successive halving (all candidates of a rung in one "
            "stacked computation), then run the fair study (actlab compare) on the finalists and "
            "the baselines (--activations; default relu silu gelu) with the learning rate tuned "
            "per activation (--lr), --seeds seeds and the held-out test scored once. A finalist "
            "is 'better' only by a paired Holm-corrected test. Finalists are written as "
            "OUT/found/<name>.py, usable wherever a user activation is."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_arguments(p)  # the data, network and study options, declared once in compare
    helps = {  # where search's defaults differ from compare's (runner.DEFAULTS)
        "activations": "the baselines the finalists are confirmed against, space- or "
        "comma-separated (default: relu silu gelu)",
        "width": "units per layer (64)",
        "epochs": "epochs of the last racing rung and of the confirmation (20)",
        "lr": "learning rates tuned per activation in the confirmation (1e-3,3e-3,1e-2); "
        "racing uses the middle one",
    }
    for action in p._actions:
        if action.dest in helps:
            action.help = helps[action.dest]
    s = p.add_argument_group("search")
    s.add_argument("--budget", default=None, metavar="TIME",
                   help="time for the whole search: seconds, or 90s, 10m, 1h (default 10m)")
    s.add_argument("--space", default=None, metavar="PRESET|FILE",
                   help="primitives: small, default or large, or a file listing primitive names")
    s.add_argument("--strategy", choices=("race", "learn"), default=None,
                   help="race: screen + successive halving (default); learn: train a rational "
                   "activation per layer and name the nearest expressions")
    s.add_argument("--seed", type=whole_arg,
                   default=None, metavar="N", help="seed of the whole search (default 0)")
    s.add_argument("--finalists", type=whole_arg, default=None, metavar="N",
                   help="finalists confirmed against the baselines (default 3)")
    s.add_argument("--entrants", type=whole_arg, default=None, metavar="N",
                   help="candidates raced (default: as many as the budget allows)")
    run = p.add_argument_group("run")
    run.add_argument("--out", metavar="DIR", help="search folder (default: a new one here)")
    run.add_argument("--resume", action="store_true", help="finish the search in --out")
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    config.add_arguments(p, config.COMPUTE)  # --device, --backend, --ray-address
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from actlab.compare import backends  # torch: only the commands that train import it
    from actlab.search import runner

    compute = config.compute_from_namespace(args)
    settings = config.from_namespace(args)
    if args.activations:
        settings["activations"] = split_specs(args.activations)
    if args.seed is not None and args.seed < 0:
        raise ActlabError(f"--seed must be a whole number >= 0, got {args.seed}")
    backend = backends.make(compute.backend, ray_address=compute.ray_address)
    status = err_console if args.json else console
    given = {k: v for k, v in (("budget", args.budget), ("space", args.space),
             ("strategy", args.strategy), ("seed", args.seed), ("finalists", args.finalists))
             if v is not None}  # fmt: skip
    given.setdefault("budget", "10m")
    start = time.perf_counter()
    res = runner.run(
        out=args.out, resume=args.resume, entrants=args.entrants, device=compute.device,
        backend=backend, progress=lambda msg: status.print(msg, markup=False), **given,
        **settings,
    )  # fmt: skip
    if args.json:
        out = res.to_json()
        out["raced"] = {k: v for k, v in out["raced"].items() if k != "rows"}
        print_json({**out, "seconds": time.perf_counter() - start})
        return 0
    console.print(res.headline, markup=False, soft_wrap=True)
    for f in res.finalists:
        ps = ", ".join(f"{b} {p:.3g}" if p is not None else f"{b} –"
                       for b, p in f["p_holm"].items())  # fmt: skip
        mean = "–" if f["test_mean"] is None else f"{f['test_mean']:.4f}"
        console.print(f"  {f['name']}: {f['formula']}  test {mean}  p_holm: {ps}  ({f['file']})",
                      markup=False, soft_wrap=True)  # fmt: skip
    for kind, path in res.report_files.items():
        console.print(f"{kind} report: {path}", soft_wrap=True, markup=False)
    console.print(f"done in {time.perf_counter() - start:.1f} s", markup=False)
    return 0
