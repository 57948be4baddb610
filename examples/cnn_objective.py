"""Your own training loop in a fair study: a small CNN on scikit-learn's 8x8 digits.

    actlab compare --objective examples/cnn_objective.py:fit --activations relu,silu,gelu \\
        --param scheduler=cosine,step --epochs 8 --seeds 5

actlab calls ``fit(trial)`` once per activation x scheduler x seed, with the seed already applied
to torch, NumPy and ``random``. The loop is ordinary PyTorch: its own optimizer, a learning-rate
scheduler (a factor of the study: ``trial.params["scheduler"]``, chosen per activation on
validation data), mini-batches and light augmentation (a one-pixel shift). It reports the
validation accuracy each epoch and returns the test accuracy; actlab does the rest (store,
resume per model, selection, paired Holm tests, report).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def network(trial: Any) -> nn.Module:
    """Two convolutions and a linear head; every activation is the trial's."""
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        trial.activation(),
        nn.Conv2d(16, 32, kernel_size=3, padding=1),
        trial.activation(),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        trial.activation(),
        nn.Linear(64, trial.data.n_classes),
    )


def images(X: Any) -> torch.Tensor:
    """Rows as N x 1 x 8 x 8 images (a flat 64-pixel table, or images kept as they were)."""
    x = torch.as_tensor(X, dtype=torch.float32)
    return x if x.ndim == 4 else x.reshape(-1, 1, 8, 8)


def accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        acc = (net(X).argmax(1) == y).float().mean().item()
    net.train()
    return acc


def fit(trial: Any) -> dict[str, float]:
    """Train one CNN for ``trial.epochs`` epochs; report validation accuracy, return test's."""
    d = trial.data
    X, y = images(d.X_train), torch.as_tensor(d.y_train)
    Xv, yv = images(d.X_val), torch.as_tensor(d.y_val)
    Xt, yt = images(d.X_test), torch.as_tensor(d.y_test)
    net = network(trial)
    opt = torch.optim.AdamW(net.parameters(), lr=float(trial.params["lr"]) * 3)
    steps = -(-len(X) // 64)
    if trial.params.get("scheduler", "cosine") == "cosine":
        sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=trial.epochs * steps)
    else:
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(trial.epochs // 2, 1) * steps)
    for epoch in range(1, trial.epochs + 1):
        order = torch.randperm(len(X))
        total = 0.0
        for i in range(0, len(X), 64):
            idx = order[i : i + 64]
            xb = torch.roll(X[idx], shifts=int(torch.randint(-1, 2, ())), dims=3)  # augmentation
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xb), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        trial.report(epoch, val_accuracy=accuracy(net, Xv, yv), train_loss=total / len(X))
    return {"test_accuracy": accuracy(net, Xt, yt)}
