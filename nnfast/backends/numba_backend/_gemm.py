"""GEMM: out = act(alpha * op(a) @ op(b) + beta * out + bias), in Numba.

Every output element is the dot product of a row of op(a) (M, K) and a row of op(b)^T
(N, K). Operands not already laid out that way are first transposed into a per-thread
workspace ("packing"), so the inner loop always runs over contiguous K. The microkernel
computes a 4x4 block of dot products at once, each loaded element used four times; the
loop over K vectorizes because fastmath 'reassoc' lets LLVM split each sum across SIMD
lanes, a reordering within the c * K * eps error bound any blocked GEMM has. Work is split
into output tiles, each computed by one thread in a fixed order, so the result does not
depend on the thread count. The bias and activation are applied to each tile right after
it is computed, while it is still in cache.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import prange

from .._checks import activation_name, float_array, gemm_shapes, output_array
from ._activations import activation_forward_1d
from ._jit import helper, kernel
from ._scalar import ACTIVATION_CODES, IDENTITY

GEMM_FASTMATH = {"reassoc", "contract"}
TILE_ROWS, TILE_COLS = 16, 64  # one parallel task: 4 x 16 microkernel blocks
TRANSPOSE_BLOCK = 32
# Below this many multiply-adds a GEMM runs on the calling thread: starting the thread pool
# costs more than the work (about 10 microseconds on an idle machine, far more on a busy one).
PARALLEL_MIN_MACS = 1 << 17


# ----------------------------------------------------------------------------- microkernels
@helper(fastmath=GEMM_FASTMATH)
def _store(c, i, j, s, alpha, beta, bias, has_bias):
    v = alpha * s
    if beta != 0:  # out may be uninitialized memory when beta == 0: never read it then
        v += beta * c[i, j]
    if has_bias:
        v += bias[j]
    c[i, j] = v


# a (M, K), bt (N, K), c (M, N): the 4x4 block of c at (i, j)
@helper(fastmath=GEMM_FASTMATH)
def _block_4x4(a, bt, c, i, j, alpha, beta, bias, has_bias):
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = c.dtype.type(0)
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = c.dtype.type(0)
    for p in range(a.shape[1]):
        a0, a1, a2, a3 = a[i, p], a[i + 1, p], a[i + 2, p], a[i + 3, p]
        b0, b1, b2, b3 = bt[j, p], bt[j + 1, p], bt[j + 2, p], bt[j + 3, p]
        s00 += a0 * b0
        s01 += a0 * b1
        s02 += a0 * b2
        s03 += a0 * b3
        s10 += a1 * b0
        s11 += a1 * b1
        s12 += a1 * b2
        s13 += a1 * b3
        s20 += a2 * b0
        s21 += a2 * b1
        s22 += a2 * b2
        s23 += a2 * b3
        s30 += a3 * b0
        s31 += a3 * b1
        s32 += a3 * b2
        s33 += a3 * b3
    _store(c, i, j, s00, alpha, beta, bias, has_bias)
    _store(c, i, j + 1, s01, alpha, beta, bias, has_bias)
    _store(c, i, j + 2, s02, alpha, beta, bias, has_bias)
    _store(c, i, j + 3, s03, alpha, beta, bias, has_bias)
    _store(c, i + 1, j, s10, alpha, beta, bias, has_bias)
    _store(c, i + 1, j + 1, s11, alpha, beta, bias, has_bias)
    _store(c, i + 1, j + 2, s12, alpha, beta, bias, has_bias)
    _store(c, i + 1, j + 3, s13, alpha, beta, bias, has_bias)
    _store(c, i + 2, j, s20, alpha, beta, bias, has_bias)
    _store(c, i + 2, j + 1, s21, alpha, beta, bias, has_bias)
    _store(c, i + 2, j + 2, s22, alpha, beta, bias, has_bias)
    _store(c, i + 2, j + 3, s23, alpha, beta, bias, has_bias)
    _store(c, i + 3, j, s30, alpha, beta, bias, has_bias)
    _store(c, i + 3, j + 1, s31, alpha, beta, bias, has_bias)
    _store(c, i + 3, j + 2, s32, alpha, beta, bias, has_bias)
    _store(c, i + 3, j + 3, s33, alpha, beta, bias, has_bias)


# the 4x1 block of c at (i, j): a right edge narrower than 4 columns
@helper(fastmath=GEMM_FASTMATH)
def _block_4x1(a, bt, c, i, j, alpha, beta, bias, has_bias):
    s0 = s1 = s2 = s3 = c.dtype.type(0)
    for p in range(a.shape[1]):
        b = bt[j, p]
        s0 += a[i, p] * b
        s1 += a[i + 1, p] * b
        s2 += a[i + 2, p] * b
        s3 += a[i + 3, p] * b
    _store(c, i, j, s0, alpha, beta, bias, has_bias)
    _store(c, i + 1, j, s1, alpha, beta, bias, has_bias)
    _store(c, i + 2, j, s2, alpha, beta, bias, has_bias)
    _store(c, i + 3, j, s3, alpha, beta, bias, has_bias)


# the 1x4 block of c at (i, j): a bottom edge shorter than 4 rows
@helper(fastmath=GEMM_FASTMATH)
def _block_1x4(a, bt, c, i, j, alpha, beta, bias, has_bias):
    s0 = s1 = s2 = s3 = c.dtype.type(0)
    for p in range(a.shape[1]):
        x = a[i, p]
        s0 += x * bt[j, p]
        s1 += x * bt[j + 1, p]
        s2 += x * bt[j + 2, p]
        s3 += x * bt[j + 3, p]
    _store(c, i, j, s0, alpha, beta, bias, has_bias)
    _store(c, i, j + 1, s1, alpha, beta, bias, has_bias)
    _store(c, i, j + 2, s2, alpha, beta, bias, has_bias)
    _store(c, i, j + 3, s3, alpha, beta, bias, has_bias)


@helper(fastmath=GEMM_FASTMATH)
def _block_1x1(a, bt, c, i, j, alpha, beta, bias, has_bias):
    s = c.dtype.type(0)
    for p in range(a.shape[1]):
        s += a[i, p] * bt[j, p]
    _store(c, i, j, s, alpha, beta, bias, has_bias)


# ----------------------------------------------------------------------------- tiles
# c[i0:i1, j0:j1] from a[i0:i1] (rows, K) and bt[j0:j1] (rows, K), then its activation
@helper(fastmath=GEMM_FASTMATH)
def _gemm_tile(a, bt, c, i0, i1, j0, j1, alpha, beta, bias, has_bias, act, negative_slope):
    i = i0
    while i + 4 <= i1:
        j = j0
        while j + 4 <= j1:
            _block_4x4(a, bt, c, i, j, alpha, beta, bias, has_bias)
            j += 4
        for jr in range(j, j1):
            _block_4x1(a, bt, c, i, jr, alpha, beta, bias, has_bias)
        i += 4
    for ir in range(i, i1):
        j = j0
        while j + 4 <= j1:
            _block_1x4(a, bt, c, ir, j, alpha, beta, bias, has_bias)
            j += 4
        for jr in range(j, j1):
            _block_1x1(a, bt, c, ir, jr, alpha, beta, bias, has_bias)
    if act != IDENTITY:
        for r in range(i0, i1):
            row = c[r, j0:j1]
            activation_forward_1d(act, row, row, negative_slope)


@helper()
def _tile_count(c):
    m, n = c.shape
    return ((m + TILE_ROWS - 1) // TILE_ROWS) * ((n + TILE_COLS - 1) // TILE_COLS)


@helper(fastmath=GEMM_FASTMATH)
def _run_tile(t, a, bt, c, alpha, beta, bias, has_bias, act, negative_slope):
    m, n = c.shape
    col_tiles = (n + TILE_COLS - 1) // TILE_COLS
    i0 = (t // col_tiles) * TILE_ROWS
    j0 = (t % col_tiles) * TILE_COLS
    _gemm_tile(a, bt, c, i0, min(i0 + TILE_ROWS, m), j0, min(j0 + TILE_COLS, n),
               c.dtype.type(alpha), c.dtype.type(beta), bias, has_bias, act, negative_slope)


# a (M, K), bt (N, K), c (M, N), bias (N,) read only when has_bias
@kernel(parallel=True, fastmath=GEMM_FASTMATH)
def _gemm_parallel(a, bt, c, alpha, beta, bias, has_bias, act, negative_slope):
    for t in prange(_tile_count(c)):
        _run_tile(t, a, bt, c, alpha, beta, bias, has_bias, act, negative_slope)


@kernel(fastmath=GEMM_FASTMATH)
def _gemm_serial(a, bt, c, alpha, beta, bias, has_bias, act, negative_slope):
    for t in range(_tile_count(c)):
        _run_tile(t, a, bt, c, alpha, beta, bias, has_bias, act, negative_slope)


# ----------------------------------------------------------------------------- packing
# src (R, C), dst (C, R) = src.T, in square blocks so both sides stay in cache
@kernel()
def _transpose_kernel(src, dst):
    rows, cols = src.shape
    for j0 in range(0, cols, TRANSPOSE_BLOCK):
        j1 = min(j0 + TRANSPOSE_BLOCK, cols)
        for i0 in range(0, rows, TRANSPOSE_BLOCK):
            i1 = min(i0 + TRANSPOSE_BLOCK, rows)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    dst[j, i] = src[i, j]


_workspaces = threading.local()  # per thread: kernels release the GIL and may run concurrently


def _packed_transpose(src: np.ndarray, slot: int) -> np.ndarray:
    """src.T, C-contiguous, in this thread's reusable workspace number `slot`."""
    rows, cols = src.shape
    key = (slot, src.dtype)
    buffers = _workspaces.__dict__
    buf = buffers.get(key)
    if buf is None or buf.size < rows * cols:
        buf = buffers[key] = np.empty(rows * cols, src.dtype)
    dst = buf[:rows * cols].reshape(cols, rows)
    _transpose_kernel(src, dst)
    return dst


_NO_BIAS = {np.dtype(np.float32): np.zeros(1, np.float32), np.dtype(np.float64): np.zeros(1, np.float64)}


def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None,
         activation=None, negative_slope=0.01):
    """out = act(alpha * op(a) @ op(b) + beta * out + bias).  op(a) (M, K), op(b) (K, N), out (M, N)."""
    m, n, k = gemm_shapes(a, b, trans_a, trans_b)
    act = activation_name(activation, allow_softmax=False)
    if out is None and beta != 0.0:
        raise ValueError("out: beta != 0 needs an existing out array")
    out = output_array(out, "out", (m, n), a.dtype)
    if bias is not None:
        float_array(bias, "bias", dtype=a.dtype, shape=(n,))
    if m == 0 or n == 0:
        return out
    target = out
    if any(np.may_share_memory(out, x) for x in (a, b, bias) if x is not None):
        target = out.copy()  # the tiles must not overwrite inputs still to be read
    a_rows = _packed_transpose(a, 0) if trans_a else a
    bt_rows = b if trans_b else _packed_transpose(b, 1)
    run = _gemm_parallel if m * n * k >= PARALLEL_MIN_MACS else _gemm_serial
    run(a_rows, bt_rows, target, float(alpha), float(beta),
        _NO_BIAS[a.dtype] if bias is None else bias, bias is not None, ACTIVATION_CODES[act],
        float(negative_slope))
    if target is not out:
        out[...] = target
    return out
