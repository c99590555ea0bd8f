"""Inverted dropout with the reference's counter-based mask (see numpy_backend.dropout_bits).

Element i is kept or dropped by splitmix64's finalizer applied to (seed, offset + i) alone, in
uint64 arithmetic that wraps modulo 2**64 as the reference's does: the mask is bitwise the
reference's, whatever the blocking or thread count. Every constant and operand of the hash is
a uint64 (Numba turns a uint64 mixed with a signed integer into a float64), and seed, offset
and threshold reach the kernel as numpy.uint64, so that a small Python int does not compile a
signed variant.

Both passes run on the calling thread: the forward's loop vectorizes (about 0.4 ns per element
here), and a threaded version (prange over fixed chunks) measured 1.5 to 3 times slower at
every size from 2**14 to 2**20 elements on the shared 2-core machine.
"""
from __future__ import annotations

import numpy as np

from .._checks import dropout_backward_arguments, dropout_forward_arguments
from ..numpy_backend import dropout_threshold
from ._aliasing import unaliased
from ._jit import helper, kernel

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFT_1, _SHIFT_2, _SHIFT_3 = np.uint64(30), np.uint64(27), np.uint64(31)
_HIGH_HALF = np.uint64(32)
_ONE = np.uint64(1)


@helper()
def _splitmix64_mix(z):
    z = (z ^ (z >> _SHIFT_1)) * _MIX_1
    z = (z ^ (z >> _SHIFT_2)) * _MIX_2
    return z ^ (z >> _SHIFT_3)


# x (n,), out (n,), mask uint8 (n,); seed, offset, threshold uint64
@kernel()
def _dropout_forward_kernel(x, out, mask, seed, offset, threshold, scale):
    key = _splitmix64_mix(seed)
    scale_t = out.dtype.type(scale)
    zero = out.dtype.type(0)
    for i in range(x.size):
        counter = offset + np.uint64(i)  # wraps modulo 2**64, as specified
        bits = _splitmix64_mix(key + (counter + _ONE) * _GOLDEN_GAMMA)
        keep = (bits >> _HIGH_HALF) >= threshold
        mask[i] = np.uint8(keep)
        out[i] = x[i] * scale_t if keep else zero


# grad_out (n,), mask uint8 (n,), out (n,)
@kernel()
def _dropout_backward_kernel(grad_out, mask, out, scale):
    scale_t = out.dtype.type(scale)
    zero = out.dtype.type(0)
    for i in range(grad_out.size):
        out[i] = grad_out[i] * scale_t if mask[i] != 0 else zero


def dropout_forward(x, out=None, mask=None, *, p, seed, offset):
    """Inverted dropout: out = x / (1 - p) where kept, 0 where dropped.  x (...), out (...),
    mask uint8 (...) set to 1 where kept.

    Element i (in C order) is dropped when (bits(seed, offset + i) >> 32) < floor(p * 2**32),
    see numpy_backend.dropout_bits. Returns (out, mask); the caller advances offset by x.size.
    """
    out, mask, p, seed, offset = dropout_forward_arguments(x, out, mask, p, seed, offset)
    x = unaliased(x, out, mask)
    _dropout_forward_kernel(x.reshape(-1), out.reshape(-1), mask.reshape(-1), np.uint64(seed),
                            np.uint64(offset), np.uint64(dropout_threshold(p)), 1.0 / (1.0 - p))
    return out, mask


def dropout_backward(grad_out, mask, out=None, *, p):
    """grad_in = grad_out / (1 - p) where mask is 1, else 0.  grad_out (...), mask uint8 (...)."""
    out, p = dropout_backward_arguments(grad_out, mask, out, p)
    grad_out, mask = unaliased(grad_out, out), unaliased(mask, out)
    _dropout_backward_kernel(grad_out.reshape(-1), mask.reshape(-1), out.reshape(-1),
                             1.0 / (1.0 - p))
    return out
