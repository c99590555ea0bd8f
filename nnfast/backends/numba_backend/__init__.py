"""The Numba backend: every primitive compiled by Numba, the fallback when the C++ extension
cannot be built or imported.

Same signatures, checks and semantics as the NumPy reference (numpy_backend). Kernels are
compiled on their first call (importing compiles nothing) and cached on disk, see _jit;
nnfast.warmup("numba") compiles them ahead of time. GEMM and the Adam update use Numba's
thread pool on large enough inputs, and back off to one thread for a while when calls keep
waiting for descheduled workers (_contention; NNFAST_ADAPTIVE_THREADS=0 turns that off), and
run on one thread in a child forked after the pool started (_fork); no result depends on the
number of threads.
"""
from __future__ import annotations

import numba

from ._activations import activation_backward, activation_forward
from ._batchnorm import batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train
from ._contention import contention_stats
from . import _fork
from ._dropout import dropout_backward, dropout_forward
from ._gemm import gemm
from ._jit import cache_location
from ._losses import (bce_backward, bce_forward, bce_with_logits_backward, bce_with_logits_forward,
                      mse_backward, mse_forward, softmax_cross_entropy_backward,
                      softmax_cross_entropy_forward)
from ._norms import (clip_inplace, scale_inplace, sum_squares, weight_penalty_backward,
                     weight_penalty_forward)
from ._optim import adam_update, sgd_update
from ._reductions import bias_grad

name = "numba"
device = "cpu"
dtypes = ("float32", "float64")


def set_num_threads(n: int) -> None:
    """Threads for the parallel kernels, at most Numba's pool size (NUMBA_NUM_THREADS).

    As in Numba, the setting belongs to the calling Python thread.
    """
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def get_num_threads() -> int:
    """1 in a child forked after the pool started (see _fork), else Numba's count."""
    return 1 if _fork.single_threaded else numba.get_num_threads()


__all__ = ["name", "device", "dtypes", "cache_location", "set_num_threads", "get_num_threads",
           "contention_stats", "gemm",
           "activation_forward", "activation_backward", "softmax_cross_entropy_forward",
           "softmax_cross_entropy_backward", "mse_forward", "mse_backward", "bce_forward",
           "bce_backward", "bce_with_logits_forward", "bce_with_logits_backward", "bias_grad",
           "sgd_update", "adam_update", "dropout_forward", "dropout_backward",
           "batchnorm_forward_train", "batchnorm_forward_eval", "batchnorm_backward",
           "sum_squares", "scale_inplace", "clip_inplace", "weight_penalty_forward",
           "weight_penalty_backward"]

from .._contract import missing_primitives  # noqa: E402

__getattr__ = missing_primitives(name)
