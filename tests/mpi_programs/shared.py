"""Data, models and optimizers that the MPI programs and tests/test_distributed.py build alike,
so that the single-process references train exactly what the ranks trained."""
from __future__ import annotations

import numpy as np

from nnfast import nn, optim

FEATURES, CLASSES, PER_RANK_BATCH, STEPS = 6, 3, 4, 20
OPTIMIZERS = {
    "sgd": lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: optim.Adam(lr=0.01),
    "adamw": lambda: optim.AdamW(lr=0.01, weight_decay=0.05),
}
MODELS = ("dropout", "batchnorm")
BACKENDS = ("cpp", "numpy")  # the compiled trainer, and the layer-by-layer path


def samples(model: str, ranks: int) -> int:
    """STEPS global batches, the last one short: the dropout model's last has fewer rows
    than ranks (some rank sits it out), the batch-norm model's at least 2 rows per rank."""
    tail = ranks - 1 if model == "dropout" else 2 * ranks + 1
    return (STEPS - 1) * ranks * PER_RANK_BATCH + tail


def data(model: str, ranks: int):
    rng = np.random.default_rng(7)
    n = samples(model, ranks)
    return rng.standard_normal((n, FEATURES)), rng.integers(0, CLASSES, n)


def build(model: str):
    layers = [nn.Dense(FEATURES, 8, seed=1, dtype=np.float64)]
    if model == "batchnorm":
        layers.append(nn.BatchNorm1d(8, dtype=np.float64))
    layers += [nn.ReLU(), nn.Dropout(0.25, seed=11), nn.Dense(8, CLASSES, seed=2, dtype=np.float64)]
    return nn.Sequential(*layers)


def weights(model) -> np.ndarray:
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def sample_weight(model: str, ranks: int) -> np.ndarray:
    return np.random.default_rng(8).uniform(0.2, 2.0, samples(model, ranks))


def weighted_loss():
    """CrossEntropy(weight=): its mean divides by the batch's sum of class weights, so each
    rank's share of the global batch is its class-weight sum, not its row count."""
    from nnfast import losses
    return losses.CrossEntropy(weight=[0.5, 2.0, 1.0])
