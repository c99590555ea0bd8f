"""The C++ GEMM on every microkernel this CPU can run (generic, avx2, avx512; the others are
skipped with the reason), against a float64 NumPy reference: every transpose combination,
alpha/beta, fused bias + activation, all small shapes from 1 to 40, shapes crossing the
cache blocks (K > kc, N > nc), primes, and the MLP shapes; plus bitwise-identical results
for any thread count, and the NNFAST_ISA override."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nnfast.backends import numpy_backend as reference

_core = pytest.importorskip("nnfast._core")

ISAS = ["generic", "avx2", "avx512"]
DTYPES = [np.float32, np.float64]
TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]
ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "elu"]
MLP_SHAPES = [  # (M, K, N) forward, with their backward shapes: dW = X^T dY, dX = dY W^T
    (64, 784, 128), (64, 128, 64), (256, 784, 128), (256, 128, 10)]


@pytest.fixture(params=ISAS)
def isa(request):
    """Makes one microkernel ISA active for the test, and restores the default after."""
    if request.param not in _core._gemm_isas():
        pytest.skip(f"this CPU cannot run the {request.param} kernels "
                    f"(supported: {', '.join(_core._gemm_isas())})")
    before = _core.gemm_isa()
    _core._set_gemm_isa(request.param)
    yield request.param
    _core._set_gemm_isa(before)


def operands(rng, m, n, k, dtype, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def op64(x, trans):
    return (x.T if trans else x).astype(np.float64)


def product_tolerance(opa, opb, k, dtype, alpha=1.0):
    """Rounding bound of alpha * (a length-k dot product), elementwise: 2 k eps |alpha||A||B|.
    (Blocked summation stays within the textbook k eps bound; 2 leaves room for alpha.)"""
    eps = np.finfo(dtype).eps
    return 2.0 * max(k, 1) * eps * abs(alpha) * (np.abs(opa) @ np.abs(opb)) + np.finfo(dtype).tiny


def check_gemm(rng, m, n, k, dtype, trans_a, trans_b, alpha=1.0, beta=0.0, with_bias=False):
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    # beta == 0 must ignore what C holds, NaN included.
    out = c0.copy() if beta != 0.0 else np.full((m, n), np.nan, dtype)
    bias = rng.standard_normal(n).astype(dtype) if with_bias else None
    result = _core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta,
                        bias=bias)
    assert result is out
    opa, opb = op64(a, trans_a), op64(b, trans_b)
    expected = alpha * (opa @ opb) + beta * c0.astype(np.float64)
    if with_bias:
        expected += bias
    eps = np.finfo(dtype).eps
    tol = product_tolerance(opa, opb, k, dtype, alpha) + 2 * eps * np.abs(expected) \
        + 2 * eps * abs(beta) * np.abs(c0)
    err = np.abs(out - expected)
    assert np.all(err <= tol), (
        f"{m}x{n}x{k} trans={trans_a, trans_b} alpha={alpha} beta={beta}: "
        f"max excess {np.max(err - tol):.3g}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_every_small_shape(isa, rng, dtype, trans_a, trans_b):
    """All M, N in 1..40 (every partial tile of every kernel), K cycling through 1..40."""
    ks = [1, 2, 3, 5, 8, 13, 16, 21, 31, 40]
    for m in range(1, 41):
        for n in range(1, 41):
            check_gemm(rng, m, n, ks[(m * 7 + n) % len(ks)], dtype, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_every_small_k(isa, rng, dtype, trans_a, trans_b):
    for k in range(1, 41):
        check_gemm(rng, 15 + k % 3, 33 - k % 5, k, dtype, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("shape", [(97, 131, 61), (257, 19, 1031), (3, 1283, 509),
                                   (131, 263, 509), (1, 2053, 7), (600, 2, 900), (307, 13, 97),
                                   (301, 100, 1000)])
def test_primes_and_blocks(isa, rng, dtype, trans_a, trans_b, shape):
    """Prime sizes; K past one reduction block, N past one packed B block; a narrow C (the
    transposed-problem path when A is transposed); a transposed A read in place across
    several reduction blocks."""
    m, n, k = shape
    check_gemm(rng, m, n, k, dtype, trans_a, trans_b, alpha=0.75, beta=-1.5, with_bias=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("n,k", [(128, 784), (784, 128), (131, 1283), (777, 37), (9, 300),
                                 (300, 9), (1100, 600), (2500, 13)])
def test_single_row(isa, rng, dtype, trans_a, trans_b, n, k):
    """Batch-1 products run their own kernels: rows of an untransposed B added into the
    row of C four at a time (in column chunks of 8 KiB), or dot products along the rows of a
    transposed B. Widths past the chunks, lengths past the four-row steps and the blocks of
    8 rows, with tails."""
    check_gemm(rng, 1, n, k, dtype, trans_a, trans_b, alpha=0.75, beta=-1.5, with_bias=True)
    check_gemm(rng, 1, n, k, dtype, trans_a, trans_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", MLP_SHAPES)
def test_mlp_shapes_forward_and_backward(isa, rng, dtype, shape):
    m, k, n = shape
    check_gemm(rng, m, n, k, dtype, False, False, with_bias=True)  # Y = X W + b
    check_gemm(rng, k, n, m, dtype, True, False)                  # dW = X^T dY
    check_gemm(rng, m, k, n, dtype, False, True)                  # dX = dY W^T


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 1.0), (2.0, -1.5)])
@pytest.mark.parametrize("shape", [(5, 7, 3), (33, 47, 600), (70, 300, 45), (140, 9, 30)])
def test_alpha_beta(isa, rng, dtype, alpha, beta, shape):
    for trans_a, trans_b in TRANSPOSES:
        check_gemm(rng, *shape, dtype, trans_a, trans_b, alpha=alpha, beta=beta)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_k_and_zero_alpha_give_beta_c_plus_bias(isa, rng, dtype):
    for m, n, k, alpha in [(6, 9, 0, 1.0), (20, 35, 17, 0.0)]:
        a, b = operands(rng, m, n, k, dtype, False, False)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        out = c0.copy()
        _core.gemm(a, b, out, alpha=alpha, beta=0.5, bias=bias, activation="relu")
        np.testing.assert_array_equal(out, np.maximum(dtype(0.5) * c0 + bias, 0))
        out = np.full((m, n), np.nan, dtype)
        _core.gemm(a, b, out, alpha=alpha, beta=0.0, bias=bias)
        np.testing.assert_array_equal(out, np.broadcast_to(bias, (m, n)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_epilogue(isa, rng, dtype, activation):
    """act(alpha op(A) op(B) + beta C + bias), applied once after the whole reduction (K
    spans several blocks in one case, so an epilogue applied per block would show), on
    partial tiles, on the transposed-problem path (narrow C, transposed A; the last case
    large enough for its threads to write C in parts) and on both single-row paths."""
    cases = [((1, 1, 3), (False, False)), ((13, 37, 29), (False, True)),
             ((29, 150, 1100), (True, True)), ((150, 7, 90), (True, False)),
             ((1, 300, 1100), (False, False)), ((1, 150, 900), (True, True)),
             ((700, 5, 300), (True, False))]
    for (m, n, k), (trans_a, trans_b) in cases:
        a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
        a /= np.sqrt(k)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        out = c0.copy()
        _core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=0.5,
                   bias=bias, activation=activation, negative_slope=0.2)
        opa, opb = op64(a, trans_a), op64(b, trans_b)
        pre = 0.5 * (opa @ opb) + 0.5 * c0.astype(np.float64) + bias
        expected = reference.activation_forward(activation, pre, negative_slope=0.2)
        eps = np.finfo(dtype).eps
        # The activations' slopes are at most ~1.13, so the pre-activation bound carries over;
        # plus a few ulp for the activation itself in the kernel's dtype.
        tol = 1.2 * (product_tolerance(opa, opb, k, dtype, 0.5) + 4 * eps * (np.abs(pre)
                     + np.abs(bias) + np.abs(c0))) + 8 * eps * np.abs(expected) \
            + np.finfo(dtype).tiny
        err = np.abs(out - expected)
        assert np.all(err <= tol), f"{activation} {m}x{n}x{k}: max excess {np.max(err - tol):.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_of_nan_is_zero_like_the_scalar_kernels(isa, dtype):
    a = np.array([[np.nan, 1.0], [-1.0, 0.0]], dtype)
    b = np.eye(2, dtype=dtype)
    out = _core.gemm(a, b, activation="relu")
    expected = reference.activation_forward("relu", a)
    assert out[0, 0] == 0 and np.array_equal(out[1:], expected[1:])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_partial_vectors_write_only_inside_c(isa, rng, dtype, trans_a, trans_b):
    """Every width of a last partial vector, in the kernels' stores and in packing: C sits
    between sentinels in one buffer. A store past a row's end would land in the next row,
    already written (left to right), or in the sentinels after the last row."""
    lanes = 64 // np.dtype(dtype).itemsize
    for n in range(1, 2 * lanes + 2):
        for m, k in [(7, 5), (13, 40), (1, 9), (30, 300)]:
            a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
            buffer = np.full(m * n + 2 * lanes, -7.0, dtype)
            out = buffer[lanes:lanes + m * n].reshape(m, n)
            bias = rng.standard_normal(n).astype(dtype)
            for activation in ("identity", "relu"):
                _core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b,
                           bias=bias if activation == "relu" else None, activation=activation)
                expected = op64(a, trans_a) @ op64(b, trans_b)
                if activation == "relu":
                    expected = np.maximum(expected + bias, 0)
                tol = product_tolerance(op64(a, trans_a), op64(b, trans_b), k, dtype) + 1e-6
                assert np.all(np.abs(out - expected) <= tol), (m, n, k, activation)
                assert np.all(buffer[:lanes] == -7.0) and np.all(buffer[lanes + m * n:] == -7.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_any_thread_count(isa, rng, dtype):
    before = _core.get_num_threads()
    try:
        for m, n, k in [(64, 128, 784), (256, 10, 128), (130, 700, 300), (1000, 33, 70),
                        (300, 12, 50), (700, 5, 300), (1, 777, 300), (1, 3000, 70)]:
            for trans_a, trans_b in TRANSPOSES:
                a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
                bias = rng.standard_normal(n).astype(dtype)
                results = []
                for threads in (1, 2, 3, 4):
                    _core.set_num_threads(threads)
                    # C one element off a cache line: threads then split it by rows where
                    # they would otherwise split its columns.
                    for out in (np.empty((m, n), dtype), np.empty(m * n + 1, dtype)[1:].reshape(m, n)):
                        results.append(_core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b,
                                                  bias=bias, activation="gelu"))
                for r in results[1:]:
                    np.testing.assert_array_equal(r, results[0])
    finally:
        _core.set_num_threads(before)


def _isa_in_subprocess(env_value):
    env = dict(os.environ, NNFAST_ISA=env_value)
    # The backend loads on first use, here on line 4 of the user's script.
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import numpy as np, nnfast; from nnfast import nn, _core\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    nn.Sequential(nn.Dense(3, 2)).predict(np.zeros((1, 3)))\n"
            "print(_core.gemm_isa()); print('|'.join(f'{x.filename}:{x.lineno}: {x.message}' for x in w))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return out[0], out[1] if len(out) > 1 else ""


def test_nnfast_isa_env_selects_the_kernels():
    for name in _core._gemm_isas():
        assert _isa_in_subprocess(name) == (name, "")


def test_unsupported_nnfast_isa_warns_and_falls_back_to_the_best():
    chosen, warning = _isa_in_subprocess("avx9000")
    assert chosen == _core._gemm_isas()[-1]
    assert "NNFAST_ISA=avx9000" in warning and "not supported" in warning
    # Attributed to the user's line that loaded the backend, not to importlib's frames.
    assert warning.startswith("<string>:4: "), warning


def test_set_gemm_isa_rejects_what_the_cpu_cannot_run():
    with pytest.raises(ValueError, match="not supported"):
        _core._set_gemm_isa("avx9000")
    assert _core.gemm_isa() in _core._gemm_isas()


def test_fma_peak_is_measured():
    assert _core._fma_peak_gflops(0.02) > 0.1
