"""Activation forward/backward: elementwise kernels over flattened arrays, softmax by rows."""
from __future__ import annotations

import math

from .._checks import activation_backward_arguments, activation_forward_arguments
from .._contract import ACTIVATIONS
from ._jit import helper, kernel
from ._scalar import gelu, gelu_grad, gelu_tanh, gelu_tanh_grad, leaky_relu, like, relu, sigmoid, tanh

# Activation codes passed to kernels (a string cannot select a branch in compiled code).
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH, GELU, GELU_TANH, SILU, ELU = (
    ACTIVATION_CODES[name]
    for name in ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "elu"))


# One loop per activation, the branch outside it, so that each loop vectorizes on its own.
# x (n,), out (n,)
@helper()
def activation_forward_1d(code, x, out, negative_slope):
    n = x.size
    if code == RELU:
        for i in range(n):
            out[i] = relu(x[i])
    elif code == LEAKY_RELU:
        slope = out.dtype.type(negative_slope)
        for i in range(n):
            out[i] = leaky_relu(x[i], slope)
    elif code == SIGMOID:
        for i in range(n):
            out[i] = sigmoid(x[i])
    elif code == TANH:
        for i in range(n):
            out[i] = tanh(x[i])
    elif code == GELU:
        for i in range(n):
            out[i] = gelu(x[i])
    elif code == GELU_TANH:
        for i in range(n):
            out[i] = gelu_tanh(x[i])
    elif code == SILU:
        for i in range(n):
            out[i] = x[i] * sigmoid(x[i])
    elif code == ELU:
        alpha = out.dtype.type(negative_slope)
        for i in range(n):
            out[i] = x[i] if x[i] > 0 else alpha * math.expm1(x[i])
    else:
        for i in range(n):
            out[i] = x[i]


@kernel()
def _forward_kernel(code, x, out, negative_slope):
    activation_forward_1d(code, x, out, negative_slope)


# grad_out (n,), x (n,), y (n,) = act(x), out (n,)
@kernel()
def _backward_kernel(code, grad_out, x, y, out, negative_slope):
    n = x.size
    if code == RELU:
        for i in range(n):
            out[i] = grad_out[i] if x[i] > 0 else like(grad_out[i], 0.0)
    elif code == LEAKY_RELU:
        slope = out.dtype.type(negative_slope)
        for i in range(n):
            out[i] = grad_out[i] if x[i] > 0 else slope * grad_out[i]
    elif code == SIGMOID:
        for i in range(n):
            out[i] = grad_out[i] * y[i] * (like(y[i], 1.0) - y[i])
    elif code == TANH:
        for i in range(n):
            out[i] = grad_out[i] * (like(y[i], 1.0) - y[i] * y[i])
    elif code == GELU:
        for i in range(n):
            out[i] = grad_out[i] * gelu_grad(x[i])
    elif code == GELU_TANH:
        for i in range(n):
            out[i] = grad_out[i] * gelu_tanh_grad(x[i])
    elif code == SILU:
        for i in range(n):
            s = sigmoid(x[i])
            out[i] = grad_out[i] * s * (like(s, 1.0) + x[i] * (like(s, 1.0) - s))
    elif code == ELU:
        alpha = out.dtype.type(negative_slope)
        for i in range(n):  # alpha exp(x) is y + alpha, without an exp
            out[i] = grad_out[i] if x[i] > 0 else grad_out[i] * (y[i] + alpha)
    else:
        for i in range(n):
            out[i] = grad_out[i]


# x (N, C), out (N, C) (C > 0): row r of out = softmax of row r of x, its sum in float64.
# Returns the row's max and that sum, from which cross-entropy takes its log-sum-exp.
@helper()
def softmax_row(x, out, r):
    cols = x.shape[1]
    row_max = x[r, 0]
    for c in range(1, cols):
        row_max = max(row_max, x[r, c])
    total = 0.0
    for c in range(cols):
        e = math.exp(x[r, c] - row_max)
        out[r, c] = e
        total += e
    norm = out.dtype.type(total)
    for c in range(cols):
        out[r, c] = out[r, c] / norm
    return row_max, total


# x (N, C), out (N, C)
@kernel()
def _softmax_forward_kernel(x, out):
    rows, cols = x.shape
    if cols == 0:
        return
    for r in range(rows):
        softmax_row(x, out, r)


# grad_out (N, C), y (N, C) = softmax(x), out (N, C): y * (g - sum(g * y))
@kernel()
def _softmax_backward_kernel(grad_out, y, out):
    rows, cols = y.shape
    for r in range(rows):
        dot = 0.0
        for c in range(cols):
            dot += grad_out[r, c] * y[r, c]
        dot_t = out.dtype.type(dot)
        for c in range(cols):
            out[r, c] = y[r, c] * (grad_out[r, c] - dot_t)


def activation_forward(kind, x, out=None, *, negative_slope=0.01):
    """y = act(x).  x (...), out (...); softmax is taken over the last axis of a 2-D x."""
    act, out = activation_forward_arguments(kind, x, out)
    if act == "softmax":
        _softmax_forward_kernel(x, out)
    else:
        _forward_kernel(ACTIVATION_CODES[act], x.reshape(-1), out.reshape(-1), float(negative_slope))
    return out


def activation_backward(kind, grad_out, x, y, out=None, *, negative_slope=0.01):
    """dx = dy * act'(x), given x and y = act(x).  All arrays (...) of one shape."""
    act, out = activation_backward_arguments(kind, grad_out, x, y, out)
    if act == "softmax":
        _softmax_backward_kernel(grad_out, y, out)
    else:
        _backward_kernel(ACTIVATION_CODES[act], grad_out.reshape(-1), x.reshape(-1), y.reshape(-1),
                         out.reshape(-1), float(negative_slope))
    return out
