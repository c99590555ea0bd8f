"""What fit() drives, one object per way of running a training step; fit() picks one before
the first batch (train.executor_for) and never branches on the device inside its loop.

- LayerwiseStep: the reference path, the model's layers one backend primitive at a time;
- fused.FusedTrainer: one compiled call per batch on the CPU (the cpp backend);
- device.CudaTrainer: one call per batch on the GPU, for a model moved there.
"""
from __future__ import annotations

import numpy as np

from .losses import Loss
from .nn.dropout import Dropout
from .nn.ops import RowWindow


def copy_arrays(sources: list[np.ndarray], targets: list[np.ndarray]) -> None:
    for target, source in zip(targets, sources, strict=True):
        np.copyto(target, source)


class Executor:
    """step() computes a batch's loss; apply() then makes its update unless a callback
    refused the batch (compiled executors update inside step(), and apply() does nothing).

    An executor that data-parallel training can drive (nnfast.distributed.DataParallel) also
    splits a step in two: gradients() on this process's rows of a global batch, leaving the
    gradients in the Parameters' grad arrays, and update() from those gradients once they are
    summed across processes."""

    def begin_epoch(self) -> None:
        pass

    def step(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, w: np.ndarray | None = None):
        """(batch-mean loss plus the L1/L2 penalties, correct count or None) of rows idx;
        w: the data set's sample weights (N,) or None."""
        raise NotImplementedError

    def apply(self) -> None:
        pass

    # Whether steps() runs an epoch's batches in one call.
    runs_epochs = False

    def steps(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
              w: np.ndarray | None = None, kept=None):
        """An epoch in one call, where runs_epochs: step() on each batch of batch_size rows of
        order (the last may be shorter), stopping after the first batch whose loss is not
        finite. kept: None or TerminateOnNaN.epoch_buffers(). Returns (each batch's loss,
        float64 (batches run,); the correct count or None)."""
        raise NotImplementedError(f"{type(self).__name__} takes one batch per call")

    def keep_previous(self, sources: list[np.ndarray], targets: list[np.ndarray]) -> None:
        """Copy each source array into its target before the next step changes it
        (TerminateOnNaN's copy of the weights a batch starts from). Here: now; a compiled
        executor may copy later, as long as it is before the change."""
        copy_arrays(sources, targets)

    def gradients(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, rows: RowWindow,
                  w: np.ndarray | None = None):
        """(batch-mean loss plus penalties, correct count or None) of rows idx, which are rows
        [rows.first, rows.first + len(idx)) of a global batch of rows.total; idx may be empty
        (the gradients are then zero). w as in step()."""
        raise NotImplementedError(f"{type(self).__name__} cannot train data-parallel")

    def update(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot train data-parallel")

    def end_epoch(self) -> None:
        pass


class LayerwiseStep(Executor):
    """The layer-by-layer path: forward, loss and backward through the model's layers, then
    optimizer.step(), each a call to the active backend's primitives."""

    def __init__(self, model, loss_fn, opt):
        self.model, self.loss_fn, self.opt = model, loss_fn, opt

    def step(self, X, y, idx, w=None):
        xb, yb = X[idx], y[idx]
        self.opt.zero_grad()
        out = self.model(xb)
        value = self.loss_fn(out, yb, None if w is None else w[idx]) + self.model.penalty()
        return value, self.loss_fn.correct(out, yb)

    def apply(self):
        self.model.backward(self.loss_fn.backward(), need_input_grad=False)
        self.opt.step()

    def gradients(self, X, y, idx, rows, w=None):
        dropouts = [m for m in self.model.modules() if isinstance(m, Dropout)]
        self.opt.zero_grad()
        if len(idx) == 0:
            for layer in dropouts:
                layer.pass_rows(rows.total)
            return 0.0, (0 if self.has_accuracy else None)
        for layer in dropouts:
            layer.rows = rows
        try:
            value, correct = self.step(X, y, idx, w)
        finally:
            for layer in dropouts:
                layer.rows = None
        self.model.backward(self.loss_fn.backward(), need_input_grad=False)
        return value, correct

    def update(self):
        self.opt.step()

    @property
    def has_accuracy(self) -> bool:
        return type(self.loss_fn).correct is not Loss.correct

