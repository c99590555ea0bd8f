"""Gradient norms, clipping and weight penalties: sum_squares, scale_inplace, clip_inplace,
weight_penalty_forward/backward, each one pass over a flattened array.

Sums to a scalar accumulate in float64 over fixed chunks of SUM_CHUNK elements, the
chunks' sums then added in order, as the reference does: the value depends on the data
only.
"""
from __future__ import annotations

import numpy as np

from .._checks import float_array, inout_array
from ._jit import kernel

SUM_CHUNK = 4096  # as numpy_backend.SUM_CHUNK


# x (n,): sum of x^2 (squares=True) or of |x|, in float64
@kernel()
def _chunked_sum_kernel(x, squares):
    n = x.size
    total = 0.0
    for start in range(0, n, SUM_CHUNK):
        part = 0.0
        for i in range(start, min(start + SUM_CHUNK, n)):
            v = np.float64(x[i])  # float() would keep a float32 a float32 in Numba
            part += v * v if squares else abs(v)
        total += part
    return total


# x (n,) *= alpha, or clipped to [lo, hi] (NaN stays NaN: both comparisons fail)
@kernel()
def _scale_kernel(x, alpha):
    alpha_t = x.dtype.type(alpha)
    for i in range(x.size):
        x[i] = x[i] * alpha_t


@kernel()
def _clip_kernel(x, lo, hi):
    lo_t, hi_t = x.dtype.type(lo), x.dtype.type(hi)
    for i in range(x.size):
        v = x[i]
        if v < lo_t:
            x[i] = lo_t
        elif v > hi_t:
            x[i] = hi_t


# w (n,), grad (n,) += l1 * sign(w) + (2 l2) * w, in w's dtype
@kernel()
def _penalty_grad_kernel(w, grad, l1, l2):
    l1_t, two_l2 = w.dtype.type(l1), w.dtype.type(2.0 * l2)
    for i in range(w.size):
        v = w[i]
        sign = w.dtype.type(1) if v > 0 else (w.dtype.type(-1) if v < 0 else v)  # 0 and NaN as is
        grad[i] = grad[i] + (l1_t * sign + two_l2 * v)


def _penalty_coefficients(l1, l2):
    l1, l2 = float(l1), float(l2)
    if not (l1 >= 0 and l2 >= 0):
        raise ValueError(f"l1, l2: penalty coefficients must be >= 0, got l1={l1}, l2={l2}")
    return l1, l2


def sum_squares(x):
    """sum(x^2) over every element, as a Python float accumulated in float64.  x (...)."""
    float_array(x, "x")
    return _chunked_sum_kernel(x.reshape(-1), True)


def scale_inplace(x, *, alpha):
    """x *= alpha in place (alpha rounded to x's dtype).  x (...)."""
    inout_array(x, "x")
    _scale_kernel(x.reshape(-1), float(alpha))
    return x


def clip_inplace(x, *, lo, hi):
    """x = min(max(x, lo), hi) in place; NaN stays NaN.  x (...)."""
    inout_array(x, "x")
    if not lo <= hi:
        raise ValueError(f"lo, hi: need lo <= hi, got lo={lo}, hi={hi}")
    _clip_kernel(x.reshape(-1), float(lo), float(hi))
    return x


def weight_penalty_forward(w, *, l1, l2):
    """l1 * sum|w| + l2 * sum(w^2), a Python float accumulated in float64 (fixed chunks).  w (...)."""
    float_array(w, "w")
    l1, l2 = _penalty_coefficients(l1, l2)
    flat = w.reshape(-1)
    return l1 * _chunked_sum_kernel(flat, False) + l2 * _chunked_sum_kernel(flat, True)


def weight_penalty_backward(w, grad, *, l1, l2):
    """grad += l1 * sign(w) + (2 l2) * w in place, in w's dtype (sign(0) = 0).  w, grad (...)."""
    float_array(w, "w")
    inout_array(grad, "grad", dtype=w.dtype, shape=w.shape)
    l1, l2 = _penalty_coefficients(l1, l2)
    _penalty_grad_kernel(w.reshape(-1), grad.reshape(-1), l1, l2)
    return grad
