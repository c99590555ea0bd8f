"""Optimizer updates in place, one fused pass over each parameter: SGD (momentum, Nesterov,
weight decay) and Adam/AdamW. Each element's arithmetic follows the reference's order of
operations in the parameter's dtype; elements are independent, so splitting the array
across threads cannot change any result. Adam, with a square root and a division per
element, is split across threads for large parameters; SGD, a few multiply-adds per element
bound by memory, measured no faster threaded and runs on the calling thread.
"""
from __future__ import annotations

import math
import time

from numba import prange

from .._checks import adam_arguments, sgd_arguments
from . import _contention
from ._jit import helper, kernel

UPDATE_CHUNK = 1 << 14  # elements per parallel task
# Smaller parameters (under about 100 microseconds of work) are updated on the calling
# thread: waking the pool costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 18


# ----------------------------------------------------------------------------- SGD
# param, grad, velocity (n,): elements [start, stop)
@helper()
def _sgd_range(start, stop, param, grad, velocity, lr, momentum, nesterov, weight_decay):
    dt = param.dtype.type
    lr_t, momentum_t, wd_t = dt(lr), dt(momentum), dt(weight_decay)
    for i in range(start, stop):
        g = grad[i] + wd_t * param[i] if weight_decay != 0 else grad[i]
        if momentum != 0:
            v = velocity[i] * momentum_t + g
            velocity[i] = v
            g = g + momentum_t * v if nesterov else v
        param[i] = param[i] - lr_t * g


@kernel()
def _sgd_kernel(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    _sgd_range(0, param.size, param, grad, velocity, lr, momentum, nesterov, weight_decay)


def sgd_update(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One torch.optim.SGD step in place.  param, grad, velocity: same shape.

    g = grad + wd * param; v = momentum * v + g; step = g + momentum * v (Nesterov) or v.
    """
    sgd_arguments(param, grad, velocity, momentum, nesterov)
    if momentum == 0.0:
        velocity = param  # never read or written without momentum; keeps one compiled signature
    _sgd_kernel(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1), float(lr),
                float(momentum), bool(nesterov), float(weight_decay))
    return param


# ----------------------------------------------------------------------------- Adam
# param, grad, m, v (n,): elements [start, stop)
@helper()
def _adam_range(start, stop, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                bias_correction1, bias_correction2_sqrt):
    dt = param.dtype.type
    decay = dt(1.0 - lr * weight_decay)
    wd_t, one_minus_beta1, beta2_t = dt(weight_decay), dt(1.0 - beta1), dt(beta2)
    one_minus_beta2, eps_t = dt(1.0 - beta2), dt(eps)
    # A multiply by the reciprocal instead of the reference's division: one division less per
    # element (the update's cost), a difference of an ulp in v's scale.
    inv_correction2, step_size = dt(1.0 / bias_correction2_sqrt), dt(lr / bias_correction1)
    for i in range(start, stop):
        p = param[i]
        if decoupled:
            p = p * decay
            g = grad[i]
        else:
            g = grad[i] + wd_t * p if weight_decay != 0 else grad[i]
        m_i = m[i] + (g - m[i]) * one_minus_beta1
        v_i = v[i] * beta2_t + one_minus_beta2 * g * g
        m[i] = m_i
        v[i] = v_i
        param[i] = p - step_size * (m_i / (math.sqrt(v_i) * inv_correction2 + eps_t))


@kernel()
def _adam_serial(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                 bias_correction1, bias_correction2_sqrt):
    _adam_range(0, param.size, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                bias_correction1, bias_correction2_sqrt)


@kernel(parallel=True)
def _adam_parallel(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, decoupled,
                   bias_correction1, bias_correction2_sqrt):
    n = param.size
    for ch in prange((n + UPDATE_CHUNK - 1) // UPDATE_CHUNK):
        start = ch * UPDATE_CHUNK
        _adam_range(start, min(start + UPDATE_CHUNK, n), param, grad, m, v, lr, beta1, beta2,
                    eps, weight_decay, decoupled, bias_correction1, bias_correction2_sqrt)


def adam_update(param, grad, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                step, decoupled=False):
    """One torch.optim.Adam (decoupled=False, weight decay as L2) or AdamW step, in place.

    step counts from 1. param, grad, m (first moment), v (second moment): same shape.
    """
    adam_arguments(param, grad, m, v, step)
    args = (param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1), float(lr),
            float(beta1), float(beta2), float(eps), float(weight_decay), bool(decoupled),
            1.0 - beta1 ** step, math.sqrt(1.0 - beta2 ** step))
    if param.size >= PARALLEL_MIN_ELEMENTS and _contention.adam.threaded():
        start = time.perf_counter()
        _adam_parallel(*args)
        _contention.adam.report((param.size, param.dtype.char), time.perf_counter() - start)
    else:
        _adam_serial(*args)
    return param
