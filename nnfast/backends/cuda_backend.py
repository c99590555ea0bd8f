"""The CUDA backend: the primitives of nnfast._cuda, computed on an NVIDIA GPU.

Each primitive takes and returns NumPy arrays with the NumPy reference's signature and
semantics: it copies its inputs to the device, runs one kernel and copies the result back.
That is slow; it exists so the shared test suite checks every CUDA kernel against the
reference. Training runs on the device through `model.to("cuda")` (nnfast/device.py),
which keeps parameters, optimizer state and data in GPU memory.

Importing this module raises ImportError saying why when nnfast was built without CUDA or
no usable GPU is present, so the registry reports "cuda" as unavailable with that reason.
"""
from __future__ import annotations

import numpy as np

try:
    from nnfast import _cuda
except ImportError as exc:
    raise ImportError(f"nnfast was built without its CUDA extension ({exc}); reinstall where "
                      "nvcc is on PATH, or with NNFAST_CUDA=1 to make that an error") from exc

from ._checks import (activation_backward_arguments, activation_forward_arguments,
                      adam_arguments, dropout_backward_arguments, dropout_forward_arguments,
                      float_array, gemm_arguments, labels_array, loss_weights, output_array,
                      sgd_arguments)



def _version(v: int) -> str:
    return f"{v // 1000}.{v % 1000 // 10}"


try:
    _device_count = _cuda.device_count()
except RuntimeError as exc:  # no driver, an old driver, or a driver without a usable device
    driver, runtime = _cuda.driver_version(), _cuda.runtime_version()
    if driver == 0:
        why = "no NVIDIA driver is installed"
    elif driver < runtime:
        why = (f"the NVIDIA driver supports CUDA {_version(driver)}, older than the CUDA "
               f"{_version(runtime)} runtime nnfast was built with")
    else:
        why = "no usable GPU"
    raise ImportError(f"{why} ({exc})") from exc
if _device_count == 0:
    raise ImportError("no CUDA GPU found (cudaGetDeviceCount returned 0)")

name = "cuda"
device = "cuda"
dtypes = ("float32", "float64")
device_name = _cuda.device_name()
memory_info = _cuda.memory_info  # () -> (free, total) bytes
Trainer = _cuda.Trainer          # the device-resident fused step (nnfast/device.py)


# ----------------------------------------------------------------------------- GEMM
def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None,
         activation=None, negative_slope=0.01):
    """out = act(alpha * op(a) @ op(b) + beta * out + bias).  op(a) (M, K), op(b) (K, N), out (M, N)."""
    m, n, k, act, out = gemm_arguments(a, b, out, trans_a, trans_b, beta, bias, activation)
    if m and n:
        _cuda.gemm(a, b, out, trans_a, trans_b, m, n, k, alpha, beta, bias, act, negative_slope)
    return out


# ----------------------------------------------------------------------------- activations
def activation_forward(kind, x, out=None, *, negative_slope=0.01):
    """y = act(x).  x (...), out (...); softmax is taken over the last axis of a 2-D x."""
    act, out = activation_forward_arguments(kind, x, out)
    if x.size:
        _cuda.activation_forward(act, x, out, negative_slope)
    return out


def activation_backward(kind, grad_out, x, y, out=None, *, negative_slope=0.01):
    """dx = dy * act'(x), given x and y = act(x).  All arrays (...) of one shape."""
    act, out = activation_backward_arguments(kind, grad_out, x, y, out)
    if grad_out.size:
        _cuda.activation_backward(act, grad_out, x, y, out, negative_slope)
    return out


# ----------------------------------------------------------------------------- losses
def _check_target(logits, target):
    n, c = logits.shape
    if isinstance(target, np.ndarray) and target.ndim == 1:
        labels_array(target, "target", n, c)
    else:
        float_array(target, "target", dtype=logits.dtype, shape=logits.shape)


def softmax_cross_entropy_forward(logits, target, probs=None, *, sample_weight=None,
                                  class_weight=None):
    """Mean cross-entropy of softmax(logits).  logits (N, C); target int64 (N,) or (N, C);
    sample_weight (N,), class_weight (C,) or None, as the NumPy reference.

    Returns (loss, probs) with probs (N, C) = softmax(logits).
    """
    float_array(logits, "logits", ndim=2)
    probs = output_array(probs, "probs", logits.shape, logits.dtype)
    _check_target(logits, target)
    sample_weight, class_weight = loss_weights(logits, sample_weight, class_weight)
    if logits.shape[0] == 0:
        return float("nan"), probs
    if logits.shape[1] == 0:
        raise ValueError("logits: no classes (shape (N, 0))")
    return _cuda.softmax_cross_entropy_forward(logits, target, probs, sample_weight,
                                               class_weight), probs


def softmax_cross_entropy_backward(probs, target, out=None, *, sample_weight=None,
                                   class_weight=None):
    """d loss / d logits = s (probs * sum(k target) - k target) / N (labels: the forward's
    denominator).  probs (N, C), out (N, C)."""
    float_array(probs, "probs", ndim=2)
    out = output_array(out, "out", probs.shape, probs.dtype)
    _check_target(probs, target)
    sample_weight, class_weight = loss_weights(probs, sample_weight, class_weight)
    if probs.size:
        _cuda.softmax_cross_entropy_backward(probs, target, out, sample_weight, class_weight)
    return out


def _pair(pred, target, pred_name, sample_weight, pos_weight):
    float_array(pred, pred_name)
    float_array(target, "target", dtype=pred.dtype, shape=pred.shape)
    return loss_weights(pred, sample_weight, pos_weight, "pos_weight")


def _element_loss(kind, pred, target, pred_name, sample_weight=None, pos_weight=None):
    s, q = _pair(pred, target, pred_name, sample_weight, pos_weight)
    return _cuda.element_loss_forward(kind, pred, target, s, q) if pred.size else float("nan")


def _element_loss_grad(kind, pred, target, out, pred_name, sample_weight=None, pos_weight=None):
    s, q = _pair(pred, target, pred_name, sample_weight, pos_weight)
    out = output_array(out, "out", pred.shape, pred.dtype)
    if pred.size:
        _cuda.element_loss_backward(kind, pred, target, out, s, q)
    return out


def mse_forward(pred, target, *, sample_weight=None):
    """sum(s_i (pred - target)^2) / numel.  pred (...), target (...)."""
    return _element_loss("mse", pred, target, "pred", sample_weight)


def mse_backward(pred, target, out=None, *, sample_weight=None):
    """2 s_i (pred - target) / numel."""
    return _element_loss_grad("mse", pred, target, out, "pred", sample_weight)


def bce_forward(prob, target, *, sample_weight=None):
    """Binary cross-entropy on probabilities (each log clamped at -100), sum(s_i l) / numel."""
    return _element_loss("bce", prob, target, "prob", sample_weight)


def bce_backward(prob, target, out=None, *, sample_weight=None):
    """s_i (prob - target) / max(prob (1 - prob), 1e-12) / numel."""
    return _element_loss_grad("bce", prob, target, out, "prob", sample_weight)


def bce_with_logits_forward(logits, target, *, sample_weight=None, pos_weight=None):
    """Binary cross-entropy of sigmoid(logits), computed stably, with torch's pos_weight."""
    return _element_loss("bce_with_logits", logits, target, "logits", sample_weight, pos_weight)


def bce_with_logits_backward(logits, target, out=None, *, sample_weight=None, pos_weight=None):
    """s_i ((1 + (q - 1) t) sigmoid(logits) - q t) / numel."""
    return _element_loss_grad("bce_with_logits", logits, target, out, "logits", sample_weight,
                              pos_weight)


# ----------------------------------------------------------------------------- reductions
def bias_grad(grad_out, out=None, *, beta=0.0):
    """out = column sums of grad_out + beta * out.  grad_out (N, C), out (C,)."""
    float_array(grad_out, "grad_out", ndim=2)
    out = output_array(out, "out", (grad_out.shape[1],), grad_out.dtype, beta)
    if out.size:
        _cuda.bias_grad(grad_out, out, beta)
    return out


# ----------------------------------------------------------------------------- optimizers
def sgd_update(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One torch.optim.SGD step in place.  param, grad, velocity: same shape."""
    sgd_arguments(param, grad, velocity, momentum, nesterov)
    if param.size:
        _cuda.sgd_update(param, grad, velocity, lr, momentum, nesterov, weight_decay)
    return param


def adam_update(param, grad, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                step, decoupled=False):
    """One torch.optim.Adam (decoupled=False) or AdamW step, in place; step counts from 1."""
    adam_arguments(param, grad, m, v, step)
    if param.size:
        _cuda.adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled)
    return param


# ----------------------------------------------------------------------------- dropout
def dropout_forward(x, out=None, mask=None, *, p, seed, offset):
    """Inverted dropout with counter-based masks: element i (C order) is dropped when
    (bits(seed, offset + i) >> 32) < floor(p 2**32); kept ones become x / (1 - p).
    x (...), out (...), mask uint8 (...) set to 1 where kept. Returns (out, mask).
    """
    out, mask, p, seed, offset = dropout_forward_arguments(x, out, mask, p, seed, offset)
    if x.size:
        _cuda.dropout_forward(x, out, mask, p, seed, offset)
    return out, mask


def dropout_backward(grad_out, mask, out=None, *, p):
    """grad_in = grad_out / (1 - p) where mask is 1, else 0.  grad_out (...), mask uint8 (...)."""
    out, p = dropout_backward_arguments(grad_out, mask, out, p)
    if grad_out.size:
        _cuda.dropout_backward(grad_out, mask, out, p)
    return out


from ._contract import missing_primitives  # noqa: E402

__getattr__ = missing_primitives(name)
