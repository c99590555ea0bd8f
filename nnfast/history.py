"""History: what fit() measured, per epoch."""
from __future__ import annotations


class History:
    """`history.history[name]` is a list with one value per epoch, for names such as
    "loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_sec", "seconds"."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def record(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def last(self, key, default=None):
        values = self.history.get(key)
        return values[-1] if values else default

    def __repr__(self):
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"
