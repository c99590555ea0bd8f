"""Argument checks shared by the Python-implemented backends (numpy, numba).

They mirror csrc/bindings/checks.h: a primitive refuses an array of the wrong dtype, shape or
layout with a TypeError/ValueError that names the argument, and never converts silently.
"""
from __future__ import annotations

import numpy as np

from ._contract import ACTIVATIONS

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _shape_str(shape) -> str:
    return str(tuple(int(s) for s in shape))


def float_array(a, name: str, dtype=None, ndim: int | None = None, shape=None) -> np.ndarray:
    """Return `a` unchanged after checking it is a C-contiguous float32/float64 ndarray."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name}: dtype {a.dtype} does not match the other operands ({np.dtype(dtype)})")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {_shape_str(a.shape)}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got {_shape_str(a.shape)}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: array must be C-contiguous (use numpy.ascontiguousarray)")
    if not a.flags.aligned:
        raise ValueError(f"{name}: array data is misaligned")
    return a


def output_array(out, name: str, shape, dtype, beta: float = 0.0) -> np.ndarray:
    """A new array when `out` is None, else `out` after checking it can receive the result.
    A nonzero `beta` (the result accumulates into out) needs an existing out."""
    if out is None:
        if beta != 0.0:
            raise ValueError(f"{name}: beta != 0 needs an existing {name} array")
        return np.empty(shape, dtype=dtype)
    float_array(out, name, dtype=dtype, shape=shape)
    if not out.flags.writeable:
        raise ValueError(f"{name}: output array is read-only")
    return out


def inout_array(a, name: str, dtype=None, shape=None) -> np.ndarray:
    """An array updated in place (parameters, optimizer state)."""
    float_array(a, name, dtype=dtype, shape=shape)
    if not a.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return a


def _byte_range(a: np.ndarray) -> tuple[int, int]:
    start = a.__array_interface__["data"][0]
    return start, start + a.nbytes  # C-contiguous: checked by float_array first


def no_overlap(out, out_name: str, src, src_name: str, allow_same: bool) -> None:
    """Refuse an output sharing memory with an input, as csrc/bindings/checks.h does; with
    allow_same, the very same memory (an elementwise update in place) is allowed."""
    (o0, o1), (i0, i1) = _byte_range(out), _byte_range(src)
    if o0 >= i1 or i0 >= o1 or o0 == o1 or i0 == i1:
        return
    if allow_same and (o0, o1) == (i0, i1):
        return
    raise ValueError(f"{out_name}: shares memory with {src_name}; pass a separate array"
                     + (f" or {src_name} itself" if allow_same else ""))


def activation_name(kind, allow_softmax: bool = True) -> str:
    name = "identity" if kind is None else str(kind)
    if name == "linear":
        name = "identity"
    if name not in ACTIVATIONS or (name == "softmax" and not allow_softmax):
        raise ValueError(f"activation: unknown activation '{kind}'")
    return name


def labels_array(target, name: str, n: int, num_classes: int) -> np.ndarray:
    """Sparse class labels: int64, shape (n,), every value in [0, num_classes)."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(target).__name__}")
    if target.dtype != np.int64:
        raise TypeError(f"{name}: sparse labels must be int64, got dtype {target.dtype}")
    if target.shape != (n,):
        raise ValueError(f"{name}: expected shape {_shape_str((n,))}, got {_shape_str(target.shape)}")
    if not target.flags.c_contiguous:
        raise ValueError(f"{name}: array must be C-contiguous (use numpy.ascontiguousarray)")
    if n and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"{name}: labels must lie in [0, {num_classes}), got values in "
                         f"[{target.min()}, {target.max()}]")
    return target


def gemm_shapes(a, b, trans_a: bool, trans_b: bool):
    float_array(a, "a", ndim=2)
    float_array(b, "b", dtype=a.dtype, ndim=2)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is ({m}, {k}), op(b) is ({kb}, {n})")
    return m, n, k


def mask_array(mask, name: str, shape) -> np.ndarray:
    """A dropout keep-mask: uint8 (1 keep, 0 drop), C-contiguous, of the given shape."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(mask).__name__}")
    if mask.dtype != np.uint8:
        raise TypeError(f"{name}: the dropout mask must be uint8, got dtype {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got {_shape_str(mask.shape)}")
    if not mask.flags.c_contiguous:
        raise ValueError(f"{name}: array must be C-contiguous (use numpy.ascontiguousarray)")
    return mask


def output_mask(mask, name: str, shape) -> np.ndarray:
    if mask is None:
        return np.empty(shape, dtype=np.uint8)
    mask_array(mask, name, shape)
    if not mask.flags.writeable:
        raise ValueError(f"{name}: output array is read-only")
    return mask


def dropout_probability(p) -> float:
    p = float(p)
    if not 0.0 <= p < 1.0:  # written so that NaN fails too
        raise ValueError(f"p: dropout probability must lie in [0, 1), got {p}")
    return p


def uint64_value(value, name: str) -> int:
    """A Python int in [0, 2**64): seeds and counters of the counter-based RNG."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < 2 ** 64:
        raise ValueError(f"{name}: must lie in [0, 2**64), got {value}")
    return value


def optional_vector(a, name: str, dtype, n: int):
    """None, or a C-contiguous (n,) array of `dtype`."""
    if a is None:
        return None
    return float_array(a, name, dtype=dtype, shape=(n,))


def loss_weights(pred, sample_weight, per_class, per_class_name: str = "class_weight"):
    """A loss's optional weights checked against its (rows, cols) prediction: sample_weight
    (rows,) and per_class (cols,) of pred's dtype, or None. The rows are the first axis
    (each element of a 1-D pred is a row)."""
    if sample_weight is None and per_class is None:
        return None, None
    if pred.ndim not in (1, 2):
        raise ValueError(f"weighted losses take a 1-D or 2-D prediction, got shape "
                         f"{_shape_str(pred.shape)}")
    rows, cols = pred.shape[0], (pred.shape[1] if pred.ndim == 2 else 1)
    return (optional_vector(sample_weight, "sample_weight", pred.dtype, rows),
            optional_vector(per_class, per_class_name, pred.dtype, cols))


def _batchnorm_affine(x, gamma, beta) -> int:
    float_array(x, "x", ndim=2)
    c = x.shape[1]
    optional_vector(gamma, "gamma", x.dtype, c)
    optional_vector(beta, "beta", x.dtype, c)
    return c


def batchnorm_train_arguments(x, gamma, beta, running_mean, running_var, out, mean, inv_std):
    """The checked (out, mean, inv_std) of batchnorm_forward_train."""
    c = _batchnorm_affine(x, gamma, beta)
    inout_array(running_mean, "running_mean", dtype=x.dtype, shape=(c,))
    inout_array(running_var, "running_var", dtype=x.dtype, shape=(c,))
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"x: batch norm in training mode needs at least 2 samples per batch to "
                         f"estimate a variance, got a batch of {n}")
    return (output_array(out, "out", x.shape, x.dtype), output_array(mean, "mean", (c,), x.dtype),
            output_array(inv_std, "inv_std", (c,), x.dtype))


def batchnorm_eval_arguments(x, gamma, beta, running_mean, running_var, out):
    """The checked out of batchnorm_forward_eval."""
    c = _batchnorm_affine(x, gamma, beta)
    float_array(running_mean, "running_mean", dtype=x.dtype, shape=(c,))
    float_array(running_var, "running_var", dtype=x.dtype, shape=(c,))
    return output_array(out, "out", x.shape, x.dtype)


def batchnorm_backward_arguments(grad_out, x, mean, inv_std, gamma, grad_x, grad_gamma, grad_beta):
    """The checked grad_x of batchnorm_backward."""
    float_array(grad_out, "grad_out", ndim=2)
    c = grad_out.shape[1]
    dtype = grad_out.dtype
    float_array(x, "x", dtype=dtype, shape=grad_out.shape)
    float_array(mean, "mean", dtype=dtype, shape=(c,))
    float_array(inv_std, "inv_std", dtype=dtype, shape=(c,))
    optional_vector(gamma, "gamma", dtype, c)
    for arr, arr_name in ((grad_gamma, "grad_gamma"), (grad_beta, "grad_beta")):
        if arr is not None:
            inout_array(arr, arr_name, dtype=dtype, shape=(c,))
    return output_array(grad_x, "grad_x", grad_out.shape, dtype)


def dropout_forward_arguments(x, out, mask, p, seed, offset):
    """The checked (out, mask, p, seed, offset) of dropout_forward."""
    float_array(x, "x")
    p = dropout_probability(p)
    seed, offset = uint64_value(seed, "seed"), uint64_value(offset, "offset")
    return (output_array(out, "out", x.shape, x.dtype), output_mask(mask, "mask", x.shape),
            p, seed, offset)


def dropout_backward_arguments(grad_out, mask, out, p):
    """The checked (out, p) of dropout_backward."""
    float_array(grad_out, "grad_out")
    mask_array(mask, "mask", grad_out.shape)
    p = dropout_probability(p)
    return output_array(out, "out", grad_out.shape, grad_out.dtype), p


def sgd_arguments(param, grad, velocity, momentum, nesterov) -> None:
    """Check the arrays and options of sgd_update."""
    inout_array(param, "param")
    float_array(grad, "grad", dtype=param.dtype, shape=param.shape)
    no_overlap(param, "param", grad, "grad", True)
    if momentum != 0.0:
        if velocity is None:
            raise ValueError("velocity: momentum != 0 needs a velocity buffer")
        inout_array(velocity, "velocity", dtype=param.dtype, shape=param.shape)
        no_overlap(velocity, "velocity", param, "param", False)
        no_overlap(velocity, "velocity", grad, "grad", False)
    elif nesterov:
        raise ValueError("nesterov: Nesterov momentum needs momentum > 0")


def adam_arguments(param, grad, m, v, step) -> None:
    """Check the arrays and step of adam_update."""
    inout_array(param, "param")
    float_array(grad, "grad", dtype=param.dtype, shape=param.shape)
    inout_array(m, "m", dtype=param.dtype, shape=param.shape)
    inout_array(v, "v", dtype=param.dtype, shape=param.shape)
    if step < 1:
        raise ValueError(f"step: Adam steps count from 1, got {step}")
    # Each element is read once and written once, so grad may be param; the state arrays
    # must be their own memory.
    no_overlap(param, "param", grad, "grad", True)
    for state, state_name in ((m, "m"), (v, "v")):
        no_overlap(state, state_name, param, "param", False)
        no_overlap(state, state_name, grad, "grad", False)
    no_overlap(v, "v", m, "m", False)


def activation_forward_arguments(kind, x, out):
    """The checked (activation name, out) of activation_forward."""
    act = activation_name(kind)
    float_array(x, "x", ndim=2 if act == "softmax" else None)
    return act, output_array(out, "out", x.shape, x.dtype)


def activation_backward_arguments(kind, grad_out, x, y, out):
    """The checked (activation name, out) of activation_backward."""
    act = activation_name(kind)
    float_array(grad_out, "grad_out", ndim=2 if act == "softmax" else None)
    float_array(x, "x", dtype=grad_out.dtype, shape=grad_out.shape)
    float_array(y, "y", dtype=grad_out.dtype, shape=grad_out.shape)
    return act, output_array(out, "out", grad_out.shape, grad_out.dtype)


def gemm_arguments(a, b, out, trans_a, trans_b, beta, bias, activation):
    """The checked (M, N, K, activation name, out) of gemm."""
    m, n, k = gemm_shapes(a, b, trans_a, trans_b)
    act = activation_name(activation, allow_softmax=False)
    out = output_array(out, "out", (m, n), a.dtype, beta)
    if bias is not None:
        float_array(bias, "bias", dtype=a.dtype, shape=(n,))
    return m, n, k, act, out
