"""One Playground training session: a small PyTorch MLP on a data set, advanced frame by frame.

A *frame* is one epoch of mini-batch training (softmax output, cross-entropy, for two classes or
more; the learning rate of the epoch's schedule) followed by what the page draws: on 2-D data the
decision surface on a grid (predicted class and its probability), training and validation loss and
accuracy (and per class), and per hidden layer the dead and saturated fractions
(:func:`actlab.health.unit_health` on the validation rows, the rule compare and diagnose use) and
the mean weight-gradient norm over the epoch's steps. Weight decay and dropout may change between
frames (:meth:`Session.set`). Nothing grows with the number of frames (the page keeps the
history), so a session's memory is fixed by its configuration, which :func:`validate` bounds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from actlab import catalog, data
from actlab.compare.config import Setting
from actlab.compare.config import settings as compare_settings
from actlab.errors import ActlabError, check_number, suggest
from actlab.health import derivative_fn, measures_saturation, unit_health
from actlab.nets import loss, mlp
from actlab.spec import Activation

# mlp, loss: the network, initialisation and loss of compare (actlab.nets); derivative_fn: the
# same f' as diagnose (catalog kernel; autograd for learnable modules). One
# definition each, reused rather than copied here.

__all__ = [
    "CHOICES",
    "LIMITS",
    "LIVE",
    "SETTINGS",
    "PlaygroundConfig",
    "Session",
    "lr_at",
    "validate",
    "validate_live",
]

_COMPARE = compare_settings()


def _compare(name: str, low: float | None = None, high: float | None = None, **kw: Any) -> Setting:
    """compare's declaration of ``name`` (actlab.compare.config) with the explorer's own bounds:
    inclusive here (:func:`actlab.errors.check_number`), and one value, not a list."""
    bounds = {} if low is None else {"low": low, "high": high}
    return replace(_COMPARE[name][2], listable=False, **bounds, **kw)


SCHEDULES = ("constant", "step", "cosine")
# The settings a request may give, each declared once: compare's where it has the setting (its
# help, kind and choices; the explorer's bounds), the explorer's own otherwise. Bounds on the work
# one request can ask for: a 8 x 64 network with batch 4 is the slowest frame allowed (200 steps,
# ~0.2 s on a laptop core; digits: 360 steps); grids above 100 x 100 add nothing visible at the
# page's ~420 px plot and cost O(grid^2) forward rows per frame.
SETTINGS: dict[str, Setting] = {
    "layers": _compare("depth", 1, 8),
    "width": _compare("width", 1, 64),
    "batch_size": _compare("batch_size", 4, 800),
    "lr": _compare("lr", 1e-4, 3.0, open_low=False),
    "optimizer": _compare("optimizer"),
    "weight_decay": _compare("weight_decay", 0.0, 0.5),
    "init": _compare("init"),
    "noise": _compare("noise", 0.0, 2.0, help="noise of the 2-D data sets (digits has none)"),
    "seed": _compare("split_seed", 0, 2**31 - 1, help="seed of the data, weights, batch order"),
    "grid": Setting("points per side of the decision surface", "int", 8, 100),
    "fps": Setting("most frames per second streamed", "int", 1, 30),
    "dropout": Setting("share of hidden units dropped in each training step", "float", 0.0, 0.9),
    "schedule": Setting("learning-rate schedule over epochs", "choice", choices=SCHEDULES),
    "schedule_epochs": Setting("step: epochs per step; cosine: epochs to 0", "int", 1, 1000),
    "schedule_gamma": Setting("step: the factor at each step", "float", 0.01, 1.0),
    # a negative one switches ReLU units off on most rows (the Twins' dying-units preset); beyond
    # +-3 on standardised inputs every unit is simply off or on
    "bias": Setting("every hidden layer's bias at the start", "float", -3.0, 3.0),
}
LIMITS: dict[str, tuple[float, float]] = {
    k: (s.low, s.high)
    for k, s in SETTINGS.items()
    if s.kind in ("int", "float") and s.low is not None and s.high is not None
}
CHOICES: dict[str, tuple[str, ...]] = {
    k: s.choices for k, s in SETTINGS.items() if s.kind == "choice" and s.choices
}
LIVE = ("weight_decay", "dropout")  # what a running session may change (Session.set)
DATASETS = (*data.SYNTHETIC, "digits")  # the 2-D generated sets (a surface), and 64-D digits


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
    init: str = "auto"  # each activation's recommended scheme (actlab.nets.init_scheme)
    weight_decay: float = 0.0
    dropout: float = 0.0
    schedule: str = "constant"
    schedule_epochs: int = 100
    schedule_gamma: float = 0.5
    bias: float = 0.0  # every hidden layer's bias at the start (nets.mlp's ``bias``)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["layers"] = list(self.layers)
        return out


def _echo(value: Any) -> str:
    """``repr(value)`` cut to 80 characters: errors quote untrusted input, never all of it."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read(body: dict[str, Any], key: str, default: Any) -> Any:
    """``body[key]`` (``default`` when absent) checked against its declaration in SETTINGS."""
    s = SETTINGS[key]
    value = body.get(key, default)
    if s.kind == "choice":
        assert s.choices is not None
        if not isinstance(value, str) or value not in s.choices:
            raise ActlabError(
                f"{key} must be one of {', '.join(s.choices)}, got {_echo(value)}"
                + suggest(str(value)[:80], s.choices)
            )
        return value
    integer = "json" if s.kind == "int" else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise ActlabError(f"{key} must be {kind} from {s.low:g} to {s.high:g}, got {_echo(value)}")
    return check_number(key, value, s.low, s.high, integer=integer)


def validate_live(body: Any) -> dict[str, float]:
    """The settings of ``{"action": "set", "weight_decay": .., "dropout": ..}``: only those a
    running session may change (:data:`LIVE`), each within its bounds."""
    if not isinstance(body, dict):
        raise ActlabError(
            'give the new values as a JSON object, e.g. {"action": "set", "dropout": 0.2}'
        )
    keys = sorted(set(body) - {"action"})
    wrong = [k for k in keys if k not in LIVE]
    if wrong or not keys:
        got = f"; got {_echo(wrong[0])} (change it by starting a new session)" if wrong else ""
        raise ActlabError(
            f"a running session changes only {' and '.join(LIVE)}, e.g. "
            f'{{"action": "set", "weight_decay": 0.01}}{got}'
        )
    return {k: _read(body, k, None) for k in keys}


def hidden_activation(
    spec: str, activations: Mapping[str, catalog.ActivationSpec] | None, where: str
) -> Activation:
    """An untrusted spec as an elementwise hidden-layer activation (names only: built-ins,
    registered and start-up ones); ActlabError prefixed with ``where`` otherwise."""
    try:
        act = catalog.parse_registered(spec, activations)
    except ActlabError as exc:
        raise ActlabError(f"{where}: {exc}") from None
    if not act.spec.elementwise:
        raise ActlabError(
            f"{where}: {act.name} is not an elementwise hidden-layer activation (the output "
            "layer's softmax is already inside the loss); choose e.g. relu or tanh"
        )
    return act


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
    lo, hi = (int(b) for b in LIMITS["layers"])
    if not isinstance(layers, list) or not lo <= len(layers) <= hi:
        raise ActlabError(
            f"layers must be a list of {lo} to {hi} activation specs (one per hidden layer), "
            f'e.g. ["relu", "tanh"]; got {_echo(layers)}'
        )
    specs = []
    for i, spec in enumerate(layers, 1):
        if not isinstance(spec, str):
            raise ActlabError(f"layer {i}: activation must be a spec string like 'elu:alpha=0.5'")
        specs.append(str(hidden_activation(spec, activations, f"layer {i}")))
    given = {
        k: _read(body, k, v) for k, v in d.to_dict().items() if k in SETTINGS and k != "layers"
    }
    return PlaygroundConfig(**{**given, "dataset": dataset, "layers": tuple(specs)})


def lr_at(config: PlaygroundConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0: the first trained) under ``config.schedule``:
    constant; step (times ``schedule_gamma`` every ``schedule_epochs``); cosine (from ``lr`` to 0
    over ``schedule_epochs``, then 0)."""
    c = config
    if c.schedule == "step":
        return c.lr * c.schedule_gamma ** (epoch // c.schedule_epochs)
    if c.schedule == "cosine":
        done = min(epoch, c.schedule_epochs) / c.schedule_epochs
        return c.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    return c.lr


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
        noise = config.noise if config.dataset in data.SYNTHETIC else None  # digits has none
        split = data.split(data.load(config.dataset, noise=noise, seed=config.seed), seed=0)
        self.X_train = torch.from_numpy(split.X_train)
        self.y_train = torch.from_numpy(split.y_train)
        self.X_val = torch.from_numpy(split.X_val)
        self.y_val = torch.from_numpy(split.y_val)
        self.n_classes = split.n_classes
        self.planar = split.X_train.shape[1] == 2  # a decision surface needs two features
        self.xs = self.ys = self.grid_points = None
        if self.planar:
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
        """Fresh weights (from the seed), optimiser and counters; weight decay and dropout as
        last set."""
        with self._lock:
            c = self.config
            # hidden layers: the chosen scheme ("auto": each activation's recommended one), all
            # drawn from one generator seeded by c.seed (twins with activations of one scheme get
            # the same draws); hidden biases c.bias; the output layer: Glorot
            net = mlp(self.X_train.shape[1], c.width, self.n_classes, self.acts, c.init,
                      seed=c.seed, bias=c.bias, output_init="glorot")  # fmt: skip
            self.linears, self.modules = net[0::2], net[1::2]
            params = [*self.linears.parameters(), *self.modules.parameters()]
            make = torch.optim.Adam if c.optimizer == "adam" else torch.optim.SGD
            self.optimizer = make(params, lr=lr_at(c, 0), weight_decay=c.weight_decay)
            self.order = torch.Generator().manual_seed(c.seed + 1)
            self.drop = torch.Generator().manual_seed(c.seed + 2)  # dropout masks, in order
            self.epoch = 0
            self.steps = 0
            self.lr = lr_at(c, 0)
            self.diverged = False
            self.grad_norms = [math.nan] * len(self.linears)
            self.train_seconds = 0.0
            self.init_preactivations = self._histograms()

    def set(self, **changes: float) -> None:
        """Change weight decay and/or dropout (:data:`LIVE`, validated by :func:`validate_live`)
        from the next step on, without resetting anything."""
        with self._lock:
            self.config = replace(self.config, **changes)
            for group in self.optimizer.param_groups:
                group["weight_decay"] = self.config.weight_decay

    def _forward(
        self, x: torch.Tensor, keep: bool = False, train: bool = False
    ) -> tuple[torch.Tensor, list]:
        pre = []
        p = self.config.dropout
        for lin, mod in zip(self.linears[:-1], self.modules, strict=True):
            z = lin(x)
            if keep:
                pre.append(z.detach())
            x = mod(z)
            if train and p > 0:  # inverted dropout with the session's own generator
                x = x * (torch.rand(x.shape, generator=self.drop) >= p) / (1.0 - p)
        return self.linears[-1](x), pre

    @torch.no_grad()
    def _histograms(self, bins: int = 40) -> list[dict[str, Any]]:
        """Each hidden layer's pre-activations on the training rows, now (at initialisation):
        counts over ``bins`` equal bins of [-R, R], R the 99.5th percentile of |z| (at least 1;
        values beyond fall in the end bins), with their mean and standard deviation."""
        _, pre = self._forward(self.X_train, keep=True)
        out = []
        for z, act in zip(pre, self.acts, strict=True):
            v = z.double().ravel()
            edge = max(1.0, float(torch.quantile(v.abs()[:100_000], 0.995)))
            counts = torch.histc(v.clamp(-edge, edge), bins=bins, min=-edge, max=edge)
            out.append({
                "activation": act.name,
                "edges": _r(np.linspace(-edge, edge, bins + 1), 4),
                "counts": [int(c) for c in counts.tolist()],
                "mean": _r(float(v.mean())),
                "std": _r(float(v.std())),
            })  # fmt: skip
        return out

    # ------------------------------------------------------------------ training

    def advance(self, train: bool = True) -> dict[str, Any]:
        """Train one epoch (unless ``train`` is False or the model diverged) and return a frame."""
        with self._lock:
            if train and not self.diverged:
                self._epoch()
            return self._frame()

    def _epoch(self) -> None:
        t0 = time.perf_counter()
        self.lr = lr_at(self.config, self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        n = len(self.X_train)
        perm = torch.randperm(n, generator=self.order)
        sums = [0.0] * len(self.linears)
        count = 0
        for start in range(0, n, self.config.batch_size):
            idx = perm[start : start + self.config.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            logits, _ = self._forward(self.X_train[idx], train=True)
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
        train_loss = float(loss(train_logits, self.y_train, True))
        val_loss = float(loss(val_logits, self.y_val, True))
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            self.diverged = True
        hits = (val_logits.argmax(1) == self.y_val).double()
        per_class = torch.zeros(self.n_classes, dtype=torch.float64).index_add_(0, self.y_val, hits)
        per_class /= torch.bincount(self.y_val, minlength=self.n_classes).clamp(min=1)
        frame = {
            "epoch": self.epoch,
            "steps": self.steps,
            "lr": _r(self.lr),  # of the epoch just trained (epoch 0: of the first to come)
            "weight_decay": self.config.weight_decay,
            "dropout": self.config.dropout,
            "train_loss": _r(train_loss),
            "val_loss": _r(val_loss),
            "train_accuracy": _r((train_logits.argmax(1) == self.y_train).double().mean()),
            "val_accuracy": _r(hits.mean()),
            "class_accuracy": _r(per_class.numpy(), 3),
            "dead": _r(dead, 3),
            "saturated": _r(saturated, 3),
            "grad_norm": _r(self.grad_norms, 3),
            "surface": None,
            "diverged": self.diverged,
        }
        if self.grid_points is not None:
            probs = torch.softmax(self._forward(self.grid_points)[0], dim=1)
            shape = (len(self.ys), len(self.xs))
            if self.n_classes == 2:  # P(class 1): the class and how sure, in one number
                frame["surface"] = _r(probs[:, 1].reshape(shape).numpy(), 3)
            else:  # the predicted class and its probability at each point
                confidence, winner = probs.max(dim=1)
                frame["surface_class"] = winner.reshape(shape).tolist()
                frame["surface_confidence"] = _r(confidence.reshape(shape).numpy(), 3)
        return frame

    def _horizon(self) -> int:
        """Epochs that show a schedule's shape: constant 50; step 6 steps; cosine twice its
        length (it stays at 0 after); 10 to 1000."""
        c = self.config
        n = {"constant": 50, "step": 6 * c.schedule_epochs}.get(c.schedule, 2 * c.schedule_epochs)
        return max(10, min(1000, n))

    def points(self) -> dict[str, Any]:
        """The data as the page draws it (standardised, as the network sees it), the grid, and
        each hidden layer's pre-activations at initialisation."""
        out: dict[str, Any] = {
            "name": self.config.dataset,
            "classes": self.n_classes,
            "features": int(self.X_train.shape[1]),
            "planar": self.planar,
            "preactivations": self.init_preactivations,
            # the schedule's learning rate over enough epochs to show its shape (at most 1000)
            "lr_plan": _r([lr_at(self.config, e) for e in range(self._horizon())]),
        }
        if not self.planar:
            out["note"] = (
                f"{self.config.dataset} has {int(self.X_train.shape[1])} features, not 2: there "
                "is no plane to draw a decision surface on, so the accuracy per class, the loss "
                "and the units' health show how it learns"
            )
            return out
        return {
            **out,
            "train": {"x": _r(self.X_train.numpy(), 3), "y": self.y_train.tolist()},
            "val": {"x": _r(self.X_val.numpy(), 3), "y": self.y_val.tolist()},
            "grid_x": _r(self.xs, 4),
            "grid_y": _r(self.ys, 4),
        }
