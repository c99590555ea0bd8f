"""Horovod's DistributedOptimizer for a hand-written training loop."""
from __future__ import annotations

from .flat import FlatGradients


class DistributedOptimizer:
    """Wraps an nnfast optimizer: step() first averages the gradients of the wrapped
    optimizer's parameters across processes (one Allreduce on a flat buffer), then makes the
    wrapped optimizer's step. Every other attribute is the wrapped optimizer's.

        opt = DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-3))
        broadcast_parameters(model, opt)
        for xb, yb in my_shard_of_the_batches:
            opt.zero_grad(); loss = loss_fn(model(xb), yb)
            model.backward(loss_fn.backward()); opt.step()

    Each process's gradients weigh the same (the mean over processes), as in Horovod: give
    every process batches of the same size.
    """

    def __init__(self, optimizer, comm=None):
        from . import comm as world
        from ._mpi import mpi
        if not optimizer.bound:
            raise ValueError("DistributedOptimizer: bind the optimizer to the model's parameters "
                             "first (optim.Adam(model.parameters(), ...))")
        self.optimizer = optimizer
        self.comm = comm or world()
        self._mpi = mpi()
        self._flat = FlatGradients(optimizer.params)

    def step(self) -> None:
        self._flat.buffer *= self._flat.buffer.dtype.type(1.0 / self.comm.Get_size())
        self.comm.Allreduce(self._mpi.IN_PLACE, self._flat.buffer, op=self._mpi.SUM)
        self.optimizer.step()

    def __getattr__(self, name):
        return getattr(self.optimizer, name)
