"""Weighted losses: sample weights (Keras's), BCEWithLogits(pos_weight=) and
CrossEntropy(weight=) (torch's). Every backend's primitives against the NumPy reference,
the reference against torch, float64 gradient checks, and fit(class_weight=, sample_weight=)
on every backend and in the fused step against the weighted reference."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from conftest import DTYPES, assert_close
from nnfast import fused, losses, nn, optim
from nnfast.train import balanced_class_weight, sample_weights
from test_gradcheck import ATOL, RTOL, numerical_grad

HAS_CPP = "cpp" in nnfast.available_backends()


def _weights(rng, n, dtype, zeros=True):
    w = rng.uniform(0.1, 3.0, n)
    if zeros and n > 2:
        w[1] = 0.0  # a sample that does not count
    return w.astype(dtype)


# ----------------------------------------------------------------------------- primitives
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 1), (7, 3), (64, 10), (257, 13)])
@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("which", ["sample", "class", "both"])
def test_weighted_softmax_cross_entropy(backend, ref, rng, dtype, n, c, sparse, which):
    logits = (4 * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, n).astype(np.int64)
    target = labels if sparse else rng.dirichlet(np.ones(c), n).astype(dtype)
    kw = {}
    if which in ("sample", "both"):
        kw["sample_weight"] = _weights(rng, n, dtype)
    if which in ("class", "both"):
        kw["class_weight"] = rng.uniform(0.2, 4.0, c).astype(dtype)
    loss, probs = backend.softmax_cross_entropy_forward(logits, target, **kw)
    loss_ref, probs_ref = ref.softmax_cross_entropy_forward(logits, target, **kw)
    assert_close(loss, loss_ref, dtype, scale=8)
    grad = backend.softmax_cross_entropy_backward(probs_ref, target, **kw)
    assert_close(grad, ref.softmax_cross_entropy_backward(probs_ref, target, **kw), dtype, scale=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (64, 10), (131, 3), (9,)])
@pytest.mark.parametrize("loss", ["mse", "bce", "bce_with_logits", "bce_with_logits_pos"])
def test_weighted_elementwise_losses(backend, ref, rng, dtype, shape, loss):
    name = "bce_with_logits" if loss.startswith("bce_with_logits") else loss
    if name == "bce":
        pred = rng.uniform(0.001, 0.999, shape).astype(dtype)
    else:
        pred = (3 * rng.standard_normal(shape)).astype(dtype)
    target = (rng.uniform(size=shape) if name == "mse" else rng.integers(0, 2, shape)).astype(dtype)
    kw = {"sample_weight": _weights(rng, shape[0], dtype)}
    if loss == "bce_with_logits_pos":
        cols = shape[1] if len(shape) == 2 else 1
        kw["pos_weight"] = rng.uniform(0.5, 12.0, cols).astype(dtype)
    forward, backward = getattr(backend, f"{name}_forward"), getattr(backend, f"{name}_backward")
    assert_close(forward(pred, target, **kw), getattr(ref, f"{name}_forward")(pred, target, **kw),
                 dtype, scale=8)
    assert_close(backward(pred, target, **kw), getattr(ref, f"{name}_backward")(pred, target, **kw),
                 dtype, scale=8)


def test_unit_weights_change_nothing(backend, rng):
    """Weights of 1 give the unweighted loss and gradient, bitwise where the kernel multiplies
    by an exact 1 (all but BCE with logits, whose pos_weight form is another formula)."""
    logits, labels = rng.standard_normal((33, 4)), rng.integers(0, 4, 33).astype(np.int64)
    ones_n, ones_c = np.ones(33), np.ones(4)
    plain, probs = backend.softmax_cross_entropy_forward(logits, labels)
    weighted, _ = backend.softmax_cross_entropy_forward(logits, labels, sample_weight=ones_n,
                                                        class_weight=ones_c)
    assert weighted == plain
    np.testing.assert_array_equal(
        backend.softmax_cross_entropy_backward(probs, labels, sample_weight=ones_n),
        backend.softmax_cross_entropy_backward(probs, labels))
    z, t = rng.standard_normal((33, 2)), rng.integers(0, 2, (33, 2)).astype(float)
    np.testing.assert_allclose(backend.bce_with_logits_forward(z, t, pos_weight=np.ones(2)),
                               backend.bce_with_logits_forward(z, t), rtol=1e-14)


@pytest.mark.parametrize("call", [
    lambda b: b.mse_forward(np.zeros((4, 2)), np.zeros((4, 2)), sample_weight=np.ones(3)),
    lambda b: b.bce_with_logits_forward(np.zeros((4, 2)), np.zeros((4, 2)), pos_weight=np.ones(3)),
    lambda b: b.softmax_cross_entropy_forward(np.zeros((4, 3)), np.zeros(4, dtype=np.int64),
                                              class_weight=np.ones(2)),
    lambda b: b.mse_forward(np.zeros((4, 2)), np.zeros((4, 2)),
                            sample_weight=np.ones(4, dtype=np.float32)),
    lambda b: b.mse_forward(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), sample_weight=np.ones(2)),
], ids=["sample_shape", "pos_shape", "class_shape", "dtype", "3d"])
def test_weight_arguments_are_checked(backend, call):
    with pytest.raises((ValueError, TypeError)):
        call(backend)


# ----------------------------------------------------------------------------- against torch
torch_cases = ["bce_pos", "bce_pos_sample", "ce_weight", "ce_weight_sample", "ce_soft_weight",
               "mse_sample", "bce_probs_sample"]


def _torch_case(name, rng):
    """(nnfast loss, out, target, sample weights or None, torch loss of (out tensor))."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n = 11
    sw = rng.uniform(0.1, 3.0, n) if name.endswith("sample") else None
    tsw = None if sw is None else torch.tensor(sw)
    if name.startswith("bce_pos"):
        out, target = 4 * rng.standard_normal((n, 3)), rng.integers(0, 2, (n, 3)).astype(float)
        q = rng.uniform(0.5, 10.0, 3)
        per = lambda o: F.binary_cross_entropy_with_logits(  # noqa: E731
            o, torch.tensor(target), pos_weight=torch.tensor(q), reduction="none")
        return losses.BCEWithLogits(pos_weight=q), out, target, sw, per, tsw
    if name.startswith("ce_weight"):
        out, target = 3 * rng.standard_normal((n, 4)), rng.integers(0, 4, n)
        k = rng.uniform(0.2, 5.0, 4)
        if sw is None:
            return (losses.CrossEntropy(weight=k), out, target, None,
                    lambda o: F.cross_entropy(o, torch.tensor(target), weight=torch.tensor(k)), None)
        # torch has no sample weights: its weighted mean is sum(k_y l) / sum(k_y); the sample
        # weights multiply each term over the same denominator.
        per = lambda o: F.cross_entropy(o, torch.tensor(target), weight=torch.tensor(k),  # noqa: E731
                                        reduction="none")
        denom = float(k[target].sum())
        return (losses.CrossEntropy(weight=k), out, target, sw,
                lambda o: (per(o) * tsw).sum() / denom, None)
    if name == "ce_soft_weight":
        out, target = 3 * rng.standard_normal((n, 4)), rng.dirichlet(np.ones(4), n)
        k = rng.uniform(0.2, 5.0, 4)
        return (losses.CrossEntropy(weight=k), out, target, None,
                lambda o: F.cross_entropy(o, torch.tensor(target), weight=torch.tensor(k)), None)
    if name == "mse_sample":
        out, target = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
        per = lambda o: F.mse_loss(o, torch.tensor(target), reduction="none")  # noqa: E731
        return losses.MSE(), out, target, sw, per, tsw
    out, target = rng.uniform(0.05, 0.95, (n, 1)), rng.integers(0, 2, (n, 1)).astype(float)
    per = lambda o: F.binary_cross_entropy(o, torch.tensor(target), reduction="none")  # noqa: E731
    return losses.BinaryCrossEntropy(), out, target, sw, per, tsw


@pytest.mark.parametrize("name", torch_cases)
def test_weighted_losses_match_torch(backend, rng, name):
    """Value and gradient against torch in float64 to 1e-10; per-element torch losses with
    Keras's sample weighting, sum(w_i l_i) / numel, where torch has no sample weights."""
    torch = pytest.importorskip("torch")
    loss_fn, out, target, sw, torch_fn, tsw = _torch_case(name, rng)
    value = loss_fn(out, target, sample_weight=sw)
    grad = loss_fn.backward()
    ot = torch.tensor(out, dtype=torch.float64, requires_grad=True)
    lt = torch_fn(ot)
    if lt.ndim and tsw is None:
        lt = lt.mean()
    elif lt.ndim:  # per-element losses: weight rows, mean over every element
        lt = (lt * (tsw[:, None] if lt.ndim == 2 else tsw)).sum() / lt.numel()
    lt.backward()
    np.testing.assert_allclose(value, lt.item(), rtol=1e-10)
    # A gradient entry where the two terms of the pos_weight form nearly cancel (1e-7 against
    # 0.25 elsewhere) keeps float64's absolute error, not its relative one: hence an atol
    # of 1e-13 of the largest entry.
    want = ot.grad.numpy()
    np.testing.assert_allclose(grad, want, rtol=1e-10, atol=1e-13 * np.abs(want).max())


# ----------------------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("name", torch_cases)
def test_weighted_loss_gradients(backend, rng, name):
    """float64 finite differences of every weighted loss (torch only supplies the cases)."""
    pytest.importorskip("torch")
    loss_fn, out, target, sw, _, _ = _torch_case(name, rng)
    loss_fn(out, target, sample_weight=sw)
    analytic = loss_fn.backward()
    numeric = numerical_grad(lambda: loss_fn(out, target, sample_weight=sw), out)
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- fit
def _binary_data(rng, n=97, features=6):
    X = rng.standard_normal((n, features))
    y = (X[:, 0] + 0.5 * rng.standard_normal(n) > 0.9).astype(np.float64)  # imbalanced
    return X, y


def _model(out, seed=3):
    return nn.Sequential(nn.Dense(6, 8, seed=seed, dtype=np.float64), nn.Tanh(),
                         nn.Dense(8, out, seed=seed + 1, dtype=np.float64))


def _manual_run(model, loss_fn, X, y, w, epochs, batch):
    """fit()'s float64 trajectory, written out on the NumPy reference: SGD on each batch of
    fit()'s order, with the weighted loss of the batch."""
    opt = optim.SGD(model.parameters(), lr=0.1)
    with nnfast.backend("numpy"):
        for epoch in range(epochs):
            order = nnfast.train.epoch_order(5, epoch, len(X))
            for first in range(0, len(X), batch):
                idx = order[first:first + batch]
                opt.zero_grad()
                loss_fn(model(X[idx]), y[idx], sample_weight=w[idx])
                model.backward(loss_fn.backward())
                opt.step()
    return model


@pytest.mark.parametrize("loss_name", ["bce_with_logits", "cross_entropy", "mse"])
def test_fit_with_weights_follows_the_weighted_reference(backend, rng, loss_name):
    """fit(class_weight=, sample_weight=) on every backend (the fused step on cpp) gives the
    weights of the weighted loss trained by hand on the NumPy reference, to 1e-10."""
    X, y = _binary_data(rng)
    sw = _weights(rng, len(X), np.float64)
    if loss_name == "cross_entropy":
        target, out, cw = y.astype(np.int64), 2, {1: 4.0}
        loss_fn = losses.CrossEntropy(weight=[1.0, 2.5])
    elif loss_name == "bce_with_logits":
        target, out, cw = y, 1, "balanced"
        loss_fn = losses.BCEWithLogits(pos_weight=3.0)
    else:
        target, out, cw = np.stack([y, -y], axis=1), 2, None
        loss_fn = losses.MSE()
    model = _model(out)
    if backend.name == "cpp":
        assert fused.unsupported_reason(model, loss_fn, optim.SGD(lr=0.1), target) is None
    model.fit(X, target, loss=loss_fn, optimizer=optim.SGD(lr=0.1), epochs=3, batch_size=16,
              seed=5, verbose=0, sample_weight=sw, class_weight=cw)
    w = sample_weights(loss_fn, loss_fn.prepare_target(target, (len(X), out), np.float64), out,
                       np.float64, sw, cw)
    expected = _manual_run(_model(out), loss_fn, X, target, w, 3, 16)
    for p, q in zip(model.parameters(), expected.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not HAS_CPP, reason="the compiled backend is not available")
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_and_layer_paths_agree_with_weights(rng, monkeypatch, dtype):
    """With class and sample weights the fused step and the cpp layer path run the same
    kernels in the same order: bitwise the same weights in float64."""
    from nnfast import executor, train
    X, y = _binary_data(rng)
    X, y = X.astype(dtype), y.astype(dtype)
    sw = _weights(rng, len(X), np.float64)
    results = []
    for path in ("fused", "layers"):
        if path == "layers":
            monkeypatch.setattr(train, "executor_for",
                                lambda m, loss, o, X_, y_, w=None: executor.LayerwiseStep(m, loss, o))
        model = nn.Sequential(nn.Dense(6, 8, seed=1, dtype=dtype), nn.ReLU(),
                              nn.Dense(8, 1, seed=2, dtype=dtype))
        with nnfast.backend("cpp"):
            model.fit(X, y, loss=losses.BCEWithLogits(pos_weight=2.0), optimizer=optim.Adam(lr=1e-2),
                      epochs=2, batch_size=8, seed=1, verbose=0, sample_weight=sw,
                      class_weight={1: 3.0})
        results.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*results):
        if dtype == np.float64:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_balanced_class_weight_is_sklearns(rng):
    sk = pytest.importorskip("sklearn.utils.class_weight")
    labels = rng.integers(0, 3, 50)
    labels[labels == 2] = rng.integers(0, 2, (labels == 2).sum())  # a rare class
    labels[0] = 2
    np.testing.assert_allclose(balanced_class_weight(labels, 3),
                               sk.compute_class_weight("balanced", classes=np.arange(3), y=labels))


def test_class_weight_combines_with_sample_weight(rng):
    y = np.array([0, 1, 1, 0, 1], dtype=np.int64)
    w = sample_weights(losses.CrossEntropy(), y, 2, np.float64, np.arange(1.0, 6.0), {1: 10.0})
    np.testing.assert_array_equal(w, [1.0, 20.0, 30.0, 4.0, 50.0])
    yb = np.array([[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(
        sample_weights(losses.BCEWithLogits(), yb, 1, np.float64, None, "balanced"),
        [1.5, 0.75, 0.75])


@pytest.mark.parametrize("kwargs,error", [
    (dict(class_weight={2: 1.0}), "not a class"),
    (dict(class_weight={1: -1.0}), "finite"),
    (dict(class_weight="heavy"), "balanced"),
    (dict(class_weight=[1.0, 2.0]), "dict"),
    (dict(sample_weight=np.ones(3)), "shape"),
    (dict(sample_weight=-np.ones(40)), ">= 0"),
    (dict(loss="mse", class_weight={1: 2.0}), "classification loss"),
])
def test_fit_weight_errors(rng, kwargs, error):
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 2, 40).astype(float)
    model = _model(1)
    kwargs.setdefault("loss", "bce_with_logits")
    with pytest.raises((ValueError, TypeError), match=error):
        model.fit(X, y, verbose=0, **kwargs)
    assert model.epochs_trained == 0


def test_validation_split_drops_the_held_out_weights(rng):
    """The held-out rows' sample weights go with them: the training loss is the one over the
    kept rows' weights only."""
    X, y = _binary_data(rng, n=40)
    sw = np.ones(40)
    sw[-10:] = 1e6  # would dominate the training loss if they were used for training
    model = _model(1)
    history = model.fit(X, y, loss="bce_with_logits", optimizer=optim.SGD(lr=1e-12), epochs=1,
                        batch_size=30, shuffle=False, verbose=0, validation_split=0.25,
                        sample_weight=sw)
    assert history.history["loss"][0] < 10


def test_loss_weights_survive_save_and_load(tmp_path, rng):
    X, y = _binary_data(rng, n=40)
    model = _model(1)
    model.fit(X, y, loss=losses.BCEWithLogits(pos_weight=4.0), epochs=1, verbose=0)
    nnfast.save(model, tmp_path / "m.npz")
    loaded = nnfast.load(tmp_path / "m.npz")
    assert isinstance(loaded.loss, losses.BCEWithLogits)
    np.testing.assert_array_equal(loaded.loss.pos_weight, [4.0])


@pytest.mark.parametrize("make", [lambda: losses.CrossEntropy(weight=[[1.0]]),
                                  lambda: losses.CrossEntropy(weight=[1.0, -1.0]),
                                  lambda: losses.BCEWithLogits(pos_weight=[np.nan])])
def test_loss_weight_arguments_are_checked(make):
    with pytest.raises(ValueError):
        make()


def test_pos_weight_must_fit_the_outputs(rng):
    with pytest.raises(ValueError, match="output column"):
        losses.BCEWithLogits(pos_weight=[1.0, 2.0])(rng.standard_normal((4, 3)), np.zeros((4, 3)))
