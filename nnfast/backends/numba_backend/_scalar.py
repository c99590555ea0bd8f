"""Scalar building blocks shared by the kernels: activation functions and typed constants.

Numba promotes `0.5 * x` to float64 even when x is float32; `like(x, 0.5)` is the constant
in x's own type, so float32 kernels compute in float32 as the NumPy reference does.
"""
from __future__ import annotations

import math

from numba import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from ._jit import helper

# Activation codes passed to kernels (a string cannot select a branch in compiled code).
ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4,
                    "gelu": 5, "gelu_tanh": 6, "softmax": 7}
IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH, GELU, GELU_TANH, SOFTMAX = range(8)

SQRT1_2 = 1.0 / math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_CUBIC = 0.044715


def like(x, value):
    """`value` converted to the floating type of the scalar x."""
    return type(x)(value)


@overload(like, inline="always")
def _like_compiled(x, value):
    if isinstance(x, types.Float):
        cast = as_dtype(x).type
        return lambda x, value: cast(value)
    return None


# ----------------------------------------------------------------------------- forward
@helper()
def relu(x):
    return like(x, 0.0) if x < 0 else x  # NaN stays NaN, as with np.maximum


@helper()
def leaky_relu(x, negative_slope):
    return x if x > 0 else negative_slope * x


@helper()
def sigmoid(x):
    # exp of a non-positive number only: no overflow at |x| ~ 1e4
    e = math.exp(-abs(x))
    one = like(x, 1.0)
    return one / (one + e) if x >= 0 else e / (one + e)


@helper()
def gelu(x):
    return like(x, 0.5) * x * (like(x, 1.0) + math.erf(x * like(x, SQRT1_2)))


@helper()
def gelu_tanh(x):
    inner = like(x, SQRT_2_OVER_PI) * (x + like(x, GELU_TANH_CUBIC) * x * x * x)
    return like(x, 0.5) * x * (like(x, 1.0) + math.tanh(inner))


@helper()
def activate(code, x, negative_slope):
    """act(x) for one element; `code` is one of ACTIVATION_CODES (softmax excluded)."""
    if code == RELU:
        return relu(x)
    if code == LEAKY_RELU:
        return leaky_relu(x, negative_slope)
    if code == SIGMOID:
        return sigmoid(x)
    if code == TANH:
        return math.tanh(x)
    if code == GELU:
        return gelu(x)
    if code == GELU_TANH:
        return gelu_tanh(x)
    return x


# ----------------------------------------------------------------------------- backward
@helper()
def gelu_grad(x):
    cdf = like(x, 0.5) * (like(x, 1.0) + math.erf(x * like(x, SQRT1_2)))
    pdf = like(x, INV_SQRT_2PI) * math.exp(like(x, -0.5) * x * x)
    return cdf + x * pdf


@helper()
def gelu_tanh_grad(x):
    k = like(x, SQRT_2_OVER_PI)
    one, half = like(x, 1.0), like(x, 0.5)
    t = math.tanh(k * (x + like(x, GELU_TANH_CUBIC) * x * x * x))
    dinner = k * (one + like(x, 3 * GELU_TANH_CUBIC) * x * x)
    return half * (one + t) + half * x * (one - t * t) * dinner
