"""The hook monitor: running per-unit counts and weight-gradient norms while a model trains.

Forward hooks on every activation module (whatever :func:`actlab.torch.identify` recognises,
user subclasses included, plus leaf modules named after a catalog entry or passed as ``extra``)
keep running *per-unit counts*; tensor hooks on every Linear/Conv weight see the gradient of each
backward pass before it is accumulated into ``.grad``, so gradient accumulation and any
``zero_grad`` pattern give the same per-pass norms. Only small statistics are kept (no
activations, no autograd graphs), and the histograms over time have a fixed number of rows, so
memory stays flat over any number of batches.

Definitions (:mod:`actlab.health`, shared with compare, plot and explore): a unit is *dead* when
f'(pre-activation) is exactly 0 for every sample seen (for ReLU: output exactly 0); *saturated*
when |f'| < 0.01 for more than half of the samples without being dead. For conv layers a unit is a
channel.
Verdict thresholds are the constants below and are printed with every verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from actlab.catalog import get
from actlab.diagnose.report import ActivationLayer, Report, WeightLayer, _verdicts
from actlab.errors import ActlabError, UnknownActivationError
from actlab.health import MAJORITY, SATURATION, derivative_fn, measures_saturation
from actlab.torch import identify, is_activation

BINS = 40  # histogram bins per activation layer
HISTORY = 128  # histogram rows kept; when full, neighbouring rows merge (memory stays fixed)

FUNCTIONAL_NOTE = (
    "the model has {n} Linear/Conv layer(s) but no activation module that can be hooked: "
    "activations called as functions inside forward() (F.relu, torch.sigmoid, x.relu()) are "
    "invisible to hooks, so dead/saturated units and histograms cannot be measured. Make them "
    "modules (e.g. self.act = actlab.torch.build('relu'), or nn.ReLU()); actlab.torch.swap(model, "
    "to=...) can then change them all at once. Gradient norms below are still measured."
)

# Layers whose weight gradients are measured (explicit list: _ConvNd is private).
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


# --- monitor ------------------------------------------------------------------------------------


class _History:
    """Histogram rows over time in a fixed buffer: when it is full, neighbouring rows merge."""

    def __init__(self, rows: int, bins: int, device: torch.device) -> None:
        # counts; MPS has no float64 (float32 counts are exact below 2**24 per bin)
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self.buf = torch.zeros(rows, bins, dtype=dtype, device=device)
        self.row, self.fill, self.stride = 0, 0, 1

    def add(self, counts: torch.Tensor) -> None:
        if self.fill == self.stride:
            self.row, self.fill = self.row + 1, 0
            if self.row == self.buf.shape[0]:
                half = self.buf.shape[0] // 2
                self.buf[:half] = self.buf[0::2] + self.buf[1::2]
                self.buf[half:] = 0
                self.row, self.stride = half, self.stride * 2
        self.buf[self.row] += counts
        self.fill += 1

    def widen(self, upward: bool) -> None:
        """Double the value range, keeping the counts exact: neighbouring bins merge pairwise
        into one half of the buffer and the other half (the new values' side) starts empty."""
        half = self.buf.shape[1] // 2
        merged = self.buf[:, 0::2] + self.buf[:, 1::2]
        self.buf.zero_()
        if upward:
            self.buf[:, :half] = merged
        else:
            self.buf[:, half:] = merged

    def rows(self) -> np.ndarray:
        used = self.row + (1 if self.fill else 0)
        return self.buf[:used].cpu().numpy()


def _units_last(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """View as (samples, units): 0-d/1-d inputs are one sample; else ``unit_dim`` becomes units."""
    if t.ndim <= 1:
        return t.reshape(1, -1)
    if t.ndim == 2:
        return t
    return t.movedim(unit_dim, -1).reshape(-1, t.shape[unit_dim])


class _Site:
    """Running statistics of one activation call site (a module, or a shared module's k-th call)."""

    def __init__(
        self,
        name: str,
        label: str,
        order: int,
        units: int,
        unit_dim: int,
        derivative: Callable[[torch.Tensor], torch.Tensor] | None,
        saturation: bool,
        bounds: tuple[float, float],
        monitor: Monitor,
    ) -> None:
        self.name, self.label, self.order = name, label, order
        self.units, self.unit_dim = units, unit_dim
        self.derivative, self.saturation, self.bounds = derivative, saturation, bounds
        self.monitor = monitor  # for the saturation rule and histogram settings
        self.samples = 0  # per unit, for the derivative counts
        self.nonzero: torch.Tensor | None = None  # per unit: samples with f' != 0
        self.small: torch.Tensor | None = None  # per unit: samples with |f'| < threshold
        self.unknown = False  # some batch's pre-activation was unavailable
        self.count, self.mean, self.m2 = 0, 0.0, 0.0  # outputs, Chan's parallel moments
        self.nonfinite = 0
        self.edges: tuple[float, float] | None = None
        self.history: _History | None = None

    def update(self, pre: torch.Tensor | None, out: torch.Tensor) -> None:
        y = out.detach()
        self._moments(y)
        self._histogram(y)
        if self.derivative is None:
            return
        if pre is None:
            self.unknown = True
            return
        d = _units_last(self.derivative(pre.detach()), self.unit_dim)
        if self.nonzero is None:
            self.nonzero = torch.zeros(self.units, dtype=torch.int64, device=d.device)
            self.small = torch.zeros(self.units, dtype=torch.int64, device=d.device)
        self.samples += d.shape[0]
        self.nonzero += (d != 0).sum(dim=0)
        self.small += (d.abs() < self.monitor.threshold).sum(dim=0)

    def _moments(self, y: torch.Tensor) -> None:
        n = y.numel()
        if n == 0:
            return
        y64 = y.to(torch.float64)
        finite = torch.isfinite(y64)
        bad = int(n - finite.sum())
        if bad:
            self.nonfinite += bad
            y64 = y64[finite]
            n -= bad
            if n == 0:
                return
        mean = float(y64.mean())
        m2 = float(((y64 - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def _histogram(self, y: torch.Tensor) -> None:
        y = y.to(torch.float32)
        if self.edges is None:
            self.edges = self._range(y)
            self.history = _History(self.monitor.history, self.monitor.bins, y.device)
        lo, hi = self.edges
        if self.monitor.hist_range is None:  # grow an unbounded side, don't pile up at an edge
            finite = y[torch.isfinite(y)]
            if finite.numel():
                top, bottom = float(finite.max()), float(finite.min())
                for _ in range(64):  # 2**64 times the first range covers every float32
                    if top > hi and not math.isfinite(self.bounds[1]):
                        hi = lo + 2 * (hi - lo)
                        self.history.widen(upward=True)
                    elif bottom < lo and not math.isfinite(self.bounds[0]):
                        lo = hi - 2 * (hi - lo)
                        self.history.widen(upward=False)
                    else:
                        break
                self.edges = (lo, hi)
        bins = self.monitor.bins
        counts = torch.histc(y.clamp(lo, hi), bins=bins, min=lo, max=hi)  # NaN is skipped
        assert self.history is not None
        self.history.add(counts.to(torch.float64))

    def _range(self, y: torch.Tensor) -> tuple[float, float]:
        # Fixed for the site's lifetime so that rows compare: the output range where bounded,
        # otherwise twice the first batch's extreme on that side (at least 1), doubled later
        # whenever outputs outgrow it (see _History.widen).
        if self.monitor.hist_range is not None:
            return self.monitor.hist_range
        finite = y[torch.isfinite(y)]
        top = float(finite.max()) if finite.numel() else 1.0
        bottom = float(finite.min()) if finite.numel() else -1.0
        lo, hi = self.bounds
        if not math.isfinite(hi):
            hi = max(2.0 * top, 1.0) if top > 0 else 1.0
        if not math.isfinite(lo):
            lo = min(2.0 * bottom, -1.0) if bottom < 0 else (0.0 if hi > 0 else -1.0)
        return (lo, hi) if hi > lo else (lo, lo + 1.0)

    def result(self) -> ActivationLayer:
        dead = saturated = None
        if self.nonzero is not None and self.small is not None and not self.unknown:
            is_dead = self.nonzero == 0
            dead = float(is_dead.double().mean())
            if self.saturation:
                frac = self.small.double() / max(self.samples, 1)
                saturated = float(((frac > self.monitor.majority) & ~is_dead).double().mean())
        std = math.sqrt(self.m2 / self.count) if self.count else float("nan")
        lo, hi = self.edges or (0.0, 1.0)
        bins = self.monitor.bins
        hist = self.history.rows() if self.history is not None else np.zeros((0, bins))
        return ActivationLayer(
            name=self.name,
            activation=self.label,
            units=self.units,
            samples=self.samples,
            mean=self.mean if self.count else float("nan"),
            std=std,
            dead_fraction=dead,
            saturated_fraction=saturated,
            hist_edges=np.linspace(lo, hi, bins + 1),
            hist=hist,
            hist_stride=self.history.stride if self.history is not None else 1,
            nonfinite=self.nonfinite,
        )

    def nbytes(self) -> int:
        size = 0
        for t in (self.nonzero, self.small, self.history.buf if self.history else None):
            if t is not None:
                size += t.numel() * t.element_size()
        return size


class _Weights:
    """Per-backward-pass gradient norms of one weight tensor."""

    def __init__(self, name: str, module: nn.Module, order: int) -> None:
        self.name, self.type, self.order = name, type(module).__name__, order
        self.shape = tuple(module.weight.shape)
        self.steps = 0
        self.total = 0.0
        self.last: float | None = None
        self.hooked = False

    def add(self, grad: torch.Tensor) -> None:
        norm = float(torch.linalg.vector_norm(grad.detach(), dtype=torch.float64))
        self.steps += 1
        self.total += norm
        self.last = norm

    @property
    def mean(self) -> float | None:
        return self.total / self.steps if self.steps else None


def _catalog_for(module: nn.Module) -> tuple[Any, str] | None:
    """(Activation or None, label) when ``module`` is an activation, else None."""
    if is_activation(module):
        try:
            act = identify(module)
        except ActlabError:  # e.g. a LeakyReLU slope the catalog rejects: still hook it
            return None, type(module).__name__
        # nn.Identity is mostly a placeholder (a switched-off norm or head), not an activation
        return None if act is None or act.name == "identity" else (act, str(act))
    # a leaf module named after a catalog entry (class Swish(nn.Module), class Mish(...)):
    # the user's own activation; its derivative comes from autograd, not the catalog
    if not any(True for _ in module.children()):
        try:
            spec = get(type(module).__name__)
        except UnknownActivationError:
            return None
        if spec.elementwise and spec.name != "identity":
            return None, f"{type(module).__name__} (user module)"
    return None


class Monitor:
    """Context manager that hooks a model's activations and weight layers; see the module doc.

    Parameters: ``extra`` - module types or instances to treat as (elementwise) activations as well,
    for activations you wrote whose class name is not a catalog name; ``threshold``/``majority`` -
    the saturation rule; ``bins`` and ``hist_range`` - the output histograms (``(lo, hi)`` fixes
    the bins, default: the activation's output range, or twice the first batch's extreme where it
    is unbounded, doubled whenever later outputs pass it; ``bins`` must be even); ``history`` -
    histogram rows kept over time (pairs merge when full); ``unit_dim`` - which axis of a >=3-D
    activation holds the units (default: 1, the channels, after a Conv; the last axis after a
    Linear).

    Saturation is measured for activations bounded on both sides (sigmoid, tanh, softsign, relu6,
    hard_sigmoid) and for user modules; for one-sided ones (ReLU, ELU, GELU, ...) the flat side is
    sparsity, and its harmful extreme is what ``dead`` measures.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        extra: Iterable[type[nn.Module] | nn.Module] = (),
        threshold: float = SATURATION,
        majority: float = MAJORITY,
        bins: int = BINS,
        hist_range: tuple[float, float] | None = None,
        history: int = HISTORY,
        unit_dim: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ActlabError(f"Monitor needs a torch.nn.Module, got {type(model).__name__}")
        if not (isinstance(threshold, (int, float)) and 0 < threshold < math.inf):
            raise ActlabError(
                f"threshold must be a positive number such as 0.01, got {threshold!r}"
            )
        if not (isinstance(majority, (int, float)) and 0 <= majority < 1):
            raise ActlabError(f"majority must be in [0, 1), e.g. 0.5; got {majority!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2 or bins % 2:
            # even: a growing range merges neighbouring bins pairwise
            raise ActlabError(f"bins must be an even integer >= 2, got {bins!r}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 2 or history % 2:
            raise ActlabError(f"history must be an even integer >= 2, got {history!r}")
        if hist_range is not None:
            lo, hi = (float(v) for v in hist_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ActlabError(
                    f"hist_range must be two finite numbers lo < hi, got {hist_range!r}"
                )
            hist_range = (lo, hi)
        if unit_dim is not None and (isinstance(unit_dim, bool) or not isinstance(unit_dim, int)):
            raise ActlabError(f"unit_dim must be an axis number such as 1 or -1, got {unit_dim!r}")
        self.model = model
        self.threshold, self.majority = float(threshold), float(majority)
        self.bins, self.hist_range, self.history = bins, hist_range, history
        self.unit_dim = unit_dim
        extra = tuple(extra)
        for e in extra:
            if not (isinstance(e, nn.Module) or (isinstance(e, type) and issubclass(e, nn.Module))):
                raise ActlabError(
                    f"extra takes nn.Module types or instances, got {e!r}; "
                    "e.g. Monitor(model, extra=[MyActivation])"
                )

        # what to hook, found once: (path, module, Activation | None, label)
        self._acts: list[tuple[str, nn.Module, Any, str]] = []
        self._weight_modules: list[tuple[str, nn.Module]] = []
        for path, module in model.named_modules():
            name = path or type(module).__name__
            if isinstance(module, WEIGHT_TYPES):
                self._weight_modules.append((name, module))
                continue
            found = _catalog_for(module)
            if found is None and any(
                module is e or (isinstance(e, type) and isinstance(module, e)) for e in extra
            ):
                found = (None, f"{type(module).__name__} (user module)")
            if found is not None:
                self._acts.append((name, module, *found))

        self._handles: list[Any] = []
        self._sites: dict[tuple[int, int, int], _Site] = {}
        self._weights: dict[int, _Weights] = {}
        self._pending: dict[int, torch.Tensor] = {}  # input clones of modules that write in place
        self._aliases: dict[int, bool] = {}  # module id -> did its output overwrite its input?
        self._calls: dict[int, int] = {}  # calls of each module in the current forward pass
        self._order = itertools.count()
        self._after = "conv"  # kind of the last weight layer run: tells where the units are
        self._forwards = 0
        self._in_forward = False
        self.active = False

    # context management -----------------------------------------------------------------------

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Register the hooks (``with Monitor(...)`` does this); statistics carry on from before."""
        if self.active:
            raise ActlabError("this Monitor is already running; use one `with` block at a time")
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._root_pre))
            self._handles.append(
                self.model.register_forward_hook(self._root_post, always_call=True)
            )
            for name, module, act, label in self._acts:
                self._handles.append(module.register_forward_pre_hook(self._act_pre))
                self._handles.append(
                    module.register_forward_hook(self._act_hook(name, module, act, label))
                )
            for name, module in self._weight_modules:
                self._handles.append(module.register_forward_hook(self._weight_hook(name)))
        except BaseException:
            self.stop()
            raise
        self.active = True

    def stop(self) -> None:
        """Remove every hook (also the gradient hooks); ``__exit__`` calls it, even after errors."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pending.clear()
        self._in_forward = False
        for w in self._weights.values():
            w.hooked = False
        self.active = False

    def reset(self) -> None:
        """Forget the statistics gathered so far (hooks stay as they are)."""
        self._sites.clear()
        for w in self._weights.values():
            w.steps, w.total, w.last = 0, 0.0, None
        self._forwards = 0

    # hooks ----------------------------------------------------------------------------------------

    def _root_pre(self, module: nn.Module, args: Any) -> None:
        self._calls.clear()
        self._in_forward = True
        self._forwards += 1

    def _root_post(self, module: nn.Module, args: Any, output: Any) -> None:
        self._in_forward = False

    def _act_pre(self, module: nn.Module, args: Any) -> None:
        # A module that writes into its input (ReLU(inplace=True)) leaves only the output for the
        # forward hook, so keep a copy of the input; after the first call, only where needed.
        if args and isinstance(args[0], torch.Tensor) and self._aliases.get(id(module), True):
            self._pending[id(module)] = args[0].detach().clone()

    def _act_hook(self, name: str, module: nn.Module, act: Any, label: str) -> Callable:
        derivative = derivative_fn(module, act)
        bounds = act.spec.output_range if act is not None else (-math.inf, math.inf)
        saturation = measures_saturation(act)

        def hook(mod: nn.Module, args: Any, output: Any) -> None:
            key = id(mod)
            saved = self._pending.pop(key, None)
            # k-th call of this module in the current forward pass; a call outside the model's
            # own forward (model.block(x)) counts as the first, so sites stay bounded
            k = self._calls.get(key, 0) if self._in_forward else 0
            self._calls[key] = k + 1
            if not (
                args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor)
            ):
                return
            inp = args[0]
            aliased = output.untyped_storage().data_ptr() == inp.untyped_storage().data_ptr()
            self._aliases[key] = aliased
            pre = (saved if aliased else inp) if output.shape == inp.shape else None
            dim = self.unit_dim
            if dim is None:  # channels after a Conv, the last axis after a Linear
                dim = 1 if self._after == "conv" else -1
            units = 1 if output.ndim == 0 else int(output.shape[-1 if output.ndim <= 2 else dim])
            site = self._sites.get((key, k, units))
            if site is None:
                shown = name if k == 0 else f"{name}#{k}"
                order = next(self._order)
                site = _Site(shown, label, order, units, dim, derivative, saturation, bounds, self)
                self._sites[(key, k, units)] = site
            with torch.no_grad():
                site.update(pre, output)

        return hook

    def _weight_hook(self, name: str) -> Callable:
        def hook(mod: nn.Module, args: Any, output: Any) -> None:
            self._after = "linear" if isinstance(mod, nn.Linear) else "conv"
            w = self._weights.get(id(mod))
            if w is None:
                w = self._weights[id(mod)] = _Weights(name, mod, next(self._order))
            weight = mod.weight
            # hook the weight tensor itself: it sees each backward pass's gradient before
            # accumulation into .grad, so zero_grad patterns and accumulation do not matter
            if not w.hooked and weight.requires_grad and not _uninitialised(weight):
                self._handles.append(weight.register_hook(_grad_hook(w)))
                w.hooked = True

        return hook

    # results --------------------------------------------------------------------------------------

    def watched(self) -> dict[str, list[str]]:
        """Names of the modules this monitor hooks: {"activations": [...], "weights": [...]}."""
        if not (self._acts or self._weight_modules):
            return {}
        return {
            "activations": [name for name, *_ in self._acts],
            "weights": [name for name, _ in self._weight_modules],
        }

    def nbytes(self) -> int:
        """Bytes of tensor state held (per-unit counts and histogram buffers): flat over batches."""
        return sum(s.nbytes() for s in self._sites.values()) + sum(
            t.numel() * t.element_size() for t in self._pending.values()
        )

    def report(self) -> Report:
        acts = [s.result() for s in self._sites.values()]
        order = {id(a): s.order for a, s in zip(acts, self._sites.values(), strict=True)}
        ws = sorted(self._weights.values(), key=lambda w: w.order)
        last = next((w.mean for w in reversed(ws) if w.mean is not None), None)
        weights = [
            WeightLayer(
                name=w.name,
                type=w.type,
                shape=w.shape,
                steps=w.steps,
                grad_norm=w.mean,
                last_grad_norm=w.last,
                ratio_to_last=(
                    w.mean / last if w.mean is not None and last and math.isfinite(last) else None
                ),
            )
            for w in ws
        ]
        for w, src in zip(weights, ws, strict=True):
            order[id(w)] = src.order
        layers = tuple(sorted([*acts, *weights], key=lambda x: order[id(x)]))
        return Report(
            layers=layers,
            verdicts=tuple(_verdicts(acts, weights)),
            notes=tuple(self._notes(acts, weights)),
            forwards=self._forwards,
            backwards=ws[-1].steps if ws else 0,
        )

    def _notes(self, acts: list[ActivationLayer], weights: list[WeightLayer]) -> list[str]:
        notes = []
        n_weight = len(self._weight_modules)
        if n_weight and not self._acts:
            notes.append(FUNCTIONAL_NOTE.format(n=n_weight))
        elif self._acts and not acts and weights:
            names = ", ".join(sorted({n for n, *_ in self._acts}))
            notes.append(
                f"activation module(s) {names} never ran although the weight layers did: forward() "
                "probably calls activations as functions (F.relu); see actlab.torch.build/swap"
            )
        if not self._acts and not n_weight:
            notes.append(
                "nothing to monitor: the model has no activation modules and no Linear/Conv layers"
            )
        if self._forwards == 0:
            notes.append(
                "no forward pass was seen: run the model inside the `with Monitor(...)` block"
            )
        elif weights and all(w.steps == 0 for w in weights):
            notes.append(
                "no gradient was seen: call loss.backward() inside the `with` block "
                "(gradient norms and the vanishing/exploding verdicts need it)"
            )
        for a in acts:
            if a.nonfinite:
                notes.append(f"{a.name}: {a.nonfinite} NaN/inf outputs (left out of mean/std)")
        return notes


def _uninitialised(t: torch.Tensor) -> bool:
    return isinstance(t, nn.parameter.UninitializedParameter)


def _grad_hook(w: _Weights) -> Callable[[torch.Tensor], None]:
    def hook(grad: torch.Tensor) -> None:
        w.add(grad)

    return hook
