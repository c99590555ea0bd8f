"""model.to("cuda"): train on an NVIDIA GPU with the parameters, gradients, optimizer state
and data set in device memory, one call to the device per batch.

The GPU runs the same op records (nnfast.nn.ops) through the same trainer as the CPU's
fused step (csrc/train/trainer.h), on the CUDA kernel table: every layer that lowers
trains there, with penalties and clipping. The Parameters keep their NumPy arrays and the
device holds a copy. The copy written last is the current one: fit() copies the host arrays
to the device at the start of each epoch, trains there, and copies them back at the end of
the epoch (before validation and callbacks, which read and may change the host arrays) and
at once after a batch whose loss is not finite (for TerminateOnNaN); predict() copies them
up before it runs. model.to("cpu") copies back anything the device trained since (an
interrupted epoch).
"""
from __future__ import annotations

import math
import weakref

from . import backends
from . import fused as fused_step
from .executor import Executor
from .nn.ops import LOSS_CODES, parameters_of

DEVICES = ("cpu", "cuda")

# Models moved to the GPU, each with the trainer that last wrote the device (None before the
# first fit), whose download brings the host arrays up to date.
_on_cuda: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def to(model, device: str):
    """Move `model` to "cuda" or back to "cpu"; returns the model."""
    if device not in DEVICES:
        raise ValueError(f"to: expected one of {DEVICES}, got {device!r}")
    if device == "cpu":
        trainer = _on_cuda.pop(model, None)
        if trainer is not None:
            trainer.to_host()
        return model
    if model in _on_cuda:
        return model
    reason = backends.unavailable_reason("cuda")
    if reason is not None:
        raise RuntimeError(f"model.to('cuda'): the CUDA backend is unavailable: {reason}")
    ops = fused_step.plan(model)
    if isinstance(ops, str):
        raise ValueError(f"model.to('cuda'): {ops}: the GPU runs the models that the compiled "
                         "step runs")
    _on_cuda[model] = None
    return model


def device_of(model) -> str:
    return "cuda" if model in _on_cuda else "cpu"


class CudaTrainer(Executor):
    """fit()'s step for a model on the GPU: X and y go to the device once, then each batch is
    one call that uploads only its row indices."""

    def __init__(self, model, loss_fn, opt, X, y, w=None):
        reason = fused_step.combination_reason(model, loss_fn, opt, y)
        if reason is not None:
            raise ValueError(f"fit: the model is on cuda, but {reason} on the GPU; move it back "
                             "with model.to('cpu') to train it on the CPU")
        previous = _on_cuda.get(model)
        if previous is not None:  # before another trainer takes over the device copy
            previous.to_host()
        ops = fused_step.plan(model)
        self.opt = opt
        self.device_ahead = False
        self.trainer = backends.get_backend("cuda").Trainer(
            ops, LOSS_CODES[loss_fn.name], [opt.slots_of(p) for p in parameters_of(ops)],
            class_weight=fused_step.class_weight_of(loss_fn, model))
        self.trainer.set_data(X, y, w)
        _on_cuda[model] = self

    def to_host(self):
        if self.device_ahead:
            self.trainer.download()
            self.device_ahead = False

    def begin_epoch(self):
        self.to_host()
        self.trainer.upload()

    def step(self, X, y, idx, w=None):
        """Train on rows idx of the data (and sample weights) given at construction; returns
        (loss, correct or None)."""
        self.device_ahead = True
        with self.opt.external_step() as rule:
            loss, correct = self.trainer.step(idx, rule)
        if not math.isfinite(loss):  # callbacks reacting to it (TerminateOnNaN) read the host arrays
            self.to_host()
        return loss, correct

    def end_epoch(self):
        self.to_host()


_predictors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predictor(model):
    """The device's forward pass for a model on cuda, with the current host weights; else None."""
    if not _on_cuda or model not in _on_cuda:  # the length first: no weak reference made
        return None
    trainer = _on_cuda[model]
    if trainer is not None:
        trainer.to_host()
    forward = fused_step.keyed_predictor(
        model, _predictors,
        lambda ops: backends.get_backend("cuda").Trainer(ops, LOSS_CODES["cross_entropy"], []))
    if forward is None:  # a layer changed since model.to("cuda")
        raise ValueError(f"predict: the model is on cuda, but {fused_step.plan(model)}; move it "
                         "back with model.to('cpu')")
    forward.upload()
    return forward
