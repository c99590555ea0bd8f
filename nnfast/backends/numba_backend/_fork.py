"""Whether this process may use Numba's thread pool: not in a child forked after it started.

Numba's default threading layer on Linux is GNU OpenMP, which cannot run in a child forked
from a process whose pool has started: Numba terminates such a child on its first parallel
kernel ("fork() called from a process already using GNU OpenMP, this is unsafe"), so a
multiprocessing "fork" Pool never finishes. Such a child runs the serial kernels instead,
as the C++ backend does (csrc/common/threading.cpp). Numba's other layers are no way out:
workqueue aborts when two Python threads call parallel kernels at once, and TBB is a
separate binary package.
"""
from __future__ import annotations

import os

from numba.np.ufunc import parallel as _numba_parallel

single_threaded = False


def _after_fork_in_child() -> None:
    global single_threaded
    # Numba's flag for a started pool; without it (another Numba version) assume it started.
    if getattr(_numba_parallel, "_is_initialized", True):
        single_threaded = True


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
