"""The fused training step: one C++ call per batch for a Sequential of Dense layers and
elementwise activations, trained with SGD/Adam/AdamW on cross-entropy, MSE or BCE with
logits. fit() uses it automatically when the model, loss, optimizer and backend allow, and
the layer-by-layer path otherwise; both compute the same numbers to float tolerance.
"""
from __future__ import annotations

import numpy as np

from . import losses
from .backends import get_backend
from .nn.activations import _Activation
from .nn.dense import Dense
from .optim import SGD, Adam, AdamW

_LOSSES = {losses.CrossEntropy: "cross_entropy", losses.MSE: "mse", losses.BCEWithLogits: "bce_with_logits"}


def _layer_specs(model):
    """[(Dense, activation layer or None), ...], or a string saying why the model cannot be fused."""
    layers = getattr(model, "layers", None)
    if layers is None:
        return "not a Sequential model"
    specs, i = [], 0
    while i < len(layers):
        dense = layers[i]
        if type(dense) is not Dense:
            return f"layer {i} ({type(dense).__name__}) is not fusable"
        if dense.l1 or dense.l2:
            return f"layer {i} has an L1/L2 penalty, which is not fusable"
        act = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(act, _Activation):
            if act.kind == "softmax":
                return "a Softmax layer is not fusable (use CrossEntropy on logits)"
            i += 2
        else:
            act = None
            i += 1
        specs.append((dense, act))
    return specs


def unsupported_reason(model, loss_fn, opt, target=None) -> str | None:
    """None if the fused step can train this combination, else why not."""
    backend = get_backend()
    if backend.name != "cpp" or not hasattr(backend, "MlpTrainer"):
        return f"the '{backend.name}' backend has no fused step"
    if type(loss_fn) not in _LOSSES:
        return f"loss {type(loss_fn).__name__} is not fusable"
    if type(loss_fn) is losses.CrossEntropy and target is not None and target.ndim != 1:
        return "one-hot cross-entropy targets are not fusable"
    if type(opt) not in (SGD, Adam, AdamW):
        return f"optimizer {type(opt).__name__} is not fusable"
    if opt.clipnorm is not None or opt.clipvalue is not None:
        return "gradient clipping is not fusable"
    specs = _layer_specs(model)
    return specs if isinstance(specs, str) else None


def _compiled_layers(specs, opt=None):
    """The layer list MlpTrainer takes: each Dense's arrays, activation and optimizer state."""
    state = {id(p): s for p, s in zip(opt.params, opt.state)} if opt is not None else {}
    layers = []
    for dense, act in specs:
        spec = {"weight": dense.weight, "bias": dense.bias, "weight_grad": dense.weight_grad,
                "bias_grad": dense.bias_grad,
                "activation": act.kind if act is not None else "identity",
                "negative_slope": act.alpha if act is not None and act.kind == "leaky_relu" else 0.01}
        if opt is not None:
            for which, p in (("weight", dense.weight_param), ("bias", dense.bias_param)):
                s = state.get(id(p))
                if s is None:
                    raise ValueError("fused step: the optimizer does not hold this model's parameters")
                spec[f"{which}_state0"] = s.get("velocity", s.get("m"))
                spec[f"{which}_state1"] = s.get("v")
        layers.append(spec)
    return layers


class FusedTrainer:
    """Binds a model's parameters and an optimizer's state to a compiled MlpTrainer."""

    def __init__(self, model, loss_fn, opt):
        specs = _layer_specs(model)
        if isinstance(specs, str):
            raise ValueError(f"fused step: {specs}")
        self.opt = opt
        self.trainer = get_backend().MlpTrainer(_compiled_layers(specs, opt), _LOSSES[type(loss_fn)])

    def step(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray):
        """Train on rows idx of (X, y); returns (batch-mean loss, correct count or None)."""
        opt = self.opt
        if isinstance(opt, Adam):
            result = self.trainer.step(X, y, idx, kind="adam", lr=opt.lr, weight_decay=opt.weight_decay,
                                       beta1=opt.betas[0], beta2=opt.betas[1], eps=opt.eps,
                                       decoupled=opt.decoupled, step=opt.step_count + 1)
        else:
            result = self.trainer.step(X, y, idx, kind="sgd", lr=opt.lr, momentum=opt.momentum,
                                       nesterov=opt.nesterov, weight_decay=opt.weight_decay)
        opt.step_count += 1
        return result


def predictor(model):
    """A compiled forward pass for `model` on the active backend, or None if it has none.

    Cached on the model and rebuilt when its parameter arrays are replaced, so repeated
    predict() calls on small batches reuse one set of workspaces.
    """
    backend = get_backend()
    if backend.name != "cpp" or not hasattr(backend, "MlpTrainer"):
        return None
    key = tuple(id(p.data) for p in model.parameters())
    cached = getattr(model, "_fused_predictor", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    specs = _layer_specs(model)
    if isinstance(specs, str):
        return None
    trainer = backend.MlpTrainer(_compiled_layers(specs), "cross_entropy")
    model._fused_predictor = (key, trainer)
    return trainer
