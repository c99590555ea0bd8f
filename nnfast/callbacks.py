"""Callbacks: hooks that fit() calls at the start and end of training and of each epoch."""
from __future__ import annotations


class Callback:
    """Override any hook. `logs` holds the epoch's metrics (loss, accuracy, val_loss, ...).
    Setting `model.stop_training = True` ends fit() after the current epoch."""

    def on_train_begin(self, model, logs: dict) -> None:
        pass

    def on_epoch_end(self, model, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, model, logs: dict) -> None:
        pass
