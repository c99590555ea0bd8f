"""nnfast.data.batches for the manual loop, and fit(drop_last=)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import data, nn
from unimplemented import skip_if_unimplemented


def test_batches_cover_every_sample_once_in_order():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    got = list(data.batches(X, y, batch_size=4))
    assert [len(yb) for _, yb in got] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in got]), X)
    assert np.shares_memory(got[0][0], X)  # views, no copies
    assert [len(xb) for xb in data.batches(X, batch_size=4, drop_last=True)] == [4, 4]


def test_shuffled_batches_are_a_seeded_permutation():
    X, y = np.arange(10)[:, None], np.arange(10)
    first = np.concatenate([yb for _, yb in data.batches(X, y, 3, shuffle=True, seed=1)])
    again = np.concatenate([yb for _, yb in data.batches(X, y, 3, shuffle=True, seed=1)])
    assert sorted(first) == list(range(10)) and not np.array_equal(first, np.arange(10))
    np.testing.assert_array_equal(first, again)
    for xb, yb in data.batches(X, y, 3, shuffle=True, seed=2):
        np.testing.assert_array_equal(xb[:, 0], yb)


def test_batches_refuse_mismatched_input():
    with pytest.raises(ValueError, match="3 targets for 4 samples"):
        list(data.batches(np.zeros((4, 2)), np.zeros(3)))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        list(data.batches(np.zeros((4, 2)), batch_size=0))


def test_the_readme_manual_loop_trains(rng):
    # Judged on the whole set before and after, not on one batch of 16 (a single batch's loss
    # swings with which rows it drew: 0.53 to 0.33 on one seed, under the halving asked). Over
    # 300 seeds the whole-set loss fell to at most 0.23 of its start, accuracy at least 0.94.
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Dense(3, 8, seed=0), nn.ReLU(), nn.Dense(8, 2, seed=1))
    opt = nnfast.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nnfast.losses.CrossEntropy()
    before = loss_fn(model(X), y)
    for epoch in range(40):
        for xb, yb in data.batches(X, y, batch_size=16, shuffle=True, seed=epoch):
            opt.zero_grad()
            loss_fn(model(xb), yb)
            model.backward(loss_fn.backward())
            opt.step()
    assert loss_fn(model(X), y) < before / 2
    assert np.mean(model(X).argmax(axis=1) == y) >= 0.9


def test_fit_drop_last_lets_batchnorm_train_on_a_remainder_of_one(backend, rng):
    X = rng.standard_normal((33, 4)).astype(np.float32)
    y = rng.integers(0, 2, 33)
    model = nn.Sequential(nn.Dense(4, 8, seed=0), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 2, seed=1))
    with pytest.raises(ValueError, match="batch of 1.*drop_last=True"):
        model.fit(X, y, loss="cross_entropy", batch_size=16, verbose=0)
    with skip_if_unimplemented():
        model.fit(X, y, loss="cross_entropy", batch_size=16, epochs=2, verbose=0, drop_last=True)
    assert model.optimizer.step_count == 4  # two full batches an epoch
    with pytest.raises(ValueError, match="leaves no batch"):
        model.fit(X[:10], y[:10], batch_size=16, verbose=0, drop_last=True)
