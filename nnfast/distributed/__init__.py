"""Data-parallel training across processes and machines on MPI (mpi4py over the system's
MPI, such as Open MPI): launch one process per core group or machine with
`mpirun -np 4 python train.py`, and call

    rank, size = nnfast.distributed.init()
    model.fit(X, y, batch_size=64, distributed=True)    # 64 rows per process and step

Every process holds the whole model and optimizer state (replicated) and the same data set;
each step shards its global batch of size * batch_size rows across the processes, sums the
gradients with one Allreduce and makes the same update everywhere. See README.md
("Training on several processes").

mpi4py is optional (`pip install nnfast[mpi]`): importing this module does not need it,
calling init() does.
"""
from __future__ import annotations

from ._mpi import DistributedError, abort_on_uncaught_exception, mpi
from .optimizer import DistributedOptimizer
from .state import broadcast_parameters


def init() -> tuple[int, int]:
    """Initialize MPI (once; mpi4py does it on import) and return (rank, size) of this
    process in MPI_COMM_WORLD. From then on an exception that no process catches aborts the
    whole job with its message, instead of leaving the other processes waiting."""
    world = mpi().COMM_WORLD
    abort_on_uncaught_exception(world)
    return world.Get_rank(), world.Get_size()


def comm():
    """The mpi4py communicator nnfast trains over: MPI.COMM_WORLD (init() is called first)."""
    init()
    return mpi().COMM_WORLD


__all__ = ["init", "comm", "broadcast_parameters", "DistributedOptimizer", "DistributedError"]
