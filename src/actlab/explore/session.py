"""One Playground training session: a small PyTorch MLP on a 2-D data set, advanced frame by frame.

A *frame* is one epoch of mini-batch training followed by what the page draws: the decision surface
on a grid, training and validation loss and accuracy, and per hidden layer the dead and saturated
fractions (:func:`actlab.health.unit_health` on the validation rows, the rule compare and diagnose
use) and the mean weight-gradient norm over the epoch's steps. Nothing grows with the number of
frames (the page keeps the history), so a session's memory is fixed by its configuration, which
:func:`validate` bounds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from actlab import catalog, data
from actlab.compare import OPTIMIZERS
from actlab.errors import ActlabError, check_number, suggest
from actlab.health import derivative_fn, measures_saturation, unit_health
from actlab.nets import loss, mlp

# mlp, loss: the network, initialisation and loss of compare (actlab.nets); derivative_fn: the
# same f' as diagnose (catalog kernel; autograd for learnable modules). One
# definition each, reused rather than copied here.

__all__ = ["LIMITS", "PlaygroundConfig", "Session", "validate"]

# Bounds on the work one request can ask for. A 8 x 64 network with batch 4 is the slowest frame
# allowed (200 steps, ~0.2 s on a laptop core); grids above 100 x 100 add nothing visible at the
# page's ~420 px plot and cost O(grid^2) forward rows per frame.
LIMITS: dict[str, Any] = {
    "layers": (1, 8),
    "width": (1, 64),
    "batch_size": (4, 800),
    "lr": (1e-4, 3.0),
    "noise": (0.0, 2.0),
    "grid": (8, 100),
    "fps": (1, 30),
    "seed": (0, 2**31 - 1),
    # hidden biases at the start: a negative one switches ReLU units off on most rows (the
    # dying-ReLU demo); beyond +-3 on standardised inputs every unit is simply off or on
    "bias": (-3.0, 3.0),
}
DATASETS = data.SYNTHETIC  # the 2-D generated sets: the decision surface needs two features


@dataclass(frozen=True)
class PlaygroundConfig:
    dataset: str = "moons"
    noise: float = 0.2
    layers: tuple[str, ...] = ("relu", "relu")  # one canonical spec per hidden layer
    width: int = 8
    lr: float = 0.03
    optimizer: str = "sgd"
    batch_size: int = 16
    grid: int = 48
    fps: int = 20  # most frames per second streamed (the page cannot show more)
    seed: int = 0
    bias: float = 0.0  # every hidden layer's bias at the start (nets.mlp's ``bias``)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = list(self.layers)
        return out


def _echo(value: Any) -> str:
    """``repr(value)`` cut to 80 characters: errors quote untrusted input, never all of it."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(body: dict[str, Any], key: str, default: float, integer: str = "") -> Any:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        lo, hi = LIMITS[key]
        kind = "an integer" if integer else "a number"
        raise ActlabError(f"{key} must be {kind} from {lo:g} to {hi:g}, got {_echo(value)}")
    return check_number(key, value, *LIMITS[key], integer=integer)


def _int(body: dict[str, Any], key: str, default: int) -> int:
    return _number(body, key, default, integer="json")


def _float(body: dict[str, Any], key: str, default: float) -> float:
    return _number(body, key, default)


def validate(
    body: Any, activations: Mapping[str, catalog.ActivationSpec] | None = None
) -> PlaygroundConfig:
    """A :class:`PlaygroundConfig` from a JSON object; ActlabError naming the bad key otherwise.

    Layers may name built-ins, registered activations and ``activations`` (the explorer's
    start-up ones) only: a spec naming a file or module is refused without touching either
    (:func:`actlab.catalog.parse_registered`)."""
    if not isinstance(body, dict):
        raise ActlabError('the request body must be a JSON object, e.g. {"dataset": "moons"}')
    d = PlaygroundConfig()
    known = set(d.to_dict())
    unknown = sorted(set(body) - known)
    if unknown:
        raise ActlabError(
            f"unknown setting {unknown[0][:80]!r}; allowed: {', '.join(sorted(known))}"
            + suggest(unknown[0][:80], known)
        )
    dataset = body.get("dataset", d.dataset)
    if dataset not in DATASETS:
        raise ActlabError(
            f"dataset must be one of {', '.join(DATASETS)}, got {_echo(dataset)}"
            + suggest(str(dataset)[:80], DATASETS)
        )
    layers = body.get("layers", list(d.layers))
    if isinstance(layers, str):
        layers = catalog.split_specs(layers)
    lo, hi = LIMITS["layers"]
    if not isinstance(layers, list) or not lo <= len(layers) <= hi:
        raise ActlabError(
            f"layers must be a list of {lo} to {hi} activation specs (one per hidden layer), "
            f'e.g. ["relu", "tanh"]; got {_echo(layers)}'
        )
    specs = []
    for i, spec in enumerate(layers, 1):
        if not isinstance(spec, str):
            raise ActlabError(f"layer {i}: activation must be a spec string like 'elu:alpha=0.5'")
        try:
            act = catalog.parse_registered(spec, activations)
        except ActlabError as exc:
            raise ActlabError(f"layer {i}: {exc}") from None
        if not act.spec.elementwise:
            raise ActlabError(
                f"layer {i}: {act.name} is not an elementwise hidden-layer activation (the "
                "output layer's softmax is already inside the loss); choose e.g. relu or tanh"
            )
        specs.append(str(act))
    optimizer = body.get("optimizer", d.optimizer)
    if optimizer not in OPTIMIZERS:
        raise ActlabError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {_echo(optimizer)}"
        )
    return PlaygroundConfig(
        dataset=dataset,
        noise=_float(body, "noise", d.noise),
        layers=tuple(specs),
        width=_int(body, "width", d.width),
        lr=_float(body, "lr", d.lr),
        optimizer=optimizer,
        batch_size=_int(body, "batch_size", d.batch_size),
        grid=_int(body, "grid", d.grid),
        fps=_int(body, "fps", d.fps),
        seed=_int(body, "seed", d.seed),
        bias=_float(body, "bias", d.bias),
    )


def _r(values: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` significant digits for JSON (a frame is sent up to 30 times a
    second, and 4 digits are more than a chart shows); NaN/inf -> None (JSON has no NaN)."""
    if isinstance(values, (list, tuple, np.ndarray)):
        return [_r(v, digits) for v in values]
    v = float(values)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


class Session:
    """The model, optimiser and data of one Playground; :meth:`advance` trains one frame.

    Thread-safe: the stream advances it in a worker thread while the page may ask for a reset.
    """

    def __init__(
        self,
        config: PlaygroundConfig,
        activations: Mapping[str, catalog.ActivationSpec] | None = None,
    ) -> None:
        self.config = config
        self._lock = threading.Lock()
        split = data.split(data.load(config.dataset, noise=config.noise, seed=config.seed), seed=0)
        self.X_train = torch.from_numpy(split.X_train)
        self.y_train = torch.from_numpy(split.y_train)
        self.X_val = torch.from_numpy(split.X_val)
        self.y_val = torch.from_numpy(split.y_val)
        both = np.concatenate([split.X_train, split.X_val])
        pad = 0.1 * (both.max(axis=0) - both.min(axis=0))
        lo, hi = both.min(axis=0) - pad, both.max(axis=0) + pad
        self.xs = np.linspace(lo[0], hi[0], config.grid, dtype=np.float32)
        self.ys = np.linspace(lo[1], hi[1], config.grid, dtype=np.float32)
        gx, gy = np.meshgrid(self.xs, self.ys)  # row i: y = ys[i] (what a heatmap expects)
        self.grid_points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))
        self.acts = [catalog.parse_registered(s, activations) for s in config.layers]
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Fresh weights (from the seed), optimiser and counters."""
        with self._lock:
            c = self.config
            # hidden layers: each activation's recommended scheme (He with its gain, Glorot, LeCun)
            # drawn from one generator seeded by c.seed, so networks that differ only in
            # activations of the same scheme get the same draws; the output layer: Glorot
            net = mlp(
                2, c.width, 2, self.acts, "auto", seed=c.seed, bias=c.bias, output_init="glorot"
            )
            self.linears, self.modules = net[0::2], net[1::2]
            params = [*self.linears.parameters(), *self.modules.parameters()]
            make = torch.optim.Adam if c.optimizer == "adam" else torch.optim.SGD
            self.optimizer = make(params, lr=c.lr)
            self.order = torch.Generator().manual_seed(c.seed + 1)
            self.epoch = 0
            self.steps = 0
            self.diverged = False
            self.grad_norms = [math.nan] * len(self.linears)
            self.train_seconds = 0.0

    def _forward(self, x: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list]:
        pre = []
        for lin, mod in zip(self.linears[:-1], self.modules, strict=True):
            z = lin(x)
            if keep:
                pre.append(z.detach())
            x = mod(z)
        return self.linears[-1](x), pre

    # ------------------------------------------------------------------ training

    def advance(self, train: bool = True) -> dict[str, Any]:
        """Train one epoch (unless ``train`` is False or the model diverged) and return a frame."""
        with self._lock:
            if train and not self.diverged:
                self._epoch()
            return self._frame()

    def _epoch(self) -> None:
        t0 = time.perf_counter()
        n = len(self.X_train)
        perm = torch.randperm(n, generator=self.order)
        sums = [0.0] * len(self.linears)
        count = 0
        for start in range(0, n, self.config.batch_size):
            idx = perm[start : start + self.config.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            logits, _ = self._forward(self.X_train[idx])
            batch_loss = loss(logits, self.y_train[idx], True)
            batch_loss.backward()
            for i, lin in enumerate(self.linears):
                sums[i] += float(lin.weight.grad.norm())
            self.optimizer.step()
            count += 1
            if not math.isfinite(float(batch_loss.detach())):
                self.diverged = True
                break
        self.steps += count
        self.epoch += 1
        self.grad_norms = [s / max(count, 1) for s in sums]
        self.train_seconds += time.perf_counter() - t0

    @torch.no_grad()
    def _frame(self) -> dict[str, Any]:
        train_logits, _ = self._forward(self.X_train)
        with torch.enable_grad():  # PReLU / learnable Swish derivatives go through autograd
            val_logits, pre = self._forward(self.X_val, keep=True)
        dead, saturated = [], []
        for z, mod, act in zip(pre, self.modules, self.acts, strict=True):
            d = derivative_fn(mod, act)(z)
            dead_f, sat_f = unit_health(d)
            dead.append(float(dead_f))
            saturated.append(float(sat_f) if measures_saturation(act) else math.nan)
        surface_logits, _ = self._forward(self.grid_points)
        surface = torch.softmax(surface_logits, dim=1)[:, 1].reshape(len(self.ys), len(self.xs))
        train_loss = float(loss(train_logits, self.y_train, True))
        val_loss = float(loss(val_logits, self.y_val, True))
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            self.diverged = True
        return {
            "epoch": self.epoch,
            "steps": self.steps,
            "train_loss": _r(train_loss),
            "val_loss": _r(val_loss),
            "train_accuracy": _r((train_logits.argmax(1) == self.y_train).double().mean()),
            "val_accuracy": _r((val_logits.argmax(1) == self.y_val).double().mean()),
            "dead": _r(dead, 3),
            "saturated": _r(saturated, 3),
            "grad_norm": _r(self.grad_norms, 3),
            "surface": _r(surface.numpy(), 3),
            "diverged": self.diverged,
        }

    def points(self) -> dict[str, Any]:
        """The data as the page draws it (standardised, as the network sees it) and the grid."""
        return {
            "name": self.config.dataset,
            "train": {"x": _r(self.X_train.numpy(), 3), "y": self.y_train.tolist()},
            "val": {"x": _r(self.X_val.numpy(), 3), "y": self.y_val.tolist()},
            "grid_x": _r(self.xs, 4),
            "grid_y": _r(self.ys, 4),
        }
