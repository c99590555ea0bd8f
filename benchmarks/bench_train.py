"""pytest-benchmark view of the training benchmark (the full table: `python -m nnfast bench`).

Before timing, one training step of each nnfast backend is checked against the NumPy
blueprint from the same weights and batch.
"""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast.bench import peers
from nnfast.bench.train_bench import synthetic_data

SIZES = [784, 128, 64, 10]
X, Y = synthetic_data()


def one_step_weights(trainer_cls_args):
    kind, batch = trainer_cls_args
    if kind == "blueprint":
        t = peers.NumpyBlueprintTrainer(SIZES, X, Y, batch)
        t.step(X[:batch], Y[:batch])
        return t.params[0]
    from nnfast import nn, optim
    model = nn.Sequential(*[layer for i, (w, b) in enumerate(peers.initial_weights(SIZES))
                            for layer in _dense(w, b, last=i == len(SIZES) - 2)])
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss = nnfast.losses.CrossEntropy()
    with nnfast.backend(kind):
        loss(model(X[:batch]), Y[:batch])
        model.backward(loss.backward())
        opt.step()
    return model.layers[0].weight


def _dense(w, b, last):
    from nnfast import nn
    dense = nn.Dense(*w.shape)
    dense.weight[...], dense.bias[...] = w, b
    return [dense] if last else [dense, nn.ReLU()]


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("backend", [b for b in ("cpp", "numba", "numpy") if b in nnfast.available_backends()])
def test_train_epoch(benchmark, backend, batch):
    # Adam moves each weight by about lr = 1e-3 whatever the gradient's size, so a gradient
    # near eps that rounds differently in float32 can shift a weight by a fraction of lr.
    np.testing.assert_allclose(one_step_weights((backend, batch)), one_step_weights(("blueprint", batch)),
                               rtol=1e-4, atol=1e-5)
    trainer = peers.NnfastTrainer(backend, SIZES, X, Y, batch)
    benchmark.extra_info["samples"] = len(X)
    benchmark.pedantic(trainer.epoch, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("batch", [64, 256])
def test_torch_epoch(benchmark, batch):
    pytest.importorskip("torch")
    trainer = peers.TorchTrainer(SIZES, X, Y, batch)
    benchmark.pedantic(trainer.epoch, rounds=5, warmup_rounds=1)
