"""Where training runs: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

>>> from actlab import devices
>>> devices.resolve("cpu")
device(type='cpu')
>>> devices.describe("cpu")["device"]
'cpu'

``resolve("auto")`` picks CUDA, then Apple's MPS, then the CPU. Asking for a device that is not
there is an :class:`~actlab.errors.ActlabError` (the CLI's one-line error, exit 2) that names what
was found. ``describe`` gives what a run records about its device (type, name, PyTorch build)
so that a report can say where every session trained.
"""

from __future__ import annotations

import platform
from typing import Any

import torch

from actlab.errors import ActlabError, suggest

__all__ = ["CHOICES", "available", "describe", "resolve"]

CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps() -> bool:
    return bool(torch.backends.mps.is_available())


def available() -> list[str]:
    """The devices this process can train on, e.g. ``["cpu", "cuda:0 (NVIDIA H200)"]``."""
    found = ["cpu"]
    for i in range(_cuda_count()):
        found.append(f"cuda:{i} ({torch.cuda.get_device_name(i)})")
    if _mps():
        found.append("mps")
    return found


def _build() -> str:
    if torch.version.cuda:
        return f"PyTorch {torch.__version__} with CUDA {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"PyTorch {torch.__version__} with ROCm {torch.version.hip}"
    return f"PyTorch {torch.__version__} without CUDA support"


def _missing(asked: str, what: str) -> ActlabError:
    return ActlabError(
        f"device '{asked}' is not available: {what}; found {', '.join(available())} "
        f"({_build()}); use --device auto or --device cpu"
    )


def resolve(device: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` to train on; ``None`` means ``"auto"`` (CUDA, then MPS, then CPU)."""
    if isinstance(device, torch.device):
        text = str(device)
    elif device is None:
        text = "auto"
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise ActlabError(
            f"device must be one of {', '.join(CHOICES)}, got {type(device).__name__}"
        )
    if text == "auto":
        if _cuda_count():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps():
            raise _missing(text, "PyTorch reports no Apple MPS backend")
        return torch.device("mps")
    kind, colon, index = text.partition(":")
    if kind == "cuda" and (not colon or index.isdigit()):
        count = _cuda_count()
        if count == 0:
            raise _missing(text, "PyTorch reports no CUDA GPU")
        n = int(index) if colon else torch.cuda.current_device()
        if n >= count:
            raise _missing(text, f"there {'is' if count == 1 else 'are'} {count} CUDA GPU(s)")
        return torch.device("cuda", n)
    raise ActlabError(
        f"device must be one of {', '.join(CHOICES)} (N a GPU number such as 0), got {device!r}"
        + ("; did you mean 'cuda'?" if text == "gpu" else suggest(text, ["auto", "cuda", "mps"]))
    )


def describe(device: str | torch.device) -> dict[str, Any]:
    """What a run records about its device: ``device``, ``name``, ``torch`` (version) and
    ``build`` (with CUDA/ROCm version or not)."""
    dev = resolve(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        index = torch.cuda.current_device() if dev.index is None else dev.index
        name = torch.cuda.get_device_name(index)
    elif dev.type == "mps":
        name = f"Apple MPS ({platform.machine()})"
    else:
        name = platform.processor() or platform.machine() or "cpu"
    return {"device": str(dev), "name": name, "torch": torch.__version__, "build": _build()}


def label(info: dict[str, Any]) -> str:
    """``'cuda:0 (NVIDIA H200, PyTorch 2.13.0 with CUDA 12.8)'`` from :func:`describe`'s dict."""
    return f"{info.get('device', '?')} ({info.get('name', '?')}, {info.get('build', '?')})"
