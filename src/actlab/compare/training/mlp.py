"""The default MLP: every model stacked in one set of tensors, with a hand-written backward."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from functools import partial
from types import SimpleNamespace
from typing import Any

import torch

from actlab.catalog import Activation
from actlab.compare.training.data import _EVAL_ROWS, _Data
from actlab.compare.training.optim import _Optimizer
from actlab.compare.training.types import TrainConfig
from actlab.health import MAJORITY, SATURATION, measures_saturation
from actlab.nets import init_linear, init_scheme
from actlab.torch import build, fast_path

_GATHER_BYTES = 1 << 20  # training rows gathered at once per stack (or one step's; _MLP._gather)


def _loss_and_grad(
    out_t: torch.Tensor, y: torch.Tensor, classification: bool, loss: torch.Tensor,
    grad: torch.Tensor, minus_one: torch.Tensor,
) -> None:  # fmt: skip
    """Per-model mean loss into ``loss`` (M,) and its gradient into ``grad``, like ``out_t``.

    ``out_t`` holds transposed outputs ``(M, n_out, b)``; ``y`` is (M, b) class ids or (M, b, k)
    targets (views of the epoch's gathered rows). Cross-entropy / MSE with mean reduction, as in
    ``nn.CrossEntropyLoss()`` / ``nn.MSELoss()``: d(loss)/d(logits) = (softmax - onehot) / b.
    ``minus_one`` is a (M, 1, b) tensor of -1 (kept by the caller: one allocation less per step).
    """
    b = out_t.shape[2]
    if classification:
        idx = y.unsqueeze(1)
        torch.log_softmax(out_t, 1, out=grad)
        torch.mean(grad.gather(1, idx), (1, 2), out=loss).neg_()
        grad.exp_().scatter_add_(1, idx, minus_one).div_(b)
        return
    diff = torch.sub(out_t, y.transpose(1, 2), out=grad)
    torch.mean(diff.square(), (1, 2), out=loss)
    diff.mul_(2.0 / diff[0].numel())


class _Group:
    """The contiguous slice of stacked models that share one activation."""

    def __init__(self, act: Activation, start: int, stop: int) -> None:
        self.act, self.start, self.stop = act, start, stop
        self.module = build(act)
        if getattr(self.module, "inplace", False):
            self.module.inplace = False  # the backward needs the pre-activation intact
        # the ATen kernels behind a native module: fwd(z, out) = its forward, bwd(g, z, h, out) =
        # g * f'(z) as autograd runs it (the backward matches a plain loop's); None: autograd
        self.fast = fast_path(self.module)
        self.graphs: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}  # slow path's last forward

    def forward_call(self, z: torch.Tensor, out: torch.Tensor, key: Any) -> Callable[[], Any]:
        """A call without arguments that writes f(z) into ``out`` (both: this group's rows).

        Slow path: autograd on this slice only, its graph kept under ``key`` for the backward.
        """
        if self.fast is not None:
            return partial(self.fast[0], z, out)
        return partial(self._autograd_forward, z, out, key)

    def backward_call(
        self, g: torch.Tensor, z: torch.Tensor, h: torch.Tensor, out: torch.Tensor, key: Any
    ) -> Callable[[], Any]:
        """A call without arguments that writes g * f'(z) into ``out`` (h = f(z))."""
        if self.fast is not None:
            return partial(self.fast[1], g, z, h, out)
        return partial(self._autograd_backward, g, out, key)

    def _autograd_forward(self, z: torch.Tensor, out: torch.Tensor, key: Any) -> None:
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            hg = self.module(zg)
        out.copy_(hg.detach())
        self.graphs[key] = zg, hg

    def _autograd_backward(self, g: torch.Tensor, out: torch.Tensor, key: Any) -> None:
        zg, hg = self.graphs.pop(key)
        out.copy_(torch.autograd.grad(hg, zg, g)[0])


class _MLP:
    """All models of the default MLP, stacked; rows are models, grouped by activation.

    Hidden layers: ``W[l]`` (M, in, out), ``b[l]`` (M, 1, out). The output layer is kept the other
    way round, ``W[-1]`` (M, n_out, in) and ``b[-1]`` (M, n_out, 1) (nn.Linear's layout), and
    computes transposed logits (M, n_out, batch): with few outputs that orientation is ~3x faster in
    MKL, and log-softmax over dim 1 vectorises along the batch.

    What makes it fast (each measured; see benchmarks/compare_speed.py):

    * one flat buffer holds every parameter (weights, then biases; each a contiguous view) and
      another every gradient, so the backward pass writes gradients in place with ``out=`` (no
      allocation, no zeroing) and Adam runs one fused kernel per layer inside the backward, on
      views of those buffers and of its moments (SGD: one update of the flat tensor after it).
      Both are elementwise, so either is the per-tensor update, bit for bit;
    * a step's kernels are bound once per batch size (``_plan``) to persistent buffers and their
      per-group slices, as ``functools.partial`` calls: a step is then mostly a loop of C-level
      calls. Building each call afresh (slicing, argument lists) cost as much as the elementwise
      kernels and held the GIL that the other worker thread waits for;
    * activations write into contiguous buffers only: several ATen ``out=`` kernels (gelu, silu,
      elu, sigmoid...) give wrong values for a strided ``out`` in PyTorch 2.13.
    """

    def __init__(
        self, acts: list[Activation], seeds: list[int], data: _Data, config: TrainConfig
    ) -> None:
        self.data, self.config = data, config
        m = len(acts)
        sizes = [data.X_train.shape[1]] + [config.width] * config.depth + [data.n_out]
        self.shapes = [(m, i, o) for i, o in itertools.pairwise(sizes[:-1])]
        self.shapes.append((m, sizes[-1], sizes[-2]))
        self.shapes += [(m, 1, o) for o in sizes[1:-1]] + [(m, sizes[-1], 1)]
        self.n_weights = len(sizes) - 1
        self.device = dev = data.device  # every tensor lives there; initialised on the CPU first
        self.flat = torch.zeros(sum(math.prod(s) for s in self.shapes), device=dev)
        self.flat.grad = torch.zeros_like(self.flat)
        self.params = self._views(self.flat)
        self.W, self.b = self.params[: self.n_weights], self.params[self.n_weights :]
        grads = self._views(self.flat.grad)
        self.gW, self.gb = grads[: self.n_weights], grads[self.n_weights :]
        for k, (act, seed) in enumerate(zip(acts, seeds, strict=True)):
            g = torch.Generator().manual_seed(seed)
            scheme = init_scheme(act, config.init)
            for layer, (i, o) in enumerate(itertools.pairwise(sizes)):
                w, bias = torch.empty(o, i), torch.empty(o)
                init_linear(w, bias, scheme, act if layer < config.depth else None, g)
                self.W[layer][k] = w if layer == config.depth else w.T
                self.b[layer][k] = bias.view(self.b[layer].shape[1:])
        self.groups: list[_Group] = []
        start = 0
        for k in range(1, m + 1):
            if k == m or str(acts[k]) != str(acts[start]):
                self.groups.append(_Group(acts[start], start, k))
                start = k
        self.optimizer = _Optimizer([self.flat], config)
        self.mask = torch.ones(m, 1, 1, device=dev)
        self.frozen = torch.zeros(m, dtype=torch.bool)  # on the CPU: read every epoch
        self.units = 1
        # NaN marks "not measured": saturation only means something for bounded activations
        measured = [measures_saturation(a) for a in acts]
        self.saturation_scale = torch.tensor([1.0 if m else math.nan for m in measured], device=dev)
        rows = [k for k, m in enumerate(measured) if m] or [0, -1]
        self.measured = slice(rows[0], rows[-1] + 1)  # the rows whose saturation is counted
        self._plans: dict[tuple[str, int], SimpleNamespace] = {}
        self._blocks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The per-layer tensors (weights, then biases) as contiguous views of a flat buffer."""
        sizes = [math.prod(s) for s in self.shapes]
        return [v.view(s) for v, s in zip(flat.split(sizes), self.shapes, strict=True)]

    def _parts(self, t: torch.Tensor) -> list[torch.Tensor]:
        """``t``'s rows of each activation group."""
        return [t[gr.start : gr.stop] for gr in self.groups]

    def _plan(self, tag: str, rows: int) -> SimpleNamespace:
        """Buffers and bound kernel calls of a pass over ``rows`` rows per model, made once.

        The buffers persist (fresh multi-MB tensors every step page-fault on first touch).

        ``tag`` "t" (training step: forward and backward) or "e" (evaluation: forward and f'(z)).
        Layer 0's product is left to the caller: its input changes every call. Fields: ``z``,
        ``h`` (per hidden layer, (M, rows, width)), ``out`` (M, n_out, rows); ``forward``: the
        calls from layer 0's activation to the logits; training: ``g_t`` (d loss / d logits),
        ``backward`` (down to layer 0's pre-activation gradient ``gz[0]`` and bias gradient, each
        weight gradient's per-model norm into ``norm``), ``finish`` (layer 0's norm); evaluation:
        ``derivative[k]`` (f'(z) of hidden layer k into ``d``).
        """
        plan = self._plans.get((tag, rows))
        if plan is not None:
            return plan
        m, depth, dev = len(self.mask), self.n_weights - 1, self.device
        W, b, gW, gb = self.W, self.b, self.gW, self.gb
        p = SimpleNamespace()
        p.z = [torch.empty(m, rows, W[k].shape[2], device=dev) for k in range(depth)]
        p.h = [torch.empty_like(z) for z in p.z]
        p.out = torch.empty(m, W[-1].shape[1], rows, device=dev)
        p.forward = []
        for k in range(depth):
            for gr, z, h in zip(self.groups, self._parts(p.z[k]), self._parts(p.h[k]), strict=True):
                p.forward.append(gr.forward_call(z, h, (tag, rows, k)))
            if k + 1 < depth:
                p.forward.append(partial(torch.baddbmm, b[k + 1], p.h[k], W[k + 1], out=p.z[k + 1]))
        p.forward.append(partial(torch.baddbmm, b[-1], W[-1], p.h[-1].transpose(1, 2), out=p.out))

        def act_backward(g: torch.Tensor, k: int, out: torch.Tensor) -> list[Callable[[], Any]]:
            parts = [self._parts(t) for t in (g, p.z[k], p.h[k], out)]
            return [
                gr.backward_call(*args, (tag, rows, k))
                for gr, *args in zip(self.groups, *parts, strict=True)
            ]

        if tag == "e":
            # f'(z) = the backward of a gradient of ones, one layer at a time into one buffer
            p.d = torch.empty_like(p.z[0])
            ones = torch.ones(1, 1, 1, device=dev).expand(p.d.shape)
            p.derivative = [act_backward(ones, k, p.d) for k in range(depth)]
            self._plans[tag, rows] = p
            return p
        p.g_t = torch.empty_like(p.out)
        p.minus_one = torch.full((m, 1, rows), -1.0, device=dev)
        p.gh = [torch.empty_like(z) for z in p.z]  # d loss / d h
        p.gz = [torch.empty_like(z) for z in p.z]  # d loss / d z
        p.loss = torch.empty(m, device=dev)
        p.norm = torch.empty(self.n_weights, m, device=dev)  # per layer and model: |grad W|

        def norm(k: int) -> Callable[[], Any]:  # right after gW[k] is written: still in cache
            return partial(torch.linalg.vector_norm, gW[k], dim=(1, 2), out=p.norm[k])

        def update(k: int) -> list[Callable[[], Any]]:
            """Adam on layer k once its weights are no longer needed in this step: its weights
            and gradients are still in cache (one fused call per layer = the flat update)."""
            if not self.optimizer.adam:
                return []
            st = self.optimizer.moments_of(0)
            m, v, j = self._views(st["exp_avg"]), self._views(st["exp_avg_sq"]), self.n_weights + k
            lists = [W[k], b[k]], [gW[k], gb[k]], [m[k], m[j]], [v[k], v[j]], [], [st["step"]] * 2
            return [partial(torch._fused_adam_, *lists, **self.optimizer.adam_args)]

        p.backward = [
            partial(torch.bmm, p.g_t, p.h[-1], out=gW[-1]),
            norm(depth),
            partial(torch.sum, p.g_t, dim=2, keepdim=True, out=gb[-1]),
            # the transposed view runs as fast as a contiguous copy would (measured, these shapes)
            partial(torch.bmm, p.g_t.transpose(1, 2), W[-1], out=p.gh[-1]),
            *update(depth),
        ]
        for k in range(depth - 1, -1, -1):
            p.backward += act_backward(p.gh[k], k, p.gz[k])
            p.backward.append(partial(torch.sum, p.gz[k], dim=1, keepdim=True, out=gb[k]))
            if k > 0:
                p.backward += [
                    partial(torch.bmm, p.h[k - 1].transpose(1, 2), p.gz[k], out=gW[k]),
                    norm(k),
                    partial(torch.bmm, p.gz[k], W[k].transpose(1, 2), out=p.gh[k - 1]),
                    *update(k),
                ]
        p.finish = [norm(0), *update(0)]  # after the caller's layer-0 weight gradient
        self._plans[tag, rows] = p
        return p

    def _gather(self, perms: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each model's rows ``perms[:, lo:hi]`` of the training data, (M, rows, ...), in one op.

        A block of many steps at once: per-step gathers of a few rows per model cost more in call
        overhead and cache misses than the copy itself. Steps take strided views of the block,
        which MKL's batched products read without a copy.
        """
        X, Y = self.data.X_train, self.data.y_train
        m = perms.shape[0]
        if hi - lo not in self._blocks:
            self._blocks[hi - lo] = (
                torch.empty(m, hi - lo, X.shape[1], device=X.device),
                torch.empty(m, hi - lo, *Y.shape[1:], dtype=Y.dtype, device=X.device),
            )
        x, y = self._blocks[hi - lo]
        idx = perms[:, lo:hi].reshape(-1)
        torch.index_select(X, 0, idx, out=x.view(-1, X.shape[1]))
        torch.index_select(Y, 0, idx, out=y.view(-1, *Y.shape[1:]))
        return x, y

    @torch.no_grad()
    def run_epoch(
        self, perms: torch.Tensor, on_step: Callable[[], None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m, n = perms.shape
        bs = self.config.batch_size
        steps = math.ceil(n / bs)
        classification = self.data.classification
        frozen = bool(self.frozen.any())
        loss_sum = torch.zeros(m, device=self.device)
        norm_sum = torch.zeros(self.n_weights, m, device=self.device)
        row_bytes = m * self.data.X_train.shape[1] * 4
        block = bs * max(1, _GATHER_BYTES // (row_bytes * bs))  # rows gathered at once
        adam = self.optimizer.adam  # Adam runs inside the backward, layer by layer (_plan)
        step = self.optimizer.moments_of(0)["step"] if adam else None
        for s in range(steps):
            lo, hi = s * bs, min(n, (s + 1) * bs)
            if lo % block == 0:
                X, Y = self._gather(perms, lo, min(n, lo + block))
            x, y = X[:, lo % block : lo % block + hi - lo], Y[:, lo % block : lo % block + hi - lo]
            p = self._plans.get(("t", hi - lo)) or self._plan("t", hi - lo)
            torch.baddbmm(self.b[0], x, self.W[0], out=p.z[0])
            for call in p.forward:
                call()
            _loss_and_grad(p.out, y, classification, p.loss, p.g_t, p.minus_one)
            if frozen:
                p.g_t.mul_(self.mask)  # frozen (diverged) models get exactly zero gradients
            if step is not None:
                step.add_(1)
            for call in p.backward:
                call()
            torch.bmm(x.transpose(1, 2), p.gz[0], out=self.gW[0])
            for call in p.finish:
                call()
            loss_sum += p.loss
            norm_sum += p.norm
            if not adam:
                self.optimizer.step()
            on_step()
        return loss_sum / steps, (norm_sum / steps).T

    @staticmethod
    def _health(
        d: torch.Tensor, work: torch.Tensor, rows: slice = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``unit_health(d)`` for derivatives ``d`` (M, rows, units), saturation counted on the
        models ``rows`` only (0 elsewhere); overwrites ``d`` and ``work``.

        Same definitions and values (a test checks) at a third of the cost: no boolean
        temporaries (reducing or converting bool tensors is slow in ATen), |f'| in place, dead =
        max |f'| == 0 (``aminmax`` along rows is ~8x slower), saturated = the fraction of rows
        with |f'| < 0.01 above one half, the rows counted as a float32 sum of 0/1 (exact below
        2**24 rows).
        """
        a = d.abs_()
        dead = a.amax(1) == 0
        saturated = torch.zeros_like(dead)
        small = torch.lt(a[rows], SATURATION, out=work[rows])
        saturated[rows] = (small.sum(1) / a.shape[1] > MAJORITY) & ~dead[rows]
        return dead.to(torch.float32).mean(-1), saturated.to(torch.float32).mean(-1)

    @torch.no_grad()
    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs, dead, sat = [], [], []
        for c0, p in self._forward_chunks(self.data.X_val):
            outs.append(p.out.clone())
            if c0 == 0:  # unit health from the first chunk
                for z, calls in zip(p.z, p.derivative, strict=True):
                    for call in calls:
                        call()
                    dd, ss = self._health(p.d, z, self.measured)  # z: no longer needed
                    dead.append(dd)
                    sat.append(ss * self.saturation_scale)
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 2)
        return out, torch.stack(dead, 1), torch.stack(sat, 1)

    @torch.no_grad()
    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs (M, n_out, rows) on ``X`` (the test part): forward only, no unit health."""
        outs = [p.out.clone() for _, p in self._forward_chunks(X)]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 2)

    def _forward_chunks(self, X: torch.Tensor) -> Iterator[tuple[int, Any]]:
        """(first row, plan) per chunk of ``_EVAL_ROWS`` rows of ``X``, after the forward pass;
        the plan's buffers are reused by the next chunk."""
        m = len(self.mask)
        for c0 in range(0, len(X), _EVAL_ROWS):
            x = X[c0 : c0 + _EVAL_ROWS]
            p = self._plan("e", len(x))
            torch.baddbmm(self.b[0], x.expand(m, -1, -1), self.W[0], out=p.z[0])
            for call in p.forward:
                call()
            yield c0, p

    def freeze(self, rows: torch.Tensor) -> None:
        """Zero the weights and optimiser state of ``rows`` and mask their gradients from now on."""
        with torch.no_grad():
            for flat in [self.flat, *self.optimizer.moments(0)]:
                for p in self._views(flat):
                    p[rows] = 0
            self.mask[rows] = 0
            self.frozen[rows] = True

    def state(self) -> dict[str, Any]:
        return {
            "params": [p.clone() for p in self.params],
            "optimizer": self.optimizer.state_dict(),
            "mask": self.mask.clone(),
            "frozen": self.frozen.clone(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"], strict=True):
                p.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self._plans.clear()  # they hold views of the optimiser state
        self.mask.copy_(state["mask"])
        self.frozen.copy_(state["frozen"])


def _stackable(act: Activation) -> bool:
    """Whether the stacked MLP can train ``act``: it has no parameters of its own (PReLU's slope
    and a learnable Swish beta are trained by the generic path instead)."""
    return not any(True for _ in build(act).parameters())
