"""Run under mpirun by tests/test_distributed.py: rank 1 fails in the way argv[1] names,
and every rank reports what it caught. The job must end (non-zero where an error escapes)
instead of leaving rank 0 waiting in a collective."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nnfast.distributed as dist  # noqa: E402
from nnfast import nn  # noqa: E402
from shared import PER_RANK_BATCH, build, data, weights  # noqa: E402

rank, size = dist.init()
mode = sys.argv[1]
X, y = data("dropout", size)


class FailsOnRankOne(nn.ReLU):
    """A layer without an op record (so the layer-by-layer path runs it) that raises on rank 1
    at its third training forward."""

    calls = 0

    def lower(self):
        raise nn.module.CannotLower("a test layer")

    def forward(self, x):
        FailsOnRankOne.calls += 1
        if rank == 1 and FailsOnRankOne.calls == 3:
            raise ValueError("rank 1 read a corrupt row")
        return super().forward(x)


if mode == "raises_in_step":
    model = nn.Sequential(nn.Dense(X.shape[1], 8, seed=1, dtype=np.float64), FailsOnRankOne(),
                          nn.Dense(8, 3, seed=2, dtype=np.float64))
elif mode == "bad_input":
    model = build("dropout")
    if rank == 1:
        X = X.copy()
        X[5, 2] = np.nan
elif mode == "raises_outside_fit":
    model = build("dropout")
    if rank == 1:
        raise RuntimeError("rank 1 gave up before training")
elif mode == "nan_on_one_shard":
    model = build("dropout")
    if rank == 1:  # finite, but the forward overflows on every row rank 1 trains
        X = np.full_like(X, 1e308)
else:
    raise SystemExit(f"unknown mode {mode}")

try:
    model.fit(X, y, batch_size=PER_RANK_BATCH, epochs=2, seed=3, verbose=0, distributed=True)
except dist.DistributedError as exc:
    print(f"rank {rank} caught: {exc}", flush=True)
    raise
stopped = model.history.history["loss"]
same = len({w.tobytes() for w in dist.comm().allgather(weights(model))}) == 1
print(f"rank {rank} finished: epochs={len(stopped)} loss={stopped} same_weights={same}", flush=True)
