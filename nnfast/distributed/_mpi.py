"""mpi4py, loaded on first use, and the process setup every nnfast MPI job shares."""
from __future__ import annotations

import sys

_INSTALL = ("install mpi4py with `pip install nnfast[mpi]` and an MPI library (on Debian or "
            "Ubuntu: `apt-get install openmpi-bin libopenmpi-dev`)")


class DistributedError(RuntimeError):
    """A process of a data-parallel job failed; raised on every process, with the failing
    process's message."""


def mpi():
    """The mpi4py.MPI module (MPI initialized), or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"nnfast.distributed needs mpi4py: {_INSTALL} ({exc})") from exc
    except RuntimeError as exc:  # mpi4py is there, but no MPI library it can load
        raise ImportError(f"nnfast.distributed: mpi4py cannot load an MPI library: {_INSTALL} "
                          f"({exc})") from exc
    return MPI


_hook_installed = False


def abort_on_uncaught_exception(comm) -> None:
    """An exception no process catches ends the whole job: print it, then MPI_Abort, which
    stops every process. Without it, a process that dies outside a collective leaves the
    others waiting in their next one for ever (the failure MPI_Finalize cannot see)."""
    global _hook_installed
    if _hook_installed or comm.Get_size() == 1:
        return
    previous = sys.excepthook
    rank = comm.Get_rank()

    def hook(kind, value, tb):
        sys.stderr.write(f"nnfast.distributed: rank {rank} of {comm.Get_size()} failed with "
                         f"{kind.__name__}: {value}; aborting every process of the job\n")
        previous(kind, value, tb)
        sys.stderr.flush()
        comm.Abort(1)

    sys.excepthook = hook
    _hook_installed = True
