"""The cpp backend's training primitives beyond the shared suite: the dropout counter wrapping
at 2**64, integer arguments, column reductions over both chunkings bitwise the same on 1 and
3 threads, batch norm accurate on data far from zero, and the bindings' overlap checks."""
from __future__ import annotations

import numpy as np
import pytest

from nnfast import backends

if backends.unavailable_reason("cpp") is not None:
    pytest.skip(f"cpp backend unavailable: {backends.unavailable_reason('cpp')}",
                allow_module_level=True)

from nnfast.backends import cpp_backend as cpp  # noqa: E402
from nnfast.backends import numpy_backend as ref  # noqa: E402


def test_dropout_counter_wraps_at_2_64(rng):
    x = rng.standard_normal(40)
    for seed, offset in [(2 ** 64 - 1, 2 ** 64 - 7), (0, 2 ** 64 - 1)]:
        out, mask = cpp.dropout_forward(x, p=0.5, seed=seed, offset=offset)
        out_ref, mask_ref = ref.dropout_forward(x, p=0.5, seed=seed, offset=offset)
        np.testing.assert_array_equal(mask, mask_ref)
        np.testing.assert_array_equal(out, out_ref)


def test_dropout_integer_arguments():
    x = np.ones(8, np.float32)
    _, mask = cpp.dropout_forward(x, p=0.5, seed=np.uint64(2 ** 64 - 1), offset=np.int64(3))
    np.testing.assert_array_equal(mask, ref.dropout_forward(x, p=0.5, seed=2 ** 64 - 1, offset=3)[1])
    with pytest.raises(TypeError, match="seed: expected an integer, got bool"):
        cpp.dropout_forward(x, p=0.5, seed=True, offset=0)
    with pytest.raises(TypeError, match="offset: expected an integer, got float"):
        cpp.dropout_forward(x, p=0.5, seed=1, offset=1.0)
    with pytest.raises(ValueError, match=r"offset: must lie in \[0, 2\*\*64\), got 18446744073709551616"):
        cpp.dropout_forward(x, p=0.5, seed=1, offset=2 ** 64)
    read_only = np.zeros(8, np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="mask: output array is read-only"):
        cpp.dropout_forward(x, None, read_only, p=0.5, seed=1, offset=0)


def column_reductions(x, g):
    c = x.shape[1]
    rm, rv = np.zeros(c, x.dtype), np.ones(c, x.dtype)
    gamma, beta = np.full(c, 1.5, x.dtype), np.full(c, 0.25, x.dtype)
    out, mean, inv_std = cpp.batchnorm_forward_train(x, gamma, beta, rm, rv, momentum=0.1, eps=1e-5)
    gg, gb = np.zeros(c, x.dtype), np.zeros(c, x.dtype)
    dx = cpp.batchnorm_backward(g, x, mean, inv_std, gamma, grad_gamma=gg, grad_beta=gb)
    return [out, mean, inv_std, rm, rv, dx, gg, gb, cpp.bias_grad(g)]


# (50000, 3): many row chunks; (40, 4100): one chunk, more columns than partial sums fit;
# each large enough for a team of 3 (threads_for).
@pytest.mark.parametrize("shape", [(50000, 3), (40, 4100), (2049, 33)])
def test_column_reductions_bitwise_on_any_thread_count(cpp_threads, rng, shape):
    x = (3 * rng.standard_normal(shape) + 1).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    cpp_threads(1)
    one = column_reductions(x, g)
    cpp_threads(3)
    three = column_reductions(x, g)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


def test_batchnorm_statistics_accurate_far_from_zero(rng):
    """Sums in float64 over two passes: float32 data with mean 1e4 and std 1 normalizes to
    float32 precision (a one-pass float32 variance would lose every digit)."""
    x64 = 1e4 + rng.standard_normal((1000, 7))
    x = x64.astype(np.float32)
    rm, rv = np.zeros(7, np.float32), np.ones(7, np.float32)
    out, mean, inv_std = cpp.batchnorm_forward_train(x, None, None, rm, rv, momentum=1.0, eps=1e-5)
    rm64, rv64 = np.zeros(7), np.ones(7)
    out64, _, inv_std64 = ref.batchnorm_forward_train(x.astype(np.float64), None, None, rm64, rv64,
                                                      momentum=1.0, eps=1e-5)
    np.testing.assert_allclose(inv_std, inv_std64, rtol=1e-6)
    np.testing.assert_allclose(rv, rv64, rtol=1e-6)
    np.testing.assert_allclose(out, out64, atol=2e-3)  # x - mean rounds at 1e4 * 2**-24


def test_bindings_refuse_outputs_sharing_memory():
    x = np.ones((4, 3))
    stats = np.zeros(6)
    rm, rv = stats[:3], stats[3:]
    with pytest.raises(ValueError, match="mean: shares memory with running_mean"):
        cpp.batchnorm_forward_train(x, None, None, rm, rv, mean=rm)
    gamma = np.ones(3)
    with pytest.raises(ValueError, match="grad_gamma: shares memory with gamma"):
        cpp.batchnorm_backward(x, x, np.zeros(3), np.ones(3), gamma, grad_gamma=gamma)
    g = np.ones(5)
    with pytest.raises(ValueError, match="grad: shares memory with w"):
        cpp.weight_penalty_backward(g[:4], g[1:], l1=0.1, l2=0.0)
    dx = cpp.batchnorm_backward(x, x, np.zeros(3), np.ones(3), None, grad_x=x)  # in place is fine
    assert dx is x
