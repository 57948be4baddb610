"""``actlab recommend``: the advice engine (actlab.advice) as a command."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from actlab import advice
from actlab.cli._common import console, print_json
from actlab.errors import whole_arg

_VERDICT_STYLE = {"right": "green", "partly right": "yellow", "dated": "yellow", "wrong": "red"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="which activation for this layer, why, and what to pair it with",
        description=(
            "Recommend activations for one layer: ranked candidates with reasons, caveats, the "
            "loss and initialisation that go with them, the seed article's rules with a verdict, "
            "and the exact 'actlab compare' command that tests the top candidates on your data."
        ),
    )
    # Values are validated by actlab.advice (clear message with the valid values and a
    # 'did you mean'), not by argparse choices.
    p.add_argument("--task", required=True, metavar="TASK",
                   help="what the network predicts: " + ", ".join(advice.TASKS))
    p.add_argument("--layer", metavar="LAYER",
                   help="hidden or output (default: output, or hidden for --task hidden)")
    p.add_argument("--depth", type=whole_arg, metavar="N", help="number of hidden layers")
    p.add_argument("--architecture", metavar="ARCH", help=", ".join(advice.ARCHITECTURES))
    p.add_argument("--normalization", metavar="NORM", help=", ".join(advice.NORMALIZATIONS))
    p.add_argument("--rules", metavar="FILE", help="use another rules table (JSON, same form)")
    p.add_argument("--json", action="store_true",
                   help=f"print JSON (schema_version {advice.SCHEMA_VERSION})")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    rec = advice.recommend(
        args.task, layer=args.layer, depth=args.depth, architecture=args.architecture,
        normalization=args.normalization, rules=args.rules,
    )
    if args.json:
        print_json(rec.to_dict())
    else:
        render(rec)
    return 0


def _cite(sources: tuple[advice.Source, ...]) -> str:
    return "; ".join(s.citation + (f" <{s.url}>" if s.url else "") for s in sources)


def _grid(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", justify="right", no_wrap=True)
    grid.add_column(overflow="fold")  # a URL folds onto the next line, it is never cut with "…"
    for key, value in rows:
        style = "yellow" if key == "caveat" else ("dim" if key == "sources" else "")
        grid.add_row(f"  {key}", f"[{style}]{escape(value)}[/]" if style else escape(value))
    return grid


def render(rec: advice.Recommendation) -> None:
    """Readable terminal answer; ends with the compare command on its own unwrapped line."""
    q = rec.query
    asked = [f"task={q.task}", f"layer={q.layer}"] + [
        f"{k}={getattr(q, k)}" for k in ("depth", "architecture", "normalization")
        if getattr(q, k) is not None
    ]
    console.print(f"[bold]Recommendation[/] for {escape(', '.join(asked))}\n")

    table = Table(show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("activation", style="bold cyan")
    table.add_column("score", justify="right")
    table.add_column("loss" if q.layer == "output" else "init")
    table.add_column("spec")  # the reasons follow once, in full, below the table (issue 20)
    for c in rec.candidates:
        pair = (c.pairings.loss.name if c.pairings.loss else "-") if q.layer == "output" \
            else c.pairings.init
        table.add_row(str(c.rank), escape(c.label), str(c.score), escape(pair),
                      escape(c.activation))  # fmt: skip
    console.print(table)

    for c in rec.candidates:
        head = f"{c.rank}. {escape(c.label)}"
        console.print(f"\n[bold]{head}[/]  [dim]spec: {escape(c.activation)}[/]")
        rows: list[tuple[str, str]] = [("why", c.reason)]
        if c.usage:
            rows.append(("how", c.usage))
        if c.pairings.loss:
            rows.append(("loss", f"{c.pairings.loss.name}: {c.pairings.loss.detail}"))
        rows.append(("init", f"{c.pairings.init}: {c.pairings.init_detail}"))
        rows += [("with", other) for other in c.pairings.other]
        rows += [("caveat", cav) for cav in c.caveats]
        rows.append(("sources", _cite(c.sources)))
        console.print(_grid(rows))

    if rec.avoid:
        console.print("\n[bold red]Avoid here[/]")
        for a in rec.avoid:
            console.print(f"  [bold]{escape(a.label)}[/]: {escape(a.reason)}")

    if rec.notes:
        console.print("\n[bold]Notes[/]")
        for n in rec.notes:
            console.print(f"  - {escape(n.text)}")

    if rec.article_notes:
        console.print("\n[bold]What the article says[/]")
        for a in rec.article_notes:
            style = _VERDICT_STYLE.get(a.verdict, "white")
            console.print(f"  «{escape(a.quote_ru)}» [dim]({escape(a.section)})[/]")
            console.print(f"  [dim]EN: {escape(a.translation_en)}[/]")
            console.print(f"  [{style}]\\[{escape(a.verdict)}][/] {escape(a.comment)}\n")

    console.print(f"[bold]Test it on your data[/]: {escape(rec.compare_note)}")
    # soft_wrap keeps the command on one line, whatever the terminal width, so it can be copied.
    console.print(rec.compare_command, markup=False, highlight=False, soft_wrap=True)
