"""The activation catalog: one registry table, the single source of truth.

Every activation is one :class:`ActivationSpec` (names, parameters, formulas, properties,
references, the article's plotting defaults). :func:`parse` turns a spec string
``name[:key=value...]`` into a bound :class:`Activation`; every part of actlab (kernels, layers,
torch adapter, plots, CLI) goes through it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actlab.errors import ActlabError, UnknownActivationError, suggest

INF = math.inf


@dataclass(frozen=True)
class Param:
    """One parameter of an activation. ``kind`` is float, int, bool or str."""

    name: str
    default: Any
    kind: type
    description: str
    low: float | None = None  # inclusive unless low_open
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    torch_only: bool = False  # ignored by the NumPy kernels (e.g. learnable flags)

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is bool:
            return "true or false"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None else "]"
        what = "an integer" if self.kind is int else "a finite number"
        return f"{what} in {left}{lo}, {hi}{right}"

    def coerce(self, value: Any, activation: str) -> Any:
        """Convert ``value`` (a string from a spec, or a Python value) and check its range."""
        where = f"parameter '{self.name}' of {activation}"
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ActlabError(f"{where} must be {self.allowed()}, got {value!r}")
        if self.kind is str:
            text = str(value).strip().lower()
            if text not in self.choices:
                raise ActlabError(
                    f"{where} must be {self.allowed()}, got {value!r}" + suggest(text, self.choices)
                )
            return text
        try:
            number = (
                self.kind(value) if not isinstance(value, str) else _parse_number(value, self.kind)
            )
        except (TypeError, ValueError):
            raise ActlabError(f"{where} must be {self.allowed()}, got {value!r}") from None
        if isinstance(value, float) and self.kind is int and not float(value).is_integer():
            raise ActlabError(f"{where} must be {self.allowed()}, got {value!r}")
        if isinstance(number, float) and not math.isfinite(number):
            raise ActlabError(f"{where} must be {self.allowed()}, got {value!r}")
        too_low = self.low is not None and (
            number < self.low or (self.low_open and number == self.low)
        )
        too_high = self.high is not None and number > self.high
        if too_low or too_high:
            raise ActlabError(f"{where} must be {self.allowed()}, got {value!r}")
        return number


def _parse_number(text: str, kind: type) -> float | int:
    text = text.strip()
    if kind is int:
        as_float = float(text)
        if not as_float.is_integer():
            raise ValueError(text)
        return int(as_float)
    return float(text)


@dataclass(frozen=True)
class Properties:
    monotonic: bool
    smoothness: str  # "C0" (kinks), "C1", "Cinf"
    zero_centred: bool  # outputs roughly centred on zero for centred inputs
    bounded_below: bool
    bounded_above: bool
    saturating: str  # "none", "left", "right", "both"
    self_normalising: bool = False


@dataclass(frozen=True)
class PlotDefaults:
    """The article's figure for this function (or a figure in its spirit where it has none)."""

    x: tuple[float, float, int] = (-5.0, 5.0, 1001)  # grid start, stop, points
    xlim: tuple[float, float] = (-5.0, 5.0)
    ylim: tuple[float, float] = (-1.5, 5.0)
    linewidth: float = 2.5
    title: Mapping[str, str] = field(default_factory=dict)  # {"en": ..., "ru": ...}
    xlabel: str = "x"
    ylabel: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)  # e.g. the article's alpha=0.1
    in_article: bool = False


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    display_name: str
    formula: str
    formula_latex: str
    derivative_formula: str
    derivative_latex: str
    output_range: tuple[float, float]  # for the default parameters
    properties: Properties
    family: str
    recommended_init: str  # "he" | "glorot" | "lecun" | "none"
    year: int
    reference: str
    pros: tuple[str, ...]
    cons: tuple[str, ...]
    use: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    elementwise: bool = True
    range_closed: tuple[bool, bool] = (False, False)  # whether each end of output_range is attained
    kink_convention: str = ""
    disagreements: tuple[str, ...] = ()
    plot: PlotDefaults = field(default_factory=PlotDefaults)

    def param(self, name: str) -> Param:
        key = name.strip().lower()
        for p in self.params:
            if key == p.name or key in p.synonyms:
                return p
        known = [p.name for p in self.params] + [s for p in self.params for s in p.synonyms]
        if not known:
            raise ActlabError(f"{self.name} takes no parameters, got '{name}'")
        raise ActlabError(
            f"unknown parameter '{name}' for {self.name}; allowed: "
            + ", ".join(_describe_param(p) for p in self.params)
            + suggest(key, known)
        )

    @property
    def range_text(self) -> str:
        """Output range in interval notation, e.g. '[0, inf)'."""

        def bound(v: float) -> str:
            return ("inf" if v > 0 else "-inf") if math.isinf(v) else f"{v:.4g}"

        (lo, hi), (lc, hc) = self.output_range, self.range_closed
        return f"{'[' if lc else '('}{bound(lo)}, {bound(hi)}{']' if hc else ')'}"

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def _describe_param(p: Param) -> str:
    syn = f" (alias {', '.join(p.synonyms)})" if p.synonyms else ""
    return f"{p.name}{syn}"


@dataclass(frozen=True)
class Activation:
    """An activation with its parameters bound: what a spec string means."""

    spec: ActivationSpec
    params: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    def __str__(self) -> str:
        extra = [
            f"{p.name}={_format_value(self.params[p.name])}"
            for p in self.spec.params
            if self.params[p.name] != p.default
        ]
        return ":".join([self.spec.name, *extra])

    @property
    def label(self) -> str:
        extra = [
            f"{p.name}={_format_value(self.params[p.name])}"
            for p in self.spec.params
            if self.params[p.name] != p.default
        ]
        return self.spec.display_name + (f" ({', '.join(extra)})" if extra else "")

    @property
    def kernel_params(self) -> dict[str, Any]:
        """Parameters the NumPy kernels take (torch-only flags dropped)."""
        return {p.name: self.params[p.name] for p in self.spec.params if not p.torch_only}

    def forward(self, x: Any, out: Any = None) -> Any:
        from actlab import kernels

        return kernels.forward(self, x, out=out)

    def derivative(self, x: Any, out: Any = None) -> Any:
        from actlab import kernels

        return kernels.derivative(self, x, out=out)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return str(value)


# ----------------------------------------------------------------------------------------------
# The registry table
# ----------------------------------------------------------------------------------------------


def _t(en: str, ru: str) -> dict[str, str]:
    return {"en": en, "ru": ru}


_ALPHA_ELU = Param(
    "alpha",
    1.0,
    float,
    "scale of the negative branch, which saturates at -alpha",
    low=0.0,
    low_open=True,
)
_AXIS = Param("axis", -1, int, "axis along which the probabilities sum to 1")

SPECS: tuple[ActivationSpec, ...] = (
    ActivationSpec(
        name="identity",
        aliases=("linear", "none"),
        display_name="Identity",
        formula="f(x) = x",
        formula_latex=r"f(x) = x",
        derivative_formula="f'(x) = 1",
        derivative_latex=r"f'(x) = 1",
        output_range=(-INF, INF),
        properties=Properties(True, "Cinf", True, False, False, "none"),
        family="linear",
        recommended_init="glorot",
        year=0,
        reference="-",
        pros=(
            "Keeps the output unbounded: the right output layer for regression on an "
            "unbounded target.",
        ),
        cons=("Adds no non-linearity: a stack of linear layers is still one linear map.",),
        use=(
            "Output layer of regression models (paired with MSE or Huber loss).",
            "Logit outputs of classifiers, with the loss applied on logits.",
        ),
        plot=PlotDefaults(
            title=_t("Identity", "Тождественная функция"),
            ylabel=_t("f(x)", "f(x)"),
            ylim=(-5.0, 5.0),
        ),
    ),
    ActivationSpec(
        name="sigmoid",
        aliases=("logistic",),
        display_name="Sigmoid",
        formula="f(x) = 1 / (1 + exp(-x))",
        formula_latex=r"f(x) = \frac{1}{1 + e^{-x}}",
        derivative_formula="f'(x) = f(x) * (1 - f(x))",
        derivative_latex=r"f'(x) = f(x)\,\bigl(1 - f(x)\bigr)",
        output_range=(0.0, 1.0),
        properties=Properties(True, "Cinf", False, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        year=1943,
        reference="Logistic function (Verhulst 1838); in neural networks since McCulloch & "
        "Pitts 1943 "
        "and Rumelhart, Hinton & Williams, Learning representations by back-propagating "
        "errors, Nature 1986",
        pros=(
            "Output is a probability in (0, 1): the right output for binary and multi-label "
            "classification.",
            "Smooth and monotonic.",
        ),
        cons=(
            "Vanishing gradients: f'(x) <= 0.25 everywhere and f'(x) < 0.01 for |x| > 4.6, so deep "
            "stacks of sigmoids barely learn in their early layers.",
            "Not zero-centred: all outputs are positive, which slows gradient descent in the next "
            "layer.",
            "Saturates on both sides.",
        ),
        use=(
            "Output layer for binary or multi-label classification (train with BCE on logits).",
            "Gates of LSTM/GRU cells.",
            "Rarely a good choice for hidden layers of deep networks.",
        ),
        kink_convention="smooth everywhere; f(-inf) = 0 and f(+inf) = 1 exactly",
        plot=PlotDefaults(
            x=(-100.0, 100.0, 1000),
            xlim=(-10.0, 10.0),
            ylim=(0.0, 1.0),
            linewidth=5.0,
            title=_t("Sigmoid", "График сигмоиды"),
            ylabel=_t("sigmoid(x)", "sigmoid(x)"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="tanh",
        aliases=("hyperbolic_tangent",),
        display_name="Tanh",
        formula="f(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))",
        formula_latex=r"f(x) = \tanh x = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
        derivative_formula="f'(x) = 1 - f(x)^2",
        derivative_latex=r"f'(x) = 1 - \tanh^2 x",
        output_range=(-1.0, 1.0),
        properties=Properties(True, "Cinf", True, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        year=1986,
        reference="LeCun, Bottou, Orr & Müller, Efficient BackProp, 1998 (why tanh beats the "
        "logistic sigmoid in hidden layers)",
        pros=(
            "Zero-centred: outputs in (-1, 1) keep the next layer's inputs balanced.",
            "Steeper than sigmoid near 0 (f'(0) = 1 vs 0.25).",
        ),
        cons=(
            "Still saturates on both sides: vanishing gradients in deep stacks.",
            "Its outputs are not probabilities (the article's 'sigmoid or tanh for binary output' "
            "is wrong for tanh).",
        ),
        use=(
            "Cell and hidden state of LSTM/GRU.",
            "Output layer for a target scaled to [-1, 1].",
            "Shallow networks; deep ones train better with the ReLU family.",
        ),
        plot=PlotDefaults(
            x=(-100.0, 100.0, 1000),
            xlim=(-10.0, 10.0),
            ylim=(-1.0, 1.0),
            linewidth=5.0,
            title=_t("Hyperbolic tangent", "График гиперболического тангенса"),
            ylabel=_t("tanh(x)", "tanh(x)"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="relu",
        range_closed=(True, False),
        aliases=("rectifier",),
        display_name="ReLU",
        formula="f(x) = max(0, x)",
        formula_latex=r"f(x) = \max(0, x)",
        derivative_formula="f'(x) = 1 if x > 0 else 0",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ 0 & x \le 0\end{cases}",
        output_range=(0.0, INF),
        properties=Properties(True, "C0", False, True, False, "left"),
        family="relu",
        recommended_init="he",
        year=2010,
        reference="Nair & Hinton, Rectified Linear Units Improve Restricted Boltzmann Machines, "
        "ICML 2010; Glorot, Bordes & Bengio, Deep Sparse Rectifier Neural Networks, "
        "AISTATS 2011",
        pros=(
            "Cheap: no exponential.",
            "Gradient is exactly 1 for positive inputs, so it does not vanish there (it eases, "
            "but does not 'solve', the vanishing-gradient problem).",
            "Sparse activations.",
        ),
        cons=(
            "Dead units: a unit whose input stays negative gets zero gradient and may never "
            "recover "
            "(high learning rates and negative biases make this worse).",
            "Not zero-centred; unbounded above (can contribute to exploding activations without "
            "normalisation).",
        ),
        use=(
            "Default for hidden layers of MLPs and CNNs, with He initialisation.",
            "Not for the output layer of a regression on an unbounded target.",
        ),
        kink_convention="f'(0) = 0, as in PyTorch and JAX",
        plot=PlotDefaults(
            x=(-100.0, 100.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-0.5, 5.0),
            linewidth=5.0,
            title=_t("ReLU", "График функции ReLU"),
            ylabel=_t("ReLU(x)", "ReLU(x)"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="leaky_relu",
        aliases=("leakyrelu", "lrelu"),
        display_name="Leaky ReLU",
        params=(
            Param(
                "negative_slope",
                0.01,
                float,
                "slope for x < 0 (the article calls it alpha)",
                low=0.0,
                synonyms=("alpha", "slope"),
            ),
        ),
        formula="f(x) = x if x > 0 else negative_slope * x",
        formula_latex=r"f(x) = \begin{cases}x & x > 0\\ \alpha x & x \le 0\end{cases}",
        derivative_formula="f'(x) = 1 if x > 0 else negative_slope",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ \alpha & x \le 0\end{cases}",
        output_range=(-INF, INF),
        properties=Properties(True, "C0", False, False, False, "none"),
        family="relu",
        recommended_init="he",
        year=2013,
        reference="Maas, Hannun & Ng, Rectifier Nonlinearities Improve Neural Network Acoustic "
        "Models, ICML Workshop 2013",
        pros=("No dead units: negative inputs still pass a small gradient.", "As cheap as ReLU."),
        cons=(
            "One more hyper-parameter; gains over ReLU are often small and data-dependent "
            "(the article's 'faster and more accurate training' is not a general rule).",
        ),
        use=("Hidden layers where ReLU units die (high learning rate, GAN discriminators).",),
        kink_convention="f'(0) = negative_slope, as in PyTorch (the x <= 0 branch)",
        disagreements=(
            "Default slope: PyTorch and JAX use 0.01 (as the article's text); Keras' "
            "LeakyReLU layer defaults to 0.3 (0.2 in Keras 3's leaky_relu function); "
            "the article's figure uses 0.1.",
        ),
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-0.5, 5.0),
            linewidth=5.0,
            title=_t("Leaky ReLU", "График функции Leaky ReLU"),
            ylabel=_t("Leaky ReLU(x)", "Leaky ReLU(x)"),
            params={"negative_slope": 0.1},
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="prelu",
        aliases=("parametric_relu",),
        display_name="PReLU",
        params=(
            Param(
                "init",
                0.25,
                float,
                "initial value of the learnable negative slope",
                synonyms=("alpha", "negative_slope"),
            ),
            Param(
                "num_parameters",
                1,
                int,
                "1 (one shared slope) or the number of channels (one slope each)",
                low=1,
                torch_only=True,
            ),
        ),
        formula="f(x) = x if x > 0 else a * x, with a learned",
        formula_latex=r"f(x) = \begin{cases}x & x > 0\\ a x & x \le 0\end{cases},"
        r"\ a \text{ learned}",
        derivative_formula="f'(x) = 1 if x > 0 else a;  df/da = 0 if x > 0 else x",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ a & x \le 0\end{cases}",
        output_range=(-INF, INF),
        properties=Properties(True, "C0", False, False, False, "none"),
        family="relu",
        recommended_init="he",
        year=2015,
        reference="He, Zhang, Ren & Sun, Delving Deep into Rectifiers: Surpassing Human-Level "
        "Performance on ImageNet Classification, ICCV 2015",
        pros=("The network learns the negative slope per layer or per channel.",),
        cons=(
            "Extra parameters; weight decay on the slope pushes it towards ReLU (PyTorch's docs "
            "advise not to decay it).",
        ),
        use=("Hidden layers of CNNs (the article names it in passing).",),
        kink_convention="f'(0) = a (the x <= 0 branch), as in PyTorch",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-2.0, 5.0),
            title=_t("PReLU (initial slope 0.25)", "PReLU (начальный наклон 0.25)"),
            ylabel=_t("PReLU(x)", "PReLU(x)"),
        ),
    ),
    ActivationSpec(
        name="elu",
        display_name="ELU",
        params=(_ALPHA_ELU,),
        formula="f(x) = x if x > 0 else alpha * (exp(x) - 1)",
        formula_latex=r"f(x) = \begin{cases}x & x > 0\\ \alpha\,(e^{x} - 1) & x \le 0\end{cases}",
        derivative_formula="f'(x) = 1 if x > 0 else alpha * exp(x)",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ \alpha e^{x} & x \le 0\end{cases}",
        output_range=(-1.0, INF),
        properties=Properties(True, "C1", True, True, False, "left"),
        family="exponential",
        recommended_init="he",
        year=2015,
        reference="Clevert, Unterthiner & Hochreiter, Fast and Accurate Deep Network Learning by "
        "Exponential Linear Units (ELUs), ICLR 2016 (arXiv 2015)",
        pros=(
            "Negative outputs push mean activations towards zero, which speeds up learning.",
            "Smooth for alpha = 1 (C1); fewer dead units than ReLU.",
        ),
        cons=(
            "Costs an exponential.",
            "Saturates for very negative inputs (f' -> 0), so units can still go quiet.",
            "It does not by itself prevent exploding gradients (the article overstates this): "
            "initialisation, normalisation and the learning rate do.",
        ),
        use=("Hidden layers of MLPs and CNNs as a ReLU alternative.",),
        kink_convention="f'(0) = alpha (the x <= 0 branch), as in PyTorch; continuous at 0 "
        "only for alpha = 1",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-2.0, 5.0),
            linewidth=5.0,
            title=_t("ELU", "График функции ELU"),
            ylabel=_t("ELU(x)", "ELU(x)"),
            params={"alpha": 1.0},
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="selu",
        display_name="SELU",
        formula="f(x) = scale * (x if x > 0 else alpha * (exp(x) - 1)), "
        "alpha = 1.6732632423543772, scale = 1.0507009873554805",
        formula_latex=r"f(x) = \lambda \begin{cases}x & x > 0\\ \alpha (e^{x} - 1) & x \le 0"
        r"\end{cases},\ \alpha \approx 1.6733,\ \lambda \approx 1.0507",
        derivative_formula="f'(x) = scale if x > 0 else scale * alpha * exp(x)",
        derivative_latex=r"f'(x) = \lambda \begin{cases}1 & x > 0\\ \alpha e^{x} & x \le 0"
        r"\end{cases}",
        output_range=(-1.7580993408473766, INF),
        properties=Properties(True, "C0", True, True, False, "left", self_normalising=True),
        family="exponential",
        recommended_init="lecun",
        year=2017,
        reference="Klambauer, Unterthiner, Mayr & Hochreiter, Self-Normalizing Neural Networks, "
        "NeurIPS 2017",
        pros=(
            "Self-normalising: with LeCun-normal init, activations keep mean 0 and variance 1 "
            "through deep MLPs without batch normalisation.",
        ),
        cons=(
            "The guarantee needs LeCun-normal initialisation, standardised inputs and "
            "AlphaDropout instead of Dropout; it breaks with other layers/normalisation.",
        ),
        use=("Deep fully-connected networks without normalisation layers.",),
        kink_convention="f'(0) = scale * alpha (the x <= 0 branch), as in PyTorch",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-2.0, 5.0),
            title=_t("SELU", "SELU"),
            ylabel=_t("SELU(x)", "SELU(x)"),
        ),
    ),
    ActivationSpec(
        name="celu",
        display_name="CELU",
        params=(_ALPHA_ELU,),
        formula="f(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        formula_latex=r"f(x) = \max(0, x) + \min\bigl(0, \alpha (e^{x/\alpha} - 1)\bigr)",
        derivative_formula="f'(x) = 1 if x > 0 else exp(x / alpha)",
        derivative_latex=r"f'(x) = \begin{cases}1 & x > 0\\ e^{x/\alpha} & x \le 0\end{cases}",
        output_range=(-1.0, INF),
        properties=Properties(True, "C1", True, True, False, "left"),
        family="exponential",
        recommended_init="he",
        year=2017,
        reference="Barron, Continuously Differentiable Exponential Linear Units, arXiv 2017",
        pros=("Like ELU but continuously differentiable for every alpha.",),
        cons=("Costs an exponential; same left saturation as ELU.",),
        use=("A drop-in ELU when alpha != 1 is wanted.",),
        kink_convention="f'(0) = 1 for every alpha (C1)",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-2.0, 5.0),
            title=_t("CELU", "CELU"),
            ylabel=_t("CELU(x)", "CELU(x)"),
        ),
    ),
    ActivationSpec(
        name="gelu",
        range_closed=(True, False),
        display_name="GELU",
        params=(
            Param(
                "approximate",
                "none",
                str,
                "'none': exact x*Phi(x) with erf; 'tanh': the tanh approximation",
                choices=("none", "tanh"),
            ),
        ),
        formula="f(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)));  tanh approximation: "
        "x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
        formula_latex=r"f(x) = x\,\Phi(x) = \frac{x}{2}\Bigl(1 + \operatorname{erf}"
        r"\bigl(\tfrac{x}{\sqrt{2}}\bigr)\Bigr)",
        derivative_formula="f'(x) = Phi(x) + x * phi(x)",
        derivative_latex=r"f'(x) = \Phi(x) + x\,\varphi(x)",
        output_range=(-0.16997120747078038, INF),
        properties=Properties(False, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        year=2016,
        reference="Hendrycks & Gimpel, Gaussian Error Linear Units (GELUs), arXiv 2016",
        pros=("Smooth ReLU-like curve; the standard in Transformers (BERT, GPT, ViT).",),
        cons=(
            "Costlier than ReLU (erf or tanh).",
            "Not monotonic: a small dip (minimum about -0.17 near x = -0.75).",
        ),
        use=("Hidden layers of Transformers and modern MLPs.",),
        disagreements=(
            "Default form: PyTorch's nn.GELU and Keras' gelu default to the exact erf "
            "form; jax.nn.gelu defaults to approximate=True (tanh). The two differ by "
            "up to about 5e-4.",
        ),
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-1.0, 5.0),
            title=_t("GELU", "GELU"),
            ylabel=_t("GELU(x)", "GELU(x)"),
        ),
    ),
    ActivationSpec(
        name="silu",
        range_closed=(True, False),
        aliases=("swish",),
        display_name="SiLU / Swish",
        params=(
            Param("beta", 1.0, float, "slope inside the sigmoid: x * sigmoid(beta * x)", low=0.0),
            Param(
                "learnable",
                False,
                bool,
                "PyTorch only: make beta a trainable parameter",
                torch_only=True,
            ),
        ),
        formula="f(x) = x * sigmoid(beta * x)   (SiLU is beta = 1)",
        formula_latex=r"f(x) = x\,\sigma(\beta x)",
        derivative_formula="f'(x) = s + beta * x * s * (1 - s), s = sigmoid(beta * x)",
        derivative_latex=r"f'(x) = \sigma(\beta x) + \beta x\,\sigma(\beta x)"
        r"\bigl(1 - \sigma(\beta x)\bigr)",
        output_range=(-0.2784645427610738, INF),
        properties=Properties(False, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        year=2017,
        reference="Elfwing, Uchibe & Doya, Sigmoid-Weighted Linear Units for Neural Network "
        "Function Approximation in Reinforcement Learning, 2017; Ramachandran, Zoph & "
        "Le, Searching for Activation Functions (Swish), 2017",
        pros=(
            "Smooth, self-gated; often matches or beats ReLU in deep CNNs (EfficientNet, YOLO).",
        ),
        cons=(
            "Not monotonic (the article says it is): a dip with minimum about -0.278 at "
            "x = -1.278.",
            "Costs an exponential.",
        ),
        use=("Hidden layers of CNNs and Transformers (SwiGLU in LLMs).",),
        disagreements=(
            "Swish with beta = 1 is SiLU; PyTorch's nn.SiLU has no beta, Keras' swish "
            "neither; the original Swish paper also studies a learnable beta.",
        ),
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-1.5, 1.5),
            linewidth=2.0,
            title=_t("SiLU", "График функции SiLU"),
            ylabel=_t("SiLU(x)", "SiLU(x)"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="mish",
        range_closed=(True, False),
        display_name="Mish",
        formula="f(x) = x * tanh(softplus(x))",
        formula_latex=r"f(x) = x \tanh\bigl(\ln(1 + e^{x})\bigr)",
        derivative_formula="f'(x) = tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2), sp = softplus(x)",
        derivative_latex=r"f'(x) = \tanh(\mathrm{sp}(x)) + x\,\sigma(x)\,"
        r"\bigl(1 - \tanh^2(\mathrm{sp}(x))\bigr)",
        output_range=(-0.3088400564240522, INF),
        properties=Properties(False, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        year=2019,
        reference="Misra, Mish: A Self Regularized Non-Monotonic Activation Function, BMVC 2020 "
        "(arXiv 2019)",
        pros=("Smooth, non-monotonic like Swish; strong results in YOLOv4.",),
        cons=("The most expensive of the common activations (exp, log1p and tanh).",),
        use=("Hidden layers of CNNs for detection.",),
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-1.0, 5.0),
            title=_t("Mish", "Mish"),
            ylabel=_t("Mish(x)", "Mish(x)"),
        ),
    ),
    ActivationSpec(
        name="softplus",
        display_name="Softplus",
        params=(
            Param(
                "beta",
                1.0,
                float,
                "sharpness: log(1 + exp(beta * x)) / beta",
                low=0.0,
                low_open=True,
            ),
            Param(
                "threshold",
                20.0,
                float,
                "above beta * x > threshold the function is taken as linear (PyTorch)",
                low=0.0,
                low_open=True,
            ),
        ),
        formula="f(x) = log(1 + exp(beta * x)) / beta  (x when beta * x > threshold)",
        formula_latex=r"f(x) = \frac{1}{\beta}\ln\bigl(1 + e^{\beta x}\bigr)",
        derivative_formula="f'(x) = sigmoid(beta * x)  (1 when beta * x > threshold)",
        derivative_latex=r"f'(x) = \sigma(\beta x)",
        output_range=(0.0, INF),
        properties=Properties(True, "Cinf", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        year=2001,
        reference="Dugas, Bengio, Bélisle, Nadeau & Garcia, Incorporating Second-Order Functional "
        "Knowledge for Better Option Pricing, NeurIPS 2001",
        pros=("Smooth, strictly positive: a good output for positive targets (variances, rates).",),
        cons=("Not zero-centred; slower than ReLU; saturates on the left.",),
        use=("Output layer for non-negative regression targets and scale parameters.",),
        kink_convention="PyTorch's threshold switch: f(x) = x and f'(x) = 1 where beta * x > "
        "threshold",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            xlim=(-5.0, 5.0),
            ylim=(-0.5, 5.0),
            title=_t("Softplus", "Softplus"),
            ylabel=_t("softplus(x)", "softplus(x)"),
        ),
    ),
    ActivationSpec(
        name="softsign",
        display_name="Softsign",
        formula="f(x) = x / (1 + |x|)",
        formula_latex=r"f(x) = \frac{x}{1 + |x|}",
        derivative_formula="f'(x) = 1 / (1 + |x|)^2",
        derivative_latex=r"f'(x) = \frac{1}{(1 + |x|)^2}",
        output_range=(-1.0, 1.0),
        properties=Properties(True, "C1", True, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        year=2009,
        reference="Bergstra, Desjardins, Lamblin & Bengio, Quadratic polynomials learn better "
        "image features, 2009; Glorot & Bengio, Understanding the difficulty of "
        "training deep feedforward neural networks, AISTATS 2010",
        pros=(
            "Like tanh but approaches its asymptotes polynomially, so it saturates more gently.",
        ),
        cons=("Still bounded and saturating; rarely used today.",),
        use=("A cheaper tanh substitute.",),
        plot=PlotDefaults(
            x=(-20.0, 20.0, 1001),
            xlim=(-10.0, 10.0),
            ylim=(-1.0, 1.0),
            title=_t("Softsign", "Softsign"),
            ylabel=_t("softsign(x)", "softsign(x)"),
        ),
    ),
    ActivationSpec(
        name="relu6",
        range_closed=(True, True),
        display_name="ReLU6",
        formula="f(x) = min(max(0, x), 6)",
        formula_latex=r"f(x) = \min(\max(0, x), 6)",
        derivative_formula="f'(x) = 1 if 0 < x < 6 else 0",
        derivative_latex=r"f'(x) = \begin{cases}1 & 0 < x < 6\\ 0 & \text{otherwise}\end{cases}",
        output_range=(0.0, 6.0),
        properties=Properties(True, "C0", False, True, True, "both"),
        family="relu",
        recommended_init="he",
        year=2010,
        reference="Krizhevsky, Convolutional Deep Belief Networks on CIFAR-10, 2010; Howard et "
        "al., MobileNets, 2017",
        pros=("Bounded output, friendly to low-precision (quantised) inference.",),
        cons=("Dead below 0 and flat above 6.",),
        use=("Mobile CNNs (MobileNet v1/v2).",),
        kink_convention="f'(0) = 0 and f'(6) = 0, as in PyTorch",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 2001),
            xlim=(-3.0, 9.0),
            ylim=(-0.5, 7.0),
            title=_t("ReLU6", "ReLU6"),
            ylabel=_t("ReLU6(x)", "ReLU6(x)"),
        ),
    ),
    ActivationSpec(
        name="hard_sigmoid",
        range_closed=(True, True),
        aliases=("hardsigmoid",),
        display_name="Hard sigmoid",
        formula="f(x) = relu6(x + 3) / 6",
        formula_latex=r"f(x) = \frac{\min(\max(0, x + 3), 6)}{6}",
        derivative_formula="f'(x) = 1/6 if -3 < x < 3 else 0",
        derivative_latex=r"f'(x) = \begin{cases}1/6 & -3 < x < 3\\ 0 & \text{otherwise}\end{cases}",
        output_range=(0.0, 1.0),
        properties=Properties(True, "C0", False, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        year=2019,
        reference="Howard et al., Searching for MobileNetV3, ICCV 2019",
        pros=("A cheap piecewise-linear sigmoid.",),
        cons=("Exactly zero gradient outside (-3, 3).",),
        use=("Gates and squeeze-excitation blocks of mobile networks.",),
        kink_convention="f'(±3) = 0, as in PyTorch",
        disagreements=(
            "PyTorch and Keras 3 use relu6(x + 3) / 6; older Keras/TF used "
            "clip(0.2 x + 0.5, 0, 1).",
        ),
        plot=PlotDefaults(
            x=(-10.0, 10.0, 2001),
            xlim=(-6.0, 6.0),
            ylim=(-0.1, 1.1),
            title=_t("Hard sigmoid", "Жёсткая сигмоида"),
            ylabel=_t("hard_sigmoid(x)", "hard_sigmoid(x)"),
        ),
    ),
    ActivationSpec(
        name="hard_swish",
        range_closed=(True, False),
        aliases=("hardswish",),
        display_name="Hard swish",
        formula="f(x) = x * relu6(x + 3) / 6",
        formula_latex=r"f(x) = x\,\frac{\min(\max(0, x + 3), 6)}{6}",
        derivative_formula="f'(x) = 0 if x <= -3; 1 if x >= 3; (2x + 3) / 6 otherwise",
        derivative_latex=r"f'(x) = \begin{cases}0 & x \le -3\\ \frac{2x + 3}{6} & -3 < x < 3\\ "
        r"1 & x \ge 3\end{cases}",
        output_range=(-0.375, INF),
        properties=Properties(False, "C0", False, True, False, "left"),
        family="smooth-relu",
        recommended_init="he",
        year=2019,
        reference="Howard et al., Searching for MobileNetV3, ICCV 2019",
        pros=("A cheap piecewise approximation of Swish.",),
        cons=("Not monotonic; zero gradient below -3.",),
        use=("Mobile CNNs (MobileNetV3).",),
        kink_convention="f'(-3) = 0 and f'(3) = 1 (the outer branches), as in PyTorch",
        plot=PlotDefaults(
            x=(-10.0, 10.0, 2001),
            xlim=(-5.0, 5.0),
            ylim=(-1.0, 5.0),
            title=_t("Hard swish", "Жёсткий swish"),
            ylabel=_t("hard_swish(x)", "hard_swish(x)"),
        ),
    ),
    ActivationSpec(
        name="softmax",
        display_name="Softmax",
        elementwise=False,
        params=(_AXIS,),
        formula="f(z)_i = exp(z_i) / sum_k exp(z_k)  (computed as exp(z_i - max z) / sum ...)",
        formula_latex=r"f(z)_i = \frac{e^{z_i}}{\sum_{k} e^{z_k}}",
        derivative_formula="df_i/dz_j = f_i * (delta_ij - f_j);  VJP: f * (g - sum(g * f))",
        derivative_latex=r"\frac{\partial f_i}{\partial z_j} = f_i(\delta_{ij} - f_j)",
        output_range=(0.0, 1.0),
        properties=Properties(True, "Cinf", False, True, True, "both"),
        family="probability",
        recommended_init="glorot",
        year=1989,
        reference="Bridle, Probabilistic Interpretation of Feedforward Classification Network "
        "Outputs, 1989 (the 'softmax' name); Boltzmann/Gibbs distribution",
        pros=(
            "Turns a vector of scores into a probability distribution over classes.",
            "Shift-invariant: softmax(z + c) = softmax(z).",
        ),
        cons=(
            "Not elementwise: each output depends on every input.",
            "exp overflows unless the maximum is subtracted first (the article's version "
            "overflows for z > 88 in float32).",
            "Over-confident when scores are large; use a temperature or calibration.",
        ),
        use=(
            "Output of single-label multi-class classifiers; but train on logits with "
            "cross-entropy (log_softmax inside the loss) and apply softmax only to read "
            "probabilities.",
            "Attention weights.",
        ),
        plot=PlotDefaults(
            title=_t("Softmax Distribution", "Softmax Distribution"),
            xlabel="Class",
            ylabel=_t("Probability", "Probability"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="log_softmax",
        range_closed=(False, True),
        aliases=("logsoftmax",),
        display_name="Log-softmax",
        elementwise=False,
        params=(_AXIS,),
        formula="f(z)_i = z_i - log(sum_k exp(z_k))  (computed with the max subtracted)",
        formula_latex=r"f(z)_i = z_i - \log \sum_{k} e^{z_k}",
        derivative_formula="df_i/dz_j = delta_ij - softmax(z)_j;  VJP: g - softmax(z) * sum(g)",
        derivative_latex=r"\frac{\partial f_i}{\partial z_j} = \delta_{ij} - \mathrm{softmax}(z)_j",
        output_range=(-INF, 0.0),
        properties=Properties(True, "Cinf", False, False, True, "none"),
        family="probability",
        recommended_init="glorot",
        year=1989,
        reference="Bridle 1989; the log-sum-exp trick",
        pros=(
            "Log-probabilities without underflow: the stable input for the negative "
            "log-likelihood loss.",
        ),
        cons=("Not elementwise.",),
        use=("Inside cross-entropy losses (PyTorch's CrossEntropyLoss = log_softmax + NLLLoss).",),
        plot=PlotDefaults(
            title=_t("Log-softmax", "Log-softmax"),
            xlabel="Class",
            ylabel=_t("log probability", "логарифм вероятности"),
        ),
    ),
)

REGISTRY: dict[str, ActivationSpec] = {s.name: s for s in SPECS}
_LOOKUP: dict[str, ActivationSpec] = {}
for _s in SPECS:
    for _key in (_s.name, *_s.aliases):
        if _key in _LOOKUP:  # pragma: no cover - guards the table itself
            raise RuntimeError(f"duplicate activation name {_key!r}")
        _LOOKUP[_key] = _s


def names(include_aliases: bool = False) -> list[str]:
    """Canonical names in catalog order (plus aliases when asked)."""
    return list(_LOOKUP) if include_aliases else [s.name for s in SPECS]


def get(name: str) -> ActivationSpec:
    """Look an activation up by name or alias, case-insensitively ('-' and '_' are the same)."""
    if not isinstance(name, str):
        raise ActlabError(f"activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    try:
        return _LOOKUP[key]
    except KeyError:
        hint = suggest(key, _LOOKUP) or "; run 'actlab list' to see them all"
        raise UnknownActivationError(f"unknown activation '{name}'{hint}") from None


def parse(spec: str | Activation | ActivationSpec, **overrides: Any) -> Activation:
    """Parse ``name[:key=value[:key=value...]]`` into an :class:`Activation`.

    Keyword ``overrides`` are applied after the string's own parameters (Python callers may write
    ``parse("elu", alpha=0.5)``).
    """
    if isinstance(spec, Activation):
        base, given = spec.spec, dict(spec.params)
    elif isinstance(spec, ActivationSpec):
        base, given = spec, {}
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ActlabError("empty activation spec; expected name[:key=value...], e.g. 'relu'")
        head, *parts = text.split(":")
        base, given = get(head), {}
        for part in parts:
            if "=" not in part:
                raise ActlabError(
                    f"bad parameter '{part}' in '{spec}': expected key=value, "
                    f"e.g. 'leaky_relu:alpha=0.1'"
                )
            key, value = (s.strip() for s in part.split("=", 1))
            p = base.param(key)
            if p.name in given:
                raise ActlabError(f"parameter '{p.name}' given twice in '{spec}'")
            given[p.name] = p.coerce(value, base.name)
    else:
        raise ActlabError(
            f"activation spec must be a string like 'relu' or 'elu:alpha=0.5', "
            f"got {type(spec).__name__}"
        )
    for key, value in overrides.items():
        p = base.param(key)
        given[p.name] = p.coerce(value, base.name)
    params = {p.name: given.get(p.name, p.default) for p in base.params}
    return Activation(base, params)


def split_specs(items: str | Iterable[str]) -> list[str]:
    """Split specs given with spaces or commas: ['relu,elu', 'gelu'] -> ['relu', 'elu', 'gelu']."""
    if isinstance(items, str):
        items = [items]
    out = [piece.strip() for item in items for piece in str(item).replace(",", " ").split()]
    return [piece for piece in out if piece]


def parse_many(items: str | Iterable[str]) -> list[Activation]:
    """Parse several specs separated by spaces and/or commas; duplicates are an error."""
    acts = [parse(s) for s in split_specs(items)]
    if not acts:
        raise ActlabError("no activation given; e.g. 'relu,elu,gelu'")
    seen: set[str] = set()
    for a in acts:
        if str(a) in seen:
            raise ActlabError(f"activation '{a}' is listed twice")
        seen.add(str(a))
    return acts
