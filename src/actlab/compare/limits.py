"""Sizes checked before anything is made: how many models a run trains and the memory they need.

A grid that cannot run on this machine (``--seeds 100000000000``, ``--depth 1000000``,
``--width 100000000``) is refused with the estimate and the limit before the run folder exists,
instead of spinning, hanging or failing in the allocator halfway. ``max_models`` /
``max_memory_gb`` (``--max-models``, ``--max-memory``) raise the limits for a bigger machine.
"""

from __future__ import annotations

import math
from typing import Any

from actlab.data import available_memory
from actlab.errors import ActlabError

MAX_MODELS = 20_000  # the default grid is 35 models; a 7 x 10 seeds x 3 x 3 x 3 grid is 1890
# Bytes per parameter while training: weight, gradient, Adam's two moments (float32), and the
# checkpoint's CPU copy of all four.
BYTES_PER_PARAM = 4 * 4 * 2
BYTES_PER_UNIT = 4 * 4  # per row x hidden unit of a batch: pre-activation, output, two gradients


def count_models(config: Any) -> int:
    """Models the run trains: activations x seeds x cells of the factor grid (no list built)."""
    cells = math.prod(len(getattr(config.model, f)) for f in ("depth", "width", "batch_size",
                                                              "lr", "weight_decay"))  # fmt: skip
    return len(config.study.activations) * int(config.study.seeds) * cells


def check_models(config: Any, max_models: int | None = None) -> int:
    """Refuse a run of more than ``max_models`` (default :data:`MAX_MODELS`) models."""
    limit = MAX_MODELS if max_models is None else max_models
    n = count_models(config)
    if n > limit:
        acts, seeds = len(config.study.activations), int(config.study.seeds)
        raise ActlabError(
            f"this run would train {n:,} models ({acts} activations x {seeds:,} seeds x "
            f"{n // (acts * seeds):,} factor cells), more than the limit of {limit:,}; use fewer "
            "seeds or factor values, or raise the limit with --max-models N"
        )
    return n


def group_bytes(config: Any, n_in: int, n_out: int) -> int:
    """Estimated peak bytes of the largest group (one cell: every activation x seed at once)."""
    per_group = len(config.study.activations) * (1 if config.data.resample_split else
                                                 int(config.study.seeds))  # fmt: skip
    worst = 0
    for depth in config.model.depth:
        for width in config.model.width:
            params = n_in * width + width + (depth - 1) * (width * width + width)
            params += width * n_out + n_out
            for batch in config.model.batch_size:
                units = batch * width * depth
                worst = max(worst, params * BYTES_PER_PARAM + units * BYTES_PER_UNIT)
    return per_group * worst


def check_memory(config: Any, n_in: int, n_out: int, max_memory_gb: float | None = None) -> None:
    """Refuse a grid whose largest group needs more memory than is available (or than
    ``max_memory_gb``); a user ``--model``'s size is unknown until it is built: not checked."""
    if config.model.model is not None:
        return

    need = group_bytes(config, n_in, n_out)
    if max_memory_gb is not None:
        limit, what = int(max_memory_gb * 2**30), "--max-memory"
    else:
        limit, what = available_memory() or 0, "the memory available on this machine"
        if not limit:
            return
    if need > limit:
        raise ActlabError(
            f"the largest group of models needs about {_gb(need)} to train (depth "
            f"{max(config.model.depth):,}, width {max(config.model.width):,}), more than "
            f"{_gb(limit)} ({what}); use a smaller network, fewer activations or seeds, or set "
            "--max-memory GB if this estimate is wrong for your machine"
        )


def _gb(n: int) -> str:
    if n < 2**30:
        return f"{n / 2**20:,.1f} MB"
    return f"{n / 2**30:,.1f} GB" if n < 2**50 else f"{n / 2**30:.2e} GB"
