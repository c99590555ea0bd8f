"""float64 finite-difference gradient checks of every layer and loss, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import losses, nn

EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-8


def numerical_grad(f, x):
    """Central differences of the scalar function f at x (x is perturbed in place, restored)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        up = f()
        flat[i] = old - EPS
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * EPS)
    return grad


def check_layer(layer, x, rng):
    """Compare backward() with finite differences of sum(R * layer(x)) for x and every parameter."""
    weights = rng.standard_normal(layer(x).shape)

    def objective():
        return float(np.sum(weights * layer(x)))

    layer.zero_grad()
    layer(x)
    dx = layer.backward(weights.copy())
    np.testing.assert_allclose(dx, numerical_grad(objective, x), rtol=RTOL, atol=ATOL,
                               err_msg=f"{layer!r}: input gradient")
    for p in layer.parameters():
        analytic = p.grad.copy()
        np.testing.assert_allclose(analytic, numerical_grad(objective, p.data), rtol=RTOL, atol=ATOL,
                                   err_msg=f"{layer!r}: gradient of {p.name}")


LAYERS = {
    "dense_he": lambda: nn.Dense(5, 3, seed=1, dtype=np.float64),
    "dense_xavier": lambda: nn.Dense(4, 7, init="xavier", seed=2, dtype=np.float64),
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": nn.Softmax,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "mlp": lambda: nn.Sequential(nn.Dense(5, 6, seed=3, dtype=np.float64), nn.Tanh(),
                                 nn.Dense(6, 4, seed=4, dtype=np.float64), nn.GELU(),
                                 nn.Dense(4, 3, seed=5, dtype=np.float64), nn.Sigmoid()),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients(backend, rng, name):
    layer = LAYERS[name]()
    in_features = getattr(layer, "in_features", None) or 5
    x = rng.standard_normal((4, in_features))
    # Keep kinked activations (ReLU) away from 0, where the finite difference straddles the kink.
    x[np.abs(x) < 1e-3] = 0.5
    check_layer(layer, x, rng)


def _loss_case(name, rng):
    if name == "mse":
        return losses.MSE(), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    if name == "bce":
        return losses.BinaryCrossEntropy(), rng.uniform(0.05, 0.95, (6, 1)), rng.integers(0, 2, (6, 1)).astype(float)
    if name == "bce_with_logits":
        return losses.BCEWithLogits(), rng.standard_normal((6, 2)), rng.integers(0, 2, (6, 2)).astype(float)
    if name == "cross_entropy_sparse":
        return losses.CrossEntropy(), rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    if name == "cross_entropy_onehot":
        return losses.CrossEntropy(), rng.standard_normal((6, 4)), rng.dirichlet(np.ones(4), 6)
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["mse", "bce", "bce_with_logits", "cross_entropy_sparse",
                                  "cross_entropy_onehot"])
def test_loss_gradients(backend, rng, name):
    loss_fn, out, target = _loss_case(name, rng)
    loss_fn(out, target)
    analytic = loss_fn.backward()
    numeric = numerical_grad(lambda: loss_fn(out, target), out)
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL)
