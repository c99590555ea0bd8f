"""Splitting and scaling."""
from __future__ import annotations

import numpy as np


def train_test_split(X, y, test_size: float = 0.2, stratify=None, random_state=None, shuffle=True):
    """(X_train, X_test, y_train, y_test), as scikit-learn's. With `stratify` (usually y),
    each class keeps its proportion in both parts."""
    X, y = np.asarray(X), np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"train_test_split: X has {n} samples, y has {len(y)}")
    n_test = int(np.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"train_test_split: test_size={test_size} gives {n_test} of {n} samples")
    rng = np.random.default_rng(random_state)
    if stratify is None:
        order = rng.permutation(n) if shuffle else np.arange(n)
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        if not shuffle:
            raise ValueError("train_test_split: stratify needs shuffle=True")
        strata = np.asarray(stratify)
        if len(strata) != n:
            raise ValueError("train_test_split: stratify must have one entry per sample")
        classes, counts = np.unique(strata, return_counts=True)
        # Largest-remainder allocation of the test samples over the classes.
        exact = counts * n_test / n
        per_class = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - per_class), kind="stable")[: n_test - per_class.sum()]:
            per_class[i] += 1
        test_parts, train_parts = [], []
        for cls, k in zip(classes, per_class):
            idx = rng.permutation(np.flatnonzero(strata == cls))
            test_parts.append(idx[:k])
            train_parts.append(idx[k:])
        test_idx = rng.permutation(np.concatenate(test_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


class StandardScaler:
    """Scale each feature to zero mean and unit variance, with statistics from fit()."""

    def fit(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"StandardScaler: expected a non-empty 2-D array, got shape {X.shape}")
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)  # a constant feature is left centred, not divided by 0
        return self

    def transform(self, X):
        if not hasattr(self, "mean_"):
            raise RuntimeError("StandardScaler: call fit() before transform()")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"StandardScaler: fitted on {self.mean_.shape[0]} features, got shape {X.shape}")
        return ((X - self.mean_) / self.scale_).astype(X.dtype if X.dtype.kind == "f" else np.float64)

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        return np.asarray(X) * self.scale_ + self.mean_
