"""The fused training step on the CPU: one C++ call per batch (nnfast._core.Trainer) runs the
model's op records (nnfast.nn.ops) with the optimizer's typed rule and slots: forward,
loss, backward, penalties, clipping and the update. fit() uses it when the backend is cpp
and the model lowers (every built-in layer but Softmax) and the loss is cross-entropy on
labels, MSE or BCE with logits; the layer-by-layer path otherwise. Both run the same
kernels in the same order, so they give the same numbers (bitwise in float64), draw the
same dropout masks and leave the layers in the same state.
"""
from __future__ import annotations

import dataclasses
import weakref
from typing import NamedTuple

import numpy as np

from . import losses
from .backends import get_backend
from .executor import Executor
from .nn.module import Parameter, edits
from .nn.ops import (LOSS_CODES, BatchNormOp, CannotLower, fuse_activations, parameters_of,
                     state_key)


def plan(model):
    """The op records a compiled executor runs for `model` (activations fused into the
    preceding Dense), or a string saying why it has none."""
    try:
        ops = model.lower()
    except CannotLower as exc:
        return str(exc)
    params = parameters_of(ops)
    sized = [op.running_mean for op in ops if isinstance(op, BatchNormOp)] + params
    if not sized:
        return "a model without Dense or BatchNorm1d layers has no compiled step"
    if len({a.dtype for a in sized}) > 1:
        return "its layers mix float32 and float64"
    if len({id(p) for p in params}) != len(params):
        return "a layer is used twice in it"
    return fuse_activations(ops)


def combination_reason(model, loss_fn, opt, target=None) -> str | None:
    """None if a compiled executor (CPU or CUDA) runs this model, loss and optimizer, else
    why not."""
    if type(loss_fn) not in (losses.CrossEntropy, losses.MSE, losses.BCEWithLogits):
        return f"the loss {type(loss_fn).__name__} has no compiled step"
    if type(loss_fn) is losses.CrossEntropy and target is not None and target.ndim != 1:
        return "cross-entropy on one-hot targets has no compiled step (pass class labels)"
    try:
        opt.rule()
    except NotImplementedError:
        return f"the optimizer {type(opt).__name__} has no compiled update rule"
    ops = plan(model)
    return ops if isinstance(ops, str) else None


def unsupported_reason(model, loss_fn, opt, target=None) -> str | None:
    """None if the fused CPU step can train this combination on the active backend."""
    backend = get_backend()
    if not hasattr(backend, "Trainer"):
        return f"the '{backend.name}' backend has no fused step"
    return combination_reason(model, loss_fn, opt, target)


class FusedTrainer(Executor):
    """fit()'s step on the cpp backend: the model's op records and the optimizer's slots bound
    to one compiled Trainer."""

    def __init__(self, model, loss_fn, opt):
        ops = plan(model)
        if isinstance(ops, str):
            raise ValueError(f"fused step: {ops}")
        slots = [opt.slots_of(p) for p in parameters_of(ops)]
        class_weight = class_weight_of(loss_fn, model)
        self.opt = opt
        self.trainer = _fit_trainer(model, ops, LOSS_CODES[loss_fn.name], slots, class_weight)

    def step(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, w: np.ndarray | None = None):
        """Train on rows idx of (X, y), with the data set's sample weights w (N,) or None;
        returns (batch-mean loss plus the L1/L2 penalties, correct count or None)."""
        with self.opt.external_step() as rule:
            return self.trainer.step(X, y, idx, rule, w)

    runs_epochs = True
    # The longest a compiled call runs before it returns to Python, where Ctrl-C
    # (KeyboardInterrupt) can stop an epoch.
    CALL_SECONDS = 0.1

    def steps(self, X, y, order, batch_size, w=None, kept=None):
        """The whole epoch in as few calls as CALL_SECONDS allows, with no Python between
        batches: the Python around each batch (the binding's checks, the update rule, the
        callbacks) was about a fifth of a one-thread epoch of a 112-64-32-1 model at batch
        64, and the GIL stays free for other threads."""
        done, parts, correct = 0, [], 0
        while True:
            def run(rule, first=done):
                part = self.trainer.steps(X, y, order, batch_size, rule, w, kept, first,
                                          self.CALL_SECONDS)
                return len(part[0]), part
            losses, part_correct = self.opt.external_steps(run)
            parts.append(losses)
            done += len(losses)
            correct = None if part_correct is None else correct + part_correct
            if done * batch_size >= len(order) or not np.isfinite(losses[-1]):
                return np.concatenate(parts), correct

    def keep_previous(self, sources, targets):
        """Each parameter's update kernel writes its old values in the same pass (one more
        array written, no pass of its own: TerminateOnNaN's NumPy copy took 5% of a batch-64
        step of 784-128-64-10); the other arrays are copied now."""
        self.trainer.keep_previous(sources, targets)

    def gradients(self, X, y, idx, rows, w=None):
        return self.trainer.gradients(X, y, idx, rows.first, rows.total, w)

    def update(self):
        with self.opt.external_step() as rule:
            self.trainer.update(rule)


_fit_trainers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fit_trainer(model, ops, loss_code: int, slots, class_weight):
    """The compiled Trainer of the active backend for these records, loss, optimizer slots
    and class weights; the one the model's previous fit() used when they are the same
    arrays and settings. A script that calls fit() once per epoch then keeps its warm
    workspaces: a new trainer and its first step's page faults cost a fit() call of
    784-128-64-10 on 8192 samples 0.8 ms at batch 1024, 0.4 ms at batch 64 (medians of 40
    paired calls on a 2-core AMD EPYC). The trainer holds every array in the key, so no
    id in the key can be reused while it is cached."""
    Trainer = get_backend().Trainer
    key = (Trainer, state_key(ops), loss_code,
           tuple(id(a) for s in slots for a in s.named().values()),
           None if class_weight is None else (class_weight.dtype.str, class_weight.tobytes()))
    cached = _fit_trainers.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    trainer = Trainer(ops, loss_code, slots, class_weight=class_weight)
    _fit_trainers[model] = (key, trainer)
    return trainer


def class_weight_of(loss_fn, model):
    """The loss's per-class weights (CrossEntropy's weight, BCEWithLogits' pos_weight) as a
    compiled trainer takes them, (out,) of the model's dtype, or None."""
    return loss_fn.class_weight_array(model.out_features, model.dtype)


class _Compiled(NamedTuple):
    edits: int  # module.edits() when `key` was last found current
    key: tuple
    made: object


def keyed_predictor(model, cache: weakref.WeakKeyDictionary, build):
    """The compiled forward `build(ops)` made for `model`'s op records, kept in `cache` and
    rebuilt when any setting or array of those records changes, so repeated predict() calls
    on small batches reuse one set of workspaces. None for a model without a compiled step
    (a model that lowers but cannot be compiled, mixed dtypes say, is remembered as None).
    The records are lowered and keyed again only after some layer, parameter or layer list
    was set since the last check: that walk cost more than the C++ forward of a small model."""
    edits_now = edits()
    cached = cache.get(model)
    if cached is not None and cached.edits == edits_now:
        return cached.made
    try:
        key = state_key(model.lower())
    except CannotLower:
        return None
    if cached is not None and cached.key == key:
        cache[model] = cached._replace(edits=edits_now)
        return cached.made
    ops = plan(model)
    made = None if isinstance(ops, str) else build(ops)
    cache[model] = _Compiled(edits_now, key, made)
    return made


_predictors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _all_writeable(ops) -> bool:
    arrays = [getattr(op, f.name) for op in ops for f in dataclasses.fields(op)]
    arrays = [a.data if isinstance(a, Parameter) else a for a in arrays]
    return all(a.flags.writeable for a in arrays if isinstance(a, np.ndarray))


def predictor(model):
    """A compiled eval-mode forward pass for `model` on the active backend, or None if it has
    none. A model with read-only arrays (memory-mapped, as joblib loads large ones) has
    none: the compiled step binds its arrays for writing, the layer-by-layer path only reads."""
    backend = get_backend()
    if not hasattr(backend, "Trainer"):
        return None
    return keyed_predictor(model, _predictors,
                           lambda ops: backend.Trainer(ops, LOSS_CODES["cross_entropy"], [])
                           if _all_writeable(ops) else None)
