"""What every process must hold alike: weights, running statistics, dropout seeds and
counters, optimizer state. broadcast_parameters copies rank 0's; the other functions keep
the copies alike during training."""
from __future__ import annotations

import numpy as np

from ..nn.dropout import Dropout
from ._mpi import DistributedError, mpi
from .optimizer import DistributedOptimizer


def _dropouts(model) -> list[Dropout]:
    return [m for m in model.modules() if isinstance(m, Dropout)]


def _optimizer_arrays(opt) -> list[np.ndarray]:
    return [a for slots in opt.slots for a in slots.named().values()]


def _layout(model, opt) -> list:
    """What must match for a broadcast to make sense: every array's shape and dtype."""
    arrays = [p.data for p in model.parameters()] + list(model.buffers())
    if opt is not None:
        arrays += _optimizer_arrays(opt)
    return [(a.shape, str(a.dtype)) for a in arrays] + [len(_dropouts(model))]


def broadcast_parameters(model, optimizer=None, *, comm=None, root: int = 0) -> None:
    """Copy rank `root`'s weights, running statistics, dropout seeds and counters and the
    optimizer's state (its slots, step count and learning rate) to every process, as
    Horovod's broadcast_parameters and broadcast_optimizer_state do together. optimizer:
    default the model's (set by fit() and nnfast.load), if it has one bound to the model.
    Every process must call it, with models of the same layout."""
    from . import comm as world
    comm = comm or world()
    opt = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    if isinstance(opt, DistributedOptimizer):
        opt = opt.optimizer
    if opt is not None and not opt.bound:
        opt = None
    layouts = comm.allgather(_layout(model, opt))
    for rank, layout in enumerate(layouts):
        if layout != layouts[root]:
            raise DistributedError(
                f"broadcast_parameters: rank {rank}'s model (or optimizer) differs from rank "
                f"{root}'s; build the same model with the same optimizer on every process")
    for p in model.parameters():
        comm.Bcast(p.data, root=root)
    sync_buffers(model, comm, root)
    dropouts = _dropouts(model)
    settings = comm.bcast([(d.seed, d.offset) for d in dropouts], root=root)
    for layer, (seed, offset) in zip(dropouts, settings):
        layer.seed, layer.offset = seed, offset
    if opt is not None:
        for a in _optimizer_arrays(opt):
            comm.Bcast(a, root=root)
        opt.step_count, opt.lr = comm.bcast((opt.step_count, opt.lr), root=root)


def sync_buffers(model, comm, root: int = 0) -> None:
    """Rank `root`'s running statistics to every process. With local batch statistics each
    process's running averages drift apart during an epoch; as PyTorch DDP (which
    broadcasts rank 0's buffers before each forward), rank 0's are the model's."""
    for buffer in model.buffers():
        comm.Bcast(buffer, root=root)


def agree_on_buffers(model, comm) -> None:
    """After a non-finite loss: if any process's running statistics became non-finite, give
    every process those of the first such process, so that the callbacks reacting to it
    (TerminateOnNaN restores the epoch's starting weights then) decide alike everywhere."""
    finite = all(np.isfinite(b).all() for b in model.buffers())
    size = comm.Get_size()
    first_bad = comm.allreduce(size if finite else comm.Get_rank(), op=mpi().MIN)
    if first_bad < size:
        sync_buffers(model, comm, first_bad)

