"""model.to("cuda"): train on an NVIDIA GPU with the parameters, gradients, optimizer state
and data set in device memory, one call to the device per batch (the CUDA MlpTrainer).

The Parameters keep their NumPy arrays, and the device holds a copy. The copy that was
written last is the current one: fit() copies the host arrays to the device at the start
of each epoch, trains there, and copies them back at the end of the epoch (before
validation and callbacks, which read and may change the host arrays) and at once after a
batch whose loss is not finite (for TerminateOnNaN); predict() copies them up before it
runs. So model(x), evaluate(), saving and callbacks all see current weights, and a change
made to the host arrays between epochs is trained on. model.to("cpu") copies back
anything the device trained since (an interrupted epoch) and frees the device memory.
"""
from __future__ import annotations

import math

import numpy as np

from . import backends
from . import fused as fused_step

DEVICES = ("cpu", "cuda")
_NO_DROPOUTS = np.zeros(0, np.uint64)  # the dropout counters of a plan without Dropout


def to(model, device: str):
    """Move `model` to "cuda" or back to "cpu"; returns the model."""
    if device not in DEVICES:
        raise ValueError(f"to: expected one of {DEVICES}, got {device!r}")
    state = getattr(model, "_cuda", None)
    if device == "cpu":
        if state is not None:
            state.to_host()
            model._cuda = None
        return model
    if state is not None:
        return model
    reason = backends.unavailable_reason("cuda")
    if reason is not None:
        raise RuntimeError(f"model.to('cuda'): the CUDA backend is unavailable: {reason}")
    plan = _gpu_plan(model)
    if isinstance(plan, str):
        raise ValueError(f"model.to('cuda'): {plan}; the CUDA trainer runs Sequential models of "
                         "Dense layers, each optionally followed by an elementwise activation")
    model._cuda = DeviceCopy(plan)
    return model


def _gpu_plan(model):
    """The fused step's plan of `model` if the CUDA trainer runs it, else a string saying why
    not: that trainer has Dense layers with fused activations only, no penalties."""
    plan = fused_step._plan(model)
    if isinstance(plan, str):
        return plan
    for kind, layer, _ in plan:
        if kind != "dense":
            return f"a {type(layer).__name__} layer outside a Dense epilogue is not fusable"
        if layer.l1 or layer.l2:
            return "an L1/L2 penalty is not fusable"
    return plan


def device_of(model) -> str:
    return "cuda" if getattr(model, "_cuda", None) is not None else "cpu"


class DeviceCopy:
    """A model's arrays on the GPU, and which copy, host or device, was written last."""

    def __init__(self, plan):
        self.plan = plan
        self.optimizer = None  # whose state the device holds, from the last fit
        self.device_ahead = False
        self.trainer = backends.get_backend("cuda").MlpTrainer(self._arrays())

    def _arrays(self):
        # Rebuilt every time: a Parameter's array may have been replaced since the last copy.
        return fused_step._compiled_ops(self.plan, _NO_DROPOUTS, self.optimizer)

    def to_host(self):
        if self.device_ahead:
            self.trainer.download(self._arrays())
            self.device_ahead = False

    def to_device(self):
        self.to_host()
        self.trainer.upload(self._arrays())


class CudaTrainer:
    """fit()'s step for a model on the GPU: X and y go to the device once, then each batch is
    one call that uploads only its row indices."""

    def __init__(self, model, loss_fn, opt, X, y):
        reason = fused_step.combination_reason(model, loss_fn, opt, y)
        plan = _gpu_plan(model)  # penalties may have been set since model.to("cuda")
        if reason is None and isinstance(plan, str):
            reason = plan
        if reason is None and (opt.clipnorm is not None or opt.clipvalue is not None):
            reason = "gradient clipping is not fusable"
        if reason is not None:
            raise ValueError(f"fit: the model is on cuda, but {reason} on the GPU; move it back "
                             "with model.to('cpu') to train it on the CPU")
        self.copy = model._cuda
        self.copy.to_host()  # before binding another optimizer's state
        self.copy.optimizer = opt
        self.opt = opt
        self.copy.trainer.set_data(X, y, fused_step._LOSSES[type(loss_fn)])

    def begin_epoch(self):
        self.copy.to_device()

    def step(self, X, y, idx):
        """Train on rows idx of the data given at construction; returns (loss, correct or None)."""
        self.copy.device_ahead = True
        loss, correct = self.copy.trainer.step(idx, **fused_step.optimizer_arguments(self.opt))
        self.opt.step_count += 1
        if not math.isfinite(loss):  # callbacks reacting to it (TerminateOnNaN) read the host arrays
            self.copy.to_host()
        return loss, correct

    def end_epoch(self):
        self.copy.to_host()


def predictor(model):
    """The device's forward pass for a model on cuda, with the current weights; else None."""
    copy = getattr(model, "_cuda", None)
    if copy is None:
        return None
    copy.to_device()
    return copy.trainer
