"""Adam and SGD written out: ``torch.optim``'s updates bit for bit, without importing it."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from actlab.compare.training.types import TrainConfig


class _Optimizer:
    """``torch.optim.Adam(fused=True)`` / ``torch.optim.SGD`` on ``params`` (their ``.grad``),
    bit for bit (a test compares), without ``torch.optim``: constructing one of its optimisers
    imports ``torch._dynamo`` (~1.5 s, once per process) and its step's Python layer costs about
    as much as the fused kernel here. Adam's state appears at a tensor's first step with a
    gradient, and ``state_dict()`` keeps torch.optim's ``{"state": {index: {"step", "exp_avg",
    "exp_avg_sq"}}}``, so checkpoints written through torch.optim still load. Fused Adam misreads a
    gradient laid out unlike its parameter (PyTorch 2.13): callers keep ``.grad`` contiguous.
    """

    def __init__(self, params: list[torch.Tensor], config: TrainConfig) -> None:
        self.params, self.lr, self.decay = params, config.lr, config.weight_decay
        self.adam = config.optimizer == "adam"
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        live = [(k, p) for k, p in enumerate(self.params) if p.grad is not None]
        if not self.adam:
            for _, p in live:  # torch.optim.SGD's single-tensor update (momentum 0)
                p.add_(p.grad.add(p, alpha=self.decay) if self.decay else p.grad, alpha=-self.lr)
            return
        st = [self.moments_of(k) for k, _ in live]
        steps = [s["step"] for s in st]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_([p for _, p in live], [p.grad for _, p in live],
                           [s["exp_avg"] for s in st], [s["exp_avg_sq"] for s in st], [], steps,
                           **self.adam_args)  # fmt: skip

    @property
    def adam_args(self) -> dict[str, Any]:
        """``torch._fused_adam_``'s keywords: torch.optim.Adam's defaults, this lr and decay."""
        return {"amsgrad": False, "lr": self.lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                "weight_decay": self.decay, "maximize": False, "grad_scale": None,
                "found_inf": None}  # fmt: skip

    def moments_of(self, k: int) -> dict[str, torch.Tensor]:
        """Adam's state of parameter ``k``, made (zero) if it has none yet."""
        if k not in self.state:
            p = self.params[k]
            zero = partial(torch.zeros_like, p, memory_format=torch.preserve_format)
            self.state[k] = {"step": torch.zeros((), device=p.device),
                             "exp_avg": zero(), "exp_avg_sq": zero()}  # fmt: skip
        return self.state[k]

    def moments(self, k: int) -> list[torch.Tensor]:
        """Adam's moments of parameter ``k`` (shaped like it; none yet, or for SGD: [])."""
        return [v for n, v in self.state.get(k, {}).items() if n != "step"]

    def state_dict(self) -> dict[str, Any]:
        return {"state": {k: {n: v.clone() for n, v in s.items()} for k, s in self.state.items()}}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = {
            int(k): {n: v.to(self.params[int(k)].device, torch.float32 if n == "step" else v.dtype)
                     for n, v in s.items()}
            for k, s in saved["state"].items()
        }  # fmt: skip
