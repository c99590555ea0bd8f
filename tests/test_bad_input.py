"""Bad input gets a clear error naming what is wrong, and nothing is modified."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import nn, optim


def small_model():
    return nn.Sequential(nn.Dense(4, 8, seed=0), nn.ReLU(), nn.Dense(8, 3, seed=1))


def snapshot(model):
    return [p.data.copy() for p in model.parameters()]


def assert_unchanged(model, before):
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)


GOOD_X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
GOOD_Y = np.arange(10) % 3


@pytest.mark.parametrize("X,y,kwargs,error,match", [
    (GOOD_X[:, :3], GOOD_Y, {}, ValueError, "expects 4 features"),
    (GOOD_X, GOOD_Y[:9], {}, ValueError, "9 targets for 10 samples"),
    (GOOD_X, np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 2]), {}, ValueError, r"labels must lie in \[0, 3\)"),
    (GOOD_X, np.array([-1, 1, 2, 0, 0, 1, 2, 0, 1, 2]), {}, ValueError, r"labels must lie in \[0, 3\)"),
    (GOOD_X, GOOD_Y + 0.5, {}, ValueError, "non-integer"),
    (np.where(np.eye(10, 4) > 0, np.nan, GOOD_X), GOOD_Y, {}, ValueError, "NaN or inf"),
    (np.where(np.eye(10, 4) > 0, np.inf, GOOD_X), GOOD_Y, {}, ValueError, "NaN or inf"),
    (np.empty((0, 4), np.float32), np.empty(0, np.int64), {}, ValueError, "no samples"),
    (GOOD_X, GOOD_Y, {"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    (GOOD_X, GOOD_Y, {"batch_size": -3}, ValueError, "batch_size must be a positive integer"),
    (GOOD_X, GOOD_Y, {"epochs": 0}, ValueError, "epochs must be a positive integer"),
    (GOOD_X, GOOD_Y, {"validation_split": 1.5}, ValueError, "validation_split"),
    (GOOD_X, GOOD_Y, {"loss": "hinge"}, ValueError, "loss: expected"),
    (GOOD_X, GOOD_Y, {"optimizer": "lbfgs"}, ValueError, "optimizer: expected"),
    (GOOD_X.ravel(), GOOD_Y, {}, ValueError, "2-D array"),
    (np.array([["a"] * 4] * 10), GOOD_Y, {}, TypeError, "numeric"),
])
def test_fit_rejects_bad_input_and_changes_nothing(backend, X, y, kwargs, error, match):
    model = small_model()
    before = snapshot(model)
    options = dict(loss="cross_entropy", optimizer=optim.SGD(lr=0.1), epochs=1, batch_size=4, verbose=0)
    options.update(kwargs)
    with pytest.raises(error, match=match):
        model.fit(X, y, **options)
    assert_unchanged(model, before)


def test_binary_losses_reject_out_of_range(backend):
    model = nn.Sequential(nn.Dense(4, 1, seed=0), nn.Sigmoid())
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        model.fit(GOOD_X, np.full(10, 2.0), loss="bce", verbose=0)
    from nnfast.losses import BinaryCrossEntropy
    with pytest.raises(ValueError, match="probabilities"):
        BinaryCrossEntropy()(np.array([[1.5]]), np.array([[1.0]]))


def test_layer_rejects_wrong_feature_count(backend):
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\)"):
        nn.Dense(4, 2)(np.zeros((3, 5), np.float32))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Dense(4, 2).backward(np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("args,match", [((0, 3), "in_features"), ((3, -1), "out_features"),
                                        ((2.5, 3), "in_features")])
def test_dense_rejects_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        nn.Dense(*args)


def test_dense_rejects_unknown_init():
    with pytest.raises(ValueError, match="init"):
        nn.Dense(3, 3, init="orthogonal")


def test_primitives_reject_wrong_dtype_and_layout(backend):
    a32 = np.ones((4, 3), np.float32)
    a64 = np.ones((3, 2), np.float64)
    with pytest.raises(TypeError, match="b"):
        backend.gemm(a32, a64)
    with pytest.raises(TypeError, match="float32 or float64"):
        backend.gemm(np.ones((4, 3), np.int32), np.ones((3, 2), np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        backend.gemm(np.ones((3, 4), np.float32).T, np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="inner dimensions"):
        backend.gemm(a32, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="out"):
        backend.gemm(a32, np.ones((3, 2), np.float32), np.empty((4, 3), np.float32))
    read_only = np.empty((4, 2), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        backend.gemm(a32, np.ones((3, 2), np.float32), read_only)
    with pytest.raises(TypeError, match="float32 or float64"):
        backend.activation_forward("relu", np.ones(3, np.int64))
    with pytest.raises(ValueError, match="unknown activation"):
        backend.activation_forward("swish", np.ones(3, np.float32))


def test_gemm_arguments_are_matched_like_a_python_signature(backend):
    a, b = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(TypeError, match="unexpected keyword argument 'transpose_a'"):
        backend.gemm(a, b, transpose_a=True)
    with pytest.raises(TypeError, match="positional argument"):
        backend.gemm(a, b, None, True)
    with pytest.raises(TypeError, match="missing.*'b'"):
        backend.gemm(a)
    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        backend.gemm(a, b, a=a)
    np.testing.assert_array_equal(backend.gemm(b=b, a=a, alpha=2), np.full((4, 2), 6, np.float32))


def test_compiled_gemm_rejects_flags_and_scalars_of_the_wrong_type():
    _core = pytest.importorskip("nnfast._core")
    a, b = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
    with pytest.raises(TypeError, match="trans_a must be a bool, got str"):
        _core.gemm(a, b, trans_a="yes")
    with pytest.raises(TypeError, match="alpha must be a number, got str"):
        _core.gemm(a, b, alpha="2")
    assert _core.gemm(a, b, trans_b=np.bool_(False), beta=0).shape == (4, 2)


def test_sparse_labels_checked_by_the_primitive(backend):
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="int64"):
        backend.softmax_cross_entropy_forward(logits, np.array([0, 1, 2], np.int32))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        backend.softmax_cross_entropy_forward(logits, np.array([0, 1, 4], np.int64))
    with pytest.raises(ValueError, match="shape"):
        backend.softmax_cross_entropy_forward(logits, np.array([0, 1], np.int64))


def test_optimizer_arguments_checked():
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(lr=0)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(betas=(1.0, 0.999))
    with pytest.raises(RuntimeError, match="no parameters"):
        optim.Adam().step()
    with pytest.raises(TypeError, match="Parameters"):
        optim.SGD([np.zeros(3)], lr=0.1)


def test_every_backend_refuses_optimizer_arrays_that_share_memory(backend):
    # Overlapping views gave different results on each backend; the C++ one refused them.
    buf = np.zeros(12, np.float32)
    param, grad = buf[:8], buf[4:]
    with pytest.raises(ValueError, match="param: shares memory with grad"):
        backend.sgd_update(param, grad, lr=0.1)
    p, g, m = np.zeros(8, np.float32), np.ones(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="v: shares memory with m"):
        backend.adam_update(p, g, m, m, lr=0.1, step=1)
    with pytest.raises(ValueError, match="velocity: shares memory with param"):
        backend.sgd_update(p, g, p, lr=0.1, momentum=0.9)
    backend.sgd_update(p, p, lr=0.1)  # grad may be param itself: elementwise, in place
    np.testing.assert_array_equal(p, 0)


@pytest.mark.parametrize("make", [
    lambda d: nn.Sequential(d, nn.Tanh(), d),  # weight tying through one object
    lambda d: nn.Sequential(nn.Residual(d), d),
    lambda d: nn.Sequential(nn.Sequential(d), nn.ReLU(), nn.Sequential(d)),
])
def test_a_layer_used_twice_is_refused_on_every_backend(backend, make):
    # numpy and numba gave gradients 0.11 off torch's; the compiled plan refused it only for
    # itself. Refused at construction, whatever the backend.
    with pytest.raises(ValueError, match="the same Dense object is used at positions 0 and [12]; "
                                         "a layer can appear once in a model"):
        make(nn.Dense(3, 3, seed=0))
