"""The checkpoint format: what ``train(resume_from=...)`` reads and ``state_dicts`` unpacks."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from actlab.compare.training.data import _Data
from actlab.compare.training.types import Job, TrainConfig
from actlab.errors import ActlabError

_FORMAT = "actlab.compare.engine checkpoint v2"  # v2: the MLP's optimiser state is one flat tensor


def _fingerprint(jobs: Sequence[Job], data: _Data, config: TrainConfig) -> str:
    cfg = asdict(config)
    cfg.pop("epochs")  # more epochs may be added to a run later: training does not depend on it
    for key in ("select", "patience"):  # added later: unset, the fingerprint is as before
        if cfg[key] is None:
            cfg.pop(key)
    text = json.dumps(
        {"format": _FORMAT, "config": cfg,
         "jobs": [[str(j.activation), int(j.seed)] for j in jobs],
         "data": data.fingerprint},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def _load(blob: Any, what: str, fix: str = "") -> dict[str, Any]:
    """A checkpoint's contents; ``what`` names the argument in errors, ``fix`` ends them."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ActlabError(f"{what} must be the bytes of a checkpoint, got {type(blob).__name__}")
    try:
        state = torch.load(io.BytesIO(bytes(blob)), weights_only=True, map_location="cpu")
    except Exception as err:
        raise ActlabError(
            f"{what} is not a readable actlab checkpoint ({type(err).__name__}){fix}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ActlabError(f"{what} is not an actlab compare checkpoint (wrong format){fix}")
    return state


def _read_checkpoint(blob: bytes, fingerprint: str) -> dict[str, Any]:
    state = _load(blob, "resume_from", "; start the run afresh")
    if state.get("fingerprint") != fingerprint:
        raise ActlabError(
            "resume_from was saved for other jobs, data or settings than this call's; resume "
            "with the same configuration (only epochs may grow) or start a new run"
        )
    return state


def _to_cpu(state: Any) -> Any:
    """A trainer's state with every tensor on the CPU (checkpoints load on any machine)."""
    if isinstance(state, torch.Tensor):
        return state.cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


def state_dicts(blob: bytes) -> list[dict[str, torch.Tensor]]:
    """Each job's trained weights from a checkpoint, as a ``state_dict`` per job (in job order).

    For the default MLP the keys are those of ``nn.Sequential(Linear, act, Linear, act, ...,
    Linear)`` (``"0.weight"``, ``"0.bias"``, ``"2.weight"``...), so
    ``net.load_state_dict(state_dicts(blob)[k])`` loads model k into the plain network of
    docs/ARCHITECTURE.md's recipe; for your own network, its own keys.
    """
    state = _load(blob, "state_dicts(blob)")
    n_jobs = len(state["orders"])
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(n_jobs)]
    for rows, tr in zip(state["rows"], state["trainers"], strict=True):
        for r, k in enumerate(rows):
            if "nets" in tr:  # one model at a time
                out[k] = {n: v.clone() for n, v in tr["nets"][r].items()}
            elif isinstance(tr["params"], dict):  # vmapped user network
                out[k] = {n: v[r].clone() for n, v in {**tr["params"], **tr["buffers"]}.items()}
            else:  # stacked MLP: weights first, then biases; the output layer is stored (out, in)
                params = tr["params"]
                n_layers = len(params) // 2
                for layer in range(n_layers):
                    w = params[layer][r]
                    w = w if layer == n_layers - 1 else w.T
                    out[k][f"{2 * layer}.weight"] = w.contiguous().clone()
                    out[k][f"{2 * layer}.bias"] = params[n_layers + layer][r].flatten().clone()
    return out
