"""The fused training step (one C++ call per batch) against the layer-by-layer NumPy
reference: same losses and weights over 50 steps, for every supported combination."""
from __future__ import annotations

import contextlib
import gc
import warnings
import weakref

import numpy as np
import pytest

import nnfast
from nnfast import fused, losses, nn, optim

pytestmark = pytest.mark.skipif("cpp" not in nnfast.available_backends(),
                                reason="the compiled backend is not available")

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "sigmoid": nn.Sigmoid,
               "tanh": nn.Tanh, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"),
               "leaky_negative": lambda: nn.LeakyReLU(-0.2), "silu": nn.SiLU,
               "elu": lambda: nn.ELU(0.7)}
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


def reference_step(model, opt, loss_fn, xb, yb):
    """One layer-by-layer step as fit() takes it; returns the loss fit() logs."""
    opt.zero_grad()
    value = loss_fn(model(xb), yb) + model.penalty()
    model.backward(loss_fn.backward())
    opt.step()
    return value


def run_models(model_fn, opt_fn, loss_name, dtype, rng, steps, batch=16, layer_backend="numpy"):
    """Train two copies of model_fn() for `steps` batches: one with the fused step (cpp), one
    layer by layer on `layer_backend` (the NumPy reference), on the same batches."""
    X, y = data(loss_name, dtype, rng)
    fused_model, ref_model = model_fn(), model_fn()
    fused_opt, ref_opt = opt_fn(fused_model.parameters()), opt_fn(ref_model.parameters())
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
        with nnfast.backend(layer_backend):
            ref_losses.append(reference_step(ref_model, ref_opt, loss_fn, X[idx], y[idx]))
    return fused_model, ref_model, fused_losses, ref_losses


def run_both(act, loss_name, opt_name, dtype, rng, steps, batch=16):
    return run_models(lambda: make_model(act, dtype, 5), OPTIMIZERS[opt_name], loss_name, dtype,
                      rng, steps, batch)


# Float32 trajectories are compared only through smooth activations: at a kink (ReLU's 0,
# ELU's too unless alpha = 1) a pre-activation within float32 rounding of it takes the
# other derivative in one of the two runs, and Adam turns that one-unit difference into
# percent-level weight differences a few steps later (seed 3591919498 meets |z| = 9e-8 at
# step 14 with ReLU; the gradients of both runs agree to 1e-8 given the same weights).
# Float64 checks every activation.
KINKED = ("relu", "leaky_relu", "leaky_negative", "elu")
TRAJECTORY_CASES = [(np.float64, act) for act in ACTIVATIONS] + \
                   [(np.float32, act) for act in ACTIVATIONS if act not in KINKED]


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


@pytest.fixture
def fused_steps(monkeypatch):
    """A list that grows by one with every fused step taken: "batch" for a step of its own
    call, "epoch" for one of a whole epoch's call."""
    calls = []
    step, steps = fused.FusedTrainer.step, fused.FusedTrainer.steps

    def epoch(self, *args):
        losses, correct = steps(self, *args)
        calls.extend(["epoch"] * len(losses))
        return losses, correct

    monkeypatch.setattr(fused.FusedTrainer, "step",
                        lambda self, *a: calls.append("batch") or step(self, *a))
    monkeypatch.setattr(fused.FusedTrainer, "steps", epoch)
    return calls


def test_fit_uses_fused_step_and_matches_layer_path(rng, fused_steps):
    X, y = data("cross_entropy", np.float32, rng, n=300)
    results = {}
    for name in ("cpp", "numpy"):
        model = make_model("tanh", np.float32, 5)
        with nnfast.backend(name):
            history = model.fit(X, y, optimizer=optim.Adam(lr=1e-2), epochs=3, batch_size=32,
                                seed=7, verbose=0)
        results[name] = (model, history)
    assert len(fused_steps) == 3 * 10  # every batch of the cpp run went through the fused step
    (fm, fh), (rm, rh) = results["cpp"], results["numpy"]
    np.testing.assert_allclose(fh["loss"], rh["loss"], rtol=1e-4)
    np.testing.assert_allclose(fh["accuracy"], rh["accuracy"], atol=1 / 300 + 1e-9)
    for p, q in zip(fm.parameters(), rm.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-3, atol=1e-4)


class _Scale(nn.Layer):
    """A custom layer: runs on the layer-by-layer path only."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad_out):
        return 2 * grad_out


@pytest.mark.parametrize("model_fn,loss,target_2d,why", [
    (lambda: nn.Sequential(nn.Dense(4, 3), nn.Softmax()), "cross_entropy", False, "Softmax"),
    (lambda: nn.Sequential(nn.Dense(4, 3)), "cross_entropy", True, "one-hot"),
    (lambda: nn.Sequential(nn.Dense(4, 1), nn.Sigmoid()), "bce", False, "BinaryCrossEntropy"),
    (lambda: nn.Sequential(nn.Dense(4, 4), nn.Residual(_Scale())), "cross_entropy", False,
     "_Scale has no op record"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Dropout(0.5)), "cross_entropy", False, "without Dense"),
    (lambda: nn.Sequential(nn.Dense(4, 4), nn.BatchNorm1d(4, dtype=np.float64), nn.Dense(4, 3)),
     "cross_entropy", False, "mix float32 and float64"),
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_ready_runs_a_ready_input_and_gives_none_for_any_other(rng, dtype):
    """predict()'s one-call path: a finite C-contiguous, aligned (in) or (rows, in) array of
    the model's dtype with 1 <= rows <= max_rows runs; anything else gives None (check_inputs
    then converts it or says what is wrong), a non-finite value anywhere included."""
    model = make_model("gelu", dtype, 5)
    with nnfast.backend("cpp"):
        compiled = fused.predictor(model)
    X = rng.standard_normal((7, 13)).astype(dtype)
    expected = compiled.predict(X, None)
    np.testing.assert_array_equal(compiled.predict_ready(X, 7), expected)
    single = compiled.predict_ready(X[2], 1)
    assert single.shape == (5,)
    np.testing.assert_array_equal(single, expected[2])
    largest = X.copy()
    largest[4, 5] = -np.finfo(dtype).max
    assert compiled.predict_ready(largest, 7) is not None
    other = np.float64 if dtype == np.float32 else np.float32
    unaligned = np.frombuffer(b"\0" + X.tobytes(), dtype=dtype, offset=1).reshape(X.shape)
    for not_ready, max_rows in [(X, 6), (X.astype(other), 7), (np.asfortranarray(X), 7),
                                (X[:, :12].copy(), 7), (X[:0], 7), (X[::2], 7), (X[None], 7),
                                (X.tolist(), 7), (X[2, :12].copy(), 1), (unaligned, 7)]:
        assert compiled.predict_ready(not_ready, max_rows) is None
    for bad in (np.nan, np.inf, -np.inf):
        for row, column in [(0, 0), (3, 7), (6, 12)]:
            with_bad = X.copy()
            with_bad[row, column] = bad
            assert compiled.predict_ready(with_bad, 7) is None
            assert compiled.predict_ready(with_bad[row], 1) is None


def test_model_predict_gives_the_same_outputs_on_every_path(rng):
    """A ready input (one C++ call), one converted by check_inputs (float64 data, Fortran
    order) and one split into batches give the same outputs."""
    model = make_model("relu", np.float32, 5)
    X = rng.standard_normal((9, 13)).astype(np.float32)
    with nnfast.backend("cpp"):
        ready = model.predict(X)
        for other in (X.astype(np.float64), np.asfortranarray(X)):
            np.testing.assert_array_equal(model.predict(other), ready)
        # Other row counts may take other GEMM kernels: equal up to float32 rounding.
        np.testing.assert_allclose(model.predict(X, batch_size=4), ready, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(model.predict(X[3]), ready[3], rtol=1e-6, atol=1e-7)
    with nnfast.backend("numpy"):
        np.testing.assert_allclose(ready, model.predict(X), rtol=1e-5, atol=1e-6)


def test_model_predict_uses_compiled_forward_and_tracks_new_weights(rng):
    model = make_model("relu", np.float32, 5)
    x = rng.standard_normal(13).astype(np.float32)
    with nnfast.backend("cpp"):
        first = model.predict(x)
        assert fused.predictor(model) is not None
        model.layers[0].weight_param.data = model.layers[0].weight * 2  # replaced, not updated in place
        second = model.predict(x)
    with nnfast.backend("numpy"):
        expected = model.predict(x)
    assert first.shape == (5,)
    np.testing.assert_allclose(second, expected, rtol=1e-5, atol=1e-6)


def test_model_predict_tracks_replaced_buffers_and_changed_layers(rng):
    model = everything_model(np.float64)
    X = rng.standard_normal((4, 13))
    with nnfast.backend("cpp"):
        model.predict(X)
        model.layers[2].running_mean = rng.standard_normal(17)  # a new array, not written in place
        model.layers[1] = nn.Tanh()  # a layer swapped in the list
        got = model.predict(X)
    with nnfast.backend("numpy"):
        np.testing.assert_allclose(got, model.eval()(X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("change", ["set", "append", "pop", "nested", "parameter"])
def test_model_predict_follows_each_single_change(rng, change):
    """predict() re-keys its compiled forward only after an edit (module.edits()): each kind
    of change alone, with nothing else set between the two calls, must reach it."""
    inner = nn.Sequential(nn.Dense(6, 6, seed=2, dtype=np.float64), nn.ReLU())
    model = nn.Sequential(nn.Dense(5, 6, seed=0, dtype=np.float64), nn.ReLU(), nn.Residual(inner),
                          nn.Dense(6, 3, seed=1, dtype=np.float64))
    X = rng.standard_normal((4, 5))
    swap = {"set": lambda: model.layers.__setitem__(1, nn.Tanh()),
            "append": lambda: model.layers.append(nn.Tanh()),
            "pop": lambda: model.layers.pop(1),
            "nested": lambda: inner.layers.__setitem__(1, nn.Tanh()),
            "parameter": lambda: setattr(model.layers[3].weight_param, "data",
                                         rng.standard_normal((6, 3)))}[change]
    with nnfast.backend("cpp"):
        before = model.predict(X)
        swap()
        got = model.predict(X)
    with nnfast.backend("numpy"):
        expected = model.eval()(X)
    assert not np.allclose(before, expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", KINKED)
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


# ----------------------------------------------------------------------------- training features
# Dropout, BatchNorm1d, L1/L2 penalties and gradient clipping in the fused step, against the
# layer-by-layer NumPy reference over 50 steps.


def assert_same_training(fused_model, ref_model, fused_losses, ref_losses, dtype):
    np.testing.assert_allclose(fused_losses, ref_losses, **TOL[dtype])
    for p, q in zip(fused_model.parameters(), ref_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, **TOL[dtype], err_msg=p.name)
        np.testing.assert_allclose(p.grad, q.grad, **TOL[dtype], err_msg=f"grad of {p.name}")
    for a, b in zip(fused_model.buffers(), ref_model.buffers()):
        np.testing.assert_allclose(a, b, **TOL[dtype], err_msg="running statistics")
    for a, b in zip(fused_model.layers, ref_model.layers):
        assert getattr(a, "offset", None) == getattr(b, "offset", None)  # dropout counters


# Feature models come kinked (ReLU, L1's sign(w)) for float64 and smooth (tanh, no L1) for
# float32 trajectories, for the reason TRAJECTORY_CASES gives; the kinked float32 models are
# compared step by step from the same state (test_kinked_feature_models_match_step_by_step).
def kinks(smooth):
    return ("tanh", 0.0) if smooth else ("relu", 1e-3)


def dropout_model(dtype, smooth=False):
    # Input dropout first (no parameters before it: the backward stops at the first Dense),
    # dropout after a fused activation, and p = 0 (the identity, whose counter stays at 0).
    act, _ = kinks(smooth)
    return nn.Sequential(nn.Dropout(0.1, seed=4), nn.Dense(13, 17, seed=0, dtype=dtype),
                         ACTIVATIONS[act](), nn.Dropout(0.3, seed=5),
                         nn.Dense(17, 9, seed=1, dtype=dtype), nn.Tanh(),
                         nn.Dropout(0.0, seed=6), nn.Dense(9, 5, seed=2, dtype=dtype))


def batchnorm_model(dtype, smooth=False):
    # BatchNorm between Dense and its activation (a standalone activation op), without
    # affine parameters, and right before the output.
    act, _ = kinks(smooth)
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype), nn.BatchNorm1d(17, dtype=dtype),
                         ACTIVATIONS[act](), nn.Dense(17, 9, seed=1, dtype=dtype),
                         nn.BatchNorm1d(9, momentum=0.3, affine=False, dtype=dtype), nn.GELU(),
                         nn.Dense(9, 5, seed=2, dtype=dtype), nn.BatchNorm1d(5, dtype=dtype))


def penalty_model(dtype, smooth=False):
    act, l1 = kinks(smooth)
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype, l1=l1, l2=1e-2), nn.Sigmoid(),
                         nn.Dense(17, 9, seed=1, dtype=dtype), ACTIVATIONS[act](),
                         nn.Dense(9, 5, seed=2, dtype=dtype, l2=5e-2))


def everything_model(dtype, smooth=False):
    act, l1 = kinks(smooth)
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype, l2=1e-2), ACTIVATIONS[act](),
                         nn.BatchNorm1d(17, dtype=dtype), nn.Dropout(0.25, seed=9),
                         nn.Dense(17, 5, seed=1, dtype=dtype, l1=l1))


# A Dense right before a BatchNorm1d has a bias gradient of exactly 0 in exact arithmetic,
# rounding noise in practice, which Adam would scale up to steps of size lr: that model
# trains with SGD, whose steps keep the noise at its size.
FEATURE_MODELS = {"dropout": (dropout_model, "adam_l2"), "batchnorm": (batchnorm_model, "momentum_wd"),
                  "penalty": (penalty_model, "adam_l2"), "everything": (everything_model, "adamw")}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model_name", FEATURE_MODELS)
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce_with_logits"])
def test_fused_training_features_match_reference(rng, dtype, model_name, loss_name):
    model_fn, opt_name = FEATURE_MODELS[model_name]
    smooth = dtype == np.float32
    runs = run_models(lambda: model_fn(dtype, smooth), OPTIMIZERS[opt_name], loss_name, dtype, rng, 50)
    assert_same_training(*runs, dtype)
    fused_model = runs[0]
    if model_name == "dropout":
        assert [layer.offset for layer in fused_model.layers[::3]] == [50 * 16 * 13, 50 * 16 * 17, 0]


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_fused_optimizers_with_every_feature_match_reference(rng, opt_name):
    runs = run_models(lambda: everything_model(np.float64), OPTIMIZERS[opt_name], "cross_entropy",
                      np.float64, rng, 50)
    assert_same_training(*runs, np.float64)


CLIPPED = {
    "clipnorm_adam": lambda p: optim.Adam(p, lr=1e-2, clipnorm=0.05),
    "clipnorm_sgd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3, clipnorm=0.05),
    "clipvalue_adamw": lambda p: optim.AdamW(p, lr=1e-2, clipvalue=0.002),
    "clipvalue_sgd": lambda p: optim.SGD(p, lr=0.05, nesterov=True, momentum=0.8, clipvalue=0.002),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt_name", CLIPPED)
def test_fused_gradient_clipping_matches_reference(rng, dtype, opt_name):
    runs = run_models(lambda: everything_model(dtype, smooth=dtype == np.float32), CLIPPED[opt_name],
                      "cross_entropy", dtype, rng, 50)
    assert_same_training(*runs, dtype)
    grads = [p.grad for p in runs[0].parameters()]  # the last step's gradients, as clipped
    if opt_name.startswith("clipnorm"):  # the limits are small enough to clip every step
        np.testing.assert_allclose(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)),
                                   0.05, rtol=1e-4)
    else:
        assert max(float(np.abs(g).max()) for g in grads) == np.asarray(0.002, dtype)


def residual_model(dtype, smooth=False):
    act, l1 = kinks(smooth)
    block = nn.Sequential(nn.Dense(17, 17, seed=1, dtype=dtype, l1=l1), ACTIVATIONS[act](),
                          nn.Residual(nn.Sequential(nn.Dense(17, 17, seed=2, dtype=dtype),
                                                    nn.Tanh())))
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype), nn.GELU(), nn.Residual(block),
                         nn.Dropout(0.2, seed=3), nn.Dense(17, 5, seed=4, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce_with_logits"])
def test_fused_residual_model_matches_reference(rng, dtype, loss_name):
    runs = run_models(lambda: residual_model(dtype, smooth=dtype == np.float32),
                      OPTIMIZERS["adam_l2"], loss_name, dtype, rng, 50)
    assert_same_training(*runs, dtype)


BITWISE_MODELS = {
    **{f"mlp_{act}": (lambda act=act: make_model(act, np.float64, 5), "adam_l2")
       for act in ACTIVATIONS},
    **{name: (lambda fn=fn: fn(np.float64), opt) for name, (fn, opt) in FEATURE_MODELS.items()},
    "residual": (lambda: residual_model(np.float64), "adamw"),
    "clipnorm": (lambda: everything_model(np.float64), "clipnorm_sgd"),
    "clipvalue": (lambda: everything_model(np.float64), "clipvalue_adamw"),
}


@pytest.mark.parametrize("model_name", BITWISE_MODELS)
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce_with_logits"])
def test_fused_and_layer_paths_are_bitwise_equal_in_float64(rng, model_name, loss_name):
    """One description, one formula per device: the fused step and the layer-by-layer path on
    the same (cpp) backend run the same kernels in the same order."""
    model_fn, opt_name = BITWISE_MODELS[model_name]
    opt_fn = {**OPTIMIZERS, **CLIPPED}[opt_name]
    fused_model, layer_model, fused_losses, layer_losses = run_models(
        model_fn, opt_fn, loss_name, np.float64, rng, 50, layer_backend="cpp")
    for p, q in zip(fused_model.parameters(), layer_model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=p.name)
    for a, b in zip(fused_model.buffers(), layer_model.buffers(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(fused_losses, layer_losses, rtol=1e-12)


def copy_training_state(source, target):
    """Parameters, running statistics and dropout counters of source into target; gradients 0."""
    for p, q in zip(source.parameters(), target.parameters()):
        q.data[...] = p.data
        q.grad[...] = 0
    for a, b in zip(source.buffers(), target.buffers()):
        b[...] = a
    for a, b in zip(source.layers, target.layers):
        if isinstance(a, nn.Dropout):
            b.offset = a.offset


@pytest.mark.parametrize("model_name", FEATURE_MODELS)
def test_kinked_feature_models_match_step_by_step(rng, model_name):
    """Float32 with ReLU and L1: every step the reference starts from the fused model's state,
    so a derivative taken on the other side of a kink within rounding cannot compound; steps
    with a ReLU input or an L1-penalized weight within 1e-5 of 0 skip the gradient check."""
    model_fn, _ = FEATURE_MODELS[model_name]
    X, y = data("cross_entropy", np.float32, rng)
    fused_model, ref_model = model_fn(np.float32), model_fn(np.float32)
    loss_fn = losses.CrossEntropy()
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(fused_model, loss_fn, optim.Adam(fused_model.parameters(), lr=1e-2))
    for _ in range(20):
        idx = rng.choice(len(X), 16)
        copy_training_state(fused_model, ref_model)
        near_kink = min([np.abs(layer.weight).min() for layer in ref_model.layers
                         if isinstance(layer, nn.Dense) and layer.l1] + [np.inf])
        with nnfast.backend("numpy"):
            h = X[idx]
            for layer in ref_model.layers:
                if isinstance(layer, nn.ReLU):
                    near_kink = min(near_kink, np.abs(h).min())
                h = layer(h)
            ref_loss = loss_fn(h, y[idx]) + ref_model.penalty()
            ref_model.backward(loss_fn.backward())
        with nnfast.backend("cpp"):
            fused_loss = trainer.step(X, y, idx)[0]
        np.testing.assert_allclose(fused_loss, ref_loss, rtol=1e-5)
        for a, b in zip(fused_model.buffers(), ref_model.buffers()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg="running statistics")
        assert [getattr(a, "offset", 0) for a in fused_model.layers] == \
               [getattr(b, "offset", 0) for b in ref_model.layers]
        if near_kink < 1e-5:
            continue
        # One scale for all: a Dense bias right before a BatchNorm1d has a gradient of 0 in
        # exact arithmetic, rounding noise in both runs.
        scale = max(np.abs(q.grad).max() for q in ref_model.parameters())
        for p, q in zip(fused_model.parameters(), ref_model.parameters()):
            np.testing.assert_allclose(p.grad, q.grad, rtol=0, atol=1e-4 * scale, err_msg=p.name)


def test_fused_and_layer_paths_draw_the_same_dropout_masks(rng):
    """With one sample per batch, row i of a Dense's weight gradient is x_i dy: zero exactly
    where the dropout before it dropped x_i. Those rows in the fused step are the layer
    path's masks, batch after batch. A p too small to drop anything still draws masks and
    advances its counter, in both paths."""
    def model_fn():
        return nn.Sequential(nn.Dropout(0.5, seed=3), nn.Dense(13, 17, seed=0, dtype=np.float64),
                             nn.Tanh(), nn.Dropout(1e-12, seed=11), nn.Dropout(0.3, seed=8),
                             nn.Dense(17, 5, seed=1, dtype=np.float64))
    X, y = data("cross_entropy", np.float64, rng)
    fused_model, ref_model = model_fn(), model_fn()
    loss_fn = losses.CrossEntropy()
    fused_opt, ref_opt = optim.SGD(fused_model.parameters(), lr=0.1), optim.SGD(ref_model.parameters(), lr=0.1)
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(fused_model, loss_fn, fused_opt)
    for _ in range(50):
        idx = rng.choice(len(X), 1)
        with nnfast.backend("cpp"):
            trainer.step(X, y, idx)
        with nnfast.backend("numpy"):
            reference_step(ref_model, ref_opt, loss_fn, X[idx], y[idx])
        for dense, dropout in ((1, 0), (5, 4)):
            kept = np.any(fused_model.layers[dense].weight_grad != 0, axis=1)
            np.testing.assert_array_equal(kept, ref_model.layers[dropout]._mask[0].astype(bool))
    for p, q in zip(fused_model.parameters(), ref_model.parameters()):
        np.testing.assert_allclose(p.data, q.data, **TOL[np.float64])
    assert fused_model.layers[3].offset == ref_model.layers[3].offset == 50 * 17


def test_fit_falls_back_to_the_layer_path_for_a_custom_layer(rng, monkeypatch):
    X, y = data("cross_entropy", np.float64, rng, n=120)
    built = []
    original = fused.FusedTrainer.__init__
    monkeypatch.setattr(fused.FusedTrainer, "__init__",
                        lambda self, *a: built.append(1) or original(self, *a))
    results = {}
    for name in ("cpp", "numpy"):
        model = nn.Sequential(nn.Dense(13, 8, seed=0, dtype=np.float64), nn.ReLU(),
                              nn.Residual(nn.Sequential(nn.Dense(8, 8, seed=1, dtype=np.float64),
                                                        _Scale())),
                              nn.Dropout(0.2, seed=2), nn.Dense(8, 5, seed=3, dtype=np.float64))
        with nnfast.backend(name):
            reason = fused.unsupported_reason(model, losses.CrossEntropy(), optim.Adam(), y)
            history = model.fit(X, y, optimizer=optim.Adam(lr=1e-2), epochs=2, batch_size=16,
                                seed=5, verbose=0)
        results[name] = (reason, model, history)
    assert built == []  # neither backend built a fused trainer
    assert "_Scale has no op record" in results["cpp"][0]
    (_, fm, fh), (_, rm, rh) = results["cpp"], results["numpy"]
    np.testing.assert_allclose(fh["loss"], rh["loss"], rtol=1e-9)
    for p, q in zip(fm.parameters(), rm.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-9, atol=1e-12)
    assert fm.layers[3].offset == rm.layers[3].offset == 2 * 120 * 8


def test_switching_training_paths_continues_the_dropout_stream(rng):
    """25 fused steps then 25 layer-by-layer steps train as 50 layer-by-layer steps: the
    fused step leaves the dropout counters and running statistics where the layers would."""
    X, y = data("cross_entropy", np.float64, rng)
    loss_fn = losses.CrossEntropy()
    switched, reference = everything_model(np.float64), everything_model(np.float64)
    switched_opt = optim.Adam(switched.parameters(), lr=1e-2, clipnorm=0.5)
    reference_opt = optim.Adam(reference.parameters(), lr=1e-2, clipnorm=0.5)
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(switched, loss_fn, switched_opt)
    for s in range(50):
        idx = rng.choice(len(X), 16, replace=False)
        if s < 25:
            with nnfast.backend("cpp"):
                trainer.step(X, y, idx)
        else:
            with nnfast.backend("numpy"):
                reference_step(switched, switched_opt, loss_fn, X[idx], y[idx])
        with nnfast.backend("numpy"):
            reference_step(reference, reference_opt, loss_fn, X[idx], y[idx])
    for p, q in zip(switched.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.data, q.data, **TOL[np.float64])
    for a, b in zip(switched.buffers(), reference.buffers()):
        np.testing.assert_allclose(a, b, **TOL[np.float64])
    assert switched.layers[3].offset == reference.layers[3].offset == 50 * 16 * 17


def test_fused_step_is_bitwise_the_same_on_any_thread_count(rng):
    # everything_model's layers, wide enough that the step's kernels (the GEMMs, batch norm,
    # dropout, softmax, the first layer's update) open teams (threads_for).
    from nnfast import _core
    X = rng.standard_normal((1536, 128)).astype(np.float32)
    y = rng.integers(0, 10, 1536).astype(np.int64)
    was_set, before = _core.num_threads_is_set(), _core.get_num_threads()
    results = []
    try:
        for threads in (1, 3):
            _core.set_num_threads(threads)
            model = nn.Sequential(nn.Dense(128, 256, seed=0, dtype=np.float32, l2=1e-2), nn.ReLU(),
                                  nn.BatchNorm1d(256, dtype=np.float32), nn.Dropout(0.25, seed=9),
                                  nn.Dense(256, 10, seed=1, dtype=np.float32, l1=1e-3))
            opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, clipnorm=0.5)
            with nnfast.backend("cpp"):
                trainer = fused.FusedTrainer(model, losses.CrossEntropy(), opt)
                losses_seen = [trainer.step(X, y, np.arange(s * 512, (s + 1) * 512) % 1536)[0]
                               for s in range(6)]
            results.append((losses_seen, [p.data.copy() for p in model.parameters()] + model.buffers()))
    finally:
        _core.set_num_threads(before if was_set else 0)
    (losses_1, arrays_1), (losses_3, arrays_3) = results
    assert losses_1 == losses_3
    for a, b in zip(arrays_1, arrays_3):
        np.testing.assert_array_equal(a, b)


def test_fit_fuses_dropout_batchnorm_penalties_and_clipping(rng, fused_steps):
    X, y = data("mse", np.float32, rng, n=300)
    results = {}
    for name in ("cpp", "numpy"):
        model = everything_model(np.float32, smooth=True)
        with nnfast.backend(name):
            history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=0.05, momentum=0.9, clipnorm=1.0),
                                epochs=3, batch_size=32, seed=7, verbose=0)
            results[name] = (model, history, model.predict(X[:50]), model.evaluate(X, y)["loss"])
    assert len(fused_steps) == 3 * 10
    (fm, fh, fp, fe), (rm, rh, rp, re) = results["cpp"], results["numpy"]
    np.testing.assert_allclose(fh["loss"], rh["loss"], rtol=1e-4)
    for a, b in zip(fm.parameters(), rm.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-3, atol=1e-4)
    for a, b in zip(fm.buffers(), rm.buffers()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert fm.layers[3].offset == rm.layers[3].offset == 3 * 300 * 17
    np.testing.assert_allclose(fp, rp, rtol=1e-3, atol=1e-4)  # eval mode: running statistics, no dropout
    np.testing.assert_allclose(fe, re, rtol=1e-3)


def test_compiled_predict_runs_in_eval_mode(rng):
    model = everything_model(np.float64)
    model.layers[2].running_mean[:] = rng.standard_normal(17)
    model.layers[2].running_var[:] = rng.uniform(0.5, 2.0, 17)
    X = rng.standard_normal((9, 13))
    with nnfast.backend("cpp"):
        out = model.predict(X)
    with nnfast.backend("cpp"):
        assert fused.predictor(model) is not None
    with nnfast.backend("numpy"):
        np.testing.assert_allclose(out, model.eval()(X), rtol=1e-12, atol=1e-14)
    assert model.layers[3].offset == 0  # no mask drawn


def sgd_trainer(rng):
    """(model, optimizer, FusedTrainer, X, y) of everything_model on 20 samples."""
    model = everything_model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(model, losses.CrossEntropy(), opt)
    return (model, opt, trainer, *data("cross_entropy", np.float32, rng, n=20))


def test_fused_step_rejects_bad_training_arguments(rng):
    model, opt, trainer, X, y = sgd_trainer(rng)
    with pytest.raises(ValueError, match="batch norm in training mode needs at least 2 samples"):
        trainer.step(X, y, np.array([3]))
    both = optim.rules.SgdRule(lr=0.1, weight_decay=0.0, clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm, clipvalue: give one, not both"):
        trainer.trainer.step(X, y, np.arange(4), both)
    negative = optim.rules.SgdRule(lr=0.1, weight_decay=0.0, clipnorm=-1.0, clipvalue=None)
    with pytest.raises(ValueError, match="clipnorm: must be positive"):
        trainer.trainer.step(X, y, np.arange(4), negative)
    assert model.layers[3].offset == 0 and opt.step_count == 0  # nothing ran
    ops = fused.plan(model)
    assert [type(op) for op in ops] == [nn.ops.DenseOp, nn.ops.BatchNormOp, nn.ops.DropoutOp,
                                        nn.ops.DenseOp]
    Trainer = nnfast.get_backend("cpp").Trainer
    ops[2] = nn.ops.DropoutOp(0.5, 1, np.zeros(1, np.int64))
    with pytest.raises(TypeError, match="counter: expected a uint64 array"):
        Trainer(ops, 0, [])

    class UnknownOp(nn.ops.Op):
        code = 99
    ops[2] = UnknownOp()
    with pytest.raises(ValueError, match="unknown op code 99"):
        Trainer(ops, 0, [])
    with pytest.raises(ValueError, match="a residual begin without its end"):
        Trainer([nn.ops.ResidualBeginOp(), *ops[:2]], 0, [])


@pytest.mark.parametrize("shape", [(4, 0), (0, 4)])
def test_trainer_binding_refuses_a_layer_of_width_0(shape):
    # nn.Dense refuses 0 units; records built by hand reach the binding, whose kernels would
    # copy from and to the empty arrays' null pointers (UBSan: memcpy(nullptr, ...)).
    from nnfast.nn.module import Parameter
    empty = nn.ops.DenseOp(Parameter(np.zeros(shape, np.float32), "weight"),
                           Parameter(np.zeros(shape[1], np.float32), "bias"))
    ops = [empty, nn.ops.DenseOp(Parameter(np.zeros((shape[1], 3), np.float32), "weight"),
                                 Parameter(np.zeros(3, np.float32), "bias"))]
    Trainer = nnfast.get_backend("cpp").Trainer
    with pytest.raises(ValueError, match="a layer of width 0 .* needs at least one unit"):
        Trainer(ops, 0, [])


def test_compiled_predict_follows_changed_layer_settings(rng):
    """The compiled predictor is keyed by the op records, settings included: a changed
    LeakyReLU slope or BatchNorm1d eps is what the next predict() runs."""
    model = nn.Sequential(nn.Dense(13, 17, seed=0, dtype=np.float64), nn.LeakyReLU(0.1),
                          nn.BatchNorm1d(17, dtype=np.float64), nn.Dense(17, 5, seed=1, dtype=np.float64))
    model.layers[2].running_var[:] = rng.uniform(1e-3, 1e-2, 17)
    X = rng.standard_normal((6, 13))
    with nnfast.backend("cpp"):
        model.predict(X)
        model.layers[1].alpha = -0.7
        model.layers[2].eps = 0.5
        got = model.predict(X)
    with nnfast.backend("numpy"):
        np.testing.assert_allclose(got, model.eval()(X), rtol=1e-12, atol=1e-14)


def test_compiled_predict_accepts_read_only_weights(rng):
    # As numpy and numba do: predicting writes no weight (a model loaded from a read-only
    # memory map, or frozen by the user).
    model = nn.Sequential(nn.Dense(5, 7, seed=0), nn.ReLU(), nn.Dense(7, 2, seed=1))
    for p in model.parameters():
        p.data.setflags(write=False)
    X = rng.standard_normal((4, 5)).astype(np.float32)
    with nnfast.backend("numpy"):
        expected = model.predict(X)
    with nnfast.backend("cpp"):
        np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_keep_previous_keeps_what_the_next_step_changes_and_changes_nothing(rng, opt_name):
    """Trainer.keep_previous (TerminateOnNaN's copy of the weights a batch starts from): the
    batch norm statistics are copied at once, each parameter by its update kernel, once; the
    training itself is bitwise that of a trainer never asked."""
    X, y = data("cross_entropy", np.float64, rng, n=40)
    kept_model, plain_model = everything_model(np.float64), everything_model(np.float64)
    with nnfast.backend("cpp"):
        kept = fused.FusedTrainer(kept_model, losses.CrossEntropy(),
                                  OPTIMIZERS[opt_name](kept_model.parameters()))
        plain = fused.FusedTrainer(plain_model, losses.CrossEntropy(),
                                   OPTIMIZERS[opt_name](plain_model.parameters()))
    params = [p.data for p in kept_model.parameters()]
    buffers = list(kept_model.buffers())
    sources = params + buffers
    for _ in range(3):
        before = [a.copy() for a in sources]
        targets = [np.full_like(a, np.nan) for a in sources]
        kept.keep_previous(sources, targets)
        for target, source in zip(targets[len(params):], buffers):
            np.testing.assert_array_equal(target, source)  # before the forward changes them
        assert all(np.isnan(t).all() for t in targets[:len(params)])  # not before the update
        idx = rng.choice(len(X), 8, replace=False)
        kept.step(X, y, idx)
        plain.step(X, y, idx)
        for target, was in zip(targets, before):
            np.testing.assert_array_equal(target, was)
        # (the first bias, right before the batch norm, has a gradient of rounding noise)
        assert not any(np.array_equal(a, b) for a, b in zip(sources, before) if a.ndim == 2)
        assert not any(np.array_equal(a, b) for a, b in zip(buffers, before[len(params):]))
    kept.step(X, y, np.arange(8))  # no new call: the last targets stay as they were
    plain.step(X, y, np.arange(8))
    for target, was in zip(targets, before):
        np.testing.assert_array_equal(target, was)
    for a, b in zip(sources, [p.data for p in plain_model.parameters()] + list(plain_model.buffers())):
        np.testing.assert_array_equal(a, b)


def test_keep_previous_refuses_targets_that_cannot_take_the_copy(rng):
    model = everything_model(np.float32)
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(model, losses.CrossEntropy(), optim.SGD(model.parameters(), lr=0.1)).trainer
    weight = model.layers[0].weight
    with pytest.raises(ValueError, match="keep_previous: 2 sources for 1 targets"):
        trainer.keep_previous([weight, weight], [np.empty_like(weight)])
    with pytest.raises(TypeError, match="target: dtype float64 does not match"):
        trainer.keep_previous([weight], [np.empty(weight.shape)])
    with pytest.raises(ValueError, match=r"target: expected shape \(13, 17\), got \(17, 13\)"):
        trainer.keep_previous([weight], [np.empty_like(weight.T)])
    read_only = np.empty_like(weight)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="target: array is read-only"):
        trainer.keep_previous([weight], [read_only])
    with pytest.raises(ValueError, match="target: shares memory with source"):
        trainer.keep_previous([weight], [weight])


def test_fit_calls_share_one_compiled_trainer_while_its_arrays_and_settings_stay(rng):
    X, y = data("cross_entropy", np.float32, rng)
    model, one_run = make_model("relu", np.float32, 5), make_model("relu", np.float32, 5)
    opt, one_opt = optim.Adam(model.parameters()), optim.Adam(one_run.parameters())
    with nnfast.backend("cpp"):
        model.fit(X, y, optimizer=opt, batch_size=16, seed=7, verbose=0)
        first = fused._fit_trainers[model][1]
        model.fit(X, y, optimizer=opt, batch_size=16, seed=7, verbose=0)
        assert fused._fit_trainers[model][1] is first
        one_run.fit(X, y, optimizer=one_opt, epochs=2, batch_size=16, seed=7, verbose=0)
        for a, b in zip(model.parameters(), one_run.parameters()):
            np.testing.assert_array_equal(a.data, b.data)

        model.fit(X, y, optimizer=optim.Adam(model.parameters()), batch_size=16, verbose=0)
        second = fused._fit_trainers[model][1]
        assert second is not first  # other slot arrays

        weight = model.layers[0].weight_param
        weight.data = weight.data.copy()
        before = weight.data.copy()
        model.fit(X, y, batch_size=16, verbose=0)
        assert fused._fit_trainers[model][1] is not second  # another weight array
        assert not np.array_equal(weight.data, before)  # the new array is the one trained
        third = fused._fit_trainers[model][1]
        model.fit(X, y, loss=losses.CrossEntropy(weight=np.arange(1.0, 6.0)), batch_size=16,
                  verbose=0)
        assert fused._fit_trainers[model][1] is not third  # other class weights


def test_a_cached_trainer_does_not_keep_its_model_alive(rng):
    X, y = data("cross_entropy", np.float32, rng)
    model = nn.Sequential(nn.Dense(13, 16, seed=0), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Dropout(0.1, seed=1), nn.Dense(16, 5, seed=2))
    with nnfast.backend("cpp"):
        model.fit(X, y, batch_size=16, verbose=0)
    assert model in fused._fit_trainers
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


class WatchBatches(nnfast.Callback):
    """Acts between batches (doing nothing), so fit() drives the fused step batch by batch."""

    def on_batch_loss(self, model, epoch, batch, loss):
        pass


@contextlib.contextmanager
def calls_of_at_most(seconds):
    """FusedTrainer's compiled calls return after `seconds` (None: as they do)."""
    saved = fused.FusedTrainer.CALL_SECONDS
    fused.FusedTrainer.CALL_SECONDS = saved if seconds is None else seconds
    try:
        yield
    finally:
        fused.FusedTrainer.CALL_SECONDS = saved


# (callbacks, seconds a call may run): the epoch in one call; in one call per batch, by the
# time limit (each call then makes one step, the even and odd copies TerminateOnNaN keeps
# going on across calls); and one batch per call, forced by a callback between batches.
RUNS_OF_AN_EPOCH = [(list, None), (list, 1e-9), (lambda: [WatchBatches()], None)]


EPOCH_CASES = {
    "adam, classes weighted, last batch short": dict(
        loss="cross_entropy", optimizer=lambda: optim.Adam(lr=1e-2), class_weight={1: 3.0}),
    "momentum, nesterov, clipnorm, sample weights, float64": dict(
        loss="mse", dtype=np.float64, sample_weight=True,
        optimizer=lambda: optim.SGD(lr=1e-2, momentum=0.9, nesterov=True, clipnorm=0.5)),
    "adamw, clipvalue, drop_last": dict(
        loss="bce_with_logits", drop_last=True,
        optimizer=lambda: optim.AdamW(lr=1e-2, weight_decay=0.05, clipvalue=0.1)),
}


@pytest.mark.parametrize("case", EPOCH_CASES)
def test_an_epoch_in_one_call_is_bitwise_the_epoch_batch_by_batch(rng, fused_steps, case):
    """fit() runs each epoch in one compiled call when no callback acts between batches;
    the weights, running statistics, dropout counters, losses and step counts are those of
    the same epochs run one batch per call."""
    c = EPOCH_CASES[case]
    dtype = c.get("dtype", np.float32)
    X, y = data(c["loss"], dtype, rng, n=203)
    w = rng.uniform(0.1, 2.0, len(X)) if c.get("sample_weight") else None
    runs = []
    for callbacks, call_seconds in RUNS_OF_AN_EPOCH:
        fused_steps.clear()
        model = everything_model(dtype)
        with nnfast.backend("cpp"), calls_of_at_most(call_seconds):
            history = model.fit(X, y, loss=c["loss"], optimizer=c["optimizer"](), epochs=3,
                                batch_size=16, seed=3, verbose=0, callbacks=callbacks(),
                                sample_weight=w, class_weight=c.get("class_weight"),
                                drop_last=c.get("drop_last", False))
        runs.append((model, history, set(fused_steps)))
    (by_batch, h0, path0) = runs[-1]
    assert [path for _, _, path in runs] == [{"epoch"}, {"epoch"}, {"batch"}]
    for model, history, _ in runs:
        assert history.history["loss"] == h0.history["loss"]
        assert history.history.get("accuracy") == h0.history.get("accuracy")
        assert model.optimizer.step_count == 3 * (
            203 // 16 if c.get("drop_last") else -(-203 // 16))
        for a, b in zip(nnfast.callbacks.weight_arrays(model), nnfast.callbacks.weight_arrays(by_batch)):
            np.testing.assert_array_equal(a, b)
        assert model.layers[3].offset == by_batch.layers[3].offset > 0


class PoisonTarget(nnfast.Callback):
    """Sets row `row` of the targets y to 1e30 at the end of epoch `epoch` - 1 (before any
    epoch when 0): the batch that holds the row has a squared error that overflows float32
    in epoch `epoch` (a huge input would not: the batch norm scales it back)."""

    def __init__(self, y, epoch, row):
        self.y, self.epoch, self.row = y, epoch, row
        if epoch == 0:
            y[row] = 1e30

    def on_epoch_end(self, model, epoch, logs):
        if epoch + 1 == self.epoch:
            self.y[self.row] = 1e30


@pytest.mark.parametrize("epoch,batch", [(0, 0), (0, 3), (1, 0), (2, 5)])
def test_terminate_on_nan_in_one_call_keeps_the_weights_batch_by_batch_keeps(rng, fused_steps,
                                                                             epoch, batch):
    """A loss that overflows in batch `batch` of epoch `epoch`: the epoch run in one call
    stops at the same batch and keeps the same weights (those the last finite batch started
    from, from this epoch, the one before or the start) as when run one batch per call."""
    X, y0 = data("mse", np.float32, rng, n=96)
    runs = []
    for callbacks, call_seconds in RUNS_OF_AN_EPOCH:
        fused_steps.clear()
        y = y0.copy()
        model = everything_model(np.float32)
        guard = nnfast.TerminateOnNaN()
        with nnfast.backend("cpp"), calls_of_at_most(call_seconds), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(X, y, loss="mse", optimizer=optim.Adam(lr=1e-2), epochs=4,
                                batch_size=8, shuffle=False, verbose=0,
                                callbacks=[*callbacks(), PoisonTarget(y, epoch, 8 * batch + 2),
                                           guard])
        messages = [str(m.message) for m in caught if "TerminateOnNaN" in str(m.message)]
        runs.append((model, history, guard, messages, set(fused_steps)))
    by_batch, h0, g0, m0, _ = runs[-1]
    assert [path for *_, path in runs] == [{"epoch"}, {"epoch"}, {"batch"}]
    assert g0.stopped_at == (epoch, batch) and len(h0.epoch) == epoch + 1
    assert len(m0) == 1 and f"epoch {epoch + 1}, batch {batch + 1}" in m0[0]
    for model, history, guard, messages, _ in runs:
        assert guard.stopped_at == g0.stopped_at and messages == m0
        assert history.history["loss"] == h0.history["loss"]
        for a, b in zip(nnfast.callbacks.weight_arrays(model), nnfast.callbacks.weight_arrays(by_batch)):
            np.testing.assert_array_equal(a, b)
            assert np.isfinite(a).all()


def test_trainer_steps_checks_its_arguments(rng):
    model, opt, trainer, X, y = sgd_trainer(rng)
    weights = nnfast.callbacks.weight_arrays(model)
    copies = [a.copy() for a in weights]
    with pytest.raises(ValueError, match="batch_size: must be at least 1, got 0"):
        trainer.steps(X, y, np.arange(20), 0)
    with pytest.raises(ValueError, match="21 rows in batches of 4 leave a batch of 1"):
        trainer.steps(X, y, np.r_[np.arange(20), 0], 4)
    with pytest.raises(ValueError, match="idx"):
        trainer.steps(X, y, np.arange(21), 4)
    with pytest.raises(ValueError, match=r"kept: expected \(sources, even, odd\)"):
        trainer.steps(X, y, np.arange(20), 4, kept=(weights, copies))
    with pytest.raises(ValueError, match="kept: .* sources for"):
        trainer.steps(X, y, np.arange(20), 4, kept=(weights, copies, copies[:-1]))
    with pytest.raises(ValueError, match="odd batch's target: shares memory with an even"):
        trainer.steps(X, y, np.arange(20), 4, kept=(weights, copies, copies))
    with pytest.raises(ValueError, match="shape"):
        trainer.steps(X, y, np.arange(20), 4, kept=(weights, copies, [c.T for c in copies]))
    rule = opt.rule()
    with pytest.raises(ValueError, match="first_batch: 5 is not one of the 5 batches"):
        trainer.trainer.steps(X, y, np.arange(20), 4, rule, None, None, 5, 1.0)
    with pytest.raises(ValueError, match="max_seconds: must be positive"):
        trainer.trainer.steps(X, y, np.arange(20), 4, rule, None, None, 0, 0.0)
    assert model.layers[3].offset == 0 and opt.step_count == 0  # nothing ran


def test_models_fitted_side_by_side_in_threads_match_one_at_a_time(rng):
    """An epoch's call leaves the GIL to other threads: models fitted in two threads at once
    (examples/spam.py does) come out as when fitted one after the other."""
    import threading
    X, y = data("cross_entropy", np.float32, rng, n=300)

    def fit(seed, out):
        model = everything_model(np.float32)
        model.fit(X, y, optimizer=optim.Adam(lr=1e-2), epochs=4, batch_size=16, seed=seed,
                  verbose=0)
        out[seed] = nnfast.callbacks.weight_arrays(model)

    with nnfast.backend("cpp"):
        alone, together = {}, {}
        for seed in (1, 2):
            fit(seed, alone)
        threads = [threading.Thread(target=fit, args=(seed, together)) for seed in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for seed in (1, 2):
        for a, b in zip(alone[seed], together[seed]):
            np.testing.assert_array_equal(a, b)


class InterruptOnceTraining(nnfast.Callback):
    """Sends the main thread a Ctrl-C (KeyboardInterrupt) 0.2 s into the first epoch."""

    def on_epoch_begin(self, model, epoch, logs):
        import _thread
        import threading
        self.timer = threading.Timer(0.2, _thread.interrupt_main)
        self.timer.start()


def test_ctrl_c_stops_an_epoch_in_one_call_within_its_calls(rng):
    """fit()'s compiled epoch returns to Python every CALL_SECONDS, so Ctrl-C stops an epoch
    of seconds there, well before its end."""
    X = rng.standard_normal((16384, 256)).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    model = nn.Sequential(nn.Dense(256, 2048, seed=0), nn.ReLU(), nn.Dense(2048, 2048, seed=1),
                          nn.ReLU(), nn.Dense(2048, 10, seed=2))
    opt = optim.SGD(lr=1e-3)
    interrupter = InterruptOnceTraining()
    with nnfast.backend("cpp"), pytest.raises(KeyboardInterrupt):
        try:
            model.fit(X, y, optimizer=opt, epochs=1, batch_size=16, verbose=0,
                      callbacks=[interrupter])
        finally:
            interrupter.timer.join()
    # a step is about 0.45 GFLOP: the epoch's 1,024 steps take seconds
    assert 0 < opt.step_count < len(X) // 16
