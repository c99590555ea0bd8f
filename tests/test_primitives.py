"""Every primitive of every backend against the NumPy reference, on fresh random inputs of
awkward shapes (1, odd, primes, not multiples of any tile), float32 and float64."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, assert_close

GEMM_SHAPES = [  # (M, N, K)
    (1, 1, 1), (1, 10, 784), (7, 1, 3), (5, 13, 1), (17, 31, 23), (64, 10, 64),
    (97, 131, 61), (64, 128, 784), (257, 19, 131), (3, 257, 1021),
]
ELEMENTWISE_SHAPES = [(1, 1), (1, 10), (7, 1), (13, 31), (64, 128), (127, 131), (1021, 3)]
ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh"]


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
