"""Small generated data sets of the classic exercises."""
from __future__ import annotations

import numpy as np


def xor(dtype=np.float32):
    """The four XOR points: X (4, 2), y (4, 1)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return X, y


def circles(n: int = 200, noise: float = 0.1, factor: float = 0.5, seed=None, dtype=np.float32):
    """Two concentric circles: an outer one of radius 1 (label 0) and an inner one of
    radius `factor` (label 1), with Gaussian noise of std `noise`. X (n, 2), y (n,) int64."""
    if n < 2:
        raise ValueError(f"circles: n must be at least 2, got {n}")
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor must lie in (0, 1), got {factor}")
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    t_outer = np.linspace(0, 2 * np.pi, n_outer, endpoint=False)
    t_inner = np.linspace(0, 2 * np.pi, n_inner, endpoint=False)
    X = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
                        factor * np.stack([np.cos(t_inner), np.sin(t_inner)], axis=1)])
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n_inner, np.int64)])
    X += rng.normal(0.0, noise, size=X.shape)
    order = rng.permutation(n)
    return X[order].astype(dtype), y[order]
