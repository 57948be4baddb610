"""Validation and test metrics of stacked outputs, one value per model."""

from __future__ import annotations

import math

import torch
from torch import nn

from actlab.compare.training.data import _Data


def macro_f1(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Macro-averaged F1 of predictions ``(..., n)`` against targets ``(n,)``, per leading index.

    F1_c = 2 TP_c / (predicted_c + true_c); the mean runs over the classes that occur in the targets
    or the predictions (scikit-learn's ``f1_score(average="macro", zero_division=0)``).
    """
    # counts are whole numbers, exact in float32 below 2**24 rows: MPS, which has no float64
    dt = torch.float32 if pred.device.type == "mps" else torch.float64
    pred_oh = nn.functional.one_hot(pred, n_classes).to(dt)
    true_oh = nn.functional.one_hot(target, n_classes).to(dt)
    tp = (pred_oh * true_oh).sum(-2)
    denom = pred_oh.sum(-2) + true_oh.sum(-2)
    present = denom > 0
    f1 = torch.where(present, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))
    return (f1.sum(-1) / present.sum(-1)).to(torch.float32)


def balanced_accuracy(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean recall over the classes present in ``target`` (scikit-learn's
    ``balanced_accuracy_score``), per leading index of ``pred`` ``(..., n)``."""
    dt = torch.float32 if pred.device.type == "mps" else torch.float64
    true_oh = nn.functional.one_hot(target, n_classes).to(dt)
    hit = (pred == target).to(dt)
    tp = (hit.unsqueeze(-1) * true_oh).sum(-2)
    count = true_oh.sum(-2)
    present = count > 0
    recall = torch.where(present, tp / count.clamp_min(1), torch.zeros_like(tp))
    return (recall.sum(-1) / present.sum(-1)).to(torch.float32)


def roc_auc(score: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary ROC AUC of scores ``(M, n)`` against 0/1 targets ``(n,)``, per model: the
    Mann-Whitney statistic with tied scores given their average rank (= scikit-learn's
    ``roc_auc_score``, which integrates the ROC curve with trapezoids); NaN with one class."""
    dt = torch.float32 if score.device.type == "mps" else torch.float64
    s = score.to(dt)
    ordered = s.sort(-1).values
    left = torch.searchsorted(ordered, s, right=False)
    right = torch.searchsorted(ordered, s, right=True)
    rank = (left + right + 1).to(dt) / 2  # 1-based average rank of each score
    pos = target.to(torch.bool)
    n_pos = int(pos.sum())
    n_neg = int(pos.numel()) - n_pos
    if n_pos == 0 or n_neg == 0:
        return torch.full(score.shape[:-1], math.nan, dtype=torch.float32, device=score.device)
    u = rank[..., pos].sum(-1) - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).to(torch.float32)


def _val_metrics(
    out_t: torch.Tensor, data: _Data, part: str = "val"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and metrics, each (M,), for transposed outputs ``(M, n_out, n_rows)`` of ``part``.

    ``part`` is "val" (every epoch) or "test" (once per model, with its best epoch's outputs);
    metric names carry it as a prefix: accuracy, balanced_accuracy, macro_f1, log_loss (= the loss)
    and, with two classes, roc_auc for classification; rmse, mae and r2 for regression (in the
    target's units). Classes along dim 1 (the MLP's native layout): log-softmax and argmax then run
    along contiguous rows of n_val values, ~10x faster than over a last dimension of ~10 classes.
    """
    y = data.y_test if part == "test" else data.y_val
    if data.classification:
        logp = torch.log_softmax(out_t, 1)
        loss = -logp.gather(1, y.expand(out_t.shape[0], 1, -1)).mean((1, 2))
        pred = out_t.max(1).indices  # = argmax(1) (first maximum), ~10x faster along dim 1
        acc = (pred == y).to(torch.float32).mean(-1)
        out = {f"{part}_accuracy": acc, f"{part}_macro_f1": macro_f1(pred, y, data.n_out),
               f"{part}_balanced_accuracy": balanced_accuracy(pred, y, data.n_out),
               f"{part}_log_loss": loss.to(torch.float32)}  # fmt: skip
        if data.n_out == 2:
            out[f"{part}_roc_auc"] = roc_auc(out_t[:, 1] - out_t[:, 0], y)
        return loss, out
    out = out_t.transpose(1, 2)
    err = (out - y).square()
    loss = err.mean((-2, -1))
    rmse = loss.sqrt() * data.target_scale  # targets were standardised by the split
    mae = (out - y).abs().mean((-2, -1)) * data.target_scale
    ss_res = err.sum(-2)
    ss_tot = (y - y.mean(0)).square().sum(0)
    # scikit-learn's r2_score with force_finite: a constant validation target gives 1 (perfect) or 0
    r2 = torch.where(
        ss_tot > 0,
        1 - ss_res / ss_tot.clamp_min(torch.finfo(torch.float32).tiny),
        (ss_res == 0).to(torch.float32),
    ).mean(-1)
    return loss, {f"{part}_rmse": rmse, f"{part}_r2": r2, f"{part}_mae": mae}
