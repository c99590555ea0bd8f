"""What fit() drives, one object per way of running a training step; fit() picks one before
the first batch (train.executor_for) and never branches on the device inside its loop.

- LayerwiseStep: the reference path, the model's layers one backend primitive at a time;
- fused.FusedTrainer: one compiled call per batch on the CPU (the cpp backend);
- device.CudaTrainer: one call per batch on the GPU, for a model moved there.
"""
from __future__ import annotations

import numpy as np


class Executor:
    """step() computes a batch's loss; apply() then makes its update unless a callback
    refused the batch (compiled executors update inside step(), and apply() does nothing)."""

    def begin_epoch(self) -> None:
        pass

    def step(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, w: np.ndarray | None = None):
        """(batch-mean loss plus the L1/L2 penalties, correct count or None) of rows idx;
        w: the data set's sample weights (N,) or None."""
        raise NotImplementedError

    def apply(self) -> None:
        pass

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

