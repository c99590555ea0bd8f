"""nnfast.manual_seed(n): one global seed for everything random that has no seed of its own
(Dense's initial weights, Dropout's masks, fit()'s shuffling), as torch.manual_seed.

After manual_seed(n), the k-th request for a seed gets the k-th number of a generator seeded
with n: the same program builds the same model and trains it the same way on every run.
Without it, each request draws fresh entropy (a different model each run). An explicit
seed= always wins.
"""
from __future__ import annotations

import threading

import numpy as np

_lock = threading.Lock()
_generator: np.random.Generator | None = None


def manual_seed(seed: int) -> None:
    """Seed every layer initialization, Dropout and fit() shuffle created after this call
    without a seed of its own."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer, got {seed!r}")
    with _lock:
        _generator = np.random.default_rng(int(seed))


def next_seed(bits: int = 63) -> int | None:
    """The next seed of the sequence manual_seed() started, or None (fresh entropy) when
    manual_seed() has not been called."""
    with _lock:
        if _generator is None:
            return None
        return int(_generator.integers(0, 2 ** bits, dtype=np.uint64))
