"""Every primitive of every backend against the NumPy reference, on fresh random inputs of
awkward shapes (1, odd, primes, not multiples of any tile), float32 and float64."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

from conftest import DTYPES, assert_close
from unimplemented import skip_if_unimplemented

GEMM_SHAPES = [  # (M, N, K)
    (1, 1, 1), (1, 10, 784), (7, 1, 3), (5, 13, 1), (17, 31, 23), (64, 10, 64),
    (97, 131, 61), (64, 128, 784), (257, 19, 131), (3, 257, 1021),
]
ELEMENTWISE_SHAPES = [(1, 1), (1, 10), (7, 1), (13, 31), (64, 128), (127, 131), (1021, 3)]
ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "elu"]


def gemm_tolerance(a_abs, b_abs, k, dtype):
    """Elementwise bound on float rounding error of a length-k dot product: c k eps |A||B|."""
    eps = np.finfo(dtype).eps
    return 4.0 * k * eps * (a_abs @ b_abs) + np.finfo(dtype).tiny


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)])
def test_gemm_against_float64(backend, rng, dtype, shape, trans_a, trans_b):
    m, n, k = shape
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    alpha, beta = 0.75, -1.5
    out = c0.copy()
    result = backend.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, bias=bias)
    assert result is out
    opa = (a.T if trans_a else a).astype(np.float64)
    opb = (b.T if trans_b else b).astype(np.float64)
    expected = alpha * opa @ opb + beta * c0.astype(np.float64) + bias
    tol = gemm_tolerance(np.abs(opa), np.abs(opb), k, dtype) + 4 * np.finfo(dtype).eps * (
        np.abs(beta * c0) + np.abs(bias))
    assert np.all(np.abs(out - expected) <= tol), np.max(np.abs(out - expected) - tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 5), (33, 17, 9), (64, 128, 784)])
def test_gemm_fused_epilogue(backend, ref, rng, dtype, activation, shape):
    """Dense forward in one call: act(x @ W + b) matches gemm, then bias, then activation."""
    m, n, k = shape
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    fused = backend.gemm(x, w, bias=b, activation=activation, negative_slope=0.2)
    pre = x.astype(np.float64) @ w.astype(np.float64) + b
    expected = ref.activation_forward(activation, pre, negative_slope=0.2)
    # The activations' derivatives are bounded by ~1.13, so the gemm error bound carries over.
    tol = 1.2 * gemm_tolerance(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64)), k, dtype) \
        + 8 * np.finfo(dtype).eps * (np.abs(expected) + np.abs(b))
    assert np.all(np.abs(fused - expected) <= tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_allocates_output_and_rejects_beta_without_out(backend, rng, dtype):
    a = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.standard_normal((4, 5)).astype(dtype)
    out = backend.gemm(a, b)
    assert out.shape == (3, 5) and out.dtype == dtype
    with pytest.raises(ValueError, match="beta"):
        backend.gemm(a, b, beta=1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ACTIVATIONS + ["softmax"])
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_activation_forward_backward(backend, ref, rng, dtype, kind, shape):
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    y = backend.activation_forward(kind, x, negative_slope=0.1)
    assert y.dtype == dtype and y.shape == shape
    assert_close(y, ref.activation_forward(kind, x, negative_slope=0.1), dtype, scale=4)
    g = rng.standard_normal(shape).astype(dtype)
    y_ref = ref.activation_forward(kind, x, negative_slope=0.1)
    dx = backend.activation_backward(kind, g, x, y_ref, negative_slope=0.1)
    assert_close(dx, ref.activation_backward(kind, g, x, y_ref, negative_slope=0.1), dtype, scale=8)


@pytest.mark.parametrize("shape", [(0, 0), (3, 0), (0, 4)])
def test_softmax_of_empty_rows_or_no_classes(backend, shape):
    # The reference once took max() over zero classes and raised (found by the fuzzer).
    x = np.zeros(shape, np.float32)
    y = backend.activation_forward("softmax", x)
    assert y.shape == shape
    assert backend.activation_backward("softmax", x, x, y).shape == shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ACTIVATIONS + ["softmax"])
def test_activation_writes_into_out(backend, rng, dtype, kind):
    x = rng.standard_normal((5, 7)).astype(dtype)
    out = np.empty_like(x)
    assert backend.activation_forward(kind, x, out) is out
    grad = np.empty_like(x)
    assert backend.activation_backward(kind, x, x, out, grad) is grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 1), (1, 10), (7, 3), (64, 10), (257, 13)])
@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_cross_entropy(backend, ref, rng, dtype, n, c, sparse):
    logits = (4 * rng.standard_normal((n, c))).astype(dtype)
    labels = rng.integers(0, c, n).astype(np.int64)
    target = labels if sparse else rng.dirichlet(np.ones(c), n).astype(dtype)
    loss, probs = backend.softmax_cross_entropy_forward(logits, target)
    loss_ref, probs_ref = ref.softmax_cross_entropy_forward(logits, target)
    assert isinstance(loss, float)
    assert_close(loss, loss_ref, dtype, scale=8)
    assert_close(probs, probs_ref, dtype, scale=4)
    grad = backend.softmax_cross_entropy_backward(probs_ref, target)
    assert_close(grad, ref.softmax_cross_entropy_backward(probs_ref, target), dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_cross_entropy_stable_at_huge_logits(backend, dtype, sparse):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [0.0, 0.0, 0.0]], dtype=dtype)
    labels = np.array([1, 2, 0], dtype=np.int64)
    target = labels if sparse else np.eye(3, dtype=dtype)[labels]
    loss, probs = backend.softmax_cross_entropy_forward(logits, target)
    grad = backend.softmax_cross_entropy_backward(probs, target)
    assert np.isfinite(loss) and np.all(np.isfinite(probs)) and np.all(np.isfinite(grad))
    # Row 0 puts all mass on class 0 but the label is 1: loss 2e4 / 3 rows, plus log(3) / 3.
    np.testing.assert_allclose(loss, (2e4 + np.log(3)) / 3, rtol=1e-6)


LOSS_SHAPES = [(1, 1), (7, 1), (64, 10), (131, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("loss", ["mse", "bce", "bce_with_logits"])
def test_elementwise_losses(backend, ref, rng, dtype, shape, loss):
    if loss == "bce":
        pred = rng.uniform(0.001, 0.999, shape).astype(dtype)
    else:
        pred = (3 * rng.standard_normal(shape)).astype(dtype)
    target = (rng.uniform(size=shape) if loss == "mse" else rng.integers(0, 2, shape)).astype(dtype)
    forward, backward = getattr(backend, f"{loss}_forward"), getattr(backend, f"{loss}_backward")
    value = forward(pred, target)
    assert isinstance(value, float)
    assert_close(value, getattr(ref, f"{loss}_forward")(pred, target), dtype, scale=8)
    assert_close(backward(pred, target), getattr(ref, f"{loss}_backward")(pred, target), dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_losses_stable_at_extremes(backend, dtype):
    p = np.array([[0.0], [1.0], [0.5]], dtype=dtype)
    t = np.array([[1.0], [0.0], [1.0]], dtype=dtype)
    assert np.isfinite(backend.bce_forward(p, t))
    assert np.all(np.isfinite(backend.bce_backward(p, t)))
    z = np.array([[1e4], [-1e4], [0.0]], dtype=dtype)
    t = np.array([[0.0], [1.0], [1.0]], dtype=dtype)  # the two huge logits are confidently wrong
    value = backend.bce_with_logits_forward(z, t)
    np.testing.assert_allclose(value, (1e4 + 1e4 + np.log(2)) / 3, rtol=1e-6)
    assert np.all(np.isfinite(backend.bce_with_logits_backward(z, t)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES + [(1024, 10), (4099, 7)])
def test_bias_grad(backend, ref, rng, dtype, shape):
    g = rng.standard_normal(shape).astype(dtype)
    # Tolerance grows with the number of rows summed.
    assert_close(backend.bias_grad(g), ref.bias_grad(g), dtype, scale=shape[0] ** 0.5 * 4)
    out = rng.standard_normal(shape[1]).astype(dtype)
    expected = ref.bias_grad(g, out.copy(), beta=1.0)
    assert backend.bias_grad(g, out, beta=1.0) is out
    assert_close(out, expected, dtype, scale=shape[0] ** 0.5 * 4)


OPT_SHAPES = [(1,), (7, 3), (784, 128), (1021,)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 0.0),
                                                  (0.9, True, 1e-2), (0.5, False, 1e-3)])
def test_sgd_update(backend, ref, rng, dtype, shape, momentum, nesterov, wd):
    p, g, v = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    p_ref, v_ref = p.copy(), v.copy()
    for _ in range(3):
        backend.sgd_update(p, g, v if momentum else None, lr=0.05, momentum=momentum,
                           nesterov=nesterov, weight_decay=wd)
        ref.sgd_update(p_ref, g, v_ref if momentum else None, lr=0.05, momentum=momentum,
                       nesterov=nesterov, weight_decay=wd)
    assert_close(p, p_ref, dtype, scale=4)
    assert_close(v, v_ref, dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
@pytest.mark.parametrize("decoupled,wd", [(False, 0.0), (False, 1e-2), (True, 1e-2)])
def test_adam_update(backend, ref, rng, dtype, shape, decoupled, wd):
    p, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    m, v = np.zeros(shape, dtype), np.zeros(shape, dtype)
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    for step in range(1, 4):
        kwargs = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd, step=step,
                      decoupled=decoupled)
        backend.adam_update(p, g, m, v, **kwargs)
        ref.adam_update(p_ref, g, m_ref, v_ref, **kwargs)
    # Adam divides by sqrt(v) + eps: relative rounding in v shows up amplified near v ~ 0.
    assert_close(p, p_ref, dtype, scale=16)
    assert_close(m, m_ref, dtype, scale=4)
    assert_close(v, v_ref, dtype, scale=4)


def test_backend_implements_every_primitive(backend):
    from nnfast.backends._contract import PRIMITIVES
    for name in PRIMITIVES:
        assert callable(getattr(backend, name)), name
    assert backend.device in ("cpu", "cuda")
    assert set(backend.dtypes) >= {"float32"}


# ----------------------------------------------------------------------------- training primitives
# Backends that do not have these yet skip with their NotImplementedError's message.


@contextlib.contextmanager
def thread_count(backend, n):
    old = backend.get_num_threads()
    backend.set_num_threads(n)
    try:
        yield
    finally:
        backend.set_num_threads(old)


def _splitmix64_bits_python(seed, counter):
    """The documented dropout hash, in Python integers: an oracle independent of NumPy."""
    mask = 2 ** 64 - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    return mix((mix(seed) + (counter + 1) * 0x9E3779B97F4A7C15) & mask)


def test_dropout_hash_is_splitmix64(ref):
    # splitmix64 seeded with 0 yields 0xE220A8397B1DCDAF first (Vigna's reference code).
    assert int(ref._splitmix64_mix(np.array([0x9E3779B97F4A7C15], np.uint64))[0]) == 0xE220A8397B1DCDAF
    for seed, offset in [(0, 0), (1, 5), (2 ** 64 - 1, 2 ** 64 - 3), (12345, 10 ** 12)]:
        bits = ref.dropout_bits(seed, offset, 4)
        expected = [_splitmix64_bits_python(seed, (offset + i) % 2 ** 64) for i in range(4)]
        assert [int(b) for b in bits] == expected


DROPOUT_SHAPES = [(1, 1), (7, 3), (64, 128), (1021, 3), (5,)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", DROPOUT_SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_forward_backward(backend, ref, rng, dtype, shape, p):
    x = rng.standard_normal(shape).astype(dtype)
    seed, offset = int(rng.integers(0, 2 ** 63)), int(rng.integers(0, 2 ** 40))
    with skip_if_unimplemented():
        out, mask = backend.dropout_forward(x, p=p, seed=seed, offset=offset)
    out_ref, mask_ref = ref.dropout_forward(x, p=p, seed=seed, offset=offset)
    assert mask.dtype == np.uint8 and out.dtype == dtype
    np.testing.assert_array_equal(mask, mask_ref)  # the counter-based mask is the same everywhere
    assert_close(out, out_ref, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    assert_close(backend.dropout_backward(g, mask_ref, p=p), ref.dropout_backward(g, mask_ref, p=p), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_writes_into_out_and_counter_continues(backend, rng, dtype):
    """The mask of elements [k, n) at offset k equals the tail of the mask of [0, n) at 0."""
    x = rng.standard_normal((33, 17)).astype(dtype)
    out, mask = np.empty_like(x), np.empty(x.shape, np.uint8)
    with skip_if_unimplemented():
        result = backend.dropout_forward(x, out, mask, p=0.3, seed=7, offset=0)
    assert result[0] is out and result[1] is mask
    flat = x.reshape(-1)
    _, head = backend.dropout_forward(flat[:100].copy(), p=0.3, seed=7, offset=0)
    _, tail = backend.dropout_forward(flat[100:].copy(), p=0.3, seed=7, offset=100)
    np.testing.assert_array_equal(np.concatenate([head, tail]), mask.reshape(-1))
    grad = np.empty_like(x)
    assert backend.dropout_backward(x, mask, grad, p=0.3) is grad


def test_dropout_drops_a_fraction_p_with_fresh_masks(backend):
    x = np.ones(200_000, np.float32)
    with skip_if_unimplemented():
        out, mask = backend.dropout_forward(x, p=0.3, seed=3, offset=0)
    # Binomial(200000, 0.3): std 205 drops; 5 std either side.
    assert abs(int((mask == 0).sum()) - 60_000) < 5 * 205
    np.testing.assert_array_equal(out[mask == 1], np.float32(1 / 0.7))
    _, other_offset = backend.dropout_forward(x, p=0.3, seed=3, offset=200_000)
    _, other_seed = backend.dropout_forward(x, p=0.3, seed=4, offset=0)
    for other in (other_offset, other_seed):  # independent masks agree on ~0.7^2 + 0.3^2 = 58%
        assert 0.57 < (other == mask).mean() < 0.59


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 1), (7, 3), (64, 128), (257, 13), (1021, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_train_forward_backward(backend, ref, rng, dtype, shape, affine):
    n, c = shape
    x = (2 * rng.standard_normal(shape) + rng.standard_normal(c)).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype) if affine else None
    beta = rng.standard_normal(c).astype(dtype) if affine else None
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    rm_ref, rv_ref = rm.copy(), rv.copy()
    with skip_if_unimplemented():
        out, mean, inv_std = backend.batchnorm_forward_train(x, gamma, beta, rm, rv, momentum=0.2, eps=1e-5)
    out_ref, mean_ref, inv_std_ref = ref.batchnorm_forward_train(x, gamma, beta, rm_ref, rv_ref,
                                                                 momentum=0.2, eps=1e-5)
    scale = 4 * n ** 0.5  # sums over the batch
    for actual, expected in ((out, out_ref), (mean, mean_ref), (inv_std, inv_std_ref), (rm, rm_ref), (rv, rv_ref)):
        assert_close(actual, expected, dtype, scale=scale)
    g = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(c).astype(dtype) if affine else None for _ in range(2)]
    grads_ref = [None if a is None else a.copy() for a in grads]
    dx = backend.batchnorm_backward(g, x, mean_ref, inv_std_ref, gamma, grad_gamma=grads[0],
                                    grad_beta=grads[1], training=True)
    dx_ref = ref.batchnorm_backward(g, x, mean_ref, inv_std_ref, gamma, grad_gamma=grads_ref[0],
                                    grad_beta=grads_ref[1], training=True)
    # dx is a difference of O(1) terms that nearly cancel: compare against the terms' size,
    # |gamma * inv_std * g| (with N = 2, dx is ~1e-5 of them, and float32 rounding of the
    # terms alone leaves it with tens of percent of relative error in any implementation).
    terms = np.abs(g).max() * np.abs(inv_std_ref * (1 if gamma is None else gamma)).max()
    np.testing.assert_allclose(dx, dx_ref, rtol=RTOL_BN[dtype], atol=RTOL_BN[dtype] * scale * terms)
    if affine:
        for actual, expected in zip(grads, grads_ref):
            assert_close(actual, expected, dtype, scale=scale)


RTOL_BN = {np.float32: 1e-4, np.float64: 1e-11}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (257, 13)])
def test_batchnorm_eval_forward_backward(backend, ref, rng, dtype, shape):
    n, c = shape
    x = rng.standard_normal(shape).astype(dtype)
    gamma, beta, rm = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    rv = rng.uniform(0.5, 2, c).astype(dtype)
    out = np.empty_like(x)
    with skip_if_unimplemented():
        result = backend.batchnorm_forward_eval(x, gamma, beta, rm, rv, out, eps=1e-3)
    assert result is out
    assert_close(out, ref.batchnorm_forward_eval(x, gamma, beta, rm, rv, eps=1e-3), dtype, scale=4)
    inv_std = (1 / np.sqrt(rv + dtype(1e-3))).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gg, gb = np.zeros(c, dtype), np.zeros(c, dtype)
    gg_ref, gb_ref = gg.copy(), gb.copy()
    dx = backend.batchnorm_backward(g, x, rm, inv_std, gamma, grad_gamma=gg, grad_beta=gb, training=False)
    dx_ref = ref.batchnorm_backward(g, x, rm, inv_std, gamma, grad_gamma=gg_ref, grad_beta=gb_ref, training=False)
    assert_close(dx, dx_ref, dtype, scale=4)
    assert_close(gg, gg_ref, dtype, scale=4 * n ** 0.5)
    assert_close(gb, gb_ref, dtype, scale=4 * n ** 0.5)


def test_batchnorm_rejects_one_sample_in_training(backend):
    x = np.ones((1, 3), np.float32)
    stats = np.zeros(3, np.float32), np.ones(3, np.float32)
    with skip_if_unimplemented(), pytest.raises(ValueError, match="at least 2 samples"):
        backend.batchnorm_forward_train(x, None, None, *stats, momentum=0.1, eps=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 3), (4096,), (4097,), (784, 128), (3, 10007)])
def test_sum_squares_and_penalty(backend, ref, rng, dtype, shape):
    x = rng.standard_normal(shape).astype(dtype)
    with skip_if_unimplemented():
        value = backend.sum_squares(x)
    assert isinstance(value, float)
    np.testing.assert_allclose(value, ref.sum_squares(x), rtol=1e-12)  # float64 accumulation
    with skip_if_unimplemented():
        penalty = backend.weight_penalty_forward(x, l1=0.3, l2=0.02)
    np.testing.assert_allclose(penalty, ref.weight_penalty_forward(x, l1=0.3, l2=0.02), rtol=1e-12)
    g = rng.standard_normal(shape).astype(dtype)
    g_ref = g.copy()
    x.reshape(-1)[0] = 0  # sign(0) = 0
    assert backend.weight_penalty_backward(x, g, l1=0.3, l2=0.02) is g
    ref.weight_penalty_backward(x, g_ref, l1=0.3, l2=0.02)
    assert_close(g, g_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (13, 31), (784, 128)])
def test_scale_and_clip_inplace(backend, ref, rng, dtype, shape):
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    x.reshape(-1)[-1] = np.nan
    expected = ref.clip_inplace(x.copy(), lo=-1.5, hi=0.5)
    with skip_if_unimplemented():
        result = backend.clip_inplace(x, lo=-1.5, hi=0.5)
    assert result is x
    np.testing.assert_array_equal(x, expected)  # NaN stays NaN; clipping is exact
    expected = ref.scale_inplace(x.copy(), alpha=0.37)
    with skip_if_unimplemented():
        backend.scale_inplace(x, alpha=0.37)
    np.testing.assert_array_equal(x, expected)  # one rounding of one product


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_rejects_bad_arguments(backend, dtype):
    x = np.ones((4, 3), dtype)
    with skip_if_unimplemented():
        backend.dropout_forward(x, p=0.5, seed=0, offset=0)
    for p in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"p.*\[0, 1\)"):
            backend.dropout_forward(x, p=p, seed=0, offset=0)
    with pytest.raises(ValueError, match="seed"):
        backend.dropout_forward(x, p=0.5, seed=-1, offset=0)
    with pytest.raises(TypeError, match="mask"):
        backend.dropout_backward(x, np.ones((4, 3), np.float32), p=0.5)
    with pytest.raises(ValueError, match="mask"):
        backend.dropout_backward(x, np.ones((3, 4), np.uint8), p=0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_primitives_reject_bad_arguments(backend, dtype):
    # A backend may implement dropout without these (the cuda backend does).
    x = np.ones((4, 3), dtype)
    stats = np.zeros(3, dtype), np.ones(3, dtype)
    with skip_if_unimplemented():
        backend.batchnorm_forward_train(x, None, None, *stats, momentum=0.1, eps=1e-5)
    with pytest.raises(ValueError, match="gamma"):
        backend.batchnorm_forward_train(x, np.ones(4, dtype), None, *stats, momentum=0.1, eps=1e-5)
    read_only = np.zeros(3, dtype)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="running_mean"):
        backend.batchnorm_forward_train(x, None, None, read_only, stats[1], momentum=0.1, eps=1e-5)
    with pytest.raises(ValueError, match="l1"):
        backend.weight_penalty_forward(x, l1=-1.0, l2=0.0)
    with pytest.raises(ValueError, match="lo"):
        backend.clip_inplace(x, lo=1.0, hi=-1.0)


def test_training_reductions_do_not_depend_on_thread_count(backend, rng):
    """Fixed-chunk reductions: 1 and 2 threads give the same bits (DESIGN.md)."""
    if not hasattr(backend, "set_num_threads"):
        pytest.skip(f"the '{backend.name}' backend has no thread setting")
    x = rng.standard_normal((3001, 67)).astype(np.float32)
    g = rng.standard_normal((3001, 67)).astype(np.float32)

    def run():
        rm, rv = np.zeros(67, np.float32), np.ones(67, np.float32)
        out, mean, inv_std = backend.batchnorm_forward_train(x, None, None, rm, rv, momentum=0.1, eps=1e-5)
        gg, gb = np.zeros(67, np.float32), np.zeros(67, np.float32)
        dx = backend.batchnorm_backward(g, x, mean, inv_std, np.ones(67, np.float32), grad_gamma=gg,
                                        grad_beta=gb)
        dropped, mask = backend.dropout_forward(x, p=0.4, seed=9, offset=11)
        return [backend.sum_squares(x), backend.weight_penalty_forward(x, l1=0.1, l2=0.1), out, mean,
                inv_std, rm, rv, dx, gg, gb, dropped, mask]

    with skip_if_unimplemented():
        with thread_count(backend, 1):
            one = run()
        with thread_count(backend, 2):
            two = run()
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
