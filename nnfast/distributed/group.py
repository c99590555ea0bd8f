"""What fit() does differently on several processes, behind one interface: SingleProcess
(every hook the identity) for fit(), MpiGroup for fit(..., distributed=True)."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np


def shard(m: int, size: int, rank: int) -> tuple[int, int]:
    """[lo, hi): the rows of m that process `rank` of `size` takes, in order: [r*b, (r+1)*b)
    when m = size * b, and shares differing by at most one row otherwise."""
    return rank * m // size, (rank + 1) * m // size


class SingleProcess:
    rank, size = 0, 1

    def together(self, what: str):
        return nullcontext()

    def agree(self, **settings) -> None:
        pass

    def shared_seed(self, seed_root: int) -> int:
        return seed_root

    def executor(self, model, loss_fn, opt, build):
        return build()

    def callbacks(self, callbacks: list) -> list:
        return callbacks

    def rows(self, n: int) -> tuple[int, int]:
        return 0, n

    def sum(self, values: list) -> list:
        return values

    def gather_rows(self, parts: list) -> np.ndarray:
        """This process's row blocks (in row order) joined with every other process's, in
        rank order: the whole array where each process held the rows rows() gave it."""
        return np.concatenate(parts)

    def slowest(self, seconds: float) -> float:
        return seconds

    def end_epoch(self, model) -> None:
        pass


class MpiGroup(SingleProcess):
    """The processes of MPI_COMM_WORLD training one model data-parallel."""

    def __init__(self, comm):
        from ._mpi import mpi
        self.comm, self.MPI = comm, mpi()
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def together(self, what):
        from .failures import together
        return together(self.comm, what)

    def agree(self, **settings):
        """Every process must train with the same settings (a different sample count or
        batch size would give it a different number of steps, and leave the others waiting)."""
        from ._mpi import DistributedError
        everyone = self.comm.allgather(settings)
        for rank, theirs in enumerate(everyone):
            differ = [k for k in settings if theirs[k] != everyone[0][k]]
            if differ:
                raise DistributedError(
                    "fit(distributed=True): every process must train with the same settings, "
                    f"but rank {rank} has " + ", ".join(f"{k}={theirs[k]!r}" for k in differ)
                    + " where rank 0 has " + ", ".join(f"{k}={everyone[0][k]!r}" for k in differ))

    def shared_seed(self, seed_root):
        return self.comm.bcast(seed_root, root=0)

    def executor(self, model, loss_fn, opt, build):
        from ..device import device_of
        from .data_parallel import DataParallel
        from .flat import FlatGradients
        from .state import broadcast_parameters
        if device_of(model) == "cuda":
            raise ValueError("fit(distributed=True): the model is on cuda, and data-parallel "
                             "training runs on the CPU executors only (the CUDA trainer keeps "
                             "its gradients in device memory); move it with model.to('cpu')")
        broadcast_parameters(model, opt, comm=self.comm)
        flat = FlatGradients(opt.params)  # before build(): the executor binds the grad arrays
        return DataParallel(build(), flat, model, loss_fn, self.comm)

    def callbacks(self, callbacks):
        """Rank 0 alone runs the callbacks that write files (ModelCheckpoint)."""
        return [cb for cb in callbacks if self.rank == 0 or not cb.rank_zero_only]

    def rows(self, n):
        return shard(n, self.size, self.rank)

    def sum(self, values):
        totals = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, totals, op=self.MPI.SUM)
        return totals.tolist()

    def gather_rows(self, parts):
        everyone = self.comm.allgather(np.concatenate(parts) if parts else None)
        return np.concatenate([p for p in everyone if p is not None])

    def slowest(self, seconds):
        return self.comm.allreduce(seconds, op=self.MPI.MAX)

    def end_epoch(self, model):
        from .state import sync_buffers
        sync_buffers(model, self.comm)


def process_group(distributed: bool) -> SingleProcess:
    if not distributed:
        return SingleProcess()
    from . import comm
    return MpiGroup(comm())
