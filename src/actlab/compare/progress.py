"""Progress without a terminal: a plain line to a stream (stderr), at most every few seconds.

Used by ``actlab compare`` when its output is piped or logged (or with ``--json``), and by
``compare.run(progress=True)`` in scripts and notebooks. A line says the group, the epoch, the
share done, the elapsed time, the estimated time left and the best validation score so far::

    actlab compare: group 1/2, epoch 12/30 (20%), 0:05 elapsed, ETA 0:21, best relu (seed 2) 0.9694
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

__all__ = ["EVERY_S", "PlainProgress"]

EVERY_S = 5.0  # a log gets a line every 5 s at most: ~12 lines a minute, readable in CI logs


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(max(seconds, 0))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class PlainProgress:
    """A ``progress`` callback for ``compare.run``: writes one line at most every ``every``
    seconds (the first report at once, and the end of each group's last epoch) to ``stream``."""

    def __init__(self, stream: TextIO | None = None, every: float = EVERY_S) -> None:
        self.stream = stream
        self.every = every
        self.start = time.monotonic()
        self.last = -math.inf
        self.seen: set[tuple[Any, Any]] = set()

    def line(self, info: dict[str, Any], now: float | None = None) -> str:
        """The text of one progress line for an engine progress dict (at ``now``)."""
        now = time.monotonic() if now is None else now
        epochs = max(int(info.get("epochs") or 1), 1)
        steps = max(int(info.get("steps") or 1), 1)
        epoch = int(info.get("epoch") or 0)
        done = (max(epoch - 1, 0) + min(int(info.get("step") or 0), steps) / steps) / epochs
        where = f"epoch {epoch}/{epochs} ({done:.0%})"
        if int(info.get("groups") or 1) > 1:
            where = f"group {int(info['group']) + 1}/{info['groups']}, {where}"  # (0-based)
        text = (f"actlab compare: {where}, {_clock(now - self.start)} elapsed, "
                f"ETA {_clock(info.get('eta_s'))}")  # fmt: skip
        best = info.get("best")
        if best:
            text += f", best {best[0]} {best[1]:.4g}"
        return text

    def __call__(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        key = (info.get("group"), info.get("epoch"))
        edge = int(info.get("epoch") or 0) == int(info.get("epochs") or 0)  # a group's end
        end_of_epoch = int(info.get("step") or 0) >= int(info.get("steps") or 1)
        first_time = edge and end_of_epoch and key not in self.seen
        if now - self.last < self.every and not first_time:
            return
        if first_time:
            self.seen.add(key)
        self.last = now
        stream = self.stream or sys.stderr
        print(self.line(info, now), file=stream, flush=True)
