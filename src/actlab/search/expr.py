"""The search space: primitives, expressions parsed to a safe tree, printing.

An expression is a tree of :class:`Node` (``op``, ``args``) over the input ``x``. Text is parsed
with :func:`ast.parse` (``mode="eval"``: parsing only, nothing is executed) and every syntax node is
checked against a whitelist: names outside the primitive set, attributes, subscripts, lambdas,
strings and other constants are refused with a one-line :class:`~actlab.errors.ActlabError`.

The candidates of a search are *core units* ``b(u1(x), u2(x))`` or ``u(x)`` (Ramachandran et al.
2017): ``u`` unary and ``b`` binary primitives. ``beta`` in a primitive is a trainable scalar
(initialised per primitive, :data:`UNARY` / :data:`BINARY`). :func:`slots` turns such a tree into
the ``(b, u1, u2)`` triple the stacked evaluator (:mod:`actlab.search.primitives`) works on.

>>> t = parse("x*sigmoid(beta*x)")
>>> text(t)
'x*sigmoid(beta*x)'
>>> latex(parse("gate(x, tanh(x))"))
'\\\\sigma\\\\left(x\\\\right) \\\\cdot \\\\tanh\\\\left(x\\\\right)'
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actlab.errors import ActlabError, suggest

__all__ = [
    "BINARY",
    "PRESETS",
    "SEEDS",
    "UNARY",
    "Node",
    "Space",
    "candidates",
    "latex",
    "load_space",
    "params",
    "parse",
    "slots",
    "text",
    "tree",
]

EPS = 0.01  # log(|x| + EPS): 0.01 keeps the derivative <= 100 at 0
MAX_TEXT = 400  # characters of one expression
MAX_DEPTH = 12  # nesting of one expression


@dataclass(frozen=True)
class Node:
    """One operation: ``op`` is ``"x"`` (the input), a unary or a binary primitive."""

    op: str
    args: tuple[Node, ...] = ()


X = Node("x")


@dataclass(frozen=True)
class Prim:
    """A primitive: arity, its trainable ``beta``'s initial value (None: none), LaTeX template."""

    arity: int
    beta: float | None
    tex: str
    what: str


# u: unary primitives ({a}: the argument's LaTeX, {b}: beta)
UNARY: dict[str, Prim] = {
    "x": Prim(1, None, "{a}", "identity"),
    "neg": Prim(1, None, "-{a}", "-x"),
    "abs": Prim(1, None, "\\left|{a}\\right|", "|x|"),
    "square": Prim(1, None, "\\left({a}\\right)^2", "x**2"),
    "cube": Prim(1, None, "\\left({a}\\right)^3", "x**3"),
    "scale": Prim(1, 1.0, "\\beta {a}", "beta*x"),
    "shift": Prim(1, 0.0, "{a} + \\beta", "x + beta"),
    "logabs": Prim(1, None, "\\log\\left(\\left|{a}\\right| + 0.01\\right)", "log(|x| + 0.01)"),
    "exp": Prim(1, None, "e^{{{a}}}", "exp(x)"),
    "sin": Prim(1, None, "\\sin\\left({a}\\right)", "sin(x)"),
    "cos": Prim(1, None, "\\cos\\left({a}\\right)", "cos(x)"),
    "tanh": Prim(1, None, "\\tanh\\left({a}\\right)", "tanh(x)"),
    "asinh": Prim(1, None, "\\operatorname{{asinh}}\\left({a}\\right)", "asinh(x)"),
    "atan": Prim(1, None, "\\arctan\\left({a}\\right)", "atan(x)"),
    "sinc": Prim(1, None, "\\operatorname{{sinc}}\\left({a}\\right)", "sin(x)/x, 1 at 0"),
    "relu": Prim(1, None, "\\max\\left({a}, 0\\right)", "max(x, 0)"),
    "minzero": Prim(1, None, "\\min\\left({a}, 0\\right)", "min(x, 0)"),
    "sigmoid": Prim(1, None, "\\sigma\\left({a}\\right)", "1/(1 + exp(-x))"),
    "softplus": Prim(1, None, "\\log\\left(1 + e^{{{a}}}\\right)", "log(1 + exp(x))"),
    "gauss": Prim(1, None, "e^{{-\\left({a}\\right)^2}}", "exp(-x**2)"),
    "erf": Prim(1, None, "\\operatorname{{erf}}\\left({a}\\right)", "erf(x)"),
    # only in the large preset
    "softsign": Prim(1, None, "\\frac{{{a}}}{{1 + \\left|{a}\\right|}}", "x/(1 + |x|)"),
    "silu": Prim(1, None, "{a} \\, \\sigma\\left({a}\\right)", "x*sigmoid(x)"),
}
_LARGE_ONLY = ("softsign", "silu")
# b: binary primitives ({a}, {c}: the arguments)
BINARY: dict[str, Prim] = {
    "add": Prim(2, None, "{a} + {c}", "x1 + x2"),
    "sub": Prim(2, None, "{a} - \\left({c}\\right)", "x1 - x2"),
    "mul": Prim(2, None, "{a} \\cdot {c}", "x1*x2"),
    "max": Prim(2, None, "\\max\\left({a}, {c}\\right)", "max(x1, x2)"),
    "min": Prim(2, None, "\\min\\left({a}, {c}\\right)", "min(x1, x2)"),
    "gate": Prim(2, None, "\\sigma\\left({a}\\right) \\cdot {c}", "sigmoid(x1)*x2"),
    "rbf": Prim(2, 1.0, "e^{{-\\beta\\left({a} - {c}\\right)^2}}", "exp(-beta*(x1 - x2)**2)"),
    "mix": Prim(2, 0.5, "\\beta {a} + (1 - \\beta) {c}", "beta*x1 + (1 - beta)*x2"),
}
FIRST = "first"  # the "binary" slot of a one-unit candidate: u1(x) itself

# The functions text may call (ops written as operators or special forms are not listed here)
_CALLS = {
    "abs", "logabs", "exp", "sin", "cos", "tanh", "asinh", "atan", "sinc", "relu", "minzero",
    "sigmoid", "softplus", "gauss", "erf", "softsign", "silu", "max", "min", "gate", "rbf", "mix",
    "log",
}  # fmt: skip
_INFIX = {"add": " + ", "sub": " - ", "mul": "*"}
_SUMS = ("add", "sub", "shift", "mix", "neg")
_PREC = {"add": 1, "sub": 1, "shift": 1, "mul": 2, "scale": 2, "neg": 3, "square": 4, "cube": 4}

PRESETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "small": (
        ("x", "neg", "abs", "square", "scale", "tanh", "relu", "sigmoid", "softplus", "erf"),
        ("add", "mul", "max", "gate"),
    ),
    "default": (tuple(u for u in UNARY if u not in _LARGE_ONLY), tuple(BINARY)),
    "large": (tuple(UNARY), tuple(BINARY)),  # + softsign and silu as units
}

# the built-ins that seed the population, written in the grammar
SEEDS = {
    "relu": "relu(x)",
    "silu": "x*sigmoid(x)",
    "swish": "gate(beta*x, x)",
    "tanh": "tanh(x)",
    "softplus": "softplus(x)",
    "sigmoid": "sigmoid(x)",
    "gelu_tanh_like": "x*erf(x)",
    "leaky_like": "max(x, beta*x)",
}


# ------------------------------------------------------------------------------------- parsing


def _bad(what: str, source: str) -> ActlabError:
    allowed = ", ".join(sorted(_CALLS - {"log"}))
    return ActlabError(
        f"expression {source!r}: {what}; allowed: x, beta, + - * **2 **3, log(abs(E) + 0.01), "
        f"max(E, 0), min(E, 0), and the functions {allowed}"
    )


def parse(source: str) -> Node:
    """The tree of ``source`` (never evaluated: :mod:`ast` parsing plus a whitelist)."""
    if not isinstance(source, str) or not source.strip():
        raise ActlabError("an expression must be a non-empty string such as 'x*sigmoid(x)'")
    if len(source) > MAX_TEXT:
        raise ActlabError(f"expression is {len(source)} characters long; at most {MAX_TEXT}")
    try:
        body = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as err:
        raise _bad(f"not a formula ({err.msg})", source) from None
    return _node(body, source, 0)


def _is_beta(n: ast.AST) -> bool:
    return isinstance(n, ast.Name) and n.id == "beta"


def _number(n: ast.AST) -> float | None:
    if isinstance(n, ast.Constant) and type(n.value) in (int, float):
        return float(n.value)
    return None


def _node(n: ast.AST, source: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise _bad(f"nested more than {MAX_DEPTH} deep", source)
    sub = lambda m: _node(m, source, depth + 1)  # noqa: E731
    if isinstance(n, ast.Name):
        if n.id == "x":
            return X
        if n.id == "beta":
            raise _bad("'beta' stands alone; write it as beta*E, E + beta or inside mix/rbf",
                       source)  # fmt: skip
        raise _bad(f"unknown name '{n.id}'{suggest(n.id, ['x', 'beta', *_CALLS])}", source)
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
        return Node("neg", (sub(n.operand),))
    if isinstance(n, ast.BinOp):
        if isinstance(n.op, ast.Pow):
            k = _number(n.right)
            if k not in (2.0, 3.0):
                raise _bad("only the powers **2 and **3 are primitives", source)
            return Node("square" if k == 2.0 else "cube", (sub(n.left),))
        if isinstance(n.op, ast.Mult) and (_is_beta(n.left) or _is_beta(n.right)):
            other = n.right if _is_beta(n.left) else n.left
            return Node("scale", (sub(other),))
        if isinstance(n.op, ast.Add) and (_is_beta(n.left) or _is_beta(n.right)):
            other = n.right if _is_beta(n.left) else n.left
            return Node("shift", (sub(other),))
        ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}
        if type(n.op) in ops:
            return Node(ops[type(n.op)], (sub(n.left), sub(n.right)))
        raise _bad(f"the operator {type(n.op).__name__} is not a primitive", source)
    if isinstance(n, ast.Call):
        return _call(n, source, sub)
    raise _bad(f"{type(n).__name__} is not allowed in an expression", source)


def _call(n: ast.Call, source: str, sub: Any) -> Node:
    if not isinstance(n.func, ast.Name) or n.keywords:
        raise _bad("only plain calls of the primitives, such as tanh(x), are allowed", source)
    name = n.func.id
    if name not in _CALLS:
        raise _bad(f"unknown function '{name}'{suggest(name, sorted(_CALLS))}", source)
    args = n.args
    if name == "log":  # log(abs(E) + 0.01) is the logabs primitive
        inner = args[0] if len(args) == 1 else None
        if (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Add)
                and isinstance(inner.left, ast.Call) and isinstance(inner.left.func, ast.Name)
                and inner.left.func.id == "abs" and len(inner.left.args) == 1
                and _number(inner.right) == EPS):  # fmt: skip
            return Node("logabs", (sub(inner.left.args[0]),))
        raise _bad(f"log is only allowed as log(abs(E) + {EPS})", source)
    if name in ("max", "min") and len(args) == 2 and _number(args[1]) == 0.0:
        return Node("relu" if name == "max" else "minzero", (sub(args[0]),))
    arity = 2 if name in BINARY else 1
    if len(args) != arity:
        raise _bad(f"{name} takes {arity} argument{'s' * (arity > 1)}, got {len(args)}", source)
    return Node(name, tuple(sub(a) for a in args))


# ------------------------------------------------------------------------------------ printing


def text(t: Node) -> str:
    """Plain text that :func:`parse` reads back to the same tree."""
    return _text(t)


def _wrap(t: Node, need: int) -> str:
    s = _text(t)
    return f"({s})" if _PREC.get(t.op, 5) < need else s


def _text(t: Node) -> str:
    op, a = t.op, t.args
    if op == "x":
        return "x"
    if op in _INFIX:
        right_need = _PREC[op] + 1
        return f"{_wrap(a[0], _PREC[op])}{_INFIX[op]}{_wrap(a[1], right_need)}"
    if op == "neg":
        return f"-{_wrap(a[0], 3)}"
    if op in ("square", "cube"):
        return f"{_wrap(a[0], 5)}**{2 if op == 'square' else 3}"
    if op == "scale":
        return f"beta*{_wrap(a[0], 3)}"
    if op == "shift":
        return f"{_wrap(a[0], 1)} + beta"
    if op == "logabs":
        return f"log(abs({_text(a[0])}) + {EPS})"
    if op == "relu":
        return f"max({_text(a[0])}, 0)"
    if op == "minzero":
        return f"min({_text(a[0])}, 0)"
    return f"{op}({', '.join(_text(c) for c in a)})"


def latex(t: Node) -> str:
    """The formula in LaTeX (``beta`` as ``\\beta``)."""
    if t.op == "x":
        return "x"
    prim = UNARY.get(t.op) or BINARY[t.op]
    parts = [latex(c) for c in t.args]
    if t.op in ("neg", "mul", "scale", "sub"):  # a sum inside a product or negation: brackets
        parts = [f"\\left({p}\\right)" if c.op in _SUMS else p
                 for p, c in zip(parts, t.args, strict=True)]  # fmt: skip
    return prim.tex.format(a=parts[0], c=parts[1] if len(parts) > 1 else "")


def params(t: Node) -> list[tuple[str, float]]:
    """The trainable betas in print order, named beta1, beta2, ... with their initial values."""
    out: list[tuple[str, float]] = []

    def walk(n: Node) -> None:
        for c in n.args:
            walk(c)
        prim = UNARY.get(n.op) or BINARY.get(n.op)
        if prim is not None and prim.beta is not None:
            out.append((f"beta{len(out) + 1}", prim.beta))

    walk(t)
    return out


# ------------------------------------------------------------------------------ slots and space


def unit(u: str) -> Node:
    """The unit ``u(x)``."""
    return X if u == "x" else Node(u, (X,))


def tree(s: Sequence[str]) -> Node:
    """The tree of a ``(b, u1, u2)`` triple (``b == "first"``: the one unit ``u1(x)``)."""
    b, u1, u2 = s
    return unit(u1) if b == FIRST else Node(b, (unit(u1), unit(u2)))


def slots(t: Node) -> tuple[str, str, str]:
    """``(b, u1, u2)`` of a core-unit tree; other shapes are refused (they cannot be raced)."""

    def as_unit(n: Node) -> str | None:
        if n == X:
            return "x"
        if n.op in UNARY and n.args == (X,):
            return n.op
        return None

    u = as_unit(t)
    if u is not None:
        return (FIRST, u, "x")
    if t.op in BINARY:
        u1, u2 = as_unit(t.args[0]), as_unit(t.args[1])
        if u1 is not None and u2 is not None:
            return (t.op, u1, u2)
    raise ActlabError(
        f"'{text(t)}' is not a core unit b(u1(x), u2(x)) or u(x) of primitives applied to x; "
        "the search races only those (e.g. 'x*sigmoid(x)', 'max(x, tanh(x))')"
    )


@dataclass(frozen=True)
class Space:
    """The primitives a search composes (a preset or a file)."""

    name: str
    unary: tuple[str, ...]
    binary: tuple[str, ...]


def load_space(spec: str | Path) -> Space:
    """A preset (small, default, large) or a file listing primitive names (one or more a line,
    ``#`` comments); unknown names are refused."""
    key = str(spec)
    if key in PRESETS:
        u, b = PRESETS[key]
        return Space(key, u, b)
    path = Path(key).expanduser()
    if not path.is_file():
        raise ActlabError(
            f"--space {key!r} is neither a preset ({', '.join(PRESETS)}) nor a file; give one "
            "of those, or a text file listing primitives such as: tanh relu sigmoid mul add"
        )
    try:
        words = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise ActlabError(f"--space: cannot read '{path}': {err}") from None
    names = [w for line in words for w in line.split("#")[0].replace(",", " ").split()]
    known = [*UNARY, *BINARY]
    for w in names:
        if w not in known:
            raise ActlabError(
                f"--space '{path}': unknown primitive '{w}'{suggest(w, known)}; primitives: "
                f"{', '.join(known)}"
            )
    unary = tuple(dict.fromkeys(w for w in names if w in UNARY))
    binary = tuple(dict.fromkeys(w for w in names if w in BINARY))
    if not unary:
        raise ActlabError(f"--space '{path}' lists no unary primitive; add some, e.g. tanh relu")
    return Space(path.name, unary, binary)


def candidates(space: Space, seeds: Iterable[str] = SEEDS.values()) -> list[tuple[str, str, str]]:
    """Every core unit of ``space``: the seeds first, then ``u(x)``, then ``b(u1(x), u2(x))``."""
    out = [slots(parse(s)) for s in seeds]
    out += [(FIRST, u, "x") for u in space.unary]
    out += [(b, u1, u2) for b in space.binary
            for u1, u2 in itertools.product(space.unary, space.unary)]  # fmt: skip
    return list(dict.fromkeys(out))
