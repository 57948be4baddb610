"""What a diagnosis found: per-layer records and verdicts against the thresholds, as plain data.

The thresholds and the advice that goes with each problem live here; showing a :class:`Report`
(rich table, figures) is :mod:`actlab.diagnose.display`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from actlab import _notebook as nb
from actlab.health import MAJORITY, SATURATION

VANISHING = 1e-2  # first/last weight-gradient norm ratio below this: vanishing gradients
EXPLODING = 1e2  # ... above this: exploding gradients
DEAD = 0.10  # more than this fraction of a layer's units dead: a problem
SATURATED = 0.50  # more than this fraction saturated: a problem

THRESHOLDS: dict[str, str] = {
    "vanishing": f"first/last weight-gradient norm ratio < {VANISHING:g}",
    "exploding": f"first/last weight-gradient norm ratio > {EXPLODING:g}, or a non-finite gradient",
    "dead": f"more than {DEAD:.0%} of a layer's units have f' = 0 on every sample",
    "saturated": f"more than {SATURATED:.0%} of a layer's units have |f'| < {SATURATION:g} "
    f"on more than {MAJORITY:.0%} of the samples",
}

# What fixes each problem. Kept short and local: the advice module answers "which activation",
# these answer "what to change in this model".
ADVICE: dict[str, str] = {
    "vanishing": "use ReLU-family activations (ReLU, LeakyReLU, ELU) with He (Kaiming) "
    "initialisation in hidden layers, add normalisation (BatchNorm/LayerNorm) or residual "
    "connections; a sigmoid multiplies the gradient by at most 0.25 per layer",
    "exploding": "lower the learning rate, clip the gradient norm "
    "(torch.nn.utils.clip_grad_norm_), use He/Glorot initialisation rather than a larger scale, "
    "add normalisation",
    "dead": "use LeakyReLU or ELU (their gradient is never exactly 0), lower the learning rate, "
    "initialise biases at 0 (not negative) with He initialisation",
    "saturated": "standardise the inputs and add BatchNorm/LayerNorm before the activation, use "
    "Glorot (Xavier) initialisation for sigmoid/tanh, or a ReLU-family activation with He init",
}

# The advice module's rules (advice_rules.json ids) behind each fix, for `actlab recommend`.
ADVICE_RULES: dict[str, tuple[str, ...]] = {
    "vanishing": ("deep-saturating", "deep-plain-note", "hidden-not-sigmoid"),
    "exploding": ("deep-plain-note", "hidden-elu"),
    "dead": ("hidden-relu", "hidden-leaky-relu", "hidden-elu"),
    "saturated": ("hidden-tanh", "deep-saturating", "hidden-not-sigmoid"),
}

# --- report -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ActivationLayer:
    """What one activation layer did over the monitored batches."""

    name: str  # module path; "path#k" for the k-th call of a module used several times per forward
    activation: str  # catalog spec string ("relu", "leaky_relu:negative_slope=0.1") or class name
    units: int  # features, or channels for conv feature maps
    samples: int  # samples seen per unit (batch rows x spatial positions)
    mean: float  # of the outputs
    std: float
    dead_fraction: float | None  # None: derivative unknown (softmax, or input overwritten)
    saturated_fraction: float | None  # None: activation not bounded on both sides (see Monitor)
    hist_edges: np.ndarray  # (bins + 1,) output values; values outside land in the edge bins
    hist: np.ndarray  # (rows, bins) counts; row i covers batches [i*stride, (i+1)*stride)
    hist_stride: int
    nonfinite: int  # NaN/inf outputs seen

    kind = "activation"


@dataclass(frozen=True, eq=False)
class WeightLayer:
    """Gradient of one Linear/Conv weight, one norm per backward pass."""

    name: str
    type: str  # "Linear", "Conv2d", ...
    shape: tuple[int, ...]
    steps: int  # backward passes that reached this weight
    grad_norm: float | None  # mean L2 norm of the weight gradient over those passes
    last_grad_norm: float | None
    ratio_to_last: float | None  # grad_norm / grad_norm of the last weight layer

    kind = "weight"


@dataclass(frozen=True)
class Verdict:
    problem: str  # "vanishing" | "exploding" | "dead" | "saturated"
    layer: str | None  # None for whole-network verdicts
    value: float
    threshold: float
    message: str
    advice: str
    rules: tuple[str, ...] = ()  # ids of the advice rules behind the fix (actlab.advice)


@dataclass(frozen=True, eq=False)
class Report:
    """Per-layer health in network order (the order layers first ran), with verdicts and notes."""

    layers: tuple[ActivationLayer | WeightLayer, ...]
    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...]
    forwards: int  # forward passes of the whole model
    backwards: int  # backward passes that reached the last weight layer

    @property
    def activations(self) -> list[ActivationLayer]:
        return [x for x in self.layers if isinstance(x, ActivationLayer)]

    @property
    def weights(self) -> list[WeightLayer]:
        return [x for x in self.layers if isinstance(x, WeightLayer)]

    @property
    def first_last_ratio(self) -> float | None:
        """Gradient norm of the first weight layer over that of the last (None if unmeasured)."""
        measured = [w for w in self.weights if w.grad_norm is not None]
        if len(measured) < 2:
            return None
        return measured[0].ratio_to_last

    def problems(self) -> set[str]:
        return {v.problem for v in self.verdicts}

    def __repr__(self) -> str:
        """A few lines, not the arrays: what was measured and what was found (issue 20)."""
        found = "; ".join(v.problem + (f" at {v.layer}" if v.layer else "")
                          for v in self.verdicts) or "no problem found"  # fmt: skip
        return (
            f"Report({len(self.activations)} activation and {len(self.weights)} weight layers, "
            f"{self.forwards} forward / {self.backwards} backward passes: {found}; "
            ".table() for one row per layer, .to_dict() for everything)"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the verdicts, then one row per layer."""
        verdicts = "".join(f"<li><strong>{nb.esc(v.problem)}</strong> {nb.esc(v.message)} "
                           f"<em>{nb.esc(v.advice)}</em></li>" for v in self.verdicts)
        cols = ["layer", "type", "size", "grad_norm", "ratio_to_last", "dead_fraction",
                "saturated_fraction"]  # fmt: skip
        return (f"<div><ul>{verdicts or '<li>no problem found</li>'}</ul>"
                f"{nb.table(self.table(), cols)}</div>")

    def table(self) -> list[dict[str, Any]]:
        """Tidy rows, one per layer in network order; fields that do not apply are None."""
        rows = []
        for i, x in enumerate(self.layers):
            act = isinstance(x, ActivationLayer)
            rows.append(
                {
                    "index": i,
                    "layer": x.name,
                    "kind": x.kind,
                    "type": x.activation if act else x.type,
                    "size": x.units if act else list(x.shape),
                    "grad_norm": None if act else x.grad_norm,
                    "ratio_to_last": None if act else x.ratio_to_last,
                    "mean": x.mean if act else None,
                    "std": x.std if act else None,
                    "dead_fraction": x.dead_fraction if act else None,
                    "saturated_fraction": x.saturated_fraction if act else None,
                }
            )
        return rows

    def to_dict(self, histograms: bool = True) -> dict[str, Any]:
        """Plain data (JSON-ready apart from NaN, which the CLI's print_json handles)."""
        layers = []
        for row, x in zip(self.table(), self.layers, strict=True):
            if isinstance(x, ActivationLayer):
                row |= {"samples": x.samples, "nonfinite": x.nonfinite}
                if histograms:
                    row["histogram"] = {
                        "edges": x.hist_edges.tolist(),
                        "counts": x.hist.tolist(),
                        "batches_per_row": x.hist_stride,
                    }
            else:
                row |= {"steps": x.steps, "last_grad_norm": x.last_grad_norm}
            layers.append(row)
        return {
            "forwards": self.forwards,
            "backwards": self.backwards,
            "first_last_ratio": self.first_last_ratio,
            "thresholds": dict(THRESHOLDS),
            "layers": layers,
            "verdicts": [vars(v).copy() for v in self.verdicts],
            "notes": list(self.notes),
        }

def weight_label(k: int, path: str, kind: str = "layer") -> str:
    """One numbering for weight layers everywhere (demos, --model tables, plots, and the compare
    report's gradient panel): 'layer k', 1-based from the input, with the module path after it
    when it says more than the position (a Sequential index such as '0' or '20' does not)."""
    return f"{kind} {k}" if path.isdigit() else f"{kind} {k} ({path})"


def _verdicts(acts: list[ActivationLayer], weights: list[WeightLayer]) -> list[Verdict]:
    out: list[Verdict] = []

    def add(problem: str, layer: str | None, value: float, limit: float, message: str) -> None:
        advice = ADVICE[problem], ADVICE_RULES[problem]  # the fix follows from the problem
        out.append(Verdict(problem, layer, value, limit, message, *advice))

    # verdicts name layers as the table and the figures do: 'layer k' / 'act k' (weight_label)
    label = {id(w): weight_label(k, w.name) for k, w in enumerate(weights, start=1)}
    label.update({id(a): weight_label(k, a.name, "act") for k, a in enumerate(acts, start=1)})
    measured = [w for w in weights if w.grad_norm is not None]
    bad = [w for w in measured if not math.isfinite(w.grad_norm)]  # type: ignore[arg-type]
    if bad:
        add("exploding", label[id(bad[0])], math.inf, EXPLODING,
            f"the gradient norm of {label[id(bad[0])]} became inf/NaN")  # fmt: skip
    elif len(measured) >= 2 and measured[0].ratio_to_last is not None:
        first, last = measured[0], measured[-1]
        ratio = first.ratio_to_last
        what = (f"the first layer's gradient ({label[id(first)]}) is {{}} x the last layer's "
                f"({label[id(last)]})")  # fmt: skip
        if ratio < VANISHING:
            add("vanishing", None, ratio, VANISHING,
                what.format(f"{ratio:.2g}") + f"; threshold < {VANISHING:g}")  # fmt: skip
        elif ratio > EXPLODING:
            add("exploding", None, ratio, EXPLODING,
                what.format(f"{ratio:.3g}") + f"; threshold > {EXPLODING:g}")  # fmt: skip
    for a in acts:
        if a.dead_fraction is not None and a.dead_fraction > DEAD:
            add("dead", label[id(a)], a.dead_fraction, DEAD,
                f"{a.dead_fraction:.0%} of {a.units} {a.activation} units never passed a "
                f"gradient on {a.samples} samples; threshold > {DEAD:.0%}")  # fmt: skip
        if a.saturated_fraction is not None and a.saturated_fraction > SATURATED:
            add("saturated", label[id(a)], a.saturated_fraction, SATURATED,
                f"{a.saturated_fraction:.0%} of {a.units} {a.activation} units have "
                f"|f'| < {SATURATION:g} on most samples; threshold > {SATURATED:.0%}")  # fmt: skip
    return out
