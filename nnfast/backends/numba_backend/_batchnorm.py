"""Batch norm over the batch (training and eval forward, backward), as the reference computes it.

Column statistics (mean, variance, the backward's sum(g) and sum(g * x_hat)) are float64 sums
over fixed chunks of CHUNK_ROWS rows, the chunks' sums added in chunk order, then rounded to
the data's dtype, as the C++ kernels do: the result depends on the data only. Every other
step follows the reference's order of operations in the data's dtype; an absent gamma or
beta is a scale of 1 and a shift of 0 (exact, so one code path serves both). The kernels run
on the calling thread: like bias_grad, each pass is a few operations per element bound by
memory, where waking Numba's pool costs as much as it saves.
"""
from __future__ import annotations

import numpy as np

from .._checks import (batchnorm_backward_arguments, batchnorm_eval_arguments,
                       batchnorm_train_arguments)
from ._aliasing import unaliased
from ._jit import helper, kernel

CHUNK_ROWS = 256

# Which term a column sum adds up (a branch outside the loops, each loop vectorizes)
SUM_X = 0  # a[r, c]
SUM_SQUARED_DEVIATION = 1  # (a[r, c] - shift[c])^2
SUM_G_X_HAT = 2  # a[r, c] * (b[r, c] - shift[c]) * scale[c], with a = grad_out, b = x


# a, b (N, C); shift, scale (C,); sums (C,) float64 = column sums of the term, in row chunks
@helper()
def _column_sums(term, a, b, shift, scale, sums):
    rows, cols = a.shape
    partial = np.empty(cols)
    sums[:] = 0.0
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, rows)
        partial[:] = 0.0
        if term == SUM_X:
            for r in range(start, stop):
                for c in range(cols):
                    partial[c] += a[r, c]
        elif term == SUM_SQUARED_DEVIATION:
            for r in range(start, stop):
                for c in range(cols):
                    d = a[r, c] - shift[c]
                    partial[c] += d * d
        else:
            for r in range(start, stop):
                for c in range(cols):
                    partial[c] += a[r, c] * ((b[r, c] - shift[c]) * scale[c])
        for c in range(cols):
            sums[c] += partial[c]


# x (N, C), out (N, C) = (x - shift) * scale * gamma + beta; shift, scale, gamma, beta (C,)
@helper()
def _normalize(x, shift, scale, gamma, beta, out):
    rows, cols = x.shape
    for r in range(rows):
        for c in range(cols):
            out[r, c] = (x[r, c] - shift[c]) * scale[c] * gamma[c] + beta[c]


# gamma, beta (C,) copied, or ones and zeros when absent (a copy: one array type either way,
# where a read-only gamma and a fresh array of ones would not unify)
@helper()
def _affine(gamma, has_gamma, beta, has_beta):
    scale = np.ones(gamma.shape[0], gamma.dtype)
    shift = np.zeros(beta.shape[0], beta.dtype)
    if has_gamma:
        scale[:] = gamma
    if has_beta:
        shift[:] = beta
    return scale, shift


# x (N, C), out (N, C); gamma, beta, running_mean, running_var, mean, inv_std (C,)
@kernel()
def _forward_train_kernel(x, gamma, has_gamma, beta, has_beta, running_mean, running_var, out,
                          mean, inv_std, momentum, eps):
    rows, cols = x.shape
    dt = x.dtype.type
    n = dt(rows)
    sums = np.empty(cols)
    _column_sums(SUM_X, x, x, mean, inv_std, sums)
    for c in range(cols):
        mean[c] = dt(sums[c]) / n
    _column_sums(SUM_SQUARED_DEVIATION, x, x, mean, inv_std, sums)
    keep, m = dt(1.0 - momentum), dt(momentum)
    unbias = dt(momentum * rows / (rows - 1))  # running_var takes the unbiased variance
    eps_t = dt(eps)
    for c in range(cols):
        var = dt(sums[c]) / n
        inv_std[c] = dt(1) / np.sqrt(var + eps_t)
        running_mean[c] = keep * running_mean[c] + m * mean[c]
        running_var[c] = keep * running_var[c] + unbias * var
    scale, shift = _affine(gamma, has_gamma, beta, has_beta)
    _normalize(x, mean, inv_std, scale, shift, out)


# x (N, C), out (N, C); gamma, beta, running_mean, running_var (C,)
@kernel()
def _forward_eval_kernel(x, gamma, has_gamma, beta, has_beta, running_mean, running_var, out, eps):
    dt = x.dtype.type
    eps_t = dt(eps)
    inv_std = np.empty(running_var.shape[0], x.dtype)
    for c in range(inv_std.shape[0]):
        inv_std[c] = dt(1) / np.sqrt(running_var[c] + eps_t)
    scale, shift = _affine(gamma, has_gamma, beta, has_beta)
    _normalize(x, running_mean, inv_std, scale, shift, out)


# grad_out, x, grad_x (N, C); mean, inv_std, gamma, grad_gamma, grad_beta (C,)
@kernel()
def _backward_kernel(grad_out, x, mean, inv_std, gamma, has_gamma, grad_x, grad_gamma,
                     has_grad_gamma, grad_beta, has_grad_beta, training):
    rows, cols = grad_out.shape
    dt = grad_out.dtype.type
    sum_g = np.zeros(cols, grad_out.dtype)
    sum_g_x_hat = np.zeros(cols, grad_out.dtype)
    if training or has_grad_gamma or has_grad_beta:
        sums = np.empty(cols)
        _column_sums(SUM_X, grad_out, x, mean, inv_std, sums)
        for c in range(cols):
            sum_g[c] = dt(sums[c])
        _column_sums(SUM_G_X_HAT, grad_out, x, mean, inv_std, sums)
        for c in range(cols):
            sum_g_x_hat[c] = dt(sums[c])
    if has_grad_beta:
        for c in range(cols):
            grad_beta[c] += sum_g[c]
    if has_grad_gamma:
        for c in range(cols):
            grad_gamma[c] += sum_g_x_hat[c]
    scale = np.empty(cols, grad_out.dtype)
    for c in range(cols):
        scale[c] = gamma[c] * inv_std[c] if has_gamma else inv_std[c]
    if training:
        n = dt(rows)
        scale_over_n = scale / n
        for r in range(rows):
            for c in range(cols):
                x_hat = (x[r, c] - mean[c]) * inv_std[c]
                grad_x[r, c] = scale_over_n[c] * (n * grad_out[r, c] - sum_g[c] - x_hat * sum_g_x_hat[c])
    else:
        for r in range(rows):
            for c in range(cols):
                grad_x[r, c] = grad_out[r, c] * scale[c]


_NO_GRAD = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


def batchnorm_forward_train(x, gamma, beta, running_mean, running_var, out=None, mean=None,
                            inv_std=None, *, momentum=0.1, eps=1e-5):
    """Batch norm over the batch, as torch.nn.BatchNorm1d in training mode.
    x (N, C) with N >= 2; gamma, beta (C,) or None; running_mean, running_var (C,) updated in
    place; out (N, C); mean, inv_std (C,) saved for the backward. Returns (out, mean, inv_std).
    """
    out, mean, inv_std = batchnorm_train_arguments(x, gamma, beta, running_mean, running_var,
                                                   out, mean, inv_std)
    outputs = (out, mean, inv_std, running_mean, running_var)
    x, gamma, beta = (unaliased(a, *outputs) for a in (x, gamma, beta))
    # An absent gamma or beta is never read: running_mean stands in for one compiled signature.
    _forward_train_kernel(x, running_mean if gamma is None else gamma, gamma is not None,
                          running_mean if beta is None else beta, beta is not None,
                          running_mean, running_var, out, mean, inv_std, float(momentum),
                          float(eps))
    return out, mean, inv_std


def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, out=None, *, eps=1e-5):
    """Batch norm with the running statistics, as torch in eval mode.  x (N, C), gamma, beta
    (C,) or None, running_mean, running_var (C,) read only, out (N, C).
    """
    out = batchnorm_eval_arguments(x, gamma, beta, running_mean, running_var, out)
    x, gamma, beta, running_mean, running_var = (
        unaliased(a, out) for a in (x, gamma, beta, running_mean, running_var))
    _forward_eval_kernel(x, running_mean if gamma is None else gamma, gamma is not None,
                         running_mean if beta is None else beta, beta is not None,
                         running_mean, running_var, out, float(eps))
    return out


def batchnorm_backward(grad_out, x, mean, inv_std, gamma, grad_x=None, grad_gamma=None,
                       grad_beta=None, *, training=True):
    """Gradients of batch norm.  grad_out, x (N, C); mean, inv_std (C,) as the forward used
    them; gamma (C,) or None; grad_x (N, C); grad_gamma, grad_beta (C,) or None, accumulated
    into (+=). training: the batch statistics depend on x; eval: they are constants.
    Returns grad_x.
    """
    grad_x = batchnorm_backward_arguments(grad_out, x, mean, inv_std, gamma, grad_x,
                                          grad_gamma, grad_beta)
    outputs = (grad_x, grad_gamma, grad_beta)
    grad_out, x, mean, inv_std, gamma = (
        unaliased(a, *outputs) for a in (grad_out, x, mean, inv_std, gamma))
    # Absent operands are never read or written; stand-ins keep one compiled signature (the
    # gradients' must be writable: Numba refuses, at compile time, a store to a read-only array).
    no_grad = _NO_GRAD[grad_out.dtype]
    _backward_kernel(grad_out, x, mean, inv_std, inv_std if gamma is None else gamma,
                     gamma is not None, grad_x,
                     no_grad if grad_gamma is None else grad_gamma, grad_gamma is not None,
                     no_grad if grad_beta is None else grad_beta, grad_beta is not None,
                     bool(training))
    return grad_x
