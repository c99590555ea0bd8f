"""The NumPy backend: the readable reference and the test oracle for every other backend.

Each primitive is written for clarity, in the formulas a textbook gives, computed in the
dtype of its inputs. Shapes use N for the batch, C for features or classes.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import (activation_backward_arguments, activation_forward_arguments,
                      adam_arguments, batchnorm_backward_arguments, batchnorm_eval_arguments,
                      batchnorm_train_arguments, dropout_backward_arguments,
                      dropout_forward_arguments, float_array, gemm_arguments, inout_array,
                      labels_array, loss_weights, output_array, sgd_arguments)

name = "numpy"
device = "cpu"
dtypes = ("float32", "float64")

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

try:  # exact erf for GELU; scipy is optional, math.erf is the vectorized fallback
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on the environment
    _erf = np.vectorize(math.erf, otypes=[np.float64])


def set_num_threads(n: int) -> None:
    """Threads of NumPy's BLAS, which runs this backend's matrix products (set through
    threadpoolctl, so every NumPy matmul in the process follows it); the elementwise loops
    are NumPy's own, on one thread."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=int(n), user_api="blas")


def get_num_threads() -> int:
    from threadpoolctl import threadpool_info
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return min(counts, default=1)


# ----------------------------------------------------------------------------- GEMM
def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None,
         activation=None, negative_slope=0.01):
    """out = act(alpha * op(a) @ op(b) + beta * out + bias).  op(a) (M, K), op(b) (K, N), out (M, N)."""
    m, n, k, act, out = gemm_arguments(a, b, out, trans_a, trans_b, beta, bias, activation)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    result = a.dtype.type(alpha) * (opa @ opb)
    if beta != 0.0:
        result += a.dtype.type(beta) * out
    if bias is not None:
        result += bias
    out[...] = _activate(act, result, negative_slope)
    return out


# ----------------------------------------------------------------------------- activations
def _sigmoid(x):
    # exp of a non-positive number only: no overflow at |x| ~ 1e4
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softmax(x):
    if x.shape[-1] == 0:  # no classes: nothing to normalize, and max() of nothing raises
        return x.copy()
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _activate(act, x, negative_slope):
    dt = x.dtype.type
    if act == "identity":
        return x
    if act == "relu":
        return np.maximum(x, dt(0))
    if act == "leaky_relu":
        return np.where(x > 0, x, dt(negative_slope) * x)
    if act == "sigmoid":
        return _sigmoid(x)
    if act == "tanh":
        return np.tanh(x)
    if act == "gelu":
        return (dt(0.5) * x * (dt(1) + _erf(x * dt(_SQRT1_2)))).astype(x.dtype, copy=False)
    if act == "gelu_tanh":
        return dt(0.5) * x * (dt(1) + np.tanh(dt(_SQRT_2_OVER_PI) * (x + dt(0.044715) * x ** 3)))
    if act == "silu":
        return x * _sigmoid(x)
    if act == "elu":
        # expm1 of min(x, 0): no overflow in the branch np.where discards
        return np.where(x > 0, x, dt(negative_slope) * np.expm1(np.minimum(x, dt(0))))
    if act == "softmax":
        return _softmax(x)
    raise ValueError(f"activation: unknown activation '{act}'")


def activation_forward(kind, x, out=None, *, negative_slope=0.01):
    """y = act(x).  x (...), out (...); softmax is taken over the last axis of a 2-D x.
    negative_slope is the activation's parameter: leaky ReLU's slope, ELU's alpha."""
    act, out = activation_forward_arguments(kind, x, out)
    out[...] = _activate(act, x, negative_slope)
    return out


def activation_backward(kind, grad_out, x, y, out=None, *, negative_slope=0.01):
    """dx = dy * act'(x), given x and y = act(x).  All arrays (...) of one shape."""
    act, out = activation_backward_arguments(kind, grad_out, x, y, out)
    dt = grad_out.dtype.type
    g = grad_out
    if act == "identity":
        out[...] = g
    elif act == "relu":
        out[...] = np.where(x > 0, g, dt(0))
    elif act == "leaky_relu":
        out[...] = np.where(x > 0, g, dt(negative_slope) * g)
    elif act == "sigmoid":
        out[...] = g * y * (dt(1) - y)
    elif act == "tanh":
        out[...] = g * (dt(1) - y * y)
    elif act == "gelu":
        cdf = dt(0.5) * (dt(1) + _erf(x * dt(_SQRT1_2)))
        pdf = dt(_INV_SQRT_2PI) * np.exp(dt(-0.5) * x * x)
        out[...] = g * (cdf + x * pdf)
    elif act == "gelu_tanh":
        k = dt(_SQRT_2_OVER_PI)
        t = np.tanh(k * (x + dt(0.044715) * x ** 3))
        dinner = k * (dt(1) + dt(3 * 0.044715) * x * x)
        out[...] = g * (dt(0.5) * (dt(1) + t) + dt(0.5) * x * (dt(1) - t * t) * dinner)
    elif act == "silu":
        s = _sigmoid(x)
        out[...] = g * s * (dt(1) + x * (dt(1) - s))
    elif act == "elu":
        out[...] = np.where(x > 0, g, g * dt(negative_slope) * np.exp(np.minimum(x, dt(0))))
    elif act == "softmax":
        # Jacobian-vector product of softmax: y * (g - sum(g * y))
        out[...] = y * (g - (g * y).sum(axis=-1, keepdims=True))
    return out


# ----------------------------------------------------------------------------- losses
def _is_sparse(target):
    return isinstance(target, np.ndarray) and target.ndim == 1


def _label_weights(target, sample_weight, class_weight, n):
    """(r, d): each row's weight s_i k_(y_i) and the mean's denominator, the sum of the
    labels' class weights (torch's), else n."""
    k = class_weight[target] if class_weight is not None else None
    r = k if k is not None else None
    if sample_weight is not None:
        r = sample_weight * k if k is not None else sample_weight
    return r, (float(k.sum()) if k is not None else n)


def softmax_cross_entropy_forward(logits, target, probs=None, *, sample_weight=None,
                                  class_weight=None):
    """Mean cross-entropy of softmax(logits).  logits (N, C); target int64 (N,) or (N, C);
    sample_weight (N,) s_i and class_weight (C,) k_c, or None.

    Labels: sum_i s_i k_(y_i) (-log p_i[y_i]) / sum_i k_(y_i) (torch's weight=; N without
    class weights). Rows of probabilities: sum_i s_i sum_c k_c t_ic (-log p_ic) / N.
    Returns (loss, probs) with probs (N, C) = softmax(logits), kept for the backward pass.
    """
    float_array(logits, "logits", ndim=2)
    n, c = logits.shape
    sample_weight, class_weight = loss_weights(logits, sample_weight, class_weight)
    probs = output_array(probs, "probs", logits.shape, logits.dtype)
    log_probs = logits.copy()
    if logits.size:  # max() of no classes raises; the compiled kernels return NaN as below
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs[...] = np.exp(log_probs)
    if not n:
        return float("nan"), probs
    if _is_sparse(target):
        labels_array(target, "target", n, c)
        losses = -log_probs[np.arange(n), target]
        r, denom = _label_weights(target, sample_weight, class_weight, n)
        with np.errstate(divide="ignore", invalid="ignore"):  # weights summing to 0: NaN
            return float((losses if r is None else r * losses).sum() / np.float64(denom)), probs
    float_array(target, "target", dtype=logits.dtype, shape=logits.shape)
    kt = target if class_weight is None else class_weight * target
    losses = -(kt * log_probs).sum(axis=1)
    if sample_weight is None:
        return float(losses.mean()), probs
    return float((sample_weight * losses).sum() / n), probs


def softmax_cross_entropy_backward(probs, target, out=None, *, sample_weight=None,
                                   class_weight=None):
    """d loss / d logits = s (probs * sum(k target) - k target) / N (labels: one-hot targets,
    and the forward's denominator).  probs (N, C), out (N, C)."""
    float_array(probs, "probs", ndim=2)
    n, c = probs.shape
    sample_weight, class_weight = loss_weights(probs, sample_weight, class_weight)
    out = output_array(out, "out", probs.shape, probs.dtype)
    inv_n = probs.dtype.type(1.0 / max(n, 1))
    if _is_sparse(target):
        labels_array(target, "target", n, c)
        out[...] = probs
        out[np.arange(n), target] -= 1
        r, denom = _label_weights(target, sample_weight, class_weight, n)
        if r is None:
            out *= inv_n
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out *= (r * probs.dtype.type(np.float64(1.0) / denom))[:, None]
        return out
    float_array(target, "target", dtype=probs.dtype, shape=probs.shape)
    kt = target if class_weight is None else class_weight * target
    out[...] = probs * kt.sum(axis=1, keepdims=True) - kt
    out *= inv_n
    if sample_weight is not None:
        out *= sample_weight[:, None]
    return out


def _pair(pred, target, pred_name, sample_weight=None, pos_weight=None):
    """pred and target checked; returns the weights as (rows, 1) / (rows,) and (cols,)
    arrays that broadcast against pred, or None."""
    float_array(pred, pred_name)
    float_array(target, "target", dtype=pred.dtype, shape=pred.shape)
    s, q = loss_weights(pred, sample_weight, pos_weight, "pos_weight")
    if s is not None and pred.ndim == 2:
        s = s[:, None]
    return s, q


def _weighted_mean(terms, s):
    """sum(s * terms) / terms.size: Keras's weighted mean, the count of elements below."""
    if s is None:
        return float(np.mean(terms))
    return float((s * terms).sum() / terms.size)


def mse_forward(pred, target, *, sample_weight=None):
    """sum(s_i (pred - target)^2) / numel.  pred (N, ...) (N, C with weights), target alike."""
    s, _ = _pair(pred, target, "pred", sample_weight)
    return _weighted_mean((pred - target) ** 2, s) if pred.size else float("nan")


def mse_backward(pred, target, out=None, *, sample_weight=None):
    """2 s_i (pred - target) / numel."""
    s, _ = _pair(pred, target, "pred", sample_weight)
    out = output_array(out, "out", pred.shape, pred.dtype)
    out[...] = pred.dtype.type(2.0 / max(pred.size, 1)) * (pred - target)
    if s is not None:
        out *= s
    return out


# torch.nn.BCELoss clamps each log term at -100 and guards the gradient's denominator.
_BCE_LOG_MIN = -100.0
_BCE_GRAD_EPS = 1e-12


def bce_forward(prob, target, *, sample_weight=None):
    """Binary cross-entropy on probabilities, sum(s_i l) / numel.  prob (...), target (...)."""
    s, _ = _pair(prob, target, "prob", sample_weight)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(prob), _BCE_LOG_MIN)
        log_1mp = np.maximum(np.log(1 - prob), _BCE_LOG_MIN)
    terms = -(target * log_p + (1 - target) * log_1mp)
    return _weighted_mean(terms, s) if prob.size else float("nan")


def bce_backward(prob, target, out=None, *, sample_weight=None):
    """s_i (prob - target) / max(prob (1 - prob), 1e-12) / numel."""
    s, _ = _pair(prob, target, "prob", sample_weight)
    out = output_array(out, "out", prob.shape, prob.dtype)
    denom = np.maximum(prob * (1 - prob), prob.dtype.type(_BCE_GRAD_EPS))
    out[...] = (prob - target) / denom / prob.dtype.type(max(prob.size, 1))
    if s is not None:
        out *= s
    return out


def bce_with_logits_forward(logits, target, *, sample_weight=None, pos_weight=None):
    """Binary cross-entropy of sigmoid(logits), computed stably, sum(s_i l) / numel, with
    torch's pos_weight q (C,): l = (1 - t) z + (1 + (q - 1) t) log(1 + exp(-z)).
    logits (...), target (...)."""
    s, q = _pair(logits, target, "logits", sample_weight, pos_weight)
    if q is None:
        terms = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    else:
        softplus_neg = np.maximum(-logits, 0) + np.log1p(np.exp(-np.abs(logits)))
        terms = (1 - target) * logits + (1 + (q - 1) * target) * softplus_neg
    return _weighted_mean(terms, s) if logits.size else float("nan")


def bce_with_logits_backward(logits, target, out=None, *, sample_weight=None, pos_weight=None):
    """s_i ((1 + (q - 1) t) sigmoid(logits) - q t) / numel; (sigmoid(logits) - t) / numel
    without weights."""
    s, q = _pair(logits, target, "logits", sample_weight, pos_weight)
    out = output_array(out, "out", logits.shape, logits.dtype)
    sig = _sigmoid(logits)
    grad = sig - target if q is None else (1 + (q - 1) * target) * sig - q * target
    out[...] = grad / logits.dtype.type(max(logits.size, 1))
    if s is not None:
        out *= s
    return out


# ----------------------------------------------------------------------------- reductions
def bias_grad(grad_out, out=None, *, beta=0.0):
    """out = column sums of grad_out + beta * out.  grad_out (N, C), out (C,)."""
    float_array(grad_out, "grad_out", ndim=2)
    out = output_array(out, "out", (grad_out.shape[1],), grad_out.dtype, beta)
    sums = grad_out.sum(axis=0)
    out[...] = sums + grad_out.dtype.type(beta) * out if beta != 0.0 else sums
    return out


# ----------------------------------------------------------------------------- optimizers
def sgd_update(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One torch.optim.SGD step in place.  param, grad, velocity: same shape.

    g = grad + wd * param; v = momentum * v + g; step = g + momentum * v (Nesterov) or v.
    """
    sgd_arguments(param, grad, velocity, momentum, nesterov)
    dt = param.dtype.type
    g = grad + dt(weight_decay) * param if weight_decay != 0.0 else grad
    if momentum != 0.0:
        velocity *= dt(momentum)
        velocity += g
        g = g + dt(momentum) * velocity if nesterov else velocity
    param -= dt(lr) * g
    return param


def adam_update(param, grad, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                step, decoupled=False):
    """One torch.optim.Adam (decoupled=False, weight decay as L2) or AdamW step, in place.

    step counts from 1. param, grad, m (first moment), v (second moment): same shape.
    """
    adam_arguments(param, grad, m, v, step)
    dt = param.dtype.type
    if decoupled:
        param *= dt(1.0 - lr * weight_decay)
        g = grad
    else:
        g = grad + dt(weight_decay) * param if weight_decay != 0.0 else grad
    m += (g - m) * dt(1.0 - beta1)
    v *= dt(beta2)
    v += dt(1.0 - beta2) * g * g
    bias_correction1 = 1.0 - beta1 ** step
    bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** step)
    denom = np.sqrt(v) / dt(bias_correction2_sqrt) + dt(eps)
    param -= dt(lr / bias_correction1) * (m / denom)
    return param



# ----------------------------------------------------------------------------- dropout
# The mask comes from a counter-based generator: element i of a call with (seed, offset) is
# kept or dropped by a hash of (seed, offset + i) alone, so the mask does not depend on the
# thread count, the blocking or the backend. The hash is splitmix64's output function.
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX_1 = 0xBF58476D1CE4E5B9
_MIX_2 = 0x94D049BB133111EB
_U64 = 2 ** 64


def _splitmix64_mix(z):
    """splitmix64's finalizer on uint64 (NumPy arrays wrap modulo 2**64, as C's uint64_t)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX_1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX_2)
    return z ^ (z >> np.uint64(31))


def dropout_bits(seed: int, offset: int, n: int) -> np.ndarray:
    """The 64 random bits of counters offset .. offset + n - 1 (mod 2**64), as uint64 (n,).

    key = mix(seed); bits(c) = mix(key + (c + 1) * 0x9E3779B97F4A7C15), all mod 2**64,
    where mix is splitmix64's finalizer (shifts 30, 27, 31; multipliers 0xBF58476D1CE4E5B9,
    0x94D049BB133111EB).
    """
    key = _splitmix64_mix(np.array([seed], dtype=np.uint64))[0]
    counters = np.arange(n, dtype=np.uint64) + np.uint64(offset)
    return _splitmix64_mix(key + (counters + np.uint64(1)) * np.uint64(_GOLDEN_GAMMA))


def dropout_threshold(p: float) -> int:
    """Element c is dropped when (bits(c) >> 32) < floor(p * 2**32): probability p to 2**-32."""
    return int(p * 4294967296.0)


def dropout_forward(x, out=None, mask=None, *, p, seed, offset):
    """Inverted dropout: out = x / (1 - p) where kept, 0 where dropped.  x (...), out (...),
    mask uint8 (...) set to 1 where kept.

    Element i (in C order) is dropped when (bits(seed, offset + i) >> 32) < floor(p * 2**32),
    see dropout_bits; the scale is computed in float64 as 1 / (1 - p), then rounded to x's
    dtype, and multiplies x once. Returns (out, mask). The caller advances offset by x.size
    for the next call, so successive calls draw fresh masks.
    """
    out, mask, p, seed, offset = dropout_forward_arguments(x, out, mask, p, seed, offset)
    keep = (dropout_bits(seed, offset, x.size) >> np.uint64(32)) >= np.uint64(dropout_threshold(p))
    keep = keep.reshape(x.shape)
    mask[...] = keep
    out[...] = np.where(keep, x * x.dtype.type(1.0 / (1.0 - p)), x.dtype.type(0))
    return out, mask


def dropout_backward(grad_out, mask, out=None, *, p):
    """grad_in = grad_out / (1 - p) where mask is 1, else 0.  grad_out (...), mask uint8 (...)."""
    out, p = dropout_backward_arguments(grad_out, mask, out, p)
    dt = grad_out.dtype.type
    out[...] = np.where(mask != 0, grad_out * dt(1.0 / (1.0 - p)), dt(0))
    return out


# ----------------------------------------------------------------------------- batch norm
def batchnorm_forward_train(x, gamma, beta, running_mean, running_var, out=None, mean=None,
                            inv_std=None, *, momentum=0.1, eps=1e-5):
    """Batch norm over the batch, as torch.nn.BatchNorm1d in training mode.
    x (N, C) with N >= 2; gamma, beta (C,) or None (scale 1, shift 0); running_mean,
    running_var (C,) updated in place; out (N, C); mean, inv_std (C,) saved for the backward.

    mean = sum(x) / N; var = sum((x - mean)^2) / N (two passes); inv_std = 1 / sqrt(var + eps);
    out = (x - mean) * inv_std * gamma + beta;
    running_mean = (1 - momentum) * running_mean + momentum * mean;
    running_var = (1 - momentum) * running_var + momentum * var * N / (N - 1) (unbiased).
    Returns (out, mean, inv_std).
    """
    out, mean, inv_std = batchnorm_train_arguments(x, gamma, beta, running_mean, running_var,
                                                   out, mean, inv_std)
    n = x.shape[0]
    dt = x.dtype.type
    mean[...] = x.sum(axis=0) / dt(n)
    centered = x - mean
    var = (centered * centered).sum(axis=0) / dt(n)
    inv_std[...] = dt(1) / np.sqrt(var + dt(eps))
    normalized = centered * inv_std
    if gamma is not None:
        normalized = normalized * gamma
    if beta is not None:
        normalized = normalized + beta
    out[...] = normalized
    running_mean[...] = dt(1.0 - momentum) * running_mean + dt(momentum) * mean
    running_var[...] = dt(1.0 - momentum) * running_var + dt(momentum * n / (n - 1)) * var
    return out, mean, inv_std


def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, out=None, *, eps=1e-5):
    """Batch norm with the running statistics, as torch in eval mode.  x (N, C), gamma, beta
    (C,) or None, running_mean, running_var (C,) read only, out (N, C).

    out = (x - running_mean) * (1 / sqrt(running_var + eps)) * gamma + beta.
    """
    out = batchnorm_eval_arguments(x, gamma, beta, running_mean, running_var, out)
    dt = x.dtype.type
    normalized = (x - running_mean) * (dt(1) / np.sqrt(running_var + dt(eps)))
    if gamma is not None:
        normalized = normalized * gamma
    if beta is not None:
        normalized = normalized + beta
    out[...] = normalized
    return out


def batchnorm_backward(grad_out, x, mean, inv_std, gamma, grad_x=None, grad_gamma=None,
                       grad_beta=None, *, training=True):
    """Gradients of batch norm.  grad_out, x (N, C); mean, inv_std (C,) as the forward used
    them (the batch's from batchnorm_forward_train, or running_mean and
    1 / sqrt(running_var + eps) after an eval forward); gamma (C,) or None; grad_x (N, C);
    grad_gamma, grad_beta (C,) or None, accumulated into (+=) as parameter gradients are.

    x_hat = (x - mean) * inv_std; grad_beta += sum(g); grad_gamma += sum(g * x_hat);
    training: grad_x = gamma * inv_std / N * (N g - sum(g) - x_hat * sum(g * x_hat))
    (the batch statistics depend on x); eval: grad_x = g * gamma * inv_std. Returns grad_x.
    """
    grad_x = batchnorm_backward_arguments(grad_out, x, mean, inv_std, gamma, grad_x,
                                          grad_gamma, grad_beta)
    n, c = grad_out.shape
    dtype = grad_out.dtype
    dt = dtype.type
    x_hat = (x - mean) * inv_std
    sum_g = grad_out.sum(axis=0)
    sum_g_xhat = (grad_out * x_hat).sum(axis=0)
    if grad_beta is not None:
        grad_beta += sum_g
    if grad_gamma is not None:
        grad_gamma += sum_g_xhat
    scale = inv_std if gamma is None else gamma * inv_std
    if training:
        grad_x[...] = (scale / dt(n)) * (dt(n) * grad_out - sum_g - x_hat * sum_g_xhat)
    else:
        grad_x[...] = grad_out * scale
    return grad_x


# ----------------------------------------------------------------------------- norms, clipping, penalties
# Reductions to a scalar accumulate in float64 over fixed chunks of SUM_CHUNK elements (C
# order), whose partial sums are then added in chunk order: a backend that splits the chunks
# over threads gets the same bits on any thread count.
SUM_CHUNK = 4096


def _chunked_sum(values: np.ndarray) -> float:
    flat = values.reshape(-1)
    partials = [flat[i:i + SUM_CHUNK].sum() for i in range(0, flat.size, SUM_CHUNK)]
    total = 0.0
    for partial in partials:
        total += float(partial)
    return total


def sum_squares(x):
    """sum(x^2) over every element, as a Python float accumulated in float64.  x (...)."""
    float_array(x, "x")
    x64 = x.astype(np.float64)
    return _chunked_sum(x64 * x64)


def scale_inplace(x, *, alpha):
    """x *= alpha in place (alpha rounded to x's dtype).  x (...)."""
    inout_array(x, "x")
    x *= x.dtype.type(alpha)
    return x


def clip_inplace(x, *, lo, hi):
    """x = min(max(x, lo), hi) in place; NaN stays NaN.  x (...)."""
    inout_array(x, "x")
    if not lo <= hi:
        raise ValueError(f"lo, hi: need lo <= hi, got lo={lo}, hi={hi}")
    np.clip(x, x.dtype.type(lo), x.dtype.type(hi), out=x)
    return x


def _penalty_coefficients(l1, l2):
    l1, l2 = float(l1), float(l2)
    if not (l1 >= 0 and l2 >= 0):
        raise ValueError(f"l1, l2: penalty coefficients must be >= 0, got l1={l1}, l2={l2}")
    return l1, l2


def weight_penalty_forward(w, *, l1, l2):
    """l1 * sum|w| + l2 * sum(w^2), a Python float accumulated in float64 (fixed chunks).  w (...)."""
    float_array(w, "w")
    l1, l2 = _penalty_coefficients(l1, l2)
    w64 = w.astype(np.float64)
    return l1 * _chunked_sum(np.abs(w64)) + l2 * _chunked_sum(w64 * w64)


def weight_penalty_backward(w, grad, *, l1, l2):
    """grad += l1 * sign(w) + (2 l2) * w in place, in w's dtype (sign(0) = 0).  w, grad (...)."""
    float_array(w, "w")
    inout_array(grad, "grad", dtype=w.dtype, shape=w.shape)
    l1, l2 = _penalty_coefficients(l1, l2)
    dt = w.dtype.type
    grad += dt(l1) * np.sign(w) + dt(2.0 * l2) * w
    return grad
