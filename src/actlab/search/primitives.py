"""The primitives in PyTorch, one candidate or many at once, as code for a finalist file; dedup.

:class:`Program` evaluates M candidates ``b(u1(z), u2(z))`` on a stacked input ``z`` of shape
``(M, ...)`` (candidate m's activations in ``z[m]``): each primitive runs once per slot over the
candidates that use it (a contiguous slice when the stack is sorted by that slot, else an
``index_select`` and one inverse gather), so a step costs a loop over the *distinct primitives*,
never over models. Autograd differentiates it, betas included (``beta`` of shape ``(M, 3)``: one per
slot, broadcast over the rest).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from actlab.search.expr import BINARY, EPS, FIRST, UNARY, Node

__all__ = ["CODE", "Program", "code", "evaluate", "one_thread"]

T = torch.Tensor

_UN: dict[str, Callable[[T, T], T]] = {
    "x": lambda z, b: z,
    "neg": lambda z, b: -z,
    "abs": lambda z, b: z.abs(),
    "square": lambda z, b: z * z,
    "cube": lambda z, b: z * z * z,
    "scale": lambda z, b: b * z,
    "shift": lambda z, b: z + b,
    "logabs": lambda z, b: torch.log(z.abs() + EPS),
    "exp": lambda z, b: torch.exp(z),
    "sin": lambda z, b: torch.sin(z),
    "cos": lambda z, b: torch.cos(z),
    "tanh": lambda z, b: torch.tanh(z),
    "asinh": lambda z, b: torch.asinh(z),
    "atan": lambda z, b: torch.atan(z),
    "sinc": lambda z, b: torch.sinc(z / math.pi),  # sin(z)/z, 1 at 0
    "relu": lambda z, b: torch.relu(z),
    "minzero": lambda z, b: torch.clamp(z, max=0.0),
    "sigmoid": lambda z, b: torch.sigmoid(z),
    "softplus": lambda z, b: torch.nn.functional.softplus(z),
    "gauss": lambda z, b: torch.exp(-z * z),
    "erf": lambda z, b: torch.erf(z),
    "softsign": lambda z, b: z / (1 + z.abs()),
    "silu": lambda z, b: torch.nn.functional.silu(z),
}
_BIN: dict[str, Callable[[T, T, T], T]] = {
    "add": lambda a, c, b: a + c,
    "sub": lambda a, c, b: a - c,
    "mul": lambda a, c, b: a * c,
    "max": lambda a, c, b: torch.maximum(a, c),
    "min": lambda a, c, b: torch.minimum(a, c),
    "gate": lambda a, c, b: torch.sigmoid(a) * c,
    "rbf": lambda a, c, b: torch.exp(-b * (a - c).square()),
    "mix": lambda a, c, b: b * a + (1 - b) * c,
    FIRST: lambda a, c, b: a,
}
# the same maths as source code of a finalist file ({a}, {c}: arguments, {b}: its beta's name)
CODE: dict[str, str] = {
    "x": "{a}", "neg": "-({a})", "abs": "torch.abs({a})", "square": "({a}) ** 2",
    "cube": "({a}) ** 3", "scale": "{b} * ({a})", "shift": "({a}) + {b}",
    "logabs": f"torch.log(torch.abs({{a}}) + {EPS})", "exp": "torch.exp({a})",
    "sin": "torch.sin({a})", "cos": "torch.cos({a})", "tanh": "torch.tanh({a})",
    "asinh": "torch.asinh({a})", "atan": "torch.atan({a})",
    "sinc": "torch.sinc(({a}) / math.pi)", "relu": "torch.relu({a})",
    "minzero": "torch.clamp({a}, max=0.0)", "sigmoid": "torch.sigmoid({a})",
    "softplus": "F.softplus({a})", "gauss": "torch.exp(-(({a}) ** 2))", "erf": "torch.erf({a})",
    "softsign": "({a}) / (1 + torch.abs({a}))", "silu": "F.silu({a})",
    "add": "({a}) + ({c})", "sub": "({a}) - ({c})", "mul": "({a}) * ({c})",
    "max": "torch.maximum({a}, {c})", "min": "torch.minimum({a}, {c})",
    "gate": "torch.sigmoid({a}) * ({c})", "rbf": "torch.exp(-{b} * (({a}) - ({c})) ** 2)",
    "mix": "{b} * ({a}) + (1 - {b}) * ({c})",
}  # fmt: skip


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Single-threaded PyTorch ops inside (restored after): the stacks' ops are small, and on a
    shared, loaded machine an intra-op thread pool stalls at every op's barrier (measured on the
    2-core test box at load 5-9: 64 models of x*sigmoid(x), 62 ms per model-epoch with 2 threads,
    ~2 ms with 1), which is why compare's engine runs its stacks single-threaded too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def code(t: Node) -> str:
    """Python source of ``t`` on a tensor ``x`` (betas named beta1, beta2, ... in print order)."""
    count = [0]

    def walk(n: Node) -> str:
        if n.op == "x":
            return "x"
        parts = [walk(c) for c in n.args]
        prim = UNARY.get(n.op) or BINARY[n.op]
        name = ""
        if prim.beta is not None:
            count[0] += 1
            name = f"beta{count[0]}"
        return CODE[n.op].format(a=parts[0], c=parts[1] if len(parts) > 1 else "", b=name)

    return walk(t)


def evaluate(t: Node, x: T, betas: Sequence[float] = ()) -> T:
    """``t`` on ``x`` with the betas in print order (default: their initial values)."""
    it = iter(betas)

    def walk(n: Node) -> T:
        if n.op == "x":
            return x
        parts = [walk(c) for c in n.args]
        prim = UNARY.get(n.op) or BINARY[n.op]
        b = torch.tensor(0.0, dtype=x.dtype)
        if prim.beta is not None:
            b = torch.tensor(float(next(it, prim.beta)), dtype=x.dtype)
        if prim.arity == 1:
            return _UN[n.op](parts[0], b)
        return _BIN[n.op](parts[0], parts[1], b)

    return walk(t)


class _Slot:
    """One slot's primitives over the stack: (name, slice or index) groups + the inverse order."""

    def __init__(self, names: Sequence[str]) -> None:
        order: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            order.setdefault(n, []).append(i)
        self.groups: list[tuple[str, slice | T]] = []
        perm: list[int] = []
        for name, idx in order.items():
            contiguous = idx == list(range(idx[0], idx[-1] + 1))
            self.groups.append((name, slice(idx[0], idx[-1] + 1) if contiguous
                                else torch.tensor(idx)))  # fmt: skip
            perm += idx
        self.inverse = None
        if perm != list(range(len(names))):
            inv = torch.empty(len(perm), dtype=torch.long)
            inv[torch.tensor(perm)] = torch.arange(len(perm))
            self.inverse = inv

    def apply(self, fn: Callable[..., T], args: Sequence[T], beta: T) -> T:
        """``fn[name](*args, beta)`` per group, back in stack order."""
        if len(self.groups) == 1:
            name = self.groups[0][0]
            return fn[name](*args, beta)  # type: ignore[index]
        outs = []
        for name, where in self.groups:
            if isinstance(where, slice):
                outs.append(fn[name](*(a[where] for a in args), beta[where]))  # type: ignore[index]
            else:
                outs.append(fn[name](*(a.index_select(0, where) for a in args),  # type: ignore[index]
                                     beta.index_select(0, where)))  # fmt: skip
        out = torch.cat(outs)
        return out if self.inverse is None else out.index_select(0, self.inverse)


class Program:
    """M candidates ``(b, u1, u2)`` evaluated together on a stacked ``z`` (see the module doc)."""

    def __init__(self, slot_list: Sequence[tuple[str, str, str]]) -> None:
        for b, u1, u2 in slot_list:
            if b not in _BIN or u1 not in _UN or u2 not in _UN:
                raise ValueError(f"unknown primitive in {(b, u1, u2)}")
        self.slots = [tuple(s) for s in slot_list]
        self.m = len(self.slots)
        self.binary = _Slot([s[0] for s in self.slots])
        self.u1 = _Slot([s[1] for s in self.slots])
        self.one_unit = all(s[0] == FIRST for s in self.slots)
        self.u2 = _Slot([s[2] for s in self.slots])

    def initial_beta(self, dtype: torch.dtype = torch.float32) -> T:
        """``(M, 3)`` betas at their primitives' initial values (0 where a slot has none)."""
        rows = []
        for b, u1, u2 in self.slots:
            rows.append([_init(UNARY, u1), _init(UNARY, u2), _init(BINARY, b)])
        return torch.tensor(rows, dtype=dtype)

    def __call__(self, z: T, beta: T) -> T:
        shape = (self.m,) + (1,) * (z.ndim - 1)
        b1, b2, bb = (beta[:, k].reshape(shape) for k in range(3))
        a = self.u1.apply(_UN, (z,), b1)
        if self.one_unit:
            return a
        c = self.u2.apply(_UN, (z,), b2)
        return self.binary.apply(_BIN, (a, c), bb)


def _init(table: dict, name: str) -> float:
    prim = table.get(name)
    return float(prim.beta) if prim is not None and prim.beta is not None else 0.0


def dedup(slot_list: Sequence[tuple[str, str, str]]) -> tuple[list[int], dict[int, int]]:
    """Indices of the first candidate of each distinct function, and duplicate -> kept index.

    Two candidates are one function when their values agree (rounded to 5 decimals in float32)
    on a fixed probe grid of 41 points in [-4, 4], both at the betas' initial values and at
    perturbed ones (x + beta with beta = 0 is x, but not once beta trains).
    """
    grid = torch.linspace(-4.0, 4.0, 41, dtype=torch.float64)
    prog = Program(slot_list)
    keys: dict[bytes, int] = {}
    keep: list[int] = []
    dup: dict[int, int] = {}
    with torch.no_grad():
        z = grid.expand(len(slot_list), -1)
        a = prog(z, prog.initial_beta(torch.float64))
        b = prog(z, prog.initial_beta(torch.float64) * 1.37 + 0.21)
    vals = torch.cat([a, b], 1).numpy()
    with np.errstate(all="ignore"):
        rounded = np.where(np.isfinite(vals), np.float64(np.float32(vals)), 0.0)
        rounded = np.round(rounded, 5)
    rounded[rounded == 0] = 0.0  # -0.0 and 0.0 alike
    for i in range(len(slot_list)):
        key = rounded[i].tobytes() + np.isfinite(vals[i]).tobytes()
        if key in keys:
            dup[i] = keys[key]
        else:
            keys[key] = i
            keep.append(i)
    return keep, dup
