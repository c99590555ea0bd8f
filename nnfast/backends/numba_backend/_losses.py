"""Losses: softmax cross-entropy (sparse labels or one-hot rows), MSE, BCE, BCE with logits.

Each forward returns the mean as a Python float. Per-element terms are computed in the
inputs' dtype, as the reference does, and summed in float64 in fixed chunks (a sum per
chunk, then the chunks' sums in order), so the value depends on the data only.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import float_array, labels_array, output_array
from ._activations import softmax_row
from ._jit import helper, kernel
from ._scalar import like, sigmoid

LOSS_CHUNK = 4096  # elements (rows for cross-entropy) per partial sum
MSE, BCE, BCE_WITH_LOGITS = range(3)
# torch.nn.BCELoss clamps each log term at -100 and guards the gradient's denominator.
BCE_LOG_MIN = -100.0
BCE_GRAD_EPS = 1e-12


# ----------------------------------------------------------------------------- cross-entropy
# logits (N, C), labels (N,) int64, probs (N, C); returns the summed loss
@kernel()
def _ce_sparse_forward_kernel(logits, labels, probs):
    rows = logits.shape[0]
    total = 0.0
    for start in range(0, rows, LOSS_CHUNK):
        part = 0.0
        for r in range(start, min(start + LOSS_CHUNK, rows)):
            row_max, exp_sum = softmax_row(logits, probs, r)
            part += math.log(exp_sum) - (logits[r, labels[r]] - row_max)
        total += part
    return total


# logits (N, C), target (N, C) rows of class probabilities, probs (N, C)
@kernel()
def _ce_dense_forward_kernel(logits, target, probs):
    rows, cols = logits.shape
    total = 0.0
    for start in range(0, rows, LOSS_CHUNK):
        part = 0.0
        for r in range(start, min(start + LOSS_CHUNK, rows)):
            row_max, exp_sum = softmax_row(logits, probs, r)
            log_sum = math.log(exp_sum)
            for c in range(cols):
                part -= target[r, c] * ((logits[r, c] - row_max) - log_sum)
        total += part
    return total


# probs (N, C), labels (N,), out (N, C) = (probs - onehot(labels)) / N
@kernel()
def _ce_sparse_backward_kernel(probs, labels, out):
    rows, cols = probs.shape
    inv_n = out.dtype.type(1.0 / max(rows, 1))
    for r in range(rows):
        for c in range(cols):
            out[r, c] = probs[r, c] * inv_n
        label = labels[r]
        out[r, label] = (probs[r, label] - like(inv_n, 1.0)) * inv_n


# probs (N, C), target (N, C), out (N, C) = (probs * sum(target) - target) / N, row by row
@kernel()
def _ce_dense_backward_kernel(probs, target, out):
    rows, cols = probs.shape
    inv_n = out.dtype.type(1.0 / max(rows, 1))
    for r in range(rows):
        mass = 0.0
        for c in range(cols):
            mass += target[r, c]
        mass_t = out.dtype.type(mass)
        for c in range(cols):
            out[r, c] = (probs[r, c] * mass_t - target[r, c]) * inv_n


def _is_sparse(target):
    return isinstance(target, np.ndarray) and target.ndim == 1


def softmax_cross_entropy_forward(logits, target, probs=None):
    """Mean cross-entropy of softmax(logits).  logits (N, C); target int64 (N,) or (N, C).

    Returns (loss, probs) with probs (N, C) = softmax(logits), kept for the backward pass.
    """
    float_array(logits, "logits", ndim=2)
    n, c = logits.shape
    probs = output_array(probs, "probs", logits.shape, logits.dtype)
    if _is_sparse(target):
        labels_array(target, "target", n, c)
        forward = _ce_sparse_forward_kernel
    else:
        float_array(target, "target", dtype=logits.dtype, shape=logits.shape)
        forward = _ce_dense_forward_kernel
    if n == 0 or c == 0:
        return float("nan"), probs
    return forward(logits, target, probs) / n, probs


def softmax_cross_entropy_backward(probs, target, out=None):
    """d loss / d logits = (probs * sum(target) - target) / N.  probs (N, C), out (N, C)."""
    float_array(probs, "probs", ndim=2)
    n, c = probs.shape
    out = output_array(out, "out", probs.shape, probs.dtype)
    if _is_sparse(target):
        labels_array(target, "target", n, c)
        _ce_sparse_backward_kernel(probs, target, out)
    else:
        float_array(target, "target", dtype=probs.dtype, shape=probs.shape)
        _ce_dense_backward_kernel(probs, target, out)
    return out


# ----------------------------------------------------------------------------- elementwise losses
@helper()
def _loss_term(code, p, t):
    one = like(p, 1.0)
    if code == MSE:
        d = p - t
        return d * d
    if code == BCE:
        log_p = max(math.log(p), like(p, BCE_LOG_MIN))
        log_1mp = max(math.log(one - p), like(p, BCE_LOG_MIN))
        return -(t * log_p + (one - t) * log_1mp)
    # BCE with logits, stable at any p: max(p, 0) - p t + log(1 + exp(-|p|))
    return max(p, like(p, 0.0)) - p * t + math.log1p(math.exp(-abs(p)))


# pred (n,), target (n,); returns the summed loss
@kernel()
def _loss_sum_kernel(code, pred, target):
    n = pred.size
    total = 0.0
    for start in range(0, n, LOSS_CHUNK):
        part = 0.0
        for i in range(start, min(start + LOSS_CHUNK, n)):
            part += _loss_term(code, pred[i], target[i])
        total += part
    return total


# pred (n,), target (n,), out (n,) = d mean loss / d pred
@kernel()
def _loss_grad_kernel(code, pred, target, out):
    n = pred.size
    if code == MSE:
        scale = out.dtype.type(2.0 / max(n, 1))
        for i in range(n):
            out[i] = scale * (pred[i] - target[i])
    elif code == BCE:
        inv_n = out.dtype.type(max(n, 1))
        eps = out.dtype.type(BCE_GRAD_EPS)
        for i in range(n):
            p = pred[i]
            out[i] = (p - target[i]) / max(p * (like(p, 1.0) - p), eps) / inv_n
    else:
        inv_n = out.dtype.type(max(n, 1))
        for i in range(n):
            out[i] = (sigmoid(pred[i]) - target[i]) / inv_n


def _pair(pred, target, pred_name):
    float_array(pred, pred_name)
    float_array(target, "target", dtype=pred.dtype, shape=pred.shape)


def _mean(code, pred, target, pred_name):
    _pair(pred, target, pred_name)
    if pred.size == 0:
        return float("nan")
    return _loss_sum_kernel(code, pred.reshape(-1), target.reshape(-1)) / pred.size


def _grad(code, pred, target, out, pred_name):
    _pair(pred, target, pred_name)
    out = output_array(out, "out", pred.shape, pred.dtype)
    _loss_grad_kernel(code, pred.reshape(-1), target.reshape(-1), out.reshape(-1))
    return out


def mse_forward(pred, target):
    """mean((pred - target)^2) over all elements.  pred (...), target (...)."""
    return _mean(MSE, pred, target, "pred")


def mse_backward(pred, target, out=None):
    """2 (pred - target) / numel."""
    return _grad(MSE, pred, target, out, "pred")


def bce_forward(prob, target):
    """Binary cross-entropy on probabilities, mean over all elements.  prob (...), target (...)."""
    return _mean(BCE, prob, target, "prob")


def bce_backward(prob, target, out=None):
    """(prob - target) / max(prob (1 - prob), 1e-12) / numel."""
    return _grad(BCE, prob, target, out, "prob")


def bce_with_logits_forward(logits, target):
    """Binary cross-entropy of sigmoid(logits), computed stably.  logits (...), target (...)."""
    return _mean(BCE_WITH_LOGITS, logits, target, "logits")


def bce_with_logits_backward(logits, target, out=None):
    """(sigmoid(logits) - target) / numel."""
    return _grad(BCE_WITH_LOGITS, logits, target, out, "logits")
