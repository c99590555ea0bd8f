"""The compiled C++/OpenMP backend: the primitives of nnfast._core.

Argument checking lives in csrc/bindings.cpp; this module names the backend, exposes its
capability flags and primitives, and makes its thread pool visible to threadpoolctl.

Threads: kernels use nnfast.set_num_threads(n) (or NNFAST_NUM_THREADS) when it was called,
else omp_get_max_threads() of the calling thread, so OMP_NUM_THREADS, torch.set_num_threads
(torch shares nnfast's libgomp) and threadpoolctl's limits on "openmp" apply. threadpoolctl
also lists nnfast itself (internal_api "nnfast", user_api "openmp"), and
threadpool_limits(...) sets nnfast's count as set_num_threads does, even after a call to
it, and on exit sets back the count it found (which stays set: nnfast stops following
torch.set_num_threads or omp_set_num_threads calls made after that).
"""
from __future__ import annotations

from nnfast import _core

name = "cpp"
device = "cpu"
dtypes = ("float32", "float64")

gemm = _core.gemm
activation_forward = _core.activation_forward
activation_backward = _core.activation_backward
softmax_cross_entropy_forward = _core.softmax_cross_entropy_forward
softmax_cross_entropy_backward = _core.softmax_cross_entropy_backward
mse_forward = _core.mse_forward
mse_backward = _core.mse_backward
bce_forward = _core.bce_forward
bce_backward = _core.bce_backward
bce_with_logits_forward = _core.bce_with_logits_forward
bce_with_logits_backward = _core.bce_with_logits_backward
bias_grad = _core.bias_grad
sgd_update = _core.sgd_update
adam_update = _core.adam_update
MlpTrainer = _core.MlpTrainer  # the fused training step (nnfast/fused.py)
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads


def _register_with_threadpoolctl() -> None:
    """Let threadpoolctl find nnfast._core among the loaded libraries and control it."""
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return  # threadpoolctl < 3.5 has no public controller API

    class NnfastController(threadpoolctl.LibController):
        user_api = "openmp"
        internal_api = "nnfast"
        filename_prefixes = ("_core",)
        check_symbols = ("nnfast_get_num_threads", "nnfast_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.nnfast_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.nnfast_set_num_threads(num_threads)

        def get_version(self):
            from nnfast import __version__
            return __version__

    threadpoolctl.register(NnfastController)


_register_with_threadpoolctl()

from ._contract import missing_primitives  # noqa: E402

__getattr__ = missing_primitives(name)
