"""Activation layers: each forwards to the backend's activation kernels."""
from __future__ import annotations

import numpy as np

from ..backends import get_backend
from .module import Layer
from .ops import Activation, ActivationOp, CannotLower

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "GELU", "SiLU", "ELU"]


class _Activation(Layer):
    kind = "identity"

    def _params(self):
        return {}

    def forward(self, x):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        x = np.ascontiguousarray(x)
        self._x = x
        self._y = get_backend().activation_forward(self.kind, x, **self._params())
        return self._y

    def backward(self, grad_out):
        x, y = self._saved("_x", "_y")
        grad_out = np.ascontiguousarray(grad_out, dtype=x.dtype)
        if grad_out.shape != x.shape:
            raise ValueError(f"{type(self).__name__}.backward: expected grad of shape {x.shape}, "
                             f"got {grad_out.shape}")
        return get_backend().activation_backward(self.kind, grad_out, x, y, **self._params())

    def lower(self):
        return [ActivationOp(Activation(self.kind, *self._params().values()))]

    def get_config(self):
        return {}

    def __repr__(self):
        """The constructor call, with the arguments get_config() gives."""
        args = ", ".join(f"{name}={value!r}" for name, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ReLU(_Activation):
    kind = "relu"


class _WithAlpha(_Activation):
    """An activation with one parameter, alpha, which the kernels take as negative_slope."""

    def __init__(self, alpha: float):
        self.alpha = float(alpha)

    def _params(self):
        return {"negative_slope": self.alpha}

    def get_config(self):
        return {"alpha": self.alpha}


class LeakyReLU(_WithAlpha):
    kind = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        super().__init__(alpha)


class Sigmoid(_Activation):
    kind = "sigmoid"


class Tanh(_Activation):
    kind = "tanh"


class Softmax(_Activation):
    """Softmax over the last axis of (N, C) input. For training with CrossEntropy, leave it
    out: CrossEntropy takes logits and fuses the softmax, which is faster and stabler."""

    kind = "softmax"

    def lower(self):
        raise CannotLower("a Softmax layer has no op record (train CrossEntropy on logits)")


class GELU(_Activation):
    """x * Phi(x) (exact, erf form) or, with approximate="tanh", torch's tanh approximation."""

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.kind = "gelu" if approximate == "none" else "gelu_tanh"

    def get_config(self):
        return {"approximate": self.approximate}


class SiLU(_Activation):
    """x * sigmoid(x), also called Swish."""

    kind = "silu"


class ELU(_WithAlpha):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    kind = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha)
