"""Bring your own network: a small CNN for scikit-learn's 8x8 digits.

    actlab compare --model examples/cnn_digits.py:build --activations relu,silu,gelu
    actlab diagnose --model examples/cnn_digits.py:build --dataset digits

actlab calls ``build(activation_spec)`` once per activation (and seed) and trains what it returns on
the standardised, flattened 64 pixel features; the network emits logits.
"""

from __future__ import annotations

from torch import nn

import actlab.torch


def build(activation: str) -> nn.Module:
    """A 2-conv CNN whose every activation is ``activation`` (an actlab spec string)."""
    act = actlab.torch.build  # PyTorch's native module where one exists (nn.ReLU, nn.GELU, ...)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        act(activation),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        act(activation),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        act(activation),
        nn.Linear(64, 10),
    )
