"""Errors a user with PyTorch, Keras or scikit-learn habits meets: each says what the call
did and what to do instead."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import nn, optim


def test_default_loss_is_named_when_the_targets_do_not_fit_it():
    model = nn.Sequential(nn.Dense(4, 1), nn.Sigmoid())
    X, y = np.zeros((8, 4), np.float32), np.ones(8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\).*no loss= was given, so "
                                         r"fit\(\) used its default loss='cross_entropy'.*loss='bce'"):
        model.fit(X, y, verbose=0)
    with pytest.raises(ValueError) as explicit:  # an explicit loss: no word about defaults
        model.fit(X, y, loss="cross_entropy", verbose=0)
    assert "default" not in str(explicit.value)
    model.fit(X, y.reshape(-1, 1), loss="bce", verbose=0)


def test_an_optimizer_of_another_model_is_refused_in_plain_words(backend):
    model = nn.Sequential(nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3))
    other = nn.Sequential(nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3))
    X, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
    with pytest.raises(ValueError, match=r"optimizer: this Adam was created with the parameters of "
                                         r"another model.*model.parameters\(\)"):
        model.fit(X, y, loss="cross_entropy", optimizer=optim.Adam(other.parameters()), verbose=0)
    before = [p.data.copy() for p in other.parameters()]
    assert all(np.array_equal(a, p.data) for a, p in zip(before, other.parameters()))


def test_layer_widths_that_do_not_chain_name_the_layers():
    with pytest.raises(ValueError, match=r"layer 2, Dense\(32, 3.*takes 32 inputs, but layer 0, "
                                         r"Dense\(4, 16.*gives 16 outputs"):
        nn.Sequential(nn.Dense(4, 16), nn.ReLU(), nn.Dense(32, 3))
