"""Fully connected layer: y = x @ W + b."""
from __future__ import annotations

import numpy as np

from .. import seeding
from ..backends import get_backend
from .module import Layer, Parameter, as_batch_input, as_float_input, config_width
from .ops import DenseOp

INITS = ("he", "xavier", "lecun", "torch", "normal", "uniform", "zeros")


def init_weight(init, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """The initial (fan_in, fan_out) weight.

    he: normal, std sqrt(2 / fan_in) (for ReLU). xavier: uniform +-sqrt(6 / (fan_in + fan_out)).
    lecun: normal, std sqrt(1 / fan_in). torch: torch.nn.Linear's default, kaiming-uniform
    with a = sqrt(5), which is uniform +-sqrt(1 / fan_in). normal: std 0.05; uniform: +-0.05
    (Keras's RandomNormal and RandomUniform). zeros. A callable is called as
    init((fan_in, fan_out), rng) and returns the array.
    """
    shape = (fan_in, fan_out)
    if callable(init):
        weight = np.asarray(init(shape, rng))
        if weight.shape != shape or weight.dtype.kind not in "fiu":
            raise ValueError(f"init: the callable returned an array of shape {weight.shape} and "
                             f"dtype {weight.dtype}; expected a numeric array of shape {shape}")
        return weight
    if init == "he":
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    if init == "xavier":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    if init == "lecun":
        return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)
    if init == "torch":
        limit = np.sqrt(1.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)
    if init == "normal":
        return rng.normal(0.0, 0.05, size=shape)
    if init == "uniform":
        return rng.uniform(-0.05, 0.05, size=shape)
    if init == "zeros":
        return np.zeros(shape)
    raise ValueError(f"init: expected one of {INITS} or a callable init(shape, rng), got {init!r}")


def init_bias(init, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Zeros, except for init="torch": uniform +-1 / sqrt(fan_in), as torch.nn.Linear."""
    if isinstance(init, str) and init == "torch":
        limit = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=fan_out)
    return np.zeros(fan_out)


def penalty_coefficient(value, name: str) -> float:
    value = float(value)
    if not value >= 0:  # NaN fails too
        raise ValueError(f"{name}: the penalty coefficient must be >= 0, got {value}")
    return value


class Dense(Layer):
    """y = x @ weight + bias.  x (N, in_features), weight (in, out), bias (out,), y (N, out).

    init: the weight's initialization, a name or a callable (see init_weight); seed: its
    random numbers (None: the next of nnfast.manual_seed's sequence, or fresh entropy).
    l1, l2: penalties on the weight (not the bias), as Keras's kernel_regularizer:
    l1 * sum|W| + l2 * sum(W^2) is added to the loss that fit() reports, and its gradient
    l1 * sign(W) + 2 l2 * W to the weight gradient in every backward().
    """

    can_skip_input_grad = True

    def __init__(self, in_features: int, out_features: int, init="he", seed=None,
                 dtype=np.float32, l1: float = 0.0, l2: float = 0.0):
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Dense: {arg} must be a positive integer, got {value!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"Dense: dtype must be float32 or float64, got {self.dtype}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.init = init
        self.l1, self.l2 = penalty_coefficient(l1, "l1"), penalty_coefficient(l2, "l2")
        rng = np.random.default_rng(seeding.next_seed() if seed is None else seed)
        weight = init_weight(init, self.in_features, self.out_features, rng)
        bias = init_bias(init, self.in_features, self.out_features, rng)
        self.weight_param = Parameter(weight.astype(self.dtype), "weight")
        self.bias_param = Parameter(bias.astype(self.dtype), "bias")
        self._x = None

    weight = property(lambda self: self.weight_param.data)
    bias = property(lambda self: self.bias_param.data)
    weight_grad = property(lambda self: self.weight_param.grad)
    bias_grad = property(lambda self: self.bias_param.grad)

    def parameters(self):
        return [self.weight_param, self.bias_param]

    def forward(self, x):
        x = as_batch_input(x, self.dtype, self.in_features, "Dense")
        self._x = x
        return get_backend().gemm(x, self.weight, bias=self.bias)

    def backward(self, grad_out, need_input_grad: bool = True):
        (x,) = self._saved("_x")
        grad_out = as_float_input(grad_out, self.dtype, "grad_out")
        if grad_out.shape != (x.shape[0], self.out_features):
            raise ValueError(f"Dense.backward: expected grad of shape "
                             f"{(x.shape[0], self.out_features)}, got {grad_out.shape}")
        B = get_backend()
        B.gemm(x, grad_out, out=self.weight_param.grad, trans_a=True, beta=1.0)
        B.bias_grad(grad_out, out=self.bias_param.grad, beta=1.0)
        if self.l1 or self.l2:
            B.weight_penalty_backward(self.weight, self.weight_param.grad, l1=self.l1, l2=self.l2)
        if not need_input_grad:
            return None
        return B.gemm(grad_out, self.weight, trans_b=True)

    def lower(self):
        return [DenseOp(self.weight_param, self.bias_param, l1=self.l1, l2=self.l2)]

    def penalty(self) -> float:
        if not (self.l1 or self.l2):
            return 0.0
        return get_backend().weight_penalty_forward(self.weight, l1=self.l1, l2=self.l2)

    @classmethod
    def declared_size(cls, config, size_of):
        fan_in, fan_out = config_width(config, "in_features"), config_width(config, "out_features")
        return fan_in * fan_out + fan_out

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self.init, "dtype": self.dtype.name, "l1": self.l1, "l2": self.l2}

    def __repr__(self):
        penalties = "".join(f", {k}={v}" for k, v in (("l1", self.l1), ("l2", self.l2)) if v)
        return (f"Dense({self.in_features}, {self.out_features}, init={self.init!r}, "
                f"dtype={self.dtype.name}{penalties})")
