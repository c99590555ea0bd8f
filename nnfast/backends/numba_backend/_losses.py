"""Losses: softmax cross-entropy (sparse labels or one-hot rows), MSE, BCE, BCE with logits.

Each forward returns the mean as a Python float. Per-element terms are computed in the
inputs' dtype, as the reference does, and summed in float64 in fixed chunks (a sum per
chunk, then the chunks' sums in order), so the value depends on the data only.

The optional weights (sample_weight per row, class_weight or pos_weight per column, with
the reference's formulas) reach the kernels as arrays, empty where absent: an absent weight
is exactly 1, so the unweighted losses are unchanged.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import float_array, labels_array, loss_weights, output_array
from ._activations import softmax_row
from ._jit import helper, kernel
from ._scalar import like, sigmoid

LOSS_CHUNK = 4096  # elements (rows for cross-entropy) per partial sum
MSE, BCE, BCE_WITH_LOGITS = range(3)
# torch.nn.BCELoss clamps each log term at -100 and guards the gradient's denominator.
BCE_LOG_MIN = -100.0
BCE_GRAD_EPS = 1e-12


# ----------------------------------------------------------------------------- weights
# w (rows,) or empty: row r's weight, 1 where w is empty
@helper()
def _weight(w, r, one):
    return w[r] if w.size else one


# ----------------------------------------------------------------------------- cross-entropy
# logits (N, C), labels (N,) int64, probs (N, C), s (N,) and k (C,) or empty; returns the
# summed loss, sum of s_r k_label (-log p[label])
@kernel()
def _ce_sparse_forward_kernel(logits, labels, probs, s, k):
    rows = logits.shape[0]
    one = like(logits[0, 0], 1.0)
    total = 0.0
    for start in range(0, rows, LOSS_CHUNK):
        part = 0.0
        for r in range(start, min(start + LOSS_CHUNK, rows)):
            row_max, exp_sum = softmax_row(logits, probs, r)
            weight = _weight(s, r, one) * _weight(k, labels[r], one)
            part += weight * (math.log(exp_sum) - (logits[r, labels[r]] - row_max))
        total += part
    return total


# logits (N, C), target (N, C) rows of class probabilities, probs (N, C), s (N,) and k (C,)
# or empty; returns the summed loss, sum of s_r sum_c k_c t (-log p)
@kernel()
def _ce_dense_forward_kernel(logits, target, probs, s, k):
    rows, cols = logits.shape
    one = like(logits[0, 0], 1.0)
    total = 0.0
    for start in range(0, rows, LOSS_CHUNK):
        part = 0.0
        for r in range(start, min(start + LOSS_CHUNK, rows)):
            row_max, exp_sum = softmax_row(logits, probs, r)
            log_sum = math.log(exp_sum)
            row = 0.0
            for c in range(cols):
                row -= _weight(k, c, one) * target[r, c] * ((logits[r, c] - row_max) - log_sum)
            part += _weight(s, r, one) * row
        total += part
    return total


# probs (N, C), labels (N,), out (N, C) = s_r k_label (probs - onehot(labels)) inv_d
@kernel()
def _ce_sparse_backward_kernel(probs, labels, out, s, k, inv_d):
    rows, cols = probs.shape
    one = like(inv_d, 1.0)
    for r in range(rows):
        label = labels[r]
        scale = inv_d * (_weight(s, r, one) * _weight(k, label, one))
        for c in range(cols):
            out[r, c] = probs[r, c] * scale
        out[r, label] = (probs[r, label] - one) * scale


# probs (N, C), target (N, C), out (N, C) = s_r (probs * sum(k target) - k target) / N
@kernel()
def _ce_dense_backward_kernel(probs, target, out, s, k):
    rows, cols = probs.shape
    inv_n = out.dtype.type(1.0 / max(rows, 1))
    one = like(inv_n, 1.0)
    for r in range(rows):
        scale = inv_n * _weight(s, r, one)
        mass = 0.0
        for c in range(cols):
            mass += _weight(k, c, one) * target[r, c]
        mass_t = out.dtype.type(mass)
        for c in range(cols):
            out[r, c] = (probs[r, c] * mass_t - _weight(k, c, one) * target[r, c]) * scale


def _is_sparse(target):
    return isinstance(target, np.ndarray) and target.ndim == 1


def _or_empty(w, dtype):
    return np.empty(0, dtype=dtype) if w is None else w


def _ce_weights(x, sample_weight, class_weight):
    s, k = loss_weights(x, sample_weight, class_weight)
    return _or_empty(s, x.dtype), _or_empty(k, x.dtype)


def _label_weight_sum(target, k, n):
    """The sparse mean's denominator: the labels' class weights summed (torch's), else n."""
    return float(k[target].sum()) if k.size else float(n)


def softmax_cross_entropy_forward(logits, target, probs=None, *, sample_weight=None,
                                  class_weight=None):
    """Mean cross-entropy of softmax(logits).  logits (N, C); target int64 (N,) or (N, C);
    sample_weight (N,), class_weight (C,) or None, as the reference.

    Returns (loss, probs) with probs (N, C) = softmax(logits), kept for the backward pass.
    """
    float_array(logits, "logits", ndim=2)
    n, c = logits.shape
    s, k = _ce_weights(logits, sample_weight, class_weight)
    probs = output_array(probs, "probs", logits.shape, logits.dtype)
    if _is_sparse(target):
        labels_array(target, "target", n, c)
        if n == 0 or c == 0:
            return float("nan"), probs
        with np.errstate(divide="ignore", invalid="ignore"):
            total = np.float64(_ce_sparse_forward_kernel(logits, target, probs, s, k))
            return float(total / _label_weight_sum(target, k, n)), probs
    float_array(target, "target", dtype=logits.dtype, shape=logits.shape)
    if n == 0 or c == 0:
        return float("nan"), probs
    return _ce_dense_forward_kernel(logits, target, probs, s, k) / n, probs


def softmax_cross_entropy_backward(probs, target, out=None, *, sample_weight=None,
                                   class_weight=None):
    """d loss / d logits = s (probs * sum(k target) - k target) / N (labels: the forward's
    denominator).  probs (N, C), out (N, C)."""
    float_array(probs, "probs", ndim=2)
    n, c = probs.shape
    s, k = _ce_weights(probs, sample_weight, class_weight)
    out = output_array(out, "out", probs.shape, probs.dtype)
    if _is_sparse(target):
        labels_array(target, "target", n, c)
        # as the compiled kernel: weights summing to 0 give inf, then NaN gradients
        with np.errstate(divide="ignore"):
            inv_d = probs.dtype.type(np.float64(1.0) / _label_weight_sum(target, k, n))
        _ce_sparse_backward_kernel(probs, target, out, s, k, inv_d)
    else:
        float_array(target, "target", dtype=probs.dtype, shape=probs.shape)
        _ce_dense_backward_kernel(probs, target, out, s, k)
    return out


# ----------------------------------------------------------------------------- elementwise losses
# term of element (p, t); q: BCE with logits' pos_weight of its column (1 without)
@helper()
def _loss_term(code, p, t, q, weighted_positive):
    one = like(p, 1.0)
    if code == MSE:
        d = p - t
        return d * d
    if code == BCE:
        log_p = max(math.log(p), like(p, BCE_LOG_MIN))
        log_1mp = max(math.log(one - p), like(p, BCE_LOG_MIN))
        return -(t * log_p + (one - t) * log_1mp)
    log_term = math.log1p(math.exp(-abs(p)))
    if weighted_positive:  # torch's form: (1 - t) z + (1 + (q - 1) t) softplus(-z)
        return (one - t) * p + (one + (q - one) * t) * (max(-p, like(p, 0.0)) + log_term)
    # BCE with logits, stable at any p: max(p, 0) - p t + log(1 + exp(-|p|))
    return max(p, like(p, 0.0)) - p * t + log_term


# pred (n,) of (rows, cols), target (n,), s (rows,) and q (cols,) or empty; returns the
# summed loss
@kernel()
def _loss_sum_kernel(code, pred, target, s, q, cols):
    n = pred.size
    total = 0.0
    if n == 0:
        return total
    one = like(pred[0], 1.0)
    for start in range(0, n, LOSS_CHUNK):
        part = 0.0
        for i in range(start, min(start + LOSS_CHUNK, n)):
            term = _loss_term(code, pred[i], target[i], _weight(q, i % cols, one), q.size > 0)
            part += _weight(s, i // cols, one) * term
        total += part
    return total


# pred (n,) of (rows, cols), target (n,), out (n,) = d mean loss / d pred; s, q as above
@kernel()
def _loss_grad_kernel(code, pred, target, out, s, q, cols):
    n = pred.size
    one = out.dtype.type(1.0)
    if code == MSE:
        scale = out.dtype.type(2.0 / max(n, 1))
        for i in range(n):
            out[i] = scale * _weight(s, i // cols, one) * (pred[i] - target[i])
    elif code == BCE:
        inv_n = out.dtype.type(max(n, 1))
        eps = out.dtype.type(BCE_GRAD_EPS)
        for i in range(n):
            p = pred[i]
            out[i] = _weight(s, i // cols, one) * (p - target[i]) / max(p * (one - p), eps) / inv_n
    else:
        inv_n = out.dtype.type(max(n, 1))
        for i in range(n):
            t = target[i]
            if q.size:
                qi = q[i % cols]
                g = (one + (qi - one) * t) * sigmoid(pred[i]) - qi * t
            else:
                g = sigmoid(pred[i]) - t
            out[i] = _weight(s, i // cols, one) * g / inv_n


def _pair(pred, target, pred_name, sample_weight, pos_weight):
    """The checked pair, its weights as arrays (empty where absent) and its width."""
    float_array(pred, pred_name)
    float_array(target, "target", dtype=pred.dtype, shape=pred.shape)
    s, q = loss_weights(pred, sample_weight, pos_weight, "pos_weight")
    cols = pred.shape[1] if pred.ndim == 2 else 1
    return _or_empty(s, pred.dtype), _or_empty(q, pred.dtype), max(cols, 1)


def _mean(code, pred, target, pred_name, sample_weight=None, pos_weight=None):
    s, q, cols = _pair(pred, target, pred_name, sample_weight, pos_weight)
    if pred.size == 0:
        return float("nan")
    return _loss_sum_kernel(code, pred.reshape(-1), target.reshape(-1), s, q, cols) / pred.size


def _grad(code, pred, target, out, pred_name, sample_weight=None, pos_weight=None):
    s, q, cols = _pair(pred, target, pred_name, sample_weight, pos_weight)
    out = output_array(out, "out", pred.shape, pred.dtype)
    _loss_grad_kernel(code, pred.reshape(-1), target.reshape(-1), out.reshape(-1), s, q, cols)
    return out


def mse_forward(pred, target, *, sample_weight=None):
    """sum(s_i (pred - target)^2) / numel.  pred (...), target (...)."""
    return _mean(MSE, pred, target, "pred", sample_weight)


def mse_backward(pred, target, out=None, *, sample_weight=None):
    """2 s_i (pred - target) / numel."""
    return _grad(MSE, pred, target, out, "pred", sample_weight)


def bce_forward(prob, target, *, sample_weight=None):
    """Binary cross-entropy on probabilities, sum(s_i l) / numel.  prob (...), target (...)."""
    return _mean(BCE, prob, target, "prob", sample_weight)


def bce_backward(prob, target, out=None, *, sample_weight=None):
    """s_i (prob - target) / max(prob (1 - prob), 1e-12) / numel."""
    return _grad(BCE, prob, target, out, "prob", sample_weight)


def bce_with_logits_forward(logits, target, *, sample_weight=None, pos_weight=None):
    """Binary cross-entropy of sigmoid(logits), computed stably, with torch's pos_weight.
    logits (...), target (...)."""
    return _mean(BCE_WITH_LOGITS, logits, target, "logits", sample_weight, pos_weight)


def bce_with_logits_backward(logits, target, out=None, *, sample_weight=None, pos_weight=None):
    """s_i ((1 + (q - 1) t) sigmoid(logits) - q t) / numel."""
    return _grad(BCE_WITH_LOGITS, logits, target, out, "logits", sample_weight, pos_weight)
