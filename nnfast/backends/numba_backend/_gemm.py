"""GEMM: out = act(alpha * op(a) @ op(b) + beta * out + bias), in Numba.

The work is cut into tasks of output tiles, each computed by one thread; inside a task,
the LLVM-vector microkernel (_microkernel.py) computes MR x NR blocks. op(a) is read in
place for either layout (only its two strides differ), and so is op(b) when it is b
itself, row-major (K, N); when trans_b, b is first transposed into a per-thread workspace
("packing"). A right edge narrower than NR columns is copied, zero-padded, into a panel of
its own. Each output element is one sum over K in order, so the result does not depend on
the thread count; the bias and the activation are applied to each block right after it is
computed, while it is still in cache.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from numba import prange

from .._checks import gemm_arguments
from . import _contention
from ._activations import ACTIVATION_CODES, IDENTITY, activation_forward_1d
from ._jit import helper, kernel
from ._microkernel import MR, PANEL_BYTES, microkernel, microkernel_into

TASK_ROW_BLOCKS, TASK_PANELS = 16, 2  # one task: 16 x MR rows by 2 x NR columns
KC = (32 * 1024) // PANEL_BYTES  # rows of K per block: a 32 KiB slice of a B panel
TRANSPOSE_PANEL = 16
# Below this many multiply-adds (about 30 microseconds of work) a GEMM runs on the calling
# thread: waking the pool costs about 10 microseconds on an idle machine and far more on a
# busy one, where a sleeping worker waits for a time slice.
PARALLEL_MIN_MACS = 1 << 20


# ----------------------------------------------------------------------------- tasks
@helper()
def _task_count(c):
    m, n = c.shape
    row_tasks = (m + MR * TASK_ROW_BLOCKS - 1) // (MR * TASK_ROW_BLOCKS)
    task_cols = (PANEL_BYTES // c.itemsize) * TASK_PANELS
    return row_tasks * ((n + task_cols - 1) // task_cols)


# a: op(a) (M, K) at strides (a_row_stride, a_k_stride); b_rows (K, N); tail_panel (K, NR)
# holds b_rows' last N % NR columns, zero-padded; c (M, N); bias (N,); zeros (N,)
@helper()
def _gemm_task(t, a, a_row_stride, a_k_stride, b_rows, tail_panel, c, alpha, beta, bias, zeros,
               act, negative_slope):
    m, n = c.shape
    k = b_rows.shape[0]
    nr = PANEL_BYTES // c.itemsize
    task_rows, task_cols = MR * TASK_ROW_BLOCKS, nr * TASK_PANELS
    col_tasks = (n + task_cols - 1) // task_cols
    i0 = (t // col_tasks) * task_rows
    j0 = (t % col_tasks) * task_cols
    i1, j1 = min(i0 + task_rows, m), min(j0 + task_cols, n)
    alpha_t, one = c.dtype.type(alpha), c.dtype.type(1)
    tile = np.empty((MR, nr), c.dtype)
    for j in range(j0, j1, nr):
        cols = min(nr, n - j)
        # K in blocks whose slice of the B panel stays in L1 while the task's rows pass over
        # it; the first block applies beta and the bias, the others add to it. (At least
        # one block, so that K = 0 still gives beta * c + bias.)
        for k0 in range(0, max(k, 1), KC):
            kc = min(KC, k - k0)
            block_beta = c.dtype.type(beta) if k0 == 0 else one
            block_bias = bias if k0 == 0 else zeros
            for i in range(i0, i1, MR):
                rows = min(MR, i1 - i)
                a_start = i * a_row_stride + k0 * a_k_stride
                if rows == MR and cols == nr:
                    microkernel_into(kc, a, a_start, a_row_stride, a_k_stride, b_rows, k0 * n + j, n,
                                     c, i * n + j, n, alpha_t, block_beta, block_bias, j)
                    continue
                if cols == nr:
                    microkernel(kc, a, a_start, a_row_stride, a_k_stride, rows, b_rows, k0 * n + j, n,
                                tile)
                else:
                    microkernel(kc, a, a_start, a_row_stride, a_k_stride, rows, tail_panel, k0 * nr,
                                nr, tile)
                for r in range(rows):
                    if block_beta != 0:
                        for q in range(cols):
                            c[i + r, j + q] = (alpha_t * tile[r, q] + block_beta * c[i + r, j + q]
                                               + block_bias[j + q])
                    else:  # out may be uninitialized memory when beta == 0: never read it then
                        for q in range(cols):
                            c[i + r, j + q] = alpha_t * tile[r, q] + block_bias[j + q]
    if act != IDENTITY:
        for r in range(i0, i1):
            row = c[r, j0:j1]
            activation_forward_1d(act, row, row, negative_slope)


@helper()
def _fill_tail_panel(b_rows, tail_panel):
    n = b_rows.shape[1]
    nr = tail_panel.shape[1]
    start = n - n % nr
    for p in range(tail_panel.shape[0]):  # no rows when n is a multiple of nr
        for q in range(nr):
            tail_panel[p, q] = b_rows[p, start + q] if start + q < n else 0


@kernel(parallel=True)
def _gemm_parallel(a, a_row_stride, a_k_stride, b_rows, tail_panel, c, alpha, beta, bias, zeros,
                   act, negative_slope):
    _fill_tail_panel(b_rows, tail_panel)
    for t in prange(_task_count(c)):
        _gemm_task(t, a, a_row_stride, a_k_stride, b_rows, tail_panel, c, alpha, beta, bias, zeros,
                   act, negative_slope)


@kernel()
def _gemm_serial(a, a_row_stride, a_k_stride, b_rows, tail_panel, c, alpha, beta, bias, zeros,
                 act, negative_slope):
    _fill_tail_panel(b_rows, tail_panel)
    for t in range(_task_count(c)):
        _gemm_task(t, a, a_row_stride, a_k_stride, b_rows, tail_panel, c, alpha, beta, bias, zeros,
                   act, negative_slope)


# ----------------------------------------------------------------------------- packing
# src (R, C), dst (C, R) = src.T. A panel of 16 source rows at a time: for each column j the
# inner loop has a fixed length, which LLVM turns into vector code writing 16 contiguous
# elements of dst, three times faster than a square-blocked scalar transpose.
@kernel()
def _transpose_kernel(src, dst):
    rows, cols = src.shape
    full = rows - rows % TRANSPOSE_PANEL
    for i0 in range(0, full, TRANSPOSE_PANEL):
        for j in range(cols):
            for ii in range(TRANSPOSE_PANEL):
                dst[j, i0 + ii] = src[i0 + ii, j]
    for j in range(cols):
        for i in range(full, rows):
            dst[j, i] = src[i, j]


_workspaces = threading.local()  # per thread: kernels release the GIL and may run concurrently


def _workspace(name: str, dtype, shape: tuple[int, int]) -> np.ndarray:
    """An array of `shape` in this thread's reusable buffer `name` (contents undefined)."""
    size = shape[0] * shape[1]
    buffers = _workspaces.__dict__
    buf = buffers.get((name, dtype))
    if buf is None or buf.size < size:
        buf = buffers[(name, dtype)] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def _packed_transpose(src: np.ndarray) -> np.ndarray:
    """src.T, C-contiguous, in this thread's workspace."""
    dst = _workspace("packed_b", src.dtype, src.shape[::-1])
    _transpose_kernel(src, dst)
    return dst


_ZEROS = {np.dtype(np.float32): np.zeros(0, np.float32), np.dtype(np.float64): np.zeros(0, np.float64)}


def _zeros(dtype, n: int) -> np.ndarray:
    """Zeros of length n: the bias when there is none (adding 0 is exact: one code path), and
    of every K block after the first."""
    if _ZEROS[dtype].size < n:
        _ZEROS[dtype] = np.zeros(n, dtype)
    return _ZEROS[dtype][:n]


def gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None,
         activation=None, negative_slope=0.01):
    """out = act(alpha * op(a) @ op(b) + beta * out + bias).  op(a) (M, K), op(b) (K, N), out (M, N)."""
    given = out is not None
    m, n, k, act, out = gemm_arguments(a, b, out, trans_a, trans_b, beta, bias, activation)
    overlaps = given and any(np.may_share_memory(out, x) for x in (a, b, bias) if x is not None)
    target = out.copy() if overlaps else out  # tiles must not overwrite inputs still to be read
    if m == 0 or n == 0:
        return out
    # op(a)[i, p] is a[i, p] or, transposed, a[p, i]
    a_row_stride, a_k_stride = (1, m) if trans_a else (k, 1)
    b_rows = _packed_transpose(b) if trans_b else b
    panel_width = PANEL_BYTES // a.itemsize
    tail_panel = _workspace("tail_panel", a.dtype, (k if n % panel_width else 0, panel_width))
    zeros = _zeros(a.dtype, n)
    args = (a, a_row_stride, a_k_stride, b_rows, tail_panel, target, float(alpha), float(beta),
            zeros if bias is None else bias, zeros, ACTIVATION_CODES[act], float(negative_slope))
    if m * n * k >= PARALLEL_MIN_MACS and _contention.gemm.threaded():
        start = time.perf_counter()
        _gemm_parallel(*args)
        _contention.gemm.report((m, n, k, trans_a, trans_b, a.dtype.char), time.perf_counter() - start)
    else:
        _gemm_serial(*args)
    if target is not out:
        out[...] = target
    return out
