"""float64 finite-difference gradient checks of every layer and loss, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import losses, nn
from unimplemented import skip_if_unimplemented

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


class FixedMaskDropout(nn.Dropout):
    """Dropout that draws the same mask at every forward, so finite differences see one function."""

    def forward(self, x):
        self.offset = 0
        return super().forward(x)


def batchnorm(mode="train", affine=True):
    layer = nn.BatchNorm1d(5, momentum=0.3, dtype=np.float64, affine=affine)
    values = np.random.default_rng(11)
    if affine:
        layer.gamma_param.data[...] = values.uniform(0.5, 2.0, 5)
        layer.beta_param.data[...] = values.standard_normal(5)
    layer.running_mean[...] = values.standard_normal(5)
    layer.running_var[...] = values.uniform(0.5, 2.0, 5)
    return layer.train(mode == "train")


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
    "silu": nn.SiLU,
    "elu": lambda: nn.ELU(0.7),
    "mlp": lambda: nn.Sequential(nn.Dense(5, 6, seed=3, dtype=np.float64), nn.Tanh(),
                                 nn.Dense(6, 4, seed=4, dtype=np.float64), nn.GELU(),
                                 nn.Dense(4, 3, seed=5, dtype=np.float64), nn.Sigmoid()),
    "dropout_fixed_mask": lambda: FixedMaskDropout(0.4, seed=3),
    "batchnorm_train": batchnorm,
    "batchnorm_train_no_affine": lambda: batchnorm(affine=False),
    "batchnorm_eval": lambda: batchnorm("eval"),
    "residual": lambda: nn.Residual(nn.Sequential(nn.Dense(5, 5, seed=6, dtype=np.float64), nn.Tanh(),
                                                  nn.Dense(5, 5, seed=7, dtype=np.float64))),
    "deep_mlp": lambda: nn.Sequential(
        nn.Dense(5, 6, seed=8, dtype=np.float64), nn.BatchNorm1d(6, dtype=np.float64), nn.Tanh(),
        FixedMaskDropout(0.3, seed=1),
        nn.Residual(nn.Sequential(nn.Dense(6, 6, seed=9, dtype=np.float64),
                                  nn.BatchNorm1d(6, dtype=np.float64), nn.GELU())),
        nn.Dense(6, 3, seed=10, dtype=np.float64)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients(backend, rng, name):
    layer = LAYERS[name]()
    in_features = getattr(layer, "in_features", None) or 5
    x = rng.standard_normal((4, in_features))
    # Keep kinked activations (ReLU) away from 0, where the finite difference straddles the kink.
    x[np.abs(x) < 1e-3] = 0.5
    with skip_if_unimplemented():
        check_layer(layer, x, rng)


@pytest.mark.parametrize("l1,l2", [(0.3, 0.0), (0.0, 0.2), (0.05, 0.4)])
def test_weight_penalty_gradients(backend, rng, l1, l2):
    """d/dW of sum(R * layer(x)) + l1 sum|W| + l2 sum W^2; W kept away from L1's kink at 0."""
    layer = nn.Dense(4, 3, seed=12, dtype=np.float64, l1=l1, l2=l2)
    w = layer.weight_param.data
    w[np.abs(w) < 1e-2] = 0.1
    x = rng.standard_normal((5, 4))
    weights = rng.standard_normal((5, 3))

    def objective():
        return float(np.sum(weights * layer(x))) + layer.penalty()

    with skip_if_unimplemented():
        layer.zero_grad()
        layer(x)
        layer.backward(weights.copy())
    np.testing.assert_allclose(layer.weight_param.grad, numerical_grad(objective, w), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(layer.bias_param.grad, numerical_grad(objective, layer.bias_param.data),
                               rtol=RTOL, atol=ATOL)  # the bias carries no penalty


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
