"""The reference semantics checked against PyTorch (CPU, float64): activations, losses and
20 optimizer steps agree to 1e-10 relative, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import losses, nn, optim

torch = pytest.importorskip("torch")
F = torch.nn.functional
REL = 1e-10


def t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


ACTIVATION_PAIRS = [
    (nn.ReLU(), F.relu), (nn.LeakyReLU(0.2), lambda z: F.leaky_relu(z, 0.2)),
    (nn.Sigmoid(), torch.sigmoid), (nn.Tanh(), torch.tanh), (nn.Softmax(), lambda z: F.softmax(z, dim=1)),
    (nn.GELU(), F.gelu), (nn.GELU(approximate="tanh"), lambda z: F.gelu(z, approximate="tanh")),
    (nn.SiLU(), F.silu), (nn.ELU(0.7), lambda z: F.elu(z, 0.7)),
]


@pytest.mark.parametrize("layer,torch_fn", ACTIVATION_PAIRS, ids=lambda v: repr(v) if isinstance(v, nn.Layer) else "")
def test_activations_match_torch(backend, rng, layer, torch_fn):
    x = 3 * rng.standard_normal((9, 5))
    g = rng.standard_normal((9, 5))
    xt = t(x)
    yt = torch_fn(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=REL, atol=1e-14)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=REL, atol=1e-14)


def _torch_loss(name, out, target):
    if name == "mse":
        return F.mse_loss(out, torch.tensor(target))
    if name == "bce":
        return F.binary_cross_entropy(out, torch.tensor(target))
    if name == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(out, torch.tensor(target))
    if name == "ce_sparse":
        return F.cross_entropy(out, torch.tensor(target))
    return F.cross_entropy(out, torch.tensor(target))  # probabilities as targets


@pytest.mark.parametrize("name", ["mse", "bce", "bce_with_logits", "ce_sparse", "ce_soft"])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_losses_match_torch(backend, rng, name, scale):
    if name == "bce":
        out = rng.uniform(0, 1, (8, 3))
        if scale > 1:
            out[0, 0], out[1, 1] = 0.0, 1.0  # saturated probabilities: torch clamps the log at -100
        target = rng.integers(0, 2, (8, 3)).astype(float)
        loss_fn = losses.BinaryCrossEntropy()
    elif name == "mse":
        out, target, loss_fn = scale * rng.standard_normal((8, 3)), rng.standard_normal((8, 3)), losses.MSE()
    elif name == "bce_with_logits":
        out, target = scale * rng.standard_normal((8, 3)), rng.integers(0, 2, (8, 3)).astype(float)
        loss_fn = losses.BCEWithLogits()
    else:
        out = scale * rng.standard_normal((8, 5))
        target = rng.integers(0, 5, 8) if name == "ce_sparse" else rng.dirichlet(np.ones(5), 8)
        loss_fn = losses.CrossEntropy()
    value = loss_fn(out, target)
    grad = loss_fn.backward()
    ot = t(out)
    lt = _torch_loss(name, ot, target)
    lt.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, lt.item(), rtol=REL)
    # At a saturated probability the gradient is ~1e10 and torch's guard differs from
    # (p - y) / max(p (1 - p), 1e-12) in the 9th digit; everywhere else they agree to REL.
    rtol = 1e-8 if name == "bce" and scale > 1 else REL
    np.testing.assert_allclose(grad, ot.grad.numpy(), rtol=rtol, atol=1e-300)


OPTIMIZERS = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd_wd": (lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01),
               lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01)),
    "momentum": (lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "nesterov": (lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": (lambda p: optim.Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    "adam_l2": (lambda p: optim.Adam(p, lr=1e-2, weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1)),
    "adamw": (lambda p: optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05),
              lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_match_torch_over_20_steps(backend, rng, name):
    """Same weights, same gradients every step (a fixed quadratic-ish loss), 20 steps."""
    make_ours, make_theirs = OPTIMIZERS[name]
    model = nn.Sequential(nn.Dense(6, 4, seed=0, dtype=np.float64), nn.Tanh(),
                          nn.Dense(4, 3, seed=1, dtype=np.float64))
    params = model.parameters()
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt, topt = make_ours(params), make_theirs(theirs)
    x, y = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    loss_fn = losses.CrossEntropy()
    for step in range(20):
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        topt.zero_grad()
        h = torch.tanh(torch.tensor(x) @ theirs[0] + theirs[1])
        F.cross_entropy(h @ theirs[2] + theirs[3], torch.tensor(y)).backward()
        for p, tp in zip(params, theirs):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=REL, atol=1e-15,
                                       err_msg=f"step {step}: gradient of {p.name}")
        opt.step()
        topt.step()
        if step == 10:  # the learning rate can change between steps
            opt.lr *= 0.5
            for group in topt.param_groups:
                group["lr"] *= 0.5
    for p, tp in zip(params, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=REL, atol=1e-14)
