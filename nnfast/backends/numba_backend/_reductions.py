"""bias_grad: column sums of the output gradient, in fixed chunks of rows.

Each chunk of BIAS_CHUNK_ROWS rows is summed on its own (in float64), then the chunks'
sums are added in chunk order. The serial and the parallel kernel do exactly these
operations, so the result is bitwise the same for any number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .._checks import float_array, output_array
from ._jit import helper, kernel

BIAS_CHUNK_ROWS = 256
# Fewer rows than this stay on the calling thread: waking the pool costs more than the sums.
PARALLEL_MIN_ELEMENTS = 1 << 18


# grad_out (N, C); partial (C,) += rows [start, stop) of grad_out
@helper()
def _add_rows(grad_out, start, stop, partial):
    for r in range(start, stop):
        for c in range(grad_out.shape[1]):
            partial[c] += grad_out[r, c]


# sums (C,) float64 of the chunks' sums (chunks, C), added in chunk order; out (C,)
@helper()
def _finish(chunk_sums, out, beta):
    cols = out.shape[0]
    total = np.zeros(cols)
    for ch in range(chunk_sums.shape[0]):
        for c in range(cols):
            total[c] += chunk_sums[ch, c]
    beta_t = out.dtype.type(beta)
    for c in range(cols):
        value = out.dtype.type(total[c])
        out[c] = value + beta_t * out[c] if beta != 0 else value


@helper()
def _chunk_count(rows):
    return (rows + BIAS_CHUNK_ROWS - 1) // BIAS_CHUNK_ROWS


# grad_out (N, C), out (C,) = column sums + beta * out
@kernel()
def _bias_grad_serial(grad_out, out, beta):
    rows, cols = grad_out.shape
    chunk_sums = np.zeros((_chunk_count(rows), cols))
    for ch in range(chunk_sums.shape[0]):
        start = ch * BIAS_CHUNK_ROWS
        _add_rows(grad_out, start, min(start + BIAS_CHUNK_ROWS, rows), chunk_sums[ch])
    _finish(chunk_sums, out, beta)


@kernel(parallel=True)
def _bias_grad_parallel(grad_out, out, beta):
    rows, cols = grad_out.shape
    chunk_sums = np.zeros((_chunk_count(rows), cols))
    for ch in prange(chunk_sums.shape[0]):
        start = ch * BIAS_CHUNK_ROWS
        _add_rows(grad_out, start, min(start + BIAS_CHUNK_ROWS, rows), chunk_sums[ch])
    _finish(chunk_sums, out, beta)


def bias_grad(grad_out, out=None, *, beta=0.0):
    """out = column sums of grad_out + beta * out.  grad_out (N, C), out (C,)."""
    float_array(grad_out, "grad_out", ndim=2)
    if out is None and beta != 0.0:
        raise ValueError("out: beta != 0 needs an existing out array")
    out = output_array(out, "out", (grad_out.shape[1],), grad_out.dtype)
    parallel = grad_out.size >= PARALLEL_MIN_ELEMENTS and grad_out.shape[0] > BIAS_CHUNK_ROWS
    (_bias_grad_parallel if parallel else _bias_grad_serial)(grad_out, out, float(beta))
    return out
