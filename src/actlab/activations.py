"""The built-in activations: one definition each, everything about it in one place.

Each :class:`~actlab.spec.ActivationSpec` below holds an activation's catalog data (formula,
range, properties, references, disagreements, the article's plot), its NumPy forward and
derivative (the maths stays in :mod:`actlab.kernels`; the definition points at it), how to build
and recognise its PyTorch module, and the compare engine's fast path. :mod:`actlab.catalog`
builds the registry from ``BUILTINS``. Adding a built-in = one definition here plus its tests.

Fast paths are ``fast(aten, module) -> (fwd(z, out), bwd(g, z, h, out))``: ``fwd`` is what the
module's forward calls and ``bwd`` = g * f'(z) the kernel autograd itself runs for that module
(h = f(z)), writing into ``out``, so the engine's batched backward matches ``loss.backward()``
of a plain loop. torch is not imported here: ``aten`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actlab import kernels
from actlab.spec import INF, ActivationSpec, Param, PlotDefaults, Properties, TorchModule

# ---------------------------------------------------------------- NumPy, where a parameter differs


def _prelu(x: Any, init: float = 0.25, *, out: Any = None) -> Any:
    return kernels.prelu(x, weight=init, out=out)  # the kernel calls the slope 'weight'


def _prelu_derivative(x: Any, init: float = 0.25, *, out: Any = None) -> Any:
    return kernels.prelu_derivative(x, weight=init, out=out)


# ---------------------------------------------------------------- PyTorch modules, where not plain


def _read_prelu(m: Any) -> dict[str, Any]:
    # nn.PReLU remembers its initial slope in .init; the learned slopes live in .weight
    init = getattr(m, "init", None)
    if init is None:
        init = float(m.weight.detach().mean())
    return {"num_parameters": int(m.num_parameters), "init": float(init)}


def _build_silu(resolve: Any, p: Mapping[str, Any]) -> Any:
    beta, learnable = float(p["beta"]), bool(p["learnable"])
    return resolve("Swish")(beta, learnable) if learnable or beta != 1.0 else resolve("SiLU")()


def _read_silu(m: Any) -> dict[str, Any]:
    if not hasattr(m, "learnable"):  # nn.SiLU
        return {}
    beta = float(m.beta.detach()) if m.learnable else float(m.beta)
    return {"beta": beta, "learnable": bool(m.learnable)}


def _read_axis(m: Any) -> dict[str, Any]:
    # dim=None is PyTorch's deprecated implicit choice; we report the catalog default (last axis)
    return {"axis": -1 if m.dim is None else int(m.dim)}


def _bounds_in_order(p: Mapping[str, Any]) -> str | None:
    if p["min_val"] < p["max_val"]:
        return None
    return (
        f"min_val ({p['min_val']:g}) must be below max_val ({p['max_val']:g}), "
        "e.g. hard_tanh:min_val=-2:max_val=2"
    )


# ---------------------------------------------------------------- the compare engine's fast paths


def _pointwise(op: str, backward: str, args: Any = None, *, of_output: bool = False) -> Any:
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


_fast_sigmoid = _pointwise("sigmoid", "sigmoid_backward", of_output=True)
_fast_tanh = _pointwise("tanh", "tanh_backward", of_output=True)
_fast_silu = _pointwise("silu", "silu_backward")
_fast_hard_sigmoid = _pointwise("hardsigmoid", "hardsigmoid_backward")
_fast_softplus = _pointwise("softplus", "softplus_backward", lambda m: (m.beta, m.threshold))
# nn.ReLU6 is an nn.Hardtanh(0, 6)
_fast_hardtanh = _pointwise("hardtanh", "hardtanh_backward", lambda m: (m.min_val, m.max_val))


def _fast_identity(a: Any, m: Any) -> Any:
    return (lambda z, o: o.copy_(z), lambda g, z, h, o: o.copy_(g))


def _fast_relu(a: Any, m: Any) -> Any:
    return (
        lambda z, o: a.clamp_min.out(z, 0, out=o),  # what relu runs, minus a copy
        lambda g, z, h, o: a.threshold_backward.grad_input(g, h, 0.0, grad_input=o),
    )


def _fast_leaky_relu(a: Any, m: Any) -> Any:
    s = m.negative_slope
    return (
        lambda z, o: a.leaky_relu.out(z, s, out=o),
        lambda g, z, h, o: a.leaky_relu_backward.grad_input(g, z, s, False, grad_input=o),
    )


def _elu_family(a: Any, alpha: float, scale: float, inner: float) -> Any:
    """aten.elu(alpha, scale, input_scale): ELU, SELU and CELU (their definitions call it)."""
    return (
        lambda z, o: a.elu.out(z, alpha, scale, inner, out=o),
        lambda g, z, h, o: a.elu_backward.grad_input(
            g, alpha, scale, inner, False, z, grad_input=o
        ),
    )


def _fast_gelu(a: Any, m: Any) -> Any:
    ap = m.approximate
    return (
        lambda z, o: a.gelu.out(z, approximate=ap, out=o),
        lambda g, z, h, o: a.gelu_backward.grad_input(g, z, approximate=ap, grad_input=o),
    )


def _fast_mish(a: Any, m: Any) -> Any:
    return (
        lambda z, o: a.mish.out(z, out=o),
        lambda g, z, h, o: o.copy_(a.mish_backward(g, z)),
    )


def _fast_hard_swish(a: Any, m: Any) -> Any:
    return (
        lambda z, o: a.hardswish.out(z, out=o),
        lambda g, z, h, o: a.hardswish_backward.out(g, z, out=o),
    )


# ---------------------------------------------------------------- the definitions
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

BUILTINS: tuple[ActivationSpec, ...] = (
    ActivationSpec(
        name="identity",
        numpy_forward=kernels.identity,
        numpy_derivative=kernels.identity_derivative,
        torch=TorchModule("Identity"),
        fast=_fast_identity,
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
        numpy_forward=kernels.sigmoid,
        numpy_derivative=kernels.sigmoid_derivative,
        torch=TorchModule("Sigmoid"),
        fast=_fast_sigmoid,
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
        numpy_forward=kernels.tanh,
        numpy_derivative=kernels.tanh_derivative,
        torch=TorchModule("Tanh"),
        fast=_fast_tanh,
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
        numpy_forward=kernels.relu,
        numpy_derivative=kernels.relu_derivative,
        torch=TorchModule("ReLU"),
        fast=_fast_relu,
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
            ylim=(-0.5, 5.0),
            linewidth=5.0,
            title=_t("ReLU", "График функции ReLU"),
            ylabel=_t("ReLU(x)", "ReLU(x)"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="leaky_relu",
        numpy_forward=kernels.leaky_relu,
        numpy_derivative=kernels.leaky_relu_derivative,
        torch=TorchModule("LeakyReLU", {"negative_slope": "negative_slope"}),
        fast=_fast_leaky_relu,
        kaiming=lambda p: ("leaky_relu", float(p["negative_slope"])),
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
            "the article's figure uses 0.1; actlab draws and explores PyTorch's 0.01 "
            "everywhere (one default; give leaky_relu:alpha=0.1 for the article's figure).",
        ),
        plot=PlotDefaults(
            x=(-10.0, 10.0, 1000),
            ylim=(-0.5, 5.0),
            linewidth=5.0,
            title=_t("Leaky ReLU", "График функции Leaky ReLU"),
            ylabel=_t("Leaky ReLU(x)", "Leaky ReLU(x)"),
            params={"negative_slope": 0.01},  # PyTorch's default, as in `list` and `eval`
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="prelu",
        numpy_forward=_prelu,
        numpy_derivative=_prelu_derivative,
        torch=TorchModule(
            "PReLU", {"num_parameters": "num_parameters", "init": "init"}, read=_read_prelu
        ),
        layer="PReLU",
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
            ylim=(-2.0, 5.0),
            title=_t("PReLU (initial slope 0.25)", "PReLU (начальный наклон 0.25)"),
            ylabel=_t("PReLU(x)", "PReLU(x)"),
        ),
    ),
    ActivationSpec(
        name="elu",
        numpy_forward=kernels.elu,
        numpy_derivative=kernels.elu_derivative,
        torch=TorchModule("ELU", {"alpha": "alpha"}),
        fast=lambda a, m: _elu_family(a, m.alpha, 1.0, 1.0),
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
        numpy_forward=kernels.selu,
        numpy_derivative=kernels.selu_derivative,
        torch=TorchModule("SELU"),
        fast=lambda a, m: _elu_family(a, kernels.SELU_ALPHA, kernels.SELU_SCALE, 1.0),
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
            ylim=(-2.0, 5.0),
            title=_t("SELU", "SELU"),
            ylabel=_t("SELU(x)", "SELU(x)"),
        ),
    ),
    ActivationSpec(
        name="celu",
        numpy_forward=kernels.celu,
        numpy_derivative=kernels.celu_derivative,
        torch=TorchModule("CELU", {"alpha": "alpha"}),
        fast=lambda a, m: _elu_family(a, m.alpha, 1.0, 1.0 / m.alpha),
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
            ylim=(-2.0, 5.0),
            title=_t("CELU", "CELU"),
            ylabel=_t("CELU(x)", "CELU(x)"),
        ),
    ),
    ActivationSpec(
        name="gelu",
        numpy_forward=kernels.gelu,
        numpy_derivative=kernels.gelu_derivative,
        torch=TorchModule("GELU", {"approximate": "approximate"}),
        fast=_fast_gelu,
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
            ylim=(-1.0, 5.0),
            title=_t("GELU", "GELU"),
            ylabel=_t("GELU(x)", "GELU(x)"),
        ),
    ),
    ActivationSpec(
        name="silu",
        numpy_forward=kernels.silu,
        numpy_derivative=kernels.silu_derivative,
        torch=TorchModule("SiLU", build=_build_silu, read=_read_silu, also=("Swish",)),
        layer=lambda p: "LearnableSwish" if p["learnable"] else "ActivationLayer",
        fast=_fast_silu,
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
            ylim=(-1.5, 1.5),
            linewidth=2.0,
            title=_t("SiLU", "График функции SiLU"),
            ylabel=_t("SiLU(x)", "SiLU(x)"),
            in_article=True,
        ),
    ),
    ActivationSpec(
        name="mish",
        numpy_forward=kernels.mish,
        numpy_derivative=kernels.mish_derivative,
        torch=TorchModule("Mish"),
        fast=_fast_mish,
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
            ylim=(-1.0, 5.0),
            title=_t("Mish", "Mish"),
            ylabel=_t("Mish(x)", "Mish(x)"),
        ),
    ),
    ActivationSpec(
        name="softplus",
        numpy_forward=kernels.softplus,
        numpy_derivative=kernels.softplus_derivative,
        torch=TorchModule("Softplus", {"beta": "beta", "threshold": "threshold"}),
        fast=_fast_softplus,
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
            ylim=(-0.5, 5.0),
            title=_t("Softplus", "Softplus"),
            ylabel=_t("softplus(x)", "softplus(x)"),
        ),
    ),
    ActivationSpec(
        name="rational",
        numpy_forward=kernels.rational,
        numpy_derivative=kernels.rational_derivative,
        torch=TorchModule("Rational", args={"fit": "fit", "learnable": "learnable"}),
        display_name="Rational (PAU)",
        params=(
            Param(
                "fit", "relu", str, "the built-in its initial coefficients fit on [-3, 3]",
                choices=kernels.RATIONAL_FITS,
            ),
            Param(
                "learnable", False, bool, "PyTorch only: train the 10 coefficients per layer",
                torch_only=True,
            ),
        ),
        formula="f(x) = P(x) / (1 + |Q(x)|), P = a0 + ... + a5 x^5, Q = b1 x + ... + b4 x^4",
        formula_latex=r"f(x) = \frac{\sum_{k=0}^{5} a_k x^k}"
        r"{1 + \left|\sum_{k=1}^{4} b_k x^k\right|}",
        derivative_formula="f'(x) = (P' (1 + |Q|) - P sign(Q) Q') / (1 + |Q|)^2",
        derivative_latex=r"f'(x) = \frac{P'(1 + |Q|) - P\,\mathrm{sign}(Q)\,Q'}{(1 + |Q|)^2}",
        output_range=(-INF, INF),
        properties=Properties(False, "C0", False, False, False, "none"),
        family="learnable",
        recommended_init="he",
        year=2020,
        reference="Molina, Schramowski & Kersting, Padé Activation Units: End-to-end Learning "
        "of Flexible Activation Functions in Deep Networks, ICLR 2020",
        pros=("Learns its shape per layer (10 coefficients); starts as the built-in it fits.",),
        cons=(
            "Fitted on [-3, 3] only: outside it the curve follows the polynomial ratio (the "
            "gelu fit turns up again below -4).",
            "Learnable coefficients cannot share compare's stacked tensors (trained through "
            "autograd).",
        ),
        use=("actlab search --strategy learn: learn a curve, then name the nearest expression.",),
        plot=PlotDefaults(
            x=(-4.0, 4.0, 801),
            xlim=(-4.0, 4.0),
            ylim=(-1.5, 4.0),
            title=_t("Rational (PAU)", "Рациональная (PAU)"),
            ylabel=_t("f(x)", "f(x)"),
        ),
    ),
    ActivationSpec(
        name="softsign",
        numpy_forward=kernels.softsign,
        numpy_derivative=kernels.softsign_derivative,
        torch=TorchModule("Softsign"),
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
        numpy_forward=kernels.relu6,
        numpy_derivative=kernels.relu6_derivative,
        torch=TorchModule("ReLU6"),
        fast=_fast_hardtanh,
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
        numpy_forward=kernels.hard_sigmoid,
        numpy_derivative=kernels.hard_sigmoid_derivative,
        torch=TorchModule("Hardsigmoid"),
        fast=_fast_hard_sigmoid,
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
        numpy_forward=kernels.hard_swish,
        numpy_derivative=kernels.hard_swish_derivative,
        torch=TorchModule("Hardswish"),
        fast=_fast_hard_swish,
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
            ylim=(-1.0, 5.0),
            title=_t("Hard swish", "Жёсткий swish"),
            ylabel=_t("hard_swish(x)", "hard_swish(x)"),
        ),
    ),
    ActivationSpec(
        name="hard_tanh",
        numpy_forward=kernels.hard_tanh,
        numpy_derivative=kernels.hard_tanh_derivative,
        torch=TorchModule("Hardtanh", {"min_val": "min_val", "max_val": "max_val"}),
        fast=_fast_hardtanh,
        check=_bounds_in_order,
        aliases=("hardtanh",),
        display_name="Hard tanh",
        params=(
            # the linear part holds 0 (as every activation here passes through the origin)
            Param(
                "min_val",
                -1.0,
                float,
                "lower end of the linear part: the smallest output",
                high=0.0,
            ),
            Param(
                "max_val", 1.0, float, "upper end of the linear part: the largest output", low=0.0
            ),
        ),
        formula="f(x) = min(max(x, min_val), max_val)",
        formula_latex=r"f(x) = \min\bigl(\max(x, a), b\bigr)",
        derivative_formula="f'(x) = 1 if min_val < x < max_val else 0",
        derivative_latex=r"f'(x) = \begin{cases}1 & a < x < b\\ 0 & \text{otherwise}\end{cases}",
        output_range=(-1.0, 1.0),
        range_closed=(True, True),
        properties=Properties(True, "C0", True, True, True, "both"),
        family="sigmoid",
        recommended_init="glorot",
        year=2004,
        reference="Collobert, Large Scale Machine Learning, PhD thesis, Université Paris VI "
        "2004; Collobert, Weston et al., Natural Language Processing (Almost) from Scratch, "
        "JMLR 2011",
        pros=(
            "A piecewise-linear tanh: no exponential, cheap on any hardware.",
            "Zero-centred and bounded.",
        ),
        cons=(
            "f' is exactly 0 outside [min_val, max_val]: a unit pushed there gets no gradient "
            "at all (tanh's tails still pass a little).",
        ),
        use=(
            "Hidden layers where tanh costs too much (embedded and quantised networks).",
            "Clipping activations to a range (ReLU6 is hard_tanh with min_val=0, max_val=6).",
        ),
        kink_convention="f'(min_val) = f'(max_val) = 0 (PyTorch's hardtanh_backward)",
        disagreements=(
            "PyTorch's nn.Hardtanh takes the bounds (min_val, max_val); jax.nn.hard_tanh fixes "
            "them at -1 and 1.",
        ),
        plot=PlotDefaults(
            ylim=(-1.5, 1.5),
            title=_t("Hard tanh", "Жёсткий гиперболический тангенс"),
            ylabel=_t("hardtanh(x)", "hardtanh(x)"),
        ),
    ),
    ActivationSpec(
        name="softmax",
        numpy_forward=kernels.softmax,
        torch=TorchModule("Softmax", {"dim": "axis"}, read=_read_axis),
        layer="Softmax",
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
        numpy_forward=kernels.log_softmax,
        torch=TorchModule("LogSoftmax", {"dim": "axis"}, read=_read_axis),
        layer="LogSoftmax",
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
