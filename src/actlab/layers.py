"""NumPy layers with hand-written backward passes, for networks written from scratch.

Each layer has ``forward(x)``, which caches what the gradient needs, and ``backward(grad_out)``,
which returns dL/dx and fills the gradients of the layer's parameters (``params()`` and ``grads()``
are parallel lists of arrays, overwritten in place by each backward, so an optimizer can hold on to
them). Activation layers contain no formulas of their own: they call :mod:`actlab.kernels`.

>>> import numpy as np
>>> from actlab import layers
>>> rng = np.random.default_rng(0)
>>> net = layers.Sequential(
...     layers.Linear(4, 8, rng=rng), layers.build("elu"), layers.Linear(8, 3, rng=rng)
... )
>>> logits = net.forward(rng.normal(size=(5, 4)))
>>> loss, grad = layers.softmax_cross_entropy(logits, np.array([0, 1, 2, 0, 1]))
>>> _ = net.backward(grad)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from actlab import kernels, spec
from actlab.catalog import Activation, parse
from actlab.errors import ActlabError

__all__ = [
    "SGD",
    "ActivationLayer",
    "Adam",
    "Layer",
    "LayerStateError",
    "LearnableSwish",
    "Linear",
    "LogSoftmax",
    "PReLU",
    "Sequential",
    "Softmax",
    "build",
    "softmax_cross_entropy",
]


class LayerStateError(ActlabError, RuntimeError):
    """A layer used in the wrong order, e.g. ``backward`` before ``forward``."""


class Layer:
    """Base class: ``forward`` caches, ``backward`` consumes the cache and returns dL/dx."""

    def __init__(self) -> None:
        self._cache: Any = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def params(self) -> list[np.ndarray]:
        """Trainable arrays (updated in place by optimizers)."""
        return []

    def grads(self) -> list[np.ndarray]:
        """Gradients of the last ``backward``, parallel to ``params()``."""
        return []

    def zero_grad(self) -> None:
        for g in self.grads():
            g.fill(0)

    def _cached(self, grad_out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Validate grad_out against the cached forward output's shape."""
        grad_out = np.asarray(grad_out)
        if grad_out.shape != shape:
            raise ActlabError(
                f"{type(self).__name__}.backward: grad_out has shape {grad_out.shape}, but the "
                f"last forward() returned shape {shape}; pass the gradient of the loss "
                "w.r.t. that output"
            )
        return grad_out

    def _need_cache(self) -> Any:
        if self._cache is None:
            raise LayerStateError(
                f"{type(self).__name__}.backward() was called before forward(); "
                "run forward(x) on a batch first, then backward(grad_out) once for that batch"
            )
        return self._cache


def _as_float(x: Any, where: str) -> np.ndarray:
    """Floats keep their dtype, ints/bools become float64; anything else is a clear error."""
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    if a.dtype.kind != "f":
        raise ActlabError(
            f"{where}: input has dtype {a.dtype}; expected a real float array "
            "(float16/float32/float64; ints and bools are converted to float64)"
        )
    return a


# ---------------------------------------------------------------- activation layers


class ActivationLayer(Layer):
    """An elementwise activation from the catalog: y = f(x), dL/dx = dL/dy * f'(x)."""

    def __init__(self, activation: Activation) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float(x, repr(self))
        y = self.activation.forward(x)
        self._cache = x
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._need_cache()
        g = self._cached(grad_out, x.shape)
        return g * self.activation.derivative(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.activation})"


class Softmax(ActivationLayer):
    """softmax along ``axis``; backward is the full Jacobian-vector product y * (g - sum(g * y))."""

    def __init__(self, activation: Activation) -> None:
        super().__init__(activation)
        self.axis = int(activation.params["axis"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float(x, repr(self))
        _check_axis(x, self.axis, repr(self))
        y = self.activation.forward(x)
        self._cache = y
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache()
        return kernels.softmax_vjp(y, self._cached(grad_out, y.shape), axis=self.axis)


class LogSoftmax(Softmax):
    """log_softmax along ``axis``; backward is g - softmax(x) * sum(g)."""

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self._need_cache()
        return kernels.log_softmax_vjp(y, self._cached(grad_out, y.shape), axis=self.axis)


def _check_axis(x: np.ndarray, axis: int, where: str) -> None:
    if not -max(x.ndim, 1) <= axis < max(x.ndim, 1):
        raise ActlabError(
            f"{where}: axis={axis} is out of range for an input with {x.ndim} dimension(s); "
            f"use an axis in [{-max(x.ndim, 1)}, {max(x.ndim, 1) - 1}] (default -1)"
        )


class PReLU(ActivationLayer):
    """Leaky ReLU with a learnable slope ``a``: y = x if x > 0 else a * x.

    With ``num_parameters > 1`` there is one slope per channel; the channel axis is 1, as in PyTorch
    (inputs of shape (N, C, ...)). ``backward`` also fills ``grad_weight`` = dL/da.
    """

    def __init__(self, activation: Activation) -> None:
        super().__init__(activation)
        n = int(activation.params["num_parameters"])
        self.weight = np.full(n, float(activation.params["init"]), dtype=np.float64)
        self.grad_weight = np.zeros_like(self.weight)

    def _slope(self, x: np.ndarray) -> np.ndarray:
        """The slope shaped to broadcast against x (channels on axis 1)."""
        n = self.weight.size
        if n == 1:
            return self.weight.reshape(())
        if x.ndim < 2 or x.shape[1] != n:
            raise ActlabError(
                f"{self!r}: input of shape {x.shape} has no channel axis of size {n}; "
                f"per-channel PReLU expects shape (N, {n}, ...) (channels on axis 1); "
                "or use num_parameters=1"
            )
        return self.weight.reshape((n,) + (1,) * (x.ndim - 2))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float(x, repr(self))
        y = kernels.prelu(x, weight=self._slope(x))
        self._cache = x
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._need_cache()
        g = self._cached(grad_out, x.shape)
        ga = g * kernels.prelu_weight_derivative(x)
        if self.weight.size == 1:
            self.grad_weight[...] = ga.sum()
        else:
            self.grad_weight[...] = ga.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
        return g * kernels.prelu_derivative(x, weight=self._slope(x))

    def params(self) -> list[np.ndarray]:
        return [self.weight]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight]


class LearnableSwish(ActivationLayer):
    """Swish with a learnable beta: y = x * sigmoid(beta * x), dy/dbeta = x^2 sigmoid'(beta x)."""

    def __init__(self, activation: Activation) -> None:
        super().__init__(activation)
        self.beta = np.array([float(activation.params["beta"])])
        self.grad_beta = np.zeros_like(self.beta)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float(x, repr(self))
        y = kernels.silu(x, beta=float(self.beta[0]))
        self._cache = x
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._need_cache()
        g = self._cached(grad_out, x.shape)
        beta = float(self.beta[0])
        self.grad_beta[0] = np.sum(g * x * x * kernels.sigmoid_derivative(beta * x))
        return g * kernels.silu_derivative(x, beta=beta)

    def params(self) -> list[np.ndarray]:
        return [self.beta]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_beta]


def build(spec: str | Activation) -> ActivationLayer:
    """The NumPy layer for a catalog spec, e.g. ``build("elu:alpha=0.5")``; the definition's
    ``layer`` names its class (softmax: :class:`Softmax`, prelu: :class:`PReLU`, ...)."""
    act = parse(spec)
    name = act.spec.layer if isinstance(act.spec.layer, str) else act.spec.layer(act.params)
    return _LAYERS[name](act)


_LAYERS = {c.__name__: c for c in (ActivationLayer, Softmax, LogSoftmax, PReLU, LearnableSwish)}


# ---------------------------------------------------------------- Linear, Sequential, loss


class Linear(Layer):
    """y = x @ W + b, with W of shape (in_features, out_features).

    ``init``: "he" (normal, std sqrt(2/fan_in), for ReLU-like units), "glorot" (uniform,
    limit sqrt(6/(fan_in+fan_out)), for tanh/sigmoid), "lecun" (normal, std sqrt(1/fan_in), SELU).
    """

    INITS = spec.INITS  # the one list, no extras

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str = "he",
        rng: np.random.Generator | None = None,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ActlabError(f"Linear: {name} must be a positive integer, got {v!r}")
        if init not in self.INITS:
            raise ActlabError(f"Linear: unknown init {init!r}; allowed: {', '.join(self.INITS)}")
        rng = np.random.default_rng() if rng is None else rng
        fan_in, fan_out = int(in_features), int(out_features)
        if init == "glorot":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        else:
            std = np.sqrt((2.0 if init == "he" else 1.0) / fan_in)
            w = rng.normal(0.0, std, size=(fan_in, fan_out))
        self.weight = w.astype(dtype)
        self.bias = np.zeros(fan_out, dtype=dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float(x, repr(self))
        if x.ndim < 1 or x.shape[-1] != self.weight.shape[0]:
            raise ActlabError(
                f"{self!r}: input of shape {x.shape} must have {self.weight.shape[0]} features "
                "in its last axis"
            )
        self._cache = x
        return x @ self.weight + self.bias

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._need_cache()
        g = self._cached(grad_out, (*x.shape[:-1], self.weight.shape[1]))
        x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        self.grad_weight[...] = x2.T @ g2
        self.grad_bias[...] = g2.sum(axis=0)
        return g @ self.weight.T

    def params(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight, self.grad_bias]

    def __repr__(self) -> str:
        return f"Linear({self.weight.shape[0]}, {self.weight.shape[1]})"


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ActlabError(
                    f"Sequential: item {i} is a {type(layer).__name__}, not an actlab.layers."
                    "Layer; build activations with layers.build(spec)"
                )
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def params(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params()]

    def grads(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.grads()]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels ``y`` under softmax(logits), and its logits gradient.

    Computed through log_softmax, so huge logits neither overflow nor give log(0); the gradient is
    (softmax(logits) - onehot(y)) / n.
    """
    logits = _as_float(logits, "softmax_cross_entropy")
    y = np.asarray(y)
    if logits.ndim != 2:
        raise ActlabError(
            f"softmax_cross_entropy: logits must have shape (n, classes), got {logits.shape}"
        )
    n, k = logits.shape
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ActlabError(
            f"softmax_cross_entropy: y must be {n} integer class ids (shape ({n},)), "
            f"got shape {y.shape} and dtype {y.dtype}"
        )
    if n and (y.min() < 0 or y.max() >= k):
        raise ActlabError(
            f"softmax_cross_entropy: class ids must be in [0, {k - 1}] for {k} logits per row, "
            f"got values in [{y.min()}, {y.max()}]"
        )
    logp = kernels.log_softmax(logits, axis=-1)
    rows = np.arange(n)
    loss = -float(logp[rows, y].mean()) if n else 0.0
    grad = np.exp(logp)
    grad[rows, y] -= 1
    grad /= max(n, 1)
    return loss, grad


# ---------------------------------------------------------------- optimizers


class SGD:
    """SGD with optional momentum; updates ``model.params()`` in place from ``model.grads()``."""

    def __init__(self, model: Layer, lr: float = 0.1, momentum: float = 0.0) -> None:
        _check_positive("SGD", lr=lr)
        self.model, self.lr, self.momentum = model, float(lr), float(momentum)
        self._velocity = [np.zeros_like(p) for p in model.params()]

    def step(self) -> None:
        for p, g, v in zip(self.model.params(), self.model.grads(), self._velocity, strict=True):
            v *= self.momentum
            v += g
            p -= self.lr * v


class Adam:
    """Adam (Kingma & Ba, 2015), bias-corrected; updates ``model.params()`` in place."""

    def __init__(
        self,
        model: Layer,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        _check_positive("Adam", lr=lr, eps=eps)
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ActlabError(f"Adam: betas must both be in [0, 1), got {betas}")
        self.model, self.lr, self.betas, self.eps = model, float(lr), betas, float(eps)
        self._m = [np.zeros_like(p) for p in model.params()]
        self._v = [np.zeros_like(p) for p in model.params()]
        self._t = 0

    def step(self) -> None:
        self._t += 1
        b1, b2 = self.betas
        scale = self.lr * np.sqrt(1 - b2**self._t) / (1 - b1**self._t)
        for p, g, m, v in zip(
            self.model.params(), self.model.grads(), self._m, self._v, strict=True
        ):
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g * g - v)
            p -= scale * m / (np.sqrt(v) + self.eps)


def _check_positive(where: str, **values: float) -> None:
    for name, v in values.items():
        if not np.isfinite(v) or v <= 0:
            raise ActlabError(f"{where}: {name} must be a positive finite number, got {v!r}")
