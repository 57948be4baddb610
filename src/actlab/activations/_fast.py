"""The compare engine's fast paths: ``fast(aten, module) -> (fwd(z, out), bwd(g, z, h, out))``,
the ATen kernels behind a module (torch is passed in, never imported here)."""

from __future__ import annotations

from typing import Any


def pointwise(op: str, backward: str, args: Any = None, *, of_output: bool = False) -> Any:
    """fwd = aten.<op>.out(z, *args); bwd = aten.<backward>.grad_input(g, h if of_output else z,
    *args), where args(module) gives the module's parameters (none by default)."""

    def fast(a: Any, m: Any) -> Any:
        f, b, extra = getattr(a, op), getattr(a, backward), args(m) if args else ()
        if of_output:
            return (
                lambda z, o: f.out(z, out=o),
                lambda g, z, h, o: b.grad_input(g, h, grad_input=o),
            )
        return (
            lambda z, o: f.out(z, *extra, out=o),
            lambda g, z, h, o: b.grad_input(g, z, *extra, grad_input=o),
        )

    return fast
