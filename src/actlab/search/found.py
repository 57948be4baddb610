"""A finalist as a file: ``OUT/found/<name>.py``, a torch function usable as a user activation.

The function's keyword arguments are the betas it learned while racing (a user activation's
parameters), and its docstring's first line is the formula (what ``actlab info``/``eval`` show), so
``compare --activations OUT/found/<name>.py:<name>``, ``actlab eval``, ``plot`` and
``actlab.register`` take it like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actlab.errors import ActlabError
from actlab.search.expr import BINARY, UNARY, Node, latex, params, text
from actlab.search.primitives import code

__all__ = ["source", "write"]


def source(name: str, t: Node, betas: Sequence[float], note: str = "") -> str:
    """Python source of the finalist ``name`` (betas in print order)."""
    names = [n for n, _ in params(t)]
    values = dict(zip(names, betas, strict=False))
    formula = text(t)
    owners = _owners(t)
    where = "; ".join(f"{n} = {float(values.get(n, b)):.6g} (the beta of {o})"
                      for (n, b), o in zip(params(t), owners, strict=True))  # fmt: skip
    if where:
        formula += f"  with {where}"
    args = "".join(f", {n}: float = {float(values.get(n, b))!r}" for n, b in params(t))
    return (
        f'r"""An activation found by actlab search.{(" " + note) if note else ""}\n\n'
        f"f(x) = {formula}\nLaTeX: {latex(t)}\n"
        f'"""\n\nimport math  # noqa: F401\n\nimport torch\n'
        "import torch.nn.functional as F  # noqa: F401\n"
        f"\n\ndef {name}(x: torch.Tensor{args}) -> torch.Tensor:\n"
        f'    """f(x) = {formula}"""\n'
        f"    return {code(t)}\n"
    )


def _owners(t: Node) -> list[str]:
    """The primitive owning each beta, in :func:`params` order (children first)."""
    out: list[str] = []

    def walk(n: Node) -> None:
        for c in n.args:
            walk(c)
        prim = UNARY.get(n.op) or BINARY.get(n.op)
        if prim is not None and prim.beta is not None:
            out.append(n.op)

    walk(t)
    return out


def write(directory: Path, name: str, t: Node, betas: Sequence[float], note: str = "") -> Path:
    """Write ``directory/name.py``, a new file only. The same file already there (a search
    stopped right after writing it) is kept; any other file there is never replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    text_ = source(name, t, betas, note)
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text_)
    except FileExistsError:
        if path.read_text(encoding="utf-8", errors="replace") != text_:
            raise ActlabError(
                f"'{path}' exists and is not this search's finalist; move it away and resume"
            ) from None
    return path
