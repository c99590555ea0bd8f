"""Gradient clipping and learning-rate schedules, against PyTorch."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnfast import losses, nn, optim
from nnfast.nn.module import Parameter
from unimplemented import skip_if_unimplemented

torch = pytest.importorskip("torch")


def params_with_grads(rng, scale):
    shapes = [(7, 5), (5,), (5, 3), (3,)]
    params = [Parameter(rng.standard_normal(s), f"p{i}") for i, s in enumerate(shapes)]
    for p in params:
        p.grad[...] = scale * rng.standard_normal(p.shape)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    for p, t in zip(params, theirs):
        t.grad = torch.tensor(p.grad.copy())
    return params, theirs


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])  # below and above max_norm
def test_clip_grad_norm_matches_torch(backend, rng, scale):
    params, theirs = params_with_grads(rng, scale)
    with skip_if_unimplemented():
        norm = optim.clip_grad_norm(params, max_norm=1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.0)
    np.testing.assert_allclose(norm, expected.item(), rtol=1e-12)
    for p, t in zip(params, theirs):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    assert optim.grad_norm(params) <= 1.0 + 1e-9


def test_clip_grad_value_matches_torch(backend, rng):
    params, theirs = params_with_grads(rng, 2.0)
    with skip_if_unimplemented():
        optim.clip_grad_value(params, 0.5)
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for p, t in zip(params, theirs):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


@pytest.mark.parametrize("clip", ["clipnorm", "clipvalue"])
def test_optimizer_clips_before_each_step_as_torch(backend, rng, clip):
    model = nn.Sequential(nn.Dense(6, 4, seed=0, dtype=np.float64), nn.Tanh(),
                          nn.Dense(4, 3, seed=1, dtype=np.float64))
    params = model.parameters()
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = optim.Adam(params, lr=0.05, **{clip: 0.1})
    topt = torch.optim.Adam(theirs, lr=0.05)
    x, y = 5 * rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    loss_fn = losses.CrossEntropy()
    for _ in range(10):
        opt.zero_grad()
        with skip_if_unimplemented():
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            opt.step()
        topt.zero_grad()
        h = torch.tanh(torch.tensor(x) @ theirs[0] + theirs[1])
        torch.nn.functional.cross_entropy(h @ theirs[2] + theirs[3], torch.tensor(y)).backward()
        if clip == "clipnorm":
            torch.nn.utils.clip_grad_norm_(theirs, 0.1)
        else:
            torch.nn.utils.clip_grad_value_(theirs, 0.1)
        topt.step()
    for p, tp in zip(params, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)


SCHEDULES = {
    "step": (lambda: optim.StepLR(3, gamma=0.5),
             lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.5)),
    "exponential": (lambda: optim.ExponentialLR(0.8),
                    lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8)),
    "cosine": (lambda: optim.CosineAnnealingLR(10, eta_min=0.01),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, eta_min=0.01)),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_match_torch(name):
    ours, theirs = SCHEDULES[name]
    opt = optim.SGD([Parameter(np.zeros(2), "w")], lr=0.1)
    scheduler = ours().bind(opt)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    tscheduler = theirs(topt)
    for epoch in range(12):
        np.testing.assert_allclose(opt.lr, topt.param_groups[0]["lr"], rtol=1e-12, err_msg=f"epoch {epoch}")
        topt.step()
        tscheduler.step()
        scheduler.step()


def test_reduce_on_plateau_matches_torch():
    losses_seen = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97]
    opt = optim.SGD([Parameter(np.zeros(2), "w")], lr=0.1)
    scheduler = optim.ReduceLROnPlateau("loss", factor=0.5, patience=2, min_delta=0.01, cooldown=1,
                                        min_lr=0.02, optimizer=opt)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    tscheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        topt, factor=0.5, patience=2, threshold=0.01, threshold_mode="abs", cooldown=1, min_lr=0.02)
    lrs = []
    for value in losses_seen:
        scheduler.step({"loss": value})
        tscheduler.step(value)
        lrs.append(opt.lr)
        np.testing.assert_allclose(opt.lr, topt.param_groups[0]["lr"], rtol=1e-12)
    assert min(lrs) == 0.02 and lrs[0] == 0.1  # it did reduce, down to min_lr


def test_inverse_time_decay_and_warmup():
    opt = optim.SGD([Parameter(np.zeros(2), "w")], lr=0.1)
    scheduler = optim.InverseTimeDecay(0.5, optimizer=opt, warmup_epochs=2)
    lrs = [opt.lr] + [scheduler.step() for _ in range(4)]
    np.testing.assert_allclose(lrs, [0.1 / 3, 0.2 / 3, 0.1, 0.1 / 1.5, 0.1 / 2], rtol=1e-15)


def test_fit_steps_the_scheduler_per_epoch_and_logs_lr(backend, rng):
    X, y = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 2, 32)
    model = nn.Sequential(nn.Dense(4, 2, seed=0))
    with skip_if_unimplemented():
        history = model.fit(X, y, optimizer=optim.SGD(lr=0.1), scheduler=optim.StepLR(2, gamma=0.1),
                            epochs=5, verbose=0, seed=0)
    np.testing.assert_allclose(history["lr"], [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-12)
    decayed = nn.Sequential(nn.Dense(4, 2, seed=0)).fit(X, y, optimizer=optim.SGD(lr=0.1), decay=1.0,
                                                        epochs=3, verbose=0, seed=0)
    np.testing.assert_allclose(decayed["lr"], [0.1, 0.05, 0.1 / 3], rtol=1e-12)
    assert all(v > 0 for v in history["samples_per_sec"])
    cosine = optim.CosineAnnealingLR(4)
    model.fit(X, y, optimizer=optim.Adam(lr=0.01), scheduler=cosine, epochs=2, verbose=0)
    # optimizer=None continues the optimizer and its schedule where they stopped.
    history = model.fit(X, y, epochs=2, verbose=0)
    np.testing.assert_allclose(history["lr"], [0.01 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (2, 3)])
    assert history.epoch == [7, 8]
