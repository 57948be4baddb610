"""NumPy layers: every backward vs central finite differences (float64), errors, digits example."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from actlab import catalog, layers
from actlab.errors import ActlabError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "numpy_mlp_digits.py"

# every catalog entry at its defaults, plus parameter variants
SPECS = [
    *catalog.names(),
    "leaky_relu:alpha=0.1",
    "prelu:init=-0.3",
    "elu:alpha=0.5",
    "celu:alpha=2",
    "gelu:approximate=tanh",
    "silu:beta=1.7",
    "softplus:beta=2:threshold=3",
    "softmax:axis=0",
    "log_softmax:axis=1",
]
# relu family at 0, relu6 at 0 and 6, hard_sigmoid/hard_swish at +-3,
# softplus:beta=2:threshold=3 at 1.5
KINKS = np.array([-3.0, 0.0, 1.5, 3.0, 6.0])


def away_from_kinks(x: np.ndarray) -> np.ndarray:
    """Finite differences straddling a kink are meaningless: move points within 0.01 of one."""
    near = np.abs(x[..., None] - KINKS).min(axis=-1) < 0.01
    return np.where(near, x + 0.05, x)


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() w.r.t. every element of x (perturbed in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def check_layer(layer: layers.Layer, x: np.ndarray, rng: np.random.Generator) -> None:
    """Input and parameter gradients of sum(layer(x) * g) against finite differences."""
    g = rng.normal(size=layer.forward(x).shape)
    dx = layer.backward(g)
    analytic = [dx, *(p.copy() for p in layer.grads())]

    def loss() -> float:
        return float(np.sum(layer.forward(x) * g))

    numeric = [numeric_grad(loss, x), *(numeric_grad(loss, p) for p in layer.params())]
    assert len(analytic) == len(numeric)
    for a, n in zip(analytic, numeric, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec", SPECS)
def test_activation_backward_matches_finite_differences(spec: str) -> None:
    rng = np.random.default_rng(0)
    x = away_from_kinks(rng.uniform(-5, 8, size=(4, 6)))
    check_layer(layers.build(spec), x, rng)


@pytest.mark.parametrize(
    "spec", ["softmax", "log_softmax", "softmax:axis=0", "log_softmax:axis=-2"]
)
def test_softmax_backward_is_the_full_vjp_on_3d_input(spec: str) -> None:
    rng = np.random.default_rng(1)
    layer = layers.build(spec)
    x = rng.normal(scale=3, size=(3, 4, 5))
    check_layer(layer, x, rng)
    # the elementwise shortcut g * y * (1 - y) is *not* the gradient for a non-constant g
    if spec.startswith("softmax"):
        g = rng.normal(size=x.shape)
        y = layer.forward(x)
        assert not np.allclose(layer.backward(g), g * y * (1 - y))


def test_softmax_layer_builds_the_right_classes() -> None:
    assert type(layers.build("softmax")) is layers.Softmax
    assert type(layers.build("log_softmax:axis=0")) is layers.LogSoftmax
    assert type(layers.build("prelu")) is layers.PReLU
    assert type(layers.build("silu:learnable=true")) is layers.LearnableSwish
    assert type(layers.build("elu")) is layers.ActivationLayer
    assert "elu:alpha=0.5" in repr(layers.build("elu:alpha=0.5"))
    assert type(layers.build("silu")) is layers.ActivationLayer  # learnable=false: plain


def test_every_definition_names_its_layer() -> None:
    # the class comes from the definition's `layer`, not from a list of names in layers.build
    for name in catalog.names():
        layer = layers.build(name)
        assert isinstance(layer, layers.ActivationLayer)
        assert (type(layer) is layers.ActivationLayer) == catalog.get(name).elementwise or (
            name == "prelu"
        )


@pytest.mark.parametrize("shape, channels", [((5, 3), 3), ((2, 4, 3), 4), ((6,), 1), ((3, 2), 1)])
def test_prelu_parameter_gradient(shape: tuple[int, ...], channels: int) -> None:
    rng = np.random.default_rng(2)
    layer = layers.build(f"prelu:num_parameters={channels}")
    layer.weight[...] = rng.uniform(-0.5, 0.5, size=channels)  # distinct slopes per channel
    x = away_from_kinks(rng.normal(size=shape))
    check_layer(layer, x, rng)
    assert layer.grad_weight.shape == (channels,)
    assert np.any(layer.grad_weight != 0)


def test_prelu_per_channel_rejects_wrong_channel_count() -> None:
    layer = layers.build("prelu:num_parameters=4")
    with pytest.raises(ActlabError, match=r"channel.*\(N, 4, \.\.\.\)"):
        layer.forward(np.ones((2, 3)))


def test_learnable_swish_beta_gradient() -> None:
    rng = np.random.default_rng(3)
    layer = layers.build("silu:beta=1.3:learnable=true")
    check_layer(layer, rng.normal(scale=2, size=(4, 5)), rng)
    assert layer.grad_beta[0] != 0


def test_linear_and_sequential_gradients() -> None:
    rng = np.random.default_rng(4)
    check_layer(layers.Linear(5, 3, rng=rng), rng.normal(size=(4, 5)), rng)
    check_layer(layers.Linear(5, 3, init="glorot", rng=rng), rng.normal(size=(2, 3, 5)), rng)
    net = layers.Sequential(
        layers.Linear(5, 7, rng=rng),
        layers.build("tanh"),
        layers.Linear(7, 3, rng=rng),
        layers.build("log_softmax"),
    )
    check_layer(net, rng.normal(size=(4, 5)), rng)
    assert len(net.params()) == len(net.grads()) == 4


def test_linear_init_scales() -> None:
    rng = np.random.default_rng(5)
    he = layers.Linear(400, 300, init="he", rng=rng).weight
    glorot = layers.Linear(400, 300, init="glorot", rng=rng).weight
    lecun = layers.Linear(400, 300, init="lecun", rng=rng).weight
    assert he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert lecun.std() == pytest.approx(np.sqrt(1 / 400), rel=0.02)
    assert np.abs(glorot).max() <= np.sqrt(6 / 700)
    assert glorot.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    with pytest.raises(ActlabError, match="unknown init 'xavier'; allowed: he, glorot, lecun"):
        layers.Linear(2, 2, init="xavier")
    with pytest.raises(ActlabError, match="in_features must be a positive integer"):
        layers.Linear(0, 2)


def test_softmax_cross_entropy_is_stable_and_correct() -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 1, 2])
    loss, grad = layers.softmax_cross_entropy(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(5), y]).mean(), rel=1e-12)
    numeric = numeric_grad(lambda: layers.softmax_cross_entropy(logits, y)[0], logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    # logits far beyond exp's range: finite loss, exact limits
    big = np.array([[1e4, 0.0, -1e4], [1e4, 1e4 + 50, 0.0]])
    loss, grad = layers.softmax_cross_entropy(big, np.array([1, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx((1e4 + 50) / 2, rel=1e-12)


@pytest.mark.parametrize(
    "logits, y, match",
    [
        (np.zeros(3), np.array([0]), r"shape \(n, classes\)"),
        (np.zeros((2, 3)), np.array([0, 3]), r"class ids must be in \[0, 2\]"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), "integer class ids"),
        (np.zeros((2, 3)), np.array([0]), r"shape \(2,\)"),
    ],
)
def test_softmax_cross_entropy_rejects_bad_labels(logits, y, match) -> None:
    with pytest.raises(ActlabError, match=match):
        layers.softmax_cross_entropy(logits, y)


@pytest.mark.parametrize(
    "layer",
    [layers.build("relu"), layers.build("softmax"), layers.build("prelu"), layers.Linear(2, 2)],
    ids=repr,
)
def test_backward_before_forward_is_a_clear_error(layer: layers.Layer) -> None:
    with pytest.raises(layers.LayerStateError, match=r"backward\(\) was called before forward\(\)"):
        layer.backward(np.ones((1, 2)))


def test_grad_out_shape_mismatch_is_a_clear_error() -> None:
    layer = layers.build("tanh")
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(ActlabError, match=r"grad_out has shape \(3, 2\).*shape \(2, 3\)"):
        layer.backward(np.zeros((3, 2)))


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ActlabError, match="unknown activation 'rleu'; did you mean 'relu'"):
        layers.build("rleu")
    with pytest.raises(ActlabError, match="expected a real float array"):
        layers.build("relu").forward(np.array(["a", "b"]))
    with pytest.raises(ActlabError, match="axis=2 is out of range"):
        layers.build("softmax:axis=2").forward(np.zeros((2, 3)))
    with pytest.raises(ActlabError, match=r"not an actlab\.layers\.Layer"):
        layers.Sequential(layers.Linear(2, 2), "relu")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_activation_layers_preserve_dtype(dtype) -> None:
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    for spec in ("relu", "gelu", "softmax", "prelu:num_parameters=4"):
        layer = layers.build(spec)
        y = layer.forward(x)
        assert y.dtype == dtype, spec
        assert layer.backward(np.ones_like(y)).dtype == dtype, spec
    ints = layers.build("sigmoid").forward(np.array([0, 1]))
    assert ints.dtype == np.float64


def test_optimizers_reduce_the_loss() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    for make in (lambda m: layers.Adam(m, lr=1e-2), lambda m: layers.SGD(m, lr=0.5, momentum=0.9)):
        net = layers.Sequential(
            layers.Linear(4, 8, rng=rng), layers.build("elu"), layers.Linear(8, 2, rng=rng)
        )
        opt = make(net)
        first = layers.softmax_cross_entropy(net.forward(X), y)[0]
        for _ in range(50):
            _, grad = layers.softmax_cross_entropy(net.forward(X), y)
            net.backward(grad)
            opt.step()
        assert layers.softmax_cross_entropy(net.forward(X), y)[0] < 0.5 * first
    with pytest.raises(ActlabError, match="lr must be a positive finite number"):
        layers.Adam(net, lr=0)


def _example():
    spec = importlib.util.spec_from_file_location("numpy_mlp_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_example_learns() -> None:
    history = _example().train("relu", epochs=3, seed=0)
    assert len(history) == 3
    assert history[-1] >= 0.90


def test_digits_example_cli(capsys) -> None:
    example = _example()
    assert example.main(["--activation", "tanh", "--epochs", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "Tanh" in out and out.count("val accuracy") == 3
    with pytest.raises(SystemExit) as exc:
        example.main(["--activation", "rleu"])
    assert exc.value.code == 2
    assert "did you mean 'relu'" in capsys.readouterr().err
