"""History: what fit() measured, per epoch, and its training curves."""
from __future__ import annotations


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

    def plot(self, path=None, *, title: str | None = None, dpi: int = 100):
        """Draw the training curves (loss, and accuracy when logged; train and validation)
        and return the matplotlib Figure. With `path`, save it there (PNG, SVG, PDF by the
        extension) with the Agg renderer, which needs no display."""
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
        panels = [name for name in ("loss", "accuracy") if name in self.history]
        if path is not None:
            fig = Figure(figsize=(5 * len(panels), 4))
            FigureCanvasAgg(fig)
        else:
            fig = plt.figure(figsize=(5 * len(panels), 4))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        epochs = [e + 1 for e in self.epoch]
        for ax, name in zip(axes, panels):
            ax.plot(epochs, self.history[name], marker=".", label="train")
            if f"val_{name}" in self.history:
                ax.plot(epochs, self.history[f"val_{name}"], marker=".", label="validation")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(name)
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
