"""Watching a logged metric: shared by EarlyStopping, ModelCheckpoint and ReduceLROnPlateau."""
from __future__ import annotations

import math


# Metrics that grow as the model improves: "auto" watches them for a maximum.
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1")


def resolve_mode(mode: str, monitor: str, owner: str) -> str:
    if mode == "auto":
        return "max" if any(k in monitor for k in _HIGHER_IS_BETTER) else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"{owner}: mode must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def improved(value: float, best, mode: str, min_delta: float) -> bool:
    """Whether `value` beats `best` by more than min_delta (NaN never improves)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def require_metric(name: str, available, owner: str) -> None:
    if name not in available:
        names = ", ".join(sorted(available)) or "none"
        hint = " (pass validation_data or validation_split to fit())" if name.startswith("val_") else ""
        raise ValueError(f"{owner}: monitored metric {name!r} is not logged{hint}; "
                         f"available metrics: {names}")
