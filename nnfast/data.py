"""Mini-batches for a hand-written training loop: nnfast.data.batches(X, y, ...)."""
from __future__ import annotations

import numpy as np

from . import seeding


def batches(X, y=None, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False,
            seed=None):
    """Yield (X_batch, y_batch), or X_batch alone when y is None, over the first axis.

    shuffle: a new random order on each call (seeded by seed, else by the next seed of
    nnfast.manual_seed's sequence, else fresh entropy). drop_last: leave out a last batch
    smaller than batch_size (a BatchNorm1d model cannot train on a batch of one).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive integer, got {batch_size!r}")
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError("batches: X must have a first (sample) axis, got a scalar")
    n = X.shape[0]
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(f"batches: {y.shape[0] if y.ndim else 0} targets for {n} samples")
    if shuffle:
        order = np.random.default_rng(seeding.next_seed() if seed is None else seed).permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for first in range(0, stop, batch_size):
        idx = order[first:first + batch_size]
        if not shuffle:  # a slice: views, no copies
            idx = slice(first, min(first + batch_size, stop))
        yield (X[idx], y[idx]) if y is not None else X[idx]
