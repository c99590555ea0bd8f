"""fit()'s executor for data-parallel training: each process runs its share of every global
batch through the usual executor (the layer-by-layer path or the compiled trainer), the
gradients are summed across processes by one Allreduce on a flat buffer, then every process
makes the same update.

Sharding: a global batch of m rows (m = size * batch_size, less at the end of an epoch) is
split in order, rank r taking rows [r*m // size, (r+1)*m // size): [r*b, (r+1)*b) for a
full batch. Each process's loss is its rows' loss sum over its denominator (its row count,
or CrossEntropy(weight=)'s sum of its rows' class weights, losses.py), so its gradients
are scaled by its share of the global denominator before the sum: the result is the
gradient of the global batch's loss, as one process training batches of m rows computes it.
"""
from __future__ import annotations

import math

import numpy as np

from .. import losses
from ..executor import Executor
from ..nn.ops import RowWindow
from ._mpi import mpi
from .failures import raise_everywhere
from .flat import FlatGradients
from .group import shard
from .state import agree_on_buffers


class DataParallel(Executor):
    """Wraps an executor whose Parameters' grads are views into `flat` (see FlatGradients)."""

    def __init__(self, inner: Executor, flat: FlatGradients, model, loss_fn, comm):
        self.inner, self.flat, self.model, self.comm = inner, flat, model, comm
        self.class_weight = loss_fn.weight if isinstance(loss_fn, losses.CrossEntropy) else None
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.MPI = mpi()

    def begin_epoch(self):
        self.inner.begin_epoch()

    def step(self, X, y, idx, w=None):
        """(loss of the global batch idx, its correct count or None), the same on every
        process; this process's gradients, scaled by its share, are left in the flat buffer."""
        m = len(idx)
        lo, hi = shard(m, self.size, self.rank)
        mine = idx[lo:hi]
        failure, loss, correct, share = None, 0.0, None, 0.0
        try:
            loss, correct = self.inner.gradients(X, y, mine, RowWindow(lo, m), w)
            share = self.denominator(y, mine)
        except Exception as exc:  # noqa: BLE001 - every process raises it below
            failure = exc
        totals = np.array([loss * share, correct or 0, correct is None, failure is not None,
                           share])
        self.comm.Allreduce(self.MPI.IN_PLACE, totals, op=self.MPI.SUM)
        if totals[3]:
            raise_everywhere(self.comm, failure, "a training step")
        if hi > lo:
            self.flat.buffer *= self.flat.buffer.dtype.type(share / totals[4])
        value = float(totals[0] / totals[4])
        if not math.isfinite(value):  # the callbacks that react (TerminateOnNaN) see one state
            agree_on_buffers(self.model, self.comm)
        return value, (int(totals[1]) if totals[2] == 0 else None)

    def denominator(self, y, rows) -> float:
        """What the loss's mean over these rows divides by: their count, or the sum of their
        class weights for CrossEntropy(weight=) on labels (as torch)."""
        if self.class_weight is not None and y.ndim == 1:
            return float(self.class_weight[y[rows]].sum())
        return float(len(rows))

    def apply(self):
        self.comm.Allreduce(self.MPI.IN_PLACE, self.flat.buffer, op=self.MPI.SUM)
        self.inner.update()

    def end_epoch(self):
        self.inner.end_epoch()
