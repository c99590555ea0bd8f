"""The compiled C++/OpenMP backend: the primitives of nnfast._core.

Argument checking lives in csrc/bindings/checks.h; this module names the backend, exposes its
capability flags and primitives, and makes its thread pool visible to threadpoolctl.

Threads: kernels use nnfast.set_num_threads(n) (or NNFAST_NUM_THREADS) when it was called,
else omp_get_max_threads() of the calling thread, so OMP_NUM_THREADS, torch.set_num_threads
(when built from source: torch then shares nnfast's libgomp; a wheel bundles its own) and
threadpoolctl's limits on "openmp" apply. threadpoolctl
also lists nnfast itself (internal_api "nnfast", user_api "openmp"), and
threadpool_limits(...) sets nnfast's count as set_num_threads does, even after a call to
it, and on exit sets back the count it found (which stays set: nnfast stops following
torch.set_num_threads or omp_set_num_threads calls made after that).

fork: GNU libgomp cannot restart its thread pool in a child process, and a child that opens
a parallel region on the thread that forked hangs. So a child forked (os.fork,
multiprocessing's "fork" start method) by a thread that has run a kernel on several threads
runs nnfast's kernels on one thread (get_num_threads() says 1); a child forked before that
keeps the threads. For multi-threaded kernels in workers, use the "spawn" or "forkserver"
start method.

Shared cores: when the kernels' thread teams keep waiting for descheduled threads (another
process asking for all cores, a busy PyTorch or OpenBLAS pool, more threads than cores):
two late regions of the last four make every kernel run on one thread for 50 ms, doubling
while it recurs up to 0.4 s (csrc/common/contention.h). contention_stats() counts the late
regions; NNFAST_ADAPTIVE_THREADS=0, set before nnfast is imported, turns this off. Results
are bitwise the same either way.
"""
from __future__ import annotations

try:
    from nnfast import _core
except ImportError as exc:  # say so when the build skipped the extension (no compiler)
    from nnfast._installation import missing_extension_hint
    raise ImportError(f"{exc}{missing_extension_hint()}") from exc

from nnfast.backends._contract import PRIMITIVES  # noqa: E402

_STALE = [n for n in ("PRIMITIVES", "Trainer", "contention_stats") if not hasattr(_core, n)]
if _STALE:  # an in-place build left behind by an older checkout
    raise ImportError(f"{_core.__file__} is older than this source (it lacks {', '.join(_STALE)}); "
                      "rebuild it: pip install . (or pip install -e . for a checkout)")

name = "cpp"
device = "cpu"
dtypes = ("float32", "float64")

# The module lists the primitives it defines; the contract is what every backend must cover.
_UNCOVERED = [n for n in PRIMITIVES if n not in _core.PRIMITIVES]
if _UNCOVERED:
    raise ImportError(f"{_core.__file__} does not export the contract's {', '.join(_UNCOVERED)}")
globals().update({n: getattr(_core, n) for n in _core.PRIMITIVES})
Trainer = _core.Trainer  # the fused training step (nnfast/fused.py)
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads
contention_stats = _core.contention_stats


def _register_with_threadpoolctl() -> None:
    """Let threadpoolctl find nnfast._core among the loaded libraries and control it."""
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return  # an older threadpoolctl without the public controller API

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

if _core._gemm_isa_env_warning():  # NNFAST_ISA names an ISA this CPU lacks, or none at all
    from nnfast._warnings import warn_at_caller
    warn_at_caller(_core._gemm_isa_env_warning())

from ._contract import missing_primitives  # noqa: E402

__getattr__ = missing_primitives(name)
