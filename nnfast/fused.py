"""The fused training step: one C++ call per batch for a Sequential of Dense layers,
elementwise activations, Dropout and BatchNorm1d, trained with SGD/Adam/AdamW (gradient
clipping by norm or by value and the layers' L1/L2 penalties included) on cross-entropy, MSE
or BCE with logits. fit() uses it automatically when the model, loss, optimizer and backend
allow, and the layer-by-layer path otherwise; both compute the same numbers to float
tolerance, draw the same dropout masks and leave the layers in the same state (running
statistics, dropout counters), so a run can switch between them.
"""
from __future__ import annotations

import numpy as np

from . import losses
from .backends import get_backend
from .nn.activations import _Activation
from .nn.batchnorm import BatchNorm1d
from .nn.dense import Dense
from .nn.dropout import Dropout
from .nn.module import arrays_generation
from .optim import SGD, Adam, AdamW

_LOSSES = {losses.CrossEntropy: "cross_entropy", losses.MSE: "mse", losses.BCEWithLogits: "bce_with_logits"}


def _plan(model):
    """[(op kind, layer, activation layer fused into it or None), ...] in model order, or a
    string saying why the model cannot be fused."""
    layers = getattr(model, "layers", None)
    if layers is None:
        return "not a Sequential model"
    plan, i = [], 0
    while i < len(layers):
        layer = layers[i]
        if type(layer) is Dense:
            act = layers[i + 1] if i + 1 < len(layers) else None
            fused_act = isinstance(act, _Activation) and act.kind != "softmax"
            plan.append(("dense", layer, act if fused_act else None))
            i += 2 if fused_act else 1
            continue
        if isinstance(layer, _Activation):
            if layer.kind == "softmax":
                return "a Softmax layer is not fusable (use CrossEntropy on logits)"
            plan.append(("activation", layer, None))
        elif type(layer) is Dropout:
            plan.append(("dropout", layer, None))
        elif type(layer) is BatchNorm1d:
            plan.append(("batchnorm", layer, None))
        else:
            return f"layer {i} ({type(layer).__name__}) is not fusable"
        i += 1
    sized = [layer for kind, layer, _ in plan if kind in ("dense", "batchnorm")]
    if not sized:
        return "a model without Dense or BatchNorm1d layers is not fusable"
    if len({layer.dtype for layer in sized}) > 1:
        return "layers of different dtypes are not fusable"
    return plan


def unsupported_reason(model, loss_fn, opt, target=None) -> str | None:
    """None if the fused step can train this combination, else why not."""
    backend = get_backend()
    if backend.name != "cpp" or not hasattr(backend, "MlpTrainer"):
        return f"the '{backend.name}' backend has no fused step"
    return combination_reason(model, loss_fn, opt, target)


def combination_reason(model, loss_fn, opt, target=None) -> str | None:
    """None if a fused trainer (CPU or CUDA) supports this model, loss and optimizer, else why not."""
    if type(loss_fn) not in _LOSSES:
        return f"loss {type(loss_fn).__name__} is not fusable"
    if type(loss_fn) is losses.CrossEntropy and target is not None and target.ndim != 1:
        return "one-hot cross-entropy targets are not fusable"
    if type(opt) not in (SGD, Adam, AdamW):
        return f"optimizer {type(opt).__name__} is not fusable"
    plan = _plan(model)
    return plan if isinstance(plan, str) else None


def _activation_spec(act):
    return {"activation": act.kind if act is not None else "identity",
            "negative_slope": act.alpha if act is not None and act.kind == "leaky_relu" else 0.01}


def _compiled_ops(plan, offsets, opt=None):
    """The op list MlpTrainer takes (csrc/bindings/trainer.cpp documents it): each layer's arrays and
    settings, with the optimizer's state per parameter. offsets: a uint64 array with one
    counter per Dropout, in model order, that the compiled ops advance."""
    state = {id(p): s for p, s in zip(opt.params, opt.state)} if opt is not None else {}

    def with_state(spec, params):
        if opt is None:
            return spec
        for name, p in params:
            s = state.get(id(p))
            if s is None:
                raise ValueError("fused step: the optimizer does not hold this model's parameters")
            spec[f"{name}_state0"] = s.get("velocity", s.get("m"))
            spec[f"{name}_state1"] = s.get("v")
        return spec

    ops, dropouts = [], 0
    for kind, layer, act in plan:
        if kind == "dense":
            spec = {"op": "dense", "weight": layer.weight, "bias": layer.bias,
                    "weight_grad": layer.weight_grad, "bias_grad": layer.bias_grad,
                    "l1": layer.l1, "l2": layer.l2, **_activation_spec(act)}
            ops.append(with_state(spec, [("weight", layer.weight_param), ("bias", layer.bias_param)]))
        elif kind == "activation":
            ops.append({"op": "activation", **_activation_spec(layer)})
        elif kind == "dropout":
            ops.append({"op": "dropout", "p": layer.p, "seed": layer.seed,
                        "offset": offsets[dropouts:dropouts + 1]})
            dropouts += 1
        else:
            spec = {"op": "batchnorm", "running_mean": layer.running_mean,
                    "running_var": layer.running_var, "momentum": layer.momentum, "eps": layer.eps}
            if layer.affine:
                spec.update(gamma=layer.gamma, beta=layer.beta, gamma_grad=layer.gamma_param.grad,
                            beta_grad=layer.beta_param.grad)
                spec = with_state(spec, [("gamma", layer.gamma_param), ("beta", layer.beta_param)])
            ops.append(spec)
    return ops


def _dropouts(plan):
    return [layer for kind, layer, _ in plan if kind == "dropout"]


class FusedTrainer:
    """Binds a model's parameters, buffers and dropout counters and an optimizer's state to a
    compiled MlpTrainer."""

    def __init__(self, model, loss_fn, opt):
        plan = _plan(model)
        if isinstance(plan, str):
            raise ValueError(f"fused step: {plan}")
        self.opt = opt
        self._dropouts = _dropouts(plan)
        # The compiled dropout ops read and advance these; each step copies the layers'
        # counters in and back out, so either training path continues the same mask stream.
        self._offsets = np.zeros(len(self._dropouts), np.uint64)
        self.trainer = get_backend().MlpTrainer(_compiled_ops(plan, self._offsets, opt),
                                                _LOSSES[type(loss_fn)])

    def step(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray):
        """Train on rows idx of (X, y); returns (batch-mean loss plus the L1/L2 penalties,
        correct count or None)."""
        opt = self.opt
        for i, layer in enumerate(self._dropouts):
            self._offsets[i] = layer.offset
        result = self.trainer.step(X, y, idx, clipnorm=opt.clipnorm, clipvalue=opt.clipvalue,
                                   **optimizer_arguments(opt))
        for i, layer in enumerate(self._dropouts):
            layer.offset = int(self._offsets[i])
        opt.step_count += 1
        return result


def optimizer_arguments(opt) -> dict:
    """The keyword arguments of a compiled trainer's step() for the optimizer's next step."""
    if isinstance(opt, Adam):
        return dict(kind="adam", lr=opt.lr, weight_decay=opt.weight_decay, beta1=opt.betas[0],
                    beta2=opt.betas[1], eps=opt.eps, decoupled=opt.decoupled,
                    step=opt.step_count + 1)
    return dict(kind="sgd", lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov,
                weight_decay=opt.weight_decay)


def predictor(model):
    """A compiled eval-mode forward pass for `model` on the active backend, or None if it has
    none.

    Cached on the model and rebuilt when its layers change or any parameter or buffer array
    is replaced, so repeated predict() calls on small batches reuse one set of workspaces
    and pay one comparison.
    """
    backend = get_backend()
    if backend.name != "cpp" or not hasattr(backend, "MlpTrainer"):
        return None
    layers = getattr(model, "layers", None)
    key = (arrays_generation(), None if layers is None else list(layers))
    cached = getattr(model, "_fused_predictor", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = _plan(model)
    trainer = None
    if not isinstance(plan, str):
        offsets = np.zeros(len(_dropouts(plan)), np.uint64)  # eval mode draws no masks
        trainer = backend.MlpTrainer(_compiled_ops(plan, offsets), "cross_entropy")
    model._fused_predictor = (key, trainer)  # None too: a model that cannot be fused is not planned again
    return trainer
