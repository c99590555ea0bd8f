"""nnfast.warmup(): compile a backend's kernels before they are needed.

The Numba backend compiles each kernel on its first call (a few seconds in all, or a
fraction of a second when its on-disk cache is warm). warmup() pays that up front, for
example before timing a training run, by calling every primitive once per dtype on small
inputs, and once more on inputs large enough to take the multi-threaded code paths.
"""
from __future__ import annotations

import time

import numpy as np

from .backends import get_backend

# Large enough for every threaded path of the Numba backend: GEMM of >= 2^20 multiply-adds,
# Adam updates of >= 2^18 elements.
_LARGE_ROWS, _LARGE_COLS = 1024, 256


def _exercise(backend, dtype, rows: int, cols: int) -> None:
    def call(primitive, *args, **kwargs):
        try:
            return getattr(backend, primitive)(*args, **kwargs)
        except NotImplementedError:  # a primitive this backend lacks has nothing to compile
            return None

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols)).astype(dtype)
    w = rng.standard_normal((cols, cols)).astype(dtype)
    bias = np.zeros(cols, dtype)
    out = call("gemm", x, w, bias=bias, activation="relu")
    call("gemm", x, out, w, trans_a=True, beta=1.0)
    call("gemm", out, w, trans_b=True)
    y = x.copy()
    call("activation_forward", "relu", x, y)
    call("activation_backward", "relu", x, x, y)
    probs = call("activation_forward", "softmax", x)
    call("activation_backward", "softmax", x, x, probs)
    labels = (np.arange(rows) % cols).astype(np.int64)
    one_hot = np.eye(cols, dtype=dtype)[labels]
    for target in (labels, one_hot):
        _, probs = call("softmax_cross_entropy_forward", x, target)
        call("softmax_cross_entropy_backward", probs, target)
    p = 1.0 / (1.0 + np.exp(-x))
    for loss, pred in (("mse", x), ("bce", p), ("bce_with_logits", x)):
        call(f"{loss}_forward", pred, one_hot)
        call(f"{loss}_backward", pred, one_hot)
    call("bias_grad", x, bias, beta=1.0)
    param, grad = x.copy(), y
    call("sgd_update", param, grad, np.zeros_like(param), lr=0.1, momentum=0.9)
    call("sgd_update", param, grad, lr=0.1)
    call("adam_update", param, grad, np.zeros_like(param), np.zeros_like(param), lr=0.1, step=1)
    mask = np.ones(x.shape, np.uint8)
    call("dropout_forward", x, y, mask, p=0.5, seed=0, offset=0)
    call("dropout_backward", x, mask, y, p=0.5)
    stats = np.zeros(cols, dtype), np.ones(cols, dtype)  # running mean and variance
    for gamma, beta in ((np.ones(cols, dtype), np.zeros(cols, dtype)), (None, None)):  # affine or not
        grads = (None, None) if gamma is None else (np.zeros(cols, dtype), np.zeros(cols, dtype))
        call("batchnorm_forward_train", x, gamma, beta, *stats, y, momentum=0.1, eps=1e-5)
        call("batchnorm_forward_eval", x, gamma, beta, *stats, y, eps=1e-5)
        for training in (True, False):
            call("batchnorm_backward", x, x, *stats, gamma, y, *grads, training=training)
    call("sum_squares", grad)
    call("scale_inplace", param, alpha=0.5)
    call("clip_inplace", param, lo=-1.0, hi=1.0)
    call("weight_penalty_forward", param, l1=0.1, l2=0.1)
    call("weight_penalty_backward", param, grad, l1=0.1, l2=0.1)


def warmup(backend: str = "numba", dtypes=("float32", "float64")) -> float:
    """Compile (or load from the cache) every kernel of `backend` for `dtypes`; returns seconds."""
    module = get_backend(backend)
    start = time.perf_counter()
    for dtype in dtypes:
        _exercise(module, np.dtype(dtype), 3, 5)
        _exercise(module, np.dtype(dtype), _LARGE_ROWS, _LARGE_COLS)
    return time.perf_counter() - start
