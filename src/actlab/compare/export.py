"""Tidy export of a comparison: one row per model and epoch (``actlab report DIR --csv FILE``).

Columns: ``model``, ``activation``, ``seed``, every factor (``depth``, ``width``, ``batch_size``,
``lr``, ``weight_decay``), ``split_seed``, ``val_fraction``, ``test_fraction``, ``epoch``,
``status`` (the model's final status), ``diverged`` (in this epoch), ``train_loss``, ``val_loss``,
every validation metric, the test metrics (``test_loss``, ``test_accuracy``... filled on the model's
last epoch only: the test part is scored once), ``seconds``, and the mean dead / saturated fraction
over hidden layers. Missing numbers are empty in CSV and ``null`` in JSON.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from actlab.compare.store import EPOCH_COLUMNS

__all__ = ["rows", "write_csv", "write_json"]


def _mean(values: Any) -> float:
    ok = [float(v) for v in values or [] if v is not None and math.isfinite(float(v))]
    return sum(ok) / len(ok) if ok else math.nan


def rows(res: Any) -> list[dict[str, Any]]:
    """One dict per model and epoch, every key in every row (same columns throughout)."""
    status = {m["id"]: m["status"] for m in res.models}
    metric_keys: list[str] = []
    skip = {"activation", "seed", "cell", "group", "model", *EPOCH_COLUMNS}
    for r in res.history:
        for k in r:
            if k not in skip and k not in metric_keys:
                metric_keys.append(k)
    val_keys = sorted(k for k in metric_keys if not k.startswith("test_"))
    test_keys = sorted(k for k in metric_keys if k.startswith("test_"))
    d = res.config.data
    out = []
    for r in res.history:
        row: dict[str, Any] = {
            "model": r["model"],
            "activation": r["activation"],
            "seed": r["seed"],
            **{f: r["cell"].get(f) for f in res.config.model.factors},
            "split_seed": d.split_seed_for(int(r["seed"])),
            "val_fraction": d.val_fraction,
            "test_fraction": d.test_fraction,
            "epoch": r["epoch"],
            "status": status.get(r["model"]),
            "diverged": bool(r["diverged"]),
            "train_loss": r["train_loss"],
            "val_loss": r["val_loss"],
        }
        for k in val_keys + test_keys:
            row[k] = r.get(k, math.nan)
        row["seconds"] = r["seconds"]
        row["dead_fraction"] = _mean(r.get("dead_fraction"))
        row["saturated_fraction"] = _mean(r.get("saturated_fraction"))
        out.append(row)
    return out


def _plain(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_csv(res: Any, path: str | Path) -> Path:
    data = rows(res)
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as fh:
        if not data:
            return p
        w = csv.DictWriter(fh, fieldnames=list(data[0]))
        w.writeheader()
        for r in data:
            w.writerow({k: "" if _plain(v) is None else v for k, v in r.items()})
    return p


def write_json(res: Any, path: str | Path) -> Path:
    data = [{k: _plain(v) for k, v in r.items()} for r in rows(res)]
    p = Path(path)
    p.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return p
