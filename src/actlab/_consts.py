"""Constants shared by the NumPy kernels (actlab.activations) and the compiled ones (_compiled)."""

from __future__ import annotations

import math

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_HALF = math.sqrt(0.5)
TWO_SQRT2 = 2.0 * math.sqrt(2.0)
GELU_K = 0.044715  # the tanh-GELU's x + 0.044715 x^3
# erfc(z) = t Q(t) exp(-z^2), t = 1 / (1 + z/2), Q a degree-10 polynomial (our own
# relative-weighted Chebyshev least-squares fit of erfcx(z) / t on t in (0, 1], max relative
# error 1.2e-8; halved for Phi = erfc / 2): GELU's float32 forward, NumPy and compiled.
ERFC_Q = (
    0.14104739759910467,
    0.1410468765411259,
    0.12344229555809275,
    0.0876579040709294,
    0.04673168314165646,
    -0.02960722039795355,
    0.06609169088056871,
    -0.2274910744858732,
    0.24685066393110572,
    -0.11736818952650574,
    0.021597974977737387,
)
