"""The fused training step (one C++ call per batch) against the layer-by-layer NumPy
reference: same losses and weights over 50 steps, for every supported combination."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import fused, losses, nn, optim

pytestmark = pytest.mark.skipif("cpp" not in nnfast.available_backends(),
                                reason="the compiled backend is not available")

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "sigmoid": nn.Sigmoid,
               "tanh": nn.Tanh, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"),
               "leaky_negative": lambda: nn.LeakyReLU(-0.2)}
OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "momentum_wd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "adam_l2": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.05),
}
TOL = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=2e-3, atol=2e-5)}


def make_model(act, dtype, out, seed=0):
    return nn.Sequential(nn.Dense(13, 17, seed=seed, dtype=dtype), ACTIVATIONS[act](),
                         nn.Dense(17, 9, seed=seed + 1, dtype=dtype), ACTIVATIONS[act](),
                         nn.Dense(9, out, seed=seed + 2, dtype=dtype))


def data(loss_name, dtype, rng, n=101, out=5):
    X = rng.standard_normal((n, 13)).astype(dtype)
    if loss_name == "cross_entropy":
        return X, rng.integers(0, out, n).astype(np.int64)
    if loss_name == "bce_with_logits":
        return X, rng.integers(0, 2, (n, out)).astype(dtype)
    return X, rng.standard_normal((n, out)).astype(dtype)


def run_both(act, loss_name, opt_name, dtype, rng, steps, batch=16):
    X, y = data(loss_name, dtype, rng)
    fused_model, ref_model = make_model(act, dtype, 5), make_model(act, dtype, 5)
    fused_opt = OPTIMIZERS[opt_name](fused_model.parameters())
    ref_opt = OPTIMIZERS[opt_name](ref_model.parameters())
    loss_fn = losses.get(loss_name)
    with nnfast.backend("cpp"):
        assert fused.unsupported_reason(fused_model, loss_fn, fused_opt, y) is None
        trainer = fused.FusedTrainer(fused_model, loss_fn, fused_opt)
    order = rng.permutation(np.tile(np.arange(len(X)), steps * batch // len(X) + 1))
    fused_losses, ref_losses = [], []
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch].copy()
        with nnfast.backend("cpp"):
            fused_losses.append(trainer.step(X, y, idx)[0])
        with nnfast.backend("numpy"):
            ref_opt.zero_grad()
            ref_losses.append(loss_fn(ref_model(X[idx]), y[idx]))
            ref_model.backward(loss_fn.backward())
            ref_opt.step()
    return fused_model, ref_model, fused_losses, ref_losses


# Float32 trajectories are compared only through smooth activations: at a kink (ReLU's 0)
# a pre-activation within float32 rounding of it takes the other derivative in one of the
# two runs, and Adam turns that one-unit difference into percent-level weight differences
# a few steps later (seed 3591919498 meets |z| = 9e-8 at step 14 with ReLU; the gradients
# of both runs agree to 1e-8 given the same weights). Float64 checks every activation.
PIECEWISE_LINEAR = ("relu", "leaky_relu", "leaky_negative")
TRAJECTORY_CASES = [(np.float64, act) for act in ACTIVATIONS] + \
                   [(np.float32, act) for act in ACTIVATIONS if act not in PIECEWISE_LINEAR]


@pytest.mark.parametrize(("dtype", "act"), TRAJECTORY_CASES)
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce_with_logits"])
def test_fused_matches_reference_over_50_steps(rng, dtype, act, loss_name):
    fused_model, ref_model, fused_losses, ref_losses = run_both(act, loss_name, "adam_l2", dtype, rng, 50)
    np.testing.assert_allclose(fused_losses, ref_losses, **TOL[dtype])
    for p, q in zip(fused_model.parameters(), ref_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, **TOL[dtype], err_msg=p.name)
        np.testing.assert_allclose(p.grad, q.grad, **TOL[dtype], err_msg=f"grad of {p.name}")


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_fused_optimizers_match_reference(rng, opt_name):
    fused_model, ref_model, fused_losses, ref_losses = run_both("relu", "cross_entropy", opt_name,
                                                                np.float64, rng, 50)
    np.testing.assert_allclose(fused_losses, ref_losses, **TOL[np.float64])
    for p, q in zip(fused_model.parameters(), ref_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, **TOL[np.float64])


def test_fit_uses_fused_step_and_matches_layer_path(rng, monkeypatch):
    X, y = data("cross_entropy", np.float32, rng, n=300)
    calls = []
    original = fused.FusedTrainer.step
    monkeypatch.setattr(fused.FusedTrainer, "step", lambda self, *a: calls.append(1) or original(self, *a))
    results = {}
    for name in ("cpp", "numpy"):
        model = make_model("tanh", np.float32, 5)
        with nnfast.backend(name):
            history = model.fit(X, y, optimizer=optim.Adam(lr=1e-2), epochs=3, batch_size=32,
                                seed=7, verbose=0)
        results[name] = (model, history)
    assert len(calls) == 3 * 10  # every batch of the cpp run went through the fused step
    (fm, fh), (rm, rh) = results["cpp"], results["numpy"]
    np.testing.assert_allclose(fh["loss"], rh["loss"], rtol=1e-4)
    np.testing.assert_allclose(fh["accuracy"], rh["accuracy"], atol=1 / 300 + 1e-9)
    for p, q in zip(fm.parameters(), rm.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("model_fn,loss,target_2d,why", [
    (lambda: nn.Sequential(nn.Dense(4, 3), nn.Softmax()), "cross_entropy", False, "Softmax"),
    (lambda: nn.Sequential(nn.Dense(4, 3)), "cross_entropy", True, "one-hot"),
    (lambda: nn.Sequential(nn.Dense(4, 1), nn.Sigmoid()), "bce", False, "BinaryCrossEntropy"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Dense(4, 3)), "cross_entropy", False, "not fusable"),
])
def test_unsupported_combinations_say_why(model_fn, loss, target_2d, why):
    model = model_fn()
    y = np.eye(3)[[0, 1]] if target_2d else np.array([0, 1])
    with nnfast.backend("cpp"):
        reason = fused.unsupported_reason(model, losses.get(loss), optim.Adam(), y)
    assert reason is not None and why in reason
    with nnfast.backend("numpy"):
        assert "no fused step" in fused.unsupported_reason(model, losses.get(loss), optim.Adam(), y)


def test_trainer_rejects_bad_arguments(rng):
    model = make_model("relu", np.float32, 5)
    opt = optim.Adam(model.parameters())
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(model, losses.CrossEntropy(), opt)
    X, y = data("cross_entropy", np.float32, rng, n=20)
    with pytest.raises(ValueError, match=r"idx: row 20 outside \[0, 20\)"):
        trainer.step(X, y, np.array([0, 20]))
    with pytest.raises(TypeError, match="idx"):
        trainer.step(X, y, np.array([0, 1], dtype=np.int32))
    with pytest.raises(ValueError, match=r"label 7 outside \[0, 5\)"):
        trainer.step(X, np.full(20, 7), np.array([0, 1]))
    with pytest.raises(TypeError, match="X"):
        trainer.step(X.astype(np.float64), y, np.array([0, 1]))
    with pytest.raises(ValueError, match="expected 13 features"):
        trainer.step(X[:, :12].copy(), y, np.array([0, 1]))
    assert opt.step_count == 0  # nothing ran


def test_fused_predict_matches_forward(rng):
    model = make_model("gelu", np.float64, 5)
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(model, losses.CrossEntropy(), optim.SGD(model.parameters()))
        X = rng.standard_normal((7, 13))
        out = np.empty((7, 5))
        assert trainer.trainer.predict(X, out) is out
    with nnfast.backend("numpy"):
        np.testing.assert_allclose(out, model(X), rtol=1e-12, atol=1e-14)


def test_model_predict_uses_compiled_forward_and_tracks_new_weights(rng):
    model = make_model("relu", np.float32, 5)
    x = rng.standard_normal(13).astype(np.float32)
    with nnfast.backend("cpp"):
        first = model.predict(x)
        assert model._fused_predictor is not None
        model.layers[0].weight_param.data = model.layers[0].weight * 2  # replaced, not updated in place
        second = model.predict(x)
    with nnfast.backend("numpy"):
        expected = model.predict(x)
    assert first.shape == (5,)
    np.testing.assert_allclose(second, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", PIECEWISE_LINEAR)
def test_fused_float32_gradients_match_reference_at_the_same_weights(rng, act):
    """The float32 counterpart for kinked activations: every step, the reference starts from
    the fused model's weights, so the gradients are compared without the flips compounding."""
    X, y = data("cross_entropy", np.float32, rng)
    fused_model, ref_model = make_model(act, np.float32, 5), make_model(act, np.float32, 5)
    loss_fn = losses.get("cross_entropy")
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(fused_model, loss_fn, optim.Adam(fused_model.parameters(), lr=1e-2))
    for _ in range(20):
        idx = rng.choice(len(X), 16)
        for p, q in zip(fused_model.parameters(), ref_model.parameters()):
            q.data[...] = p.data
            q.grad[...] = 0
        with nnfast.backend("numpy"):
            h, smallest_preactivation = X[idx], np.inf
            for layer in ref_model.layers:
                h = layer(h)
                if isinstance(layer, nn.Dense) and layer is not ref_model.layers[-1]:
                    smallest_preactivation = min(smallest_preactivation, np.abs(h).min())
            ref_loss = loss_fn(h, y[idx])
            ref_model.backward(loss_fn.backward())
        with nnfast.backend("cpp"):
            fused_loss = trainer.step(X, y, idx)[0]
        np.testing.assert_allclose(fused_loss, ref_loss, rtol=1e-5)
        if smallest_preactivation < 1e-5:  # either derivative is right at the kink
            continue
        for p, q in zip(fused_model.parameters(), ref_model.parameters()):
            scale = np.abs(q.grad).max()
            np.testing.assert_allclose(p.grad, q.grad, rtol=0, atol=1e-4 * scale, err_msg=p.name)
