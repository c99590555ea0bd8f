"""History: what fit() measured, per epoch, and its training curves."""
from __future__ import annotations

import numpy as np


class History:
    """`history.history[name]` is a list with one value per epoch, for names such as
    "loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_sec", "seconds";
    `history.epoch` the epoch numbers (from 0, continuing across fit() calls)."""

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

    def best_epoch(self, monitor: str = "val_loss", mode: str = "auto"):
        """The epoch (numbered as History.epoch and EarlyStopping.best_epoch, from 0) where
        `monitor` was best: lowest, or highest for accuracies (mode "auto"); the first one
        on a tie, as EarlyStopping keeps it. None when `monitor` was not logged."""
        values = self.history.get(monitor)
        if not values:
            return None
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"best_epoch: mode must be 'min', 'max' or 'auto', got {mode!r}")
        pick = np.nanargmax if mode == "max" else np.nanargmin
        return self.epoch[int(pick(np.asarray(values, dtype=float)))]

    def plot(self, path=None, *, title: str | None = None, dpi: int = 100, monitor=None,
             best_epoch=None):
        """Draw the training curves (loss, accuracy when logged, train and validation) and the
        learning rate, mark the best epoch, and return the matplotlib Figure. With `path`,
        save it there (PNG, SVG, PDF by the extension) with the Agg renderer, which needs no
        display.

        Epochs are numbered as History.epoch and EarlyStopping.best_epoch (from 0). The best
        epoch is `best_epoch` when given (say an EarlyStopping's), else the one where
        `monitor` (default "val_loss" when logged, else "loss") was best.
        """
        if not self.epoch:
            raise ValueError("History.plot: no epochs recorded")
        try:
            from matplotlib.ticker import MaxNLocator
            if path is not None:
                from matplotlib.backends.backend_agg import FigureCanvasAgg
                from matplotlib.figure import Figure
            else:
                import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install matplotlib "
                              "(or pip install nnfast[plot])") from None
        if best_epoch is None:
            monitor = monitor or ("val_loss" if "val_loss" in self.history else "loss")
            best_epoch = self.best_epoch(monitor)
        panels = [name for name in ("loss", "accuracy", "lr") if name in self.history]
        if path is not None:
            fig = Figure(figsize=(5 * len(panels), 4))
            FigureCanvasAgg(fig)
        else:
            fig = plt.figure(figsize=(5 * len(panels), 4))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, name in zip(axes, panels):
            ax.plot(self.epoch, self.history[name], marker=".",
                    label="learning rate" if name == "lr" else "train")
            if f"val_{name}" in self.history:
                ax.plot(self.epoch, self.history[f"val_{name}"], marker=".", label="validation")
            if best_epoch is not None:
                ax.axvline(best_epoch, color="gray", linestyle="--", linewidth=1,
                           label=f"best epoch {best_epoch}")
            ax.set_xlabel("epoch (from 0)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("learning rate" if name == "lr" else name)
            ax.grid(True, alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=dpi)
        return fig

    def __repr__(self):
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"
