"""The Numba backend's batch norm beyond the shared suite: batches longer than one chunk of
rows, statistics accumulated in float64, outputs written over their inputs, and read-only
inputs."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES
from nnfast.backends import numpy_backend as ref

pytest.importorskip("numba")
from nnfast.backends.numba_backend import _batchnorm  # noqa: E402
from nnfast.backends.numba_backend import (batchnorm_backward, batchnorm_forward_eval,  # noqa: E402
                                           batchnorm_forward_train)

CHUNK = _batchnorm.CHUNK_ROWS
# Rows around and across the chunk size, columns odd and prime
SHAPES = [(2, 1), (3, 17), (CHUNK - 1, 5), (CHUNK, 3), (CHUNK + 1, 7), (3 * CHUNK + 5, 33), (1000, 1)]
# float32: a few roundings of O(1) values; float64 the same at its epsilon
RTOL = {np.float32: 1e-5, np.float64: 1e-13}


def inputs(rng, shape, dtype, affine):
    n, c = shape
    x = (3 * rng.standard_normal(shape) + 5 * rng.standard_normal(c)).astype(dtype)
    gamma = rng.standard_normal(c).astype(dtype) if affine else None
    beta = rng.standard_normal(c).astype(dtype) if affine else None
    return x, gamma, beta, rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_training_forward_and_backward_match_the_reference(rng, dtype, shape, affine):
    x, gamma, beta, rm, rv = inputs(rng, shape, dtype, affine)
    rm_ref, rv_ref = rm.copy(), rv.copy()
    out, mean, inv_std = batchnorm_forward_train(x, gamma, beta, rm, rv, momentum=0.3, eps=1e-4)
    expected = ref.batchnorm_forward_train(x, gamma, beta, rm_ref, rv_ref, momentum=0.3, eps=1e-4)
    rtol = RTOL[dtype] * np.sqrt(shape[0])  # the reference sums in the data's dtype
    # out is O(|gamma| + |beta|): its rounding errors are relative to that, not to out itself
    size = 1 + (0 if gamma is None else np.abs(gamma).max() + np.abs(beta).max())
    np.testing.assert_allclose(out, expected[0], rtol=rtol, atol=rtol * size)
    for actual, wanted in ((mean, expected[1]), (inv_std, expected[2]), (rm, rm_ref), (rv, rv_ref)):
        np.testing.assert_allclose(actual, wanted, rtol=rtol, atol=rtol * np.abs(wanted).max())
    g = rng.standard_normal(shape).astype(dtype)
    grads = [None if gamma is None else rng.standard_normal(shape[1]).astype(dtype) for _ in range(2)]
    grads_ref = [None if a is None else a.copy() for a in grads]
    dx = batchnorm_backward(g, x, mean, inv_std, gamma, None, *grads, training=True)
    dx_ref = ref.batchnorm_backward(g, x, mean, inv_std, gamma, None, *grads_ref, training=True)
    # dx = scale / N * (N g - sum g - x_hat sum(g x_hat)): terms of size N |g|, nearly cancelling
    terms = np.abs(g).max() * np.abs(inv_std * (1 if gamma is None else gamma)).max()
    np.testing.assert_allclose(dx, dx_ref, rtol=rtol, atol=rtol * terms * np.sqrt(shape[0]))
    for actual, wanted in zip(grads, grads_ref):
        if actual is not None:
            np.testing.assert_allclose(actual, wanted, rtol=rtol, atol=rtol * np.sqrt(shape[0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (CHUNK + 1, 7), (5, 130)])
@pytest.mark.parametrize("affine", [True, False])
def test_eval_forward_and_backward_match_the_reference(rng, dtype, shape, affine):
    x, gamma, beta, rm, rv = inputs(rng, shape, dtype, affine)
    out = batchnorm_forward_eval(x, gamma, beta, rm, rv, eps=1e-3)
    # no reduction: the same operations in the same order give the same bits
    np.testing.assert_array_equal(out, ref.batchnorm_forward_eval(x, gamma, beta, rm, rv, eps=1e-3))
    inv_std = (1 / np.sqrt(rv + dtype(1e-3))).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    dx = batchnorm_backward(g, x, rm, inv_std, gamma, training=False)
    np.testing.assert_array_equal(dx, ref.batchnorm_backward(g, x, rm, inv_std, gamma, training=False))


def test_float32_statistics_are_accumulated_in_float64(rng):
    """A column of 100 000 values near 1e4: a float32 running sum is off by thousands
    of ulps; a float64 sum rounded once is within an ulp of the exact mean."""
    x = (1e4 + rng.standard_normal((100_000, 3))).astype(np.float32)
    _, mean, inv_std = batchnorm_forward_train(x, None, None, np.zeros(3, np.float32),
                                               np.ones(3, np.float32), eps=0.0)
    exact = x.astype(np.float64).mean(axis=0)
    ulp = np.spacing(np.float32(1e4))
    assert np.all(np.abs(mean - exact) <= 1.0 * ulp)
    exact_inv_std = 1 / x.astype(np.float64).std(axis=0)
    np.testing.assert_allclose(inv_std, exact_inv_std, rtol=1e-4)  # deviations of 1 ulp of 1e4


@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_may_be_their_inputs(rng, dtype):
    x, gamma, beta, rm, rv = inputs(rng, (CHUNK + 3, 9), dtype, True)
    expected = ref.batchnorm_forward_train(x, gamma, beta, rm.copy(), rv.copy())
    in_place = x.copy()
    out, mean, inv_std = batchnorm_forward_train(in_place, gamma, beta, rm, rv, in_place)
    assert out is in_place
    np.testing.assert_allclose(out, expected[0], rtol=RTOL[dtype] * 64, atol=RTOL[dtype] * 64)
    g = rng.standard_normal(x.shape).astype(dtype)
    dx_ref = ref.batchnorm_backward(g, x, mean, inv_std, gamma)
    for overwritten in ("grad_out", "x"):
        g_in, x_in = g.copy(), x.copy()
        target = g_in if overwritten == "grad_out" else x_in
        assert batchnorm_backward(g_in, x_in, mean, inv_std, gamma, target) is target
        np.testing.assert_allclose(target, dx_ref, rtol=RTOL[dtype] * 64, atol=RTOL[dtype] * 64)


def test_read_only_inputs_are_accepted(rng):
    x, gamma, beta, rm, rv = inputs(rng, (6, 4), np.float64, True)
    for a in (x, gamma, beta):
        a.flags.writeable = False
    out, mean, inv_std = batchnorm_forward_train(x, gamma, beta, rm, rv)
    for a in (mean, inv_std):
        a.flags.writeable = False
    dx = batchnorm_backward(x, x, mean, inv_std, gamma, None, np.zeros(4), np.zeros(4))
    np.testing.assert_allclose(dx, ref.batchnorm_backward(x, x, mean, inv_std, gamma), rtol=1e-12,
                               atol=1e-12)
