"""Dropout, BatchNorm1d, Residual and the L1/L2 penalties: semantics, and agreement with
PyTorch (float64) where PyTorch has the same layer."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import losses, nn, optim
from unimplemented import skip_if_unimplemented

torch = pytest.importorskip("torch")
F = torch.nn.functional
REL = 1e-10


def test_dropout_trains_with_fresh_masks_and_is_identity_in_eval(backend, rng):
    x = rng.standard_normal((64, 32)).astype(np.float32)
    layer = nn.Dropout(0.25, seed=5)
    with skip_if_unimplemented():
        first = layer(x)
    assert layer.offset == x.size
    second = layer(x)
    assert not np.array_equal(first == 0, second == 0)  # the counter moved on
    np.testing.assert_allclose(second[second != 0], (x / 0.75)[second != 0], rtol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(g), np.where(second != 0, g / 0.75, 0), rtol=1e-6)
    # Same seed, same sequence of masks; eval mode and p = 0 pass x through untouched.
    twin = nn.Dropout(0.25, seed=5)
    np.testing.assert_array_equal(twin(x), first)
    layer.eval()
    assert layer(x) is x or np.array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(g), g)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    assert nn.Dropout(0.5).seed != nn.Dropout(0.5).seed  # seed=None draws one


def test_dropout_masks_match_the_reference_backend_in_a_model(backend, ref, rng):
    """The counter-based mask makes a training run with dropout identical on every backend."""
    x = rng.standard_normal((16, 8))

    def outputs():
        layer = nn.Dropout(0.5, seed=123)
        return [layer(x) for _ in range(3)]

    with skip_if_unimplemented():
        ours = outputs()
    import nnfast
    with nnfast.backend("numpy"):
        theirs = outputs()
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a == 0, b == 0)
        np.testing.assert_allclose(a, b, rtol=1e-15)


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_torch_over_training_and_eval(backend, rng, affine):
    ours = nn.BatchNorm1d(6, momentum=0.2, eps=1e-4, affine=affine, dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(6, momentum=0.2, eps=1e-4, affine=affine).double()
    if affine:
        gamma, beta = rng.uniform(0.5, 2, 6), rng.standard_normal(6)
        ours.gamma_param.data[...], ours.beta_param.data[...] = gamma, beta
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(gamma))
            theirs.bias.copy_(torch.tensor(beta))
    for step in range(3):  # several batches: the running statistics accumulate
        x = 3 * rng.standard_normal((9, 6)) + rng.standard_normal(6)
        g = rng.standard_normal((9, 6))
        ours.zero_grad()
        with skip_if_unimplemented():
            y = ours(x)
        dx = ours.backward(g)
        xt = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        yt = theirs(xt)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=REL, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=REL)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=REL)
        if affine:
            np.testing.assert_allclose(ours.gamma_param.grad, theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(ours.beta_param.grad, theirs.bias.grad.numpy(), rtol=REL, atol=1e-12)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((1, 6))  # one sample is fine in eval mode
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.ones_like(yt))
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=REL)
    np.testing.assert_allclose(ours.backward(np.ones((1, 6))), xt.grad.numpy(), rtol=REL)


def test_residual_adds_the_input_and_its_gradient(backend, rng):
    block = nn.Sequential(nn.Dense(4, 4, seed=0, dtype=np.float64), nn.Tanh())
    layer = nn.Residual(block)
    x, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    with skip_if_unimplemented():
        y = layer(x)
        layer(x)
        layer.backward(g)
    np.testing.assert_allclose(y, x + block(x), rtol=1e-15)
    layer.zero_grad()
    layer(x)
    dx = layer.backward(g)
    block_grads = [p.grad.copy() for p in block.parameters()]
    block.zero_grad()
    block(x)
    np.testing.assert_allclose(dx, g + block.backward(g), rtol=1e-15)
    for expected, p in zip(block_grads, block.parameters()):
        np.testing.assert_array_equal(p.grad, expected)
    assert layer.parameters() == block.parameters()
    assert (layer.in_features, layer.out_features) == (4, 4)
    # First in a model, fit() skips the input gradient: the block's parameter gradients remain.
    layer.zero_grad()
    layer(x)
    assert layer.backward(g, need_input_grad=False) is None
    for expected, p in zip(block_grads, block.parameters()):
        np.testing.assert_allclose(p.grad, expected, rtol=1e-15)


@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.05), (0.02, 0.03)])
def test_penalties_match_torch_over_sgd_steps(backend, rng, l1, l2):
    """loss = CE + l1 sum|W| + l2 sum W^2 over both weight matrices (not the biases)."""
    model = nn.Sequential(nn.Dense(5, 4, seed=0, dtype=np.float64, l1=l1, l2=l2), nn.Tanh(),
                          nn.Dense(4, 3, seed=1, dtype=np.float64, l1=l1, l2=l2))
    params = model.parameters()
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt, topt = optim.SGD(params, lr=0.1, momentum=0.9), torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    loss_fn = losses.CrossEntropy()
    for _ in range(5):
        opt.zero_grad()
        with skip_if_unimplemented():
            value = loss_fn(model(x), y) + model.penalty()
        model.backward(loss_fn.backward())
        opt.step()
        topt.zero_grad()
        h = torch.tanh(torch.tensor(x) @ theirs[0] + theirs[1])
        tloss = F.cross_entropy(h @ theirs[2] + theirs[3], torch.tensor(y))
        for w in (theirs[0], theirs[2]):
            tloss = tloss + l1 * w.abs().sum() + l2 * (w * w).sum()
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(value, tloss.item(), rtol=REL)
    for p, tp in zip(params, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_fit_and_evaluate_report_loss_plus_penalty(backend, rng):
    X, y = rng.standard_normal((40, 5)).astype(np.float32), rng.integers(0, 3, 40)
    model = nn.Sequential(nn.Dense(5, 8, seed=0, l2=0.1), nn.ReLU(), nn.Dense(8, 3, seed=1, l1=0.01))
    with skip_if_unimplemented():
        history = model.fit(X, y, optimizer=optim.SGD(lr=0.05), epochs=3, batch_size=8, verbose=0, seed=0)
    data_loss = losses.CrossEntropy()(model.predict(X), y)
    penalty = model.penalty()
    assert penalty > 0.1
    np.testing.assert_allclose(model.evaluate(X, y)["loss"], data_loss + penalty, rtol=1e-6)
    # The penalty pulls the weights in: the same run without it ends with a larger norm.
    plain = nn.Sequential(nn.Dense(5, 8, seed=0), nn.ReLU(), nn.Dense(8, 3, seed=1))
    plain.fit(X, y, optimizer=optim.SGD(lr=0.05), epochs=3, batch_size=8, verbose=0, seed=0)
    assert np.sum(model[0].weight ** 2) < np.sum(plain[0].weight ** 2)
    assert history["loss"][-1] > 0
